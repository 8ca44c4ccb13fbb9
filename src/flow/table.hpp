// Keys, entry records and the hash index behind every pipe.
//
// A key is up to kMaxKeyWords 64-bit words: word 0 is a presence bitmap (bit j: template field j was
// present in the packet), the template's fields follow byte-packed, big-endian. Records hold an entry's
// key, forward target, priority and per-entry action arguments in a fixed-stride arena. The HashIndex maps
// key hash -> record index: open addressing over 64-byte buckets of eight atomic 64-bit words
// (signature << 32 | index + 1), linear probing by bucket, a power-of-two bucket count, load <= 1/2.
//
// Concurrency: one writer (the control plane, serialized by Pipeline), any number of readers (workers),
// lock-free. A word goes EMPTY -> FULL -> TOMBSTONE -> FULL ..., never back to EMPTY, so a probe may stop
// at a bucket with an EMPTY slot. The writer fills a record before publishing its word with a release
// store; readers load words with acquire. Records of removed entries are reused only after an epoch
// grace period (epoch.hpp), so a reader holding an old index reads an intact record.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <type_traits>
#include <vector>

#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

#include "base/zero_pages.hpp"
#include "flow/target.hpp"

namespace pspgw::flow {

inline constexpr std::size_t kMaxKeyWords = 8;
inline constexpr std::size_t kMaxKeyBytes = kMaxKeyWords * 8;
inline constexpr uint32_t kNoEntry = ~0u;

struct Key {
  std::array<uint64_t, kMaxKeyWords> w{};
  uint8_t* bytes() { return reinterpret_cast<uint8_t*>(w.data()); }
  const uint8_t* bytes() const { return reinterpret_cast<const uint8_t*>(w.data()); }
};

inline uint32_t hash_key(const uint64_t* w, uint32_t words) {
#if defined(__SSE4_2__)
  uint64_t h = 0x9e3779b9;  // CRC32-C: one instruction per word, good spread for packed header bytes
  for (uint32_t i = 0; i < words; ++i) h = _mm_crc32_u64(h, w[i]);
  return static_cast<uint32_t>(h);
#else
  uint64_t h = 0x9e3779b97f4a7c15ULL;
  for (uint32_t i = 0; i < words; ++i) h = (h ^ w[i]) * 0xff51afd7ed558ccdULL;
  return static_cast<uint32_t>(h ^ (h >> 32));
#endif
}

inline bool keys_equal(const uint64_t* a, const uint64_t* b, uint32_t words) {
  uint64_t diff = 0;
  for (uint32_t i = 0; i < words; ++i) diff |= a[i] ^ b[i];
  return diff == 0;
}

// Fixed-stride records: [head: fwd kind 8 | fwd id 16 | unused 8 | priority 32][key words][args].
// Written by the writer while unpublished, read-only while published.
class RecordArena {
 public:
  RecordArena(uint32_t capacity, uint32_t key_words, uint32_t n_args)
      : cap_(capacity),
        key_words_(key_words),
        stride_(1 + key_words + n_args),
        // A record is written before anything reads it: the pages of records no entry has used yet are
        // never touched and never become resident.
        mem_(static_cast<std::size_t>(capacity) * stride_) {}

  uint32_t capacity() const { return cap_; }
  const uint64_t* key(uint32_t i) const { return &mem_[at(i) + 1]; }
  const uint64_t* args(uint32_t i) const { return &mem_[at(i) + 1 + key_words_]; }
  Target fwd(uint32_t i) const {
    const uint64_t h = mem_[at(i)];
    return {static_cast<TargetKind>(h >> 56), static_cast<uint16_t>(h >> 40)};
  }
  uint32_t priority(uint32_t i) const { return static_cast<uint32_t>(mem_[at(i)]); }
  const void* line(uint32_t i) const { return &mem_[at(i)]; }

  void write(uint32_t i, Target fwd, uint32_t priority, const uint64_t* key, const uint64_t* args,
             uint32_t n_args) {
    uint64_t* r = &mem_[at(i)];
    r[0] = (static_cast<uint64_t>(fwd.kind) << 56) | (static_cast<uint64_t>(fwd.id) << 40) | priority;
    std::memcpy(r + 1, key, key_words_ * 8);
    if (n_args != 0) std::memcpy(r + 1 + key_words_, args, n_args * 8);
  }

 private:
  std::size_t at(uint32_t i) const { return static_cast<std::size_t>(i) * stride_; }
  uint32_t cap_, key_words_, stride_;
  ZeroPages<uint64_t> mem_;
};

class HashIndex {
 public:
  static constexpr uint32_t kSlots = 8;
  static constexpr uint32_t kMaxProbe = 32;  // buckets past home; beyond it an insert reports full

  explicit HashIndex(uint32_t max_keys);

  // Reader side. The home bucket of a hash, for prefetching.
  const void* home(uint32_t hash) const { return &buckets_[hash & mask_]; }
  // First index in the home bucket whose signature matches, or kNoEntry; *settled = the home bucket has an
  // EMPTY slot, i.e. kNoEntry is a definite miss.
  uint32_t home_candidate(uint32_t hash, bool* settled) const;
  // The full probe: every signature match up to the probe bound, confirmed by eq(index).
  template <class Eq>
  uint32_t find(uint32_t hash, Eq&& eq) const;

  // Writer side (one at a time). insert: false if no slot within kMaxProbe buckets.
  bool insert(uint32_t hash, uint32_t idx);
  void erase(uint32_t hash, uint32_t idx);
  std::size_t memory_bytes() const { return (mask_ + 1) * sizeof(Bucket); }

 private:
  static constexpr uint64_t kEmpty = 0;
  static constexpr uint64_t kTombstone = ~0ULL;
  // The high word of a slot: 31 bits of the hash, never 0 (EMPTY) nor ~0 (TOMBSTONE), so one compare
  // tells a candidate from a free slot.
  static uint32_t signature(uint32_t hash) { return (hash & 0x7fffffffU) | 1U; }
  static uint64_t word(uint32_t hash, uint32_t idx) {
    return (static_cast<uint64_t>(signature(hash)) << 32) | (idx + 1);
  }
  // Slot words are plain integers accessed through std::atomic_ref in zero pages (ZeroPages): every slot
  // starts EMPTY without being written, and buckets no key has reached never become resident
  // (std::atomic objects would have to be constructed, i.e. written, all of them).
  struct alignas(64) Bucket {
    std::array<uint64_t, kSlots> w;
  };
  static uint64_t load(uint64_t& w, std::memory_order order) {
    return std::atomic_ref<uint64_t>(w).load(order);
  }
  static void store(uint64_t& w, uint64_t v, std::memory_order order) {
    std::atomic_ref<uint64_t>(w).store(v, order);
  }
  static uint32_t bucket_count(uint32_t max_keys);
  uint32_t mask_;
  ZeroPages<Bucket> buckets_;  // page-aligned; a const HashIndex reads its words through atomic_ref too
  std::atomic<uint32_t> max_probe_{0};
};

// One compare per slot (no signature equals an EMPTY or TOMBSTONE word's). The early return is deliberate:
// a branch-free scan of all eight slots measured slower on 100k-1M entry tables (bench_pipeline), presumably
// because the next packets' loads then wait for this bucket instead of issuing under the predicted branch.
inline uint32_t HashIndex::home_candidate(uint32_t hash, bool* settled) const {
  Bucket& b = buckets_[hash & mask_];
  const uint32_t sig = signature(hash);
  for (uint32_t s = 0; s < kSlots; ++s) {
    const uint64_t w = load(b.w[s], std::memory_order_acquire);
    if (static_cast<uint32_t>(w >> 32) == sig) {
      *settled = false;
      return static_cast<uint32_t>(w) - 1;
    }
  }
  // EMPTY slots form a suffix of a bucket (an insert takes the first free slot, and no slot becomes EMPTY
  // again), so the last slot tells whether the bucket ever overflowed into the next one.
  *settled = load(b.w[kSlots - 1], std::memory_order_acquire) == kEmpty;
  return kNoEntry;
}

template <class Eq>
uint32_t HashIndex::find(uint32_t hash, Eq&& eq) const {
  const uint32_t probes = max_probe_.load(std::memory_order_acquire);
  const uint32_t sig = signature(hash);
  for (uint32_t p = 0; p <= probes; ++p) {
    Bucket& b = buckets_[(hash + p) & mask_];
    bool empty = false;
    for (uint32_t s = 0; s < kSlots; ++s) {
      const uint64_t w = load(b.w[s], std::memory_order_acquire);
      empty |= w == kEmpty;
      if (static_cast<uint32_t>(w >> 32) != sig) continue;
      const uint32_t idx = static_cast<uint32_t>(w) - 1;
      if (eq(idx)) return idx;
    }
    if (empty) break;
  }
  return kNoEntry;
}

}  // namespace pspgw::flow
