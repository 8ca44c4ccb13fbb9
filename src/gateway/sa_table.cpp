#include "gateway/sa_table.hpp"

#include <utility>

namespace pspgw::gateway {

// 100,000 of them at 100,000 tunnels: one 192-byte heap chunk each (README Performance).
static_assert(sizeof(TxSa) <= 176);

SaTable::SaTable(uint32_t capacity, flow::EpochDomain& epoch)
    : slots_(capacity), free_(std::make_shared<std::vector<CryptoId>>()), epoch_(epoch) {
  free_->reserve(capacity);
  for (uint32_t i = capacity; i > 0; --i) free_->push_back(i - 1);
}

SaTable::~SaTable() {
  for (auto& s : slots_) delete s.load(std::memory_order_relaxed);
}

TxKeys::TxKeys(std::size_t workers) : n_(workers) {
  if (workers > 1) slots_ = new std::atomic<crypto::AeadKey*>[workers]();
}

TxKeys::~TxKeys() {
  for (std::size_t w = 0; w < n_; ++w) delete slots_[w].exchange(nullptr, std::memory_order_relaxed);
  if (slots_ != &one_) delete[] slots_;
}

const crypto::AeadKey* TxKeys::set(std::size_t w, std::unique_ptr<crypto::AeadKey> key) const {
  if (w >= n_ || !key) return nullptr;
  crypto::AeadKey* k = key.release();
  delete slots_[w].exchange(k, std::memory_order_relaxed);  // empty: only worker w fills its slot
  return k;
}

// Out of line and cold: the first packet of an SA on a worker, once.
const crypto::AeadKey* TxSa::make_key(uint16_t worker, const crypto::AeadBackend& backend) const {
  if (!tmpl || worker >= keys.size()) return nullptr;
  const crypto::AeadAlg alg = tmpl->alg();
  return keys.set(worker, backend.make_key(alg, key.reveal().first(crypto::key_size(alg))));
}

TxSa::TxSa(const psp::SealParams& params, const psp::OuterHeaders& outer, Secret<32> k, std::size_t workers)
    : key(std::move(k)), keys(workers) {
  if (auto t = psp::EncapTemplate::make(params, outer)) tmpl = SaTemplate(*t);
}

void SaTable::retire(const TxSa* sa) {
  if (sa != nullptr) epoch_.retire([sa] { delete sa; });
}

Result<CryptoId, SaError> SaTable::install(std::unique_ptr<TxSa> sa) {
  if (!sa || sa->keys.size() == 0) return Err{SaError::kBadKey};
  if (free_->empty()) return Err{SaError::kFull};
  const CryptoId id = free_->back();
  free_->pop_back();
  slots_[id].store(sa.release(), std::memory_order_release);
  ++used_;
  return id;
}

Status<SaError> SaTable::replace(CryptoId id, std::unique_ptr<TxSa> sa) {
  if (!sa || sa->keys.size() == 0) return Err{SaError::kBadKey};
  if (id >= slots_.size() || slots_[id].load(std::memory_order_relaxed) == nullptr)
    return Err{SaError::kNotFound};
  retire(slots_[id].exchange(sa.release(), std::memory_order_acq_rel));
  return {};
}

Status<SaError> SaTable::remove(CryptoId id) {
  if (id >= slots_.size()) return Err{SaError::kNotFound};
  const TxSa* old = slots_[id].exchange(nullptr, std::memory_order_acq_rel);
  if (old == nullptr) return Err{SaError::kNotFound};
  retire(old);
  // The id is reusable only once no worker can still act on a packet tagged with it (EGR_ACL entries that
  // name it are removed first by the caller; a batch in flight may still carry it): after a grace period.
  epoch_.retire([free = free_, id] { free->push_back(id); });
  --used_;
  return {};
}

}  // namespace pspgw::gateway
