#include "psp/key_cache.hpp"

#include <bit>
#include <cassert>
#include <memory>

#include "psp/seal.hpp"

namespace pspgw::psp {

KeySlab::KeySlab(std::size_t object_size, std::size_t count, bool huge)
    : mem_(object_size * count), object_size_(object_size) {
  if (huge) mem_.advise_huge_pages();
  free_.reserve(count);
}

void* KeySlab::take() {
  if (!free_.empty()) {
    void* slot = free_.back();
    free_.pop_back();
    return slot;
  }
  if ((fresh_ + 1) * object_size_ > mem_.size()) return nullptr;
  return base() + object_size_ * fresh_++;
}

void KeySlab::give_back(void* slot) {
  assert(holds(slot) && free_.size() < mem_.size() / object_size_);
  free_.push_back(slot);
}

KeyCache::KeyCache(const crypto::AeadBackend& aead, std::size_t capacity)
    : aead_(aead),
      sets_(std::bit_ceil(capacity < 2 ? std::size_t{2} : capacity) / 2),
      set_mask_(sets_.size() - 1) {
  for (std::size_t slot = 0; slot < 2; ++slot) {
    for (std::size_t v = 0; v <= kVersionMask; ++v) {
      set_offset_[slot << 4 | v] =
          static_cast<uint32_t>((slot * (set_mask_ / 2 + 1) + v * (set_mask_ / 8 + 1)) & set_mask_);
    }
  }
  for (std::size_t v = 0; v < hot_.size(); ++v) {
    if (const auto alg = aead_alg(static_cast<uint8_t>(v))) hot_[v] = aead_.hot_bytes(*alg);
  }
  const auto storage = aead_.key_storage();
  if (storage.size != 0 && storage.size % storage.align == 0 && storage.align <= 4096) {
    slab_ = std::make_unique<KeySlab>(storage.size, this->capacity() + parked_.size() + 1, prefetching());
  }
}

KeyCache::~KeyCache() {
  for (Set& set : sets_) {
    for (Entry& e : set.way) free_key(e.key);
  }
  for (crypto::AeadKey* k : parked_) free_key(k);
  free_key(spare_);
}

crypto::AeadKey* KeyCache::new_key(crypto::AeadAlg alg, std::span<const uint8_t> bytes) {
  if (!slab_) return aead_.make_key(alg, bytes).release();
  void* slot = slab_->take();
  assert(slot != nullptr);  // the slab holds every object the cache can have at once
  if (slot == nullptr) return nullptr;
  crypto::AeadKey* key = aead_.make_key_at(slot, alg, bytes);
  if (key == nullptr) slab_->give_back(slot);
  return key;
}

void KeyCache::free_key(crypto::AeadKey* key) {
  if (key == nullptr) return;
  if (!slab_) {
    delete key;
    return;
  }
  void* slot = dynamic_cast<void*>(key);  // the most-derived object: where make_key_at placed it
  std::destroy_at(key);                   // clears the key bytes
  slab_->give_back(slot);
}

void KeyCache::update(std::shared_ptr<const MasterKeySnapshot> snapshot) {
  snapshot_ = std::move(snapshot);
  generation_ = snapshot_ ? snapshot_->generation() : 0;
}

crypto::AeadKey* KeyCache::derive(uint32_t spi, PspVersion version) {
  const auto alg = aead_alg(static_cast<uint8_t>(version));
  if (!snapshot_ || !alg) return nullptr;
  auto derived = snapshot_->derive(spi, version, &kdf_);
  if (!derived) return nullptr;
  // `derived` is zeroed when it goes out of scope.
  if (spare_ != nullptr && aead_.rekey(*spare_, *alg, derived->view())) {
    ++stats_.reused;
    return std::exchange(spare_, nullptr);
  }
  return new_key(*alg, derived->view());
}

void KeyCache::park(crypto::AeadKey* key) {
  // The key parked kMaxBatch evictions ago is no longer named by any op: it becomes the spare (and the
  // previous spare, if the backend could not rekey it, is freed).
  free_key(spare_);
  spare_ = parked_[next_park_];
  parked_[next_park_] = key;
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
  crypto::AeadKey* key = derive(spi, version);
  if (key == nullptr) {
    ++stats_.unknown;
    why = DropReason::kUnknownKey;
    return nullptr;
  }
  ++stats_.misses;
  if (fill != nullptr) {
    park(fill->key);
  } else {  // way[0] is empty only while way[1] is
    if (set.way[1].key != nullptr) park(set.way[1].key);
    set.way[1] = set.way[0];
    fill = &set.way[0];
  }
  fill->spi = spi;
  fill->tag = tag(generation, version);
  fill->key = key;
  return key;
}

}  // namespace pspgw::psp
