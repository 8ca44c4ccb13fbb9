// A bounded cache of prepared receive keys for one data-plane worker (shared/spec/psp-protocol.md §5:
// "a bounded cache of derived keys is allowed; memory must not grow with the number of peers").
//
// Two-way set-associative on (SPI, version), capacity fixed at construction: a miss derives the key from
// the current MasterKeySnapshot (AES-CMAC) and prepares it with the worker's AeadBackend, into an empty or
// stale way of the SPI's set, else in place of the way filled longer ago (no write on a hit).
// The set is the SPI counter's low bits (see index()): the live SPIs of a key slot are mostly one run of
// its counter (1, 2, 3, ...), and a run as long as the cache, or two runs (the two key slots during a
// rotation) as long as half of it each, wherever they start, never evict each other.
// Before deriving, a miss asks the snapshot whether the ring ever handed the SPI out (its slot's high-water
// mark, key_ring.hpp): an SPI it did not is refused as kUnissuedSpi, with no derivation and no eviction.
// Entries remember the snapshot generation they were derived under; after a rotation the next use of an
// older entry counts as stale and re-derives (a slot's master key may have changed).
//
// Pointer lifetime: a key returned by key_for stays valid for at least the next kMaxBatch - 1 calls and
// across update(): evicted keys are parked in a ring of net::kMaxBatch before they are reused, so a whole
// batch can be resolved before its single AEAD call.
//
// Allocation: a key leaving the park ring is kept as a spare, and the next miss re-prepares it in place
// (AeadBackend::rekey) instead of allocating: once the cache is full, a miss allocates nothing with a
// backend that can rekey (intel-ipsec-mb). With OpenSSL (no rekey) a miss still makes a new key.
//
// Where the keys live: where the backend can place key objects itself (AeadBackend::make_key_at,
// intel-ipsec-mb), in one mapping of the cache's own (KeySlab); else on the heap. A cache sized for more
// keys than the CPU's caches hold (prefetching(): more than 4,096) asks the kernel to back that mapping with
// transparent huge pages: with 100,000 active SPIs each packet's key is a cache miss, and on 4 KiB pages a
// TLB miss as well (bench_spi_scale: 74-76% -> 84-86% of the 1-SPI rate). Smaller caches keep 4 KiB pages:
// their keys fit the TLB's reach, and a huge page's first touch (a 2 MB fault, compaction at worst, on the
// miss path) would buy them nothing.
//
// Not thread-safe: one per worker. The worker calls update() when the control plane publishes a snapshot.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/prefetch.hpp"
#include "base/zero_pages.hpp"
#include "crypto/aead.hpp"
#include "net/packet.hpp"
#include "psp/encap.hpp"
#include "psp/key_ring.hpp"

namespace pspgw::psp {

struct KeyCacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;    // derived (includes stale re-derivations): every key derivation is one miss
  uint64_t stale = 0;     // entry found but from an older snapshot generation
  uint64_t unknown = 0;   // no key: unsupported version, or no snapshot yet
  uint64_t unissued = 0;  // SPI never handed out (above the high-water mark, empty slot, low bits 0)
  uint64_t reused = 0;    // misses whose key object was a spare, re-prepared in place (no allocation)
};

// Storage for key objects of one size: room for `count` of them in one anonymous mapping (MappedZeroes:
// pages no key has touched cost nothing), with huge pages asked for where `huge`. take() hands out a free
// slot (one never used, else one given back), allocating nothing. Throws std::bad_alloc when the mapping
// fails.
class KeySlab {
 public:
  // object_size: a multiple of the objects' alignment, which must not exceed a page's.
  KeySlab(std::size_t object_size, std::size_t count, bool huge);
  void* take();
  void give_back(void* slot);  // a slot take() returned, its object already destroyed
  bool holds(const void* p) const {
    const auto* b = static_cast<const uint8_t*>(p);
    return b >= base() && b < base() + mem_.size();
  }

 private:
  uint8_t* base() const { return static_cast<uint8_t*>(mem_.get()); }
  MappedZeroes mem_;
  std::size_t object_size_;
  std::size_t fresh_ = 0;    // slots [fresh_, count) never handed out
  std::vector<void*> free_;  // given back; its capacity is count, so give_back allocates nothing
};

class KeyCache final : public KeyResolver {
 public:
  static constexpr std::size_t kDefaultCapacity = 1024;

  // capacity is rounded up to a power of two (at least 2: one set of two ways).
  explicit KeyCache(const crypto::AeadBackend& aead, std::size_t capacity = kDefaultCapacity);
  ~KeyCache() override;
  KeyCache(const KeyCache&) = delete;
  KeyCache& operator=(const KeyCache&) = delete;

  // Installs the snapshot the worker derives from; entries of other generations become stale.
  void update(std::shared_ptr<const MasterKeySnapshot> snapshot);
  const crypto::AeadKey* key_for(uint32_t spi, PspVersion version) override;
  // The hit path is inline (the open steps call it per packet; KeyCache is final, so no virtual call
  // either); a miss goes out of line.
  const crypto::AeadKey* resolve(uint32_t spi, PspVersion version, DropReason& why) override {
    Set& set = sets_[index(spi, version)];
    const uint32_t want = tag(generation_, version);
    for (Entry& e : set.way) {
      if (e.spi == spi && e.tag == want && e.key) {
        ++stats_.hits;
        return e.key;
      }
    }
    return resolve_miss(set, spi, version, why);
  }

  // Whether prepare_open_batch asks ahead (the hints below) for this cache: only one sized for more than
  // kPrefetchAbove keys. The hints cost some 12 ns a packet where the keys are in the CPU's caches anyway
  // (bench_spi_scale: 1 SPI, 12.9 -> 11.2 Mpps) and pay off where they are not (100,000 active SPIs: from
  // 37-39% to 51% of the 1-SPI rate); 4,096 prepared keys (~4 MB) is where they stop fitting. The daemon
  // sizes the cache from -x (gateway.cpp key_cache_entries), so the default -x 256 never pays for them.
  static constexpr std::size_t kPrefetchAbove = 4096;
  bool prefetching() const { return capacity() > kPrefetchAbove; }
  // Hints for a batch about to be resolved (psp/batch.hpp prepare_open_batch): the entry (spi, version)
  // maps to; then, once that is in, its key, if it is the one resolve() will return. No effect on results.
  void prefetch_entry(uint32_t spi, PspVersion version) const { prefetch_line(&sets_[index(spi, version)]); }
  // Where the key's hot bytes lie comes from the backend (hot_), not from the key: reading them from the
  // key would wait for its first line before asking for any.
  void prefetch_key(uint32_t spi, PspVersion version) const {
    const auto v = static_cast<uint32_t>(version) & kVersionMask;
    if (v >= hot_.size()) return;
    for (const Entry& e : sets_[index(spi, version)].way) {
      if (e.key && e.spi == spi && (e.tag & kVersionMask) == v) crypto::prefetch_key(e.key, hot_[v]);
    }
  }

  const KeyCacheStats& stats() const { return stats_; }
  std::size_t capacity() const { return 2 * sets_.size(); }
  // Whether the keys live in the cache's own mapping (KeySlab, see above), and whether `key` is there.
  bool keys_in_slab() const { return slab_ != nullptr; }
  bool in_slab(const crypto::AeadKey* key) const { return slab_ && slab_->holds(key); }

 private:
  // 16 bytes: a set is 32 and never straddles a cache line (one prefetch_entry).
  struct Entry {
    uint32_t spi = 0;
    uint32_t tag = 0;                // tag(generation, version) when filled
    crypto::AeadKey* key = nullptr;  // owned (new_key / free_key); nullptr = empty way
  };
  struct alignas(32) Set {
    std::array<Entry, 2> way;  // way[0] filled last
  };
  static constexpr uint32_t kVersionMask = 0xf;
  // The snapshot generation an entry was derived under (its low 28 bits: a false hit would take 2^28
  // rotations between two uses of one entry) and the version.
  static uint32_t tag(uint64_t generation, PspVersion version) {
    return static_cast<uint32_t>(generation << 4) | (static_cast<uint32_t>(version) & kVersionMask);
  }

  // The set: the SPI counter's low bits, the other key slot's counter half the sets on, each version an
  // eighth further (a gateway and its peers use one version; two SPI pairs of versions 2/3 once shared an
  // entry and re-derived on every packet). A multiplicative hash (Fibonacci, before) spread runs of SPIs as
  // if at random over direct-mapped entries: with 3/4 of them in use 53% of the SPIs shared an entry at
  // best, 92% at 8,192..32,768 entries, and each packet of those derived its key again.
  // The two offsets come from a table made with the cache (set_offset_): computed per lookup they were a
  // fifth of the open fast path's own instructions at 64 B (callgrind, bench/psp_seal).
  std::size_t index(uint32_t spi, PspVersion version) const {
    const std::size_t slot = spi >> 31, v = static_cast<std::size_t>(version) & kVersionMask;
    return ((spi & kSpiLowMask) + set_offset_[slot << 4 | v]) & set_mask_;
  }
  const crypto::AeadKey* resolve_miss(Set& set, uint32_t spi, PspVersion version, DropReason& why);
  crypto::AeadKey* derive(uint32_t spi, PspVersion version);
  void park(crypto::AeadKey* key);
  crypto::AeadKey* new_key(crypto::AeadAlg alg, std::span<const uint8_t> bytes);
  void free_key(crypto::AeadKey* key);

  const crypto::AeadBackend& aead_;
  std::array<crypto::KeyHotBytes, 4> hot_{};  // per PSP version 0..3: aead_.hot_bytes of its algorithm
  crypto::KdfContext kdf_;  // made with the cache: a worker's first derivation allocates nothing
  std::shared_ptr<const MasterKeySnapshot> snapshot_;
  uint64_t generation_ = 0;  // snapshot_'s (0 without one)
  std::vector<Set> sets_;
  std::size_t set_mask_;  // sets_.size() - 1 (a power of two)
  // index()'s offset of key slot s and version v, at [s << 4 | v]: s half the sets on, v an eighth each.
  std::array<uint32_t, 32> set_offset_{};
  // Every key object is in sets_, parked_ or spare_: at most capacity() + kMaxBatch + 1 at once (the slab's
  // size).
  std::unique_ptr<KeySlab> slab_;
  std::array<crypto::AeadKey*, net::kMaxBatch> parked_{};
  std::size_t next_park_ = 0;
  crypto::AeadKey* spare_ = nullptr;  // out of the park ring, waiting to be re-prepared
  KeyCacheStats stats_;
};

}  // namespace pspgw::psp
