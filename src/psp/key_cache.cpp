#include "psp/key_cache.hpp"

#include <bit>

#include "psp/seal.hpp"

namespace pspgw::psp {

KeyCache::KeyCache(const crypto::AeadBackend& aead, std::size_t capacity)
    : aead_(aead),
      sets_(std::bit_ceil(capacity < 2 ? std::size_t{2} : capacity) / 2),
      set_mask_(sets_.size() - 1) {}

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

const crypto::AeadKey* KeyCache::resolve_miss(Set& set, uint32_t spi, PspVersion version, DropReason& why) {
  const uint64_t generation = generation_;
  // The way to fill: this SPI's own from an older snapshot (stale), else way[0] after its entry moves to
  // way[1] (evicting the one filled longer ago, if any).
  Entry* fill = nullptr;
  for (Entry& e : set.way) {
    if (e.key && e.spi == spi && (e.tag & kVersionMask) == static_cast<uint32_t>(version)) {
      ++stats_.stale;  // from an older snapshot
      fill = &e;
    }
  }
  // The high-water check comes before derive() and before the set is touched: an SPI nobody was given
  // costs this load and nothing else.
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
  if (fill != nullptr) {
    park(std::move(fill->key));
  } else {  // way[0] is empty only while way[1] is
    if (set.way[1].key) park(std::move(set.way[1].key));
    set.way[1] = std::move(set.way[0]);
    fill = &set.way[0];
  }
  fill->spi = spi;
  fill->tag = tag(generation, version);
  fill->key = std::move(key);
  return fill->key.get();
}

}  // namespace pspgw::psp
