#include "psp/key_cache.hpp"

#include <bit>

#include "psp/seal.hpp"

namespace pspgw::psp {

KeyCache::KeyCache(const crypto::AeadBackend& aead, std::size_t capacity)
    : aead_(aead),
      entries_(std::bit_ceil(capacity == 0 ? std::size_t{1} : capacity)),
      index_shift_(64 - std::countr_zero(entries_.size())) {}

void KeyCache::update(std::shared_ptr<const MasterKeySnapshot> snapshot) {
  snapshot_ = std::move(snapshot);
  generation_ = snapshot_ ? snapshot_->generation() : 0;
}

std::unique_ptr<crypto::AeadKey> KeyCache::derive(uint32_t spi, PspVersion version) {
  const auto alg = aead_alg(static_cast<uint8_t>(version));
  if (!snapshot_ || !alg) return nullptr;
  auto derived = snapshot_->derive(spi, version, &kdf_);
  if (!derived) return nullptr;
  // `derived` is zeroed when it goes out of scope.
  if (spare_ && aead_.rekey(*spare_, *alg, derived->view())) {
    ++stats_.reused;
    return std::move(spare_);
  }
  return aead_.make_key(*alg, derived->view());
}

void KeyCache::park(std::unique_ptr<crypto::AeadKey> key) {
  // The key parked kMaxBatch evictions ago is no longer named by any op: it becomes the spare (and the
  // previous spare, if the backend could not rekey it, is freed).
  spare_ = std::move(parked_[next_park_]);
  parked_[next_park_] = std::move(key);
  next_park_ = (next_park_ + 1) % parked_.size();
}

const crypto::AeadKey* KeyCache::key_for(uint32_t spi, PspVersion version) {
  DropReason why = DropReason::kNone;
  return resolve(spi, version, why);
}

const crypto::AeadKey* KeyCache::resolve_miss(Entry& e, uint32_t spi, PspVersion version, DropReason& why) {
  const uint64_t generation = generation_;
  if (e.key && e.spi == spi && e.version == version) ++stats_.stale;  // from an older snapshot
  // The high-water check comes before derive() and before `e` is touched: an SPI nobody was given costs
  // this load and nothing else.
  if (snapshot_ && !snapshot_->issued(spi)) {
    ++stats_.unissued;
    why = DropReason::kUnissuedSpi;
    return nullptr;
  }
  auto key = derive(spi, version);
  if (!key) {
    ++stats_.unknown;
    why = DropReason::kUnknownKey;
    return nullptr;
  }
  ++stats_.misses;
  if (e.key) park(std::move(e.key));
  e.spi = spi;
  e.version = version;
  e.generation = generation;
  e.key = std::move(key);
  return e.key.get();
}

}  // namespace pspgw::psp
