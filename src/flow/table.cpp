#include "flow/table.hpp"

namespace pspgw::flow {

uint32_t HashIndex::bucket_count(uint32_t max_keys) {
  // Load <= 1/2: twice as many slots as keys, at least one bucket.
  const uint64_t slots = std::max<uint64_t>(2ULL * max_keys, kSlots);
  return static_cast<uint32_t>(std::bit_ceil(slots / kSlots + (slots % kSlots != 0 ? 1 : 0)));
}

HashIndex::HashIndex(uint32_t max_keys) : mask_(bucket_count(max_keys) - 1), buckets_(mask_ + 1ULL) {}

bool HashIndex::insert(uint32_t hash, uint32_t idx) {
  const uint32_t limit = std::min<uint32_t>(kMaxProbe, mask_);
  for (uint32_t p = 0; p <= limit; ++p) {
    Bucket& b = buckets_[(hash + p) & mask_];
    for (uint32_t s = 0; s < kSlots; ++s) {
      const uint64_t w = load(b.w[s], std::memory_order_relaxed);
      if (w != kEmpty && w != kTombstone) continue;
      // Publish the bound first: a reader that sees the word also sees a bound that reaches it.
      if (p > max_probe_.load(std::memory_order_relaxed)) max_probe_.store(p, std::memory_order_release);
      store(b.w[s], word(hash, idx), std::memory_order_release);
      return true;
    }
  }
  return false;
}

void HashIndex::erase(uint32_t hash, uint32_t idx) {
  const uint64_t target = word(hash, idx);
  const uint32_t probes = max_probe_.load(std::memory_order_relaxed);
  for (uint32_t p = 0; p <= probes; ++p) {
    Bucket& b = buckets_[(hash + p) & mask_];
    for (uint32_t s = 0; s < kSlots; ++s) {
      if (load(b.w[s], std::memory_order_relaxed) == target) {
        store(b.w[s], kTombstone, std::memory_order_release);
        return;
      }
    }
  }
}

}  // namespace pspgw::flow
