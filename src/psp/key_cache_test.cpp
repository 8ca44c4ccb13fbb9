#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include "psp/key_cache.hpp"
#include "psp/seal.hpp"
#include "psp/test_util.hpp"

// Counts every allocation of this test binary: a cache miss in steady state must not allocate.
// (GCC, seeing std::allocator inline into these replacements, takes malloc/free for a mismatch with new.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t /*n*/) noexcept {
  std::free(p);
}

namespace pspgw::psp {
namespace {

class KeyCacheTest : public ::testing::Test {
 protected:
  // Slot 0 previous, every SPI of it issued; slot 1 active, nothing issued yet.
  KeyCacheTest() {
    testing::issue_all(ring_);
    ring_.rotate(testing::master_key(testing::kK1));
  }

  // A sealed PSP packet for `spi`, with the sender key derived from the ring as it is now.
  std::vector<uint8_t> sealed(uint32_t spi, PspVersion v = PspVersion::kAesGcm128) {
    auto derived = ring_.derive(spi, v).value();
    auto key = aead_->make_key(*aead_alg(static_cast<uint8_t>(v)), derived.view());
    PspHeaderFields h;
    h.next_header = 17;
    h.version = static_cast<uint8_t>(v);
    h.spi = spi;
    h.iv = 1;
    std::vector<uint8_t> buf(16 + 40 + 16, 0x33);
    EXPECT_TRUE(seal_packet(buf, h, *key, *aead_).ok());
    return buf;
  }
  DropReason open(std::vector<uint8_t> buf, KeyResolver& keys) {
    auto r = open_packet(buf, keys, *aead_);
    return r.ok() ? DropReason::kNone : r.error();
  }

  std::unique_ptr<crypto::AeadBackend> aead_ = crypto::make_openssl_backend();
  KeyRing ring_{testing::master_key(testing::kK0)};
};

TEST_F(KeyCacheTest, MissThenHit) {
  testing::issue_all(ring_);
  KeyCache cache(*aead_, 16);
  cache.update(ring_.snapshot());
  const auto pkt = sealed(0x80000005);
  EXPECT_EQ(open(pkt, cache), DropReason::kNone);
  EXPECT_EQ(cache.stats().misses, 1u);
  EXPECT_EQ(open(pkt, cache), DropReason::kNone);
  EXPECT_EQ(cache.stats().hits, 1u);
  EXPECT_EQ(open(sealed(0x80000005, PspVersion::kAesGcm256), cache), DropReason::kNone);  // separate entry
  EXPECT_EQ(cache.stats().misses, 2u);
}

// The prefetch hints change nothing: no derivation, no eviction, no statistic, for hits, misses and SPIs
// never issued alike.
TEST_F(KeyCacheTest, PrefetchHintsChangeNothing) {
  testing::issue_all(ring_);
  KeyCache cache(*aead_, 2 * KeyCache::kPrefetchAbove);
  cache.update(ring_.snapshot());
  EXPECT_TRUE(cache.prefetching());
  EXPECT_FALSE(KeyCache(*aead_, KeyCache::kPrefetchAbove).prefetching());
  const auto pkt = sealed(0x80000005);
  ASSERT_EQ(open(pkt, cache), DropReason::kNone);
  const KeyCacheStats before = cache.stats();
  for (uint32_t spi : {0x80000005u, 0x80000006u, 0x7fffffffu, 0u}) {
    cache.prefetch_entry(spi, PspVersion::kAesGcm128);
    cache.prefetch_key(spi, PspVersion::kAesGcm128);
    cache.prefetch_key(spi, PspVersion::kAesGmac256);
  }
  EXPECT_EQ(cache.stats().hits, before.hits);
  EXPECT_EQ(cache.stats().misses, before.misses);
  EXPECT_EQ(cache.stats().unissued, before.unissued);
  EXPECT_EQ(open(pkt, cache), DropReason::kNone);
  EXPECT_EQ(cache.stats().hits, before.hits + 1);  // still cached
}

// Neighbouring SPIs of every version keep their own entries: the set index once folded SPI pairs of
// versions 2/3 together, so a GMAC tunnel pair re-derived its keys on every packet.
TEST_F(KeyCacheTest, NeighbouringSpisOfEveryVersionStayCached) {
  testing::issue_all(ring_);
  KeyCache cache(*aead_, 64);
  cache.update(ring_.snapshot());
  for (int pass = 0; pass < 2; ++pass) {
    for (uint8_t v = 0; v <= kPspMaxVersion; ++v) {
      for (uint32_t spi = 1; spi <= 2; ++spi) {
        EXPECT_NE(cache.key_for(spi, static_cast<PspVersion>(v)), nullptr);
      }
    }
  }
  EXPECT_EQ(cache.stats().misses, 8u);
  EXPECT_EQ(cache.stats().hits, 8u);
}

// A run of SPIs as long as 3/4 of the cache, and two runs (one per key slot, as during a rotation) that
// overlap in the sets they use, evict nothing: a second pass derives nothing. (Direct-mapped with the
// multiplicative hash used before, at 4,096 entries 11% of the one run and 44% of the two shared an entry
// and re-derived on every use; direct-mapped on the counter's low bits, the two runs still did.)
TEST_F(KeyCacheTest, RunsOfSpisShareNoEntry) {
  const auto second_pass_misses = [&](const std::vector<uint32_t>& spis) {
    KeyCache cache(*aead_, 4096);
    cache.update(ring_.snapshot());
    for (uint32_t spi : spis) EXPECT_NE(cache.key_for(spi, PspVersion::kAesGcm128), nullptr);
    const uint64_t first = cache.stats().misses;
    EXPECT_EQ(first, spis.size());
    for (uint32_t spi : spis) EXPECT_NE(cache.key_for(spi, PspVersion::kAesGcm128), nullptr);
    return cache.stats().misses - first;
  };
  std::vector<uint32_t> one_slot;
  for (uint32_t spi = 1; spi <= 3072; ++spi) one_slot.push_back(spi);  // slot 0
  EXPECT_EQ(second_pass_misses(one_slot), 0u);
  std::vector<uint32_t> both_slots;
  for (uint32_t spi = 1001; spi <= 2536; ++spi) both_slots.push_back(spi);            // slot 0
  for (int i = 0; i < 1536; ++i) both_slots.push_back(ring_.allocate_spi().value());  // slot 1, from 1
  ASSERT_EQ(both_slots.back(), kSpiSlotBit | 1536u);
  EXPECT_EQ(second_pass_misses(both_slots), 0u);
}

TEST_F(KeyCacheTest, UnknownKeys) {
  KeyCache cache(*aead_, 16);
  EXPECT_EQ(cache.key_for(1, PspVersion::kAesGcm128), nullptr);  // no snapshot yet
  KeyRing one_slot(testing::master_key(testing::kK0));
  testing::issue_all(one_slot);
  cache.update(one_slot.snapshot());
  EXPECT_EQ(cache.key_for(0x80000001, PspVersion::kAesGcm128), nullptr);  // empty slot
  EXPECT_EQ(cache.key_for(0x00000000, PspVersion::kAesGcm128), nullptr);  // invalid SPI
  EXPECT_EQ(cache.key_for(0x80000000, PspVersion::kAesGcm128), nullptr);
  EXPECT_EQ(cache.key_for(1, static_cast<PspVersion>(4)), nullptr);
  EXPECT_NE(cache.key_for(1, PspVersion::kAesGcm128), nullptr);
  EXPECT_NE(cache.key_for(1, PspVersion::kAesGmac256), nullptr);
  EXPECT_EQ(cache.stats().unknown, 2u);   // no snapshot, undefined version
  EXPECT_EQ(cache.stats().unissued, 3u);  // empty slot, low bits zero (twice)
}

// What resolve() says for a packet of each kind: the reason the decrypt stage counts.
TEST_F(KeyCacheTest, ResolveNamesTheReason) {
  KeyRing ring(testing::master_key(testing::kK0));
  KeyCache cache(*aead_, 16);
  DropReason why = DropReason::kNone;
  EXPECT_EQ(cache.resolve(1, PspVersion::kAesGcm128, why), nullptr);
  EXPECT_EQ(why, DropReason::kUnknownKey);  // no snapshot yet
  cache.update(ring.snapshot());
  EXPECT_EQ(cache.resolve(1, PspVersion::kAesGcm128, why), nullptr);
  EXPECT_EQ(why, DropReason::kUnissuedSpi);  // nothing handed out yet
  ASSERT_EQ(ring.allocate_spi().value(), 1u);
  EXPECT_NE(cache.resolve(1, PspVersion::kAesGcm128, why), nullptr);
  EXPECT_EQ(cache.resolve(1, static_cast<PspVersion>(4), why), nullptr);
  EXPECT_EQ(why, DropReason::kUnknownKey);
}

// Issue 7 §6: a flood of SPIs the ring never handed out costs no derivation and evicts nothing. The
// smallest cache (one set) makes every flooded SPI collide with the valid one.
TEST_F(KeyCacheTest, UnissuedSpiFloodDerivesNothingAndEvictsNothing) {
  const uint32_t spi = ring_.allocate_spi().value();  // 0x80000001: the only SPI of slot 1
  KeyCache cache(*aead_, 1);
  cache.update(ring_.snapshot());
  const auto pkt = sealed(spi);
  ASSERT_EQ(open(pkt, cache), DropReason::kNone);
  ASSERT_EQ(cache.stats().misses, 1u);
  uint64_t x = 0x9e3779b97f4a7c15ull;
  int flooded = 0;
  for (int i = 0; i < 10000; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;  // xorshift: any SPI of slot 1 but ours
    const uint32_t random_spi = kSpiSlotBit | static_cast<uint32_t>(x & kSpiLowMask);
    if (random_spi == spi) continue;
    DropReason why = DropReason::kNone;
    EXPECT_EQ(cache.resolve(random_spi, PspVersion::kAesGcm128, why), nullptr);
    EXPECT_EQ(why, DropReason::kUnissuedSpi);
    ++flooded;
  }
  EXPECT_EQ(cache.stats().unissued, static_cast<uint64_t>(flooded));
  EXPECT_EQ(cache.stats().misses, 1u);  // zero derivations for the flood
  EXPECT_EQ(open(pkt, cache), DropReason::kNone);
  EXPECT_EQ(cache.stats().hits, 1u);  // the valid entry survived
  EXPECT_EQ(cache.stats().misses, 1u);
}

// A packet with an SPI of our previous incarnation (we restarted with fresh master keys, the peer has not
// re-keyed yet): above the new ring's marks, or in its empty slot. Counted, nothing derived, nothing evicted.
TEST_F(KeyCacheTest, PreviousIncarnationSpisAreUnissued) {
  KeyRing restarted = KeyRing::with_random_key();
  const uint32_t fresh_spi = restarted.allocate_spi().value();
  KeyCache cache(*aead_, 1);
  cache.update(restarted.snapshot());
  ASSERT_NE(cache.key_for(fresh_spi, PspVersion::kAesGcm256), nullptr);
  for (uint32_t old_spi : {0x00000002u, 0x00001234u, 0x80000001u, 0xfffffffeu}) {
    DropReason why = DropReason::kNone;
    EXPECT_EQ(cache.resolve(old_spi, PspVersion::kAesGcm256, why), nullptr) << std::hex << old_spi;
    EXPECT_EQ(why, DropReason::kUnissuedSpi);
  }
  EXPECT_EQ(cache.stats().misses, 1u);
  EXPECT_NE(cache.key_for(fresh_spi, PspVersion::kAesGcm256), nullptr);
  EXPECT_EQ(cache.stats().hits, 1u);
}

// The mark is shared, not copied: an SPI allocated after the snapshot was published is accepted by a worker
// still holding that snapshot (SPIs are handed out between rotations, snapshots only change at rotations).
TEST_F(KeyCacheTest, SpisAllocatedAfterTheSnapshotAreAccepted) {
  KeyCache cache(*aead_, 16);
  cache.update(ring_.snapshot());
  const uint32_t spi = ring_.allocate_spi().value();
  EXPECT_EQ(open(sealed(spi), cache), DropReason::kNone);
}

TEST_F(KeyCacheTest, RotationMakesEntriesStaleAndOldSpisDieAfterTwo) {
  KeyCache cache(*aead_, 16);
  cache.update(ring_.snapshot());
  const uint32_t spi = ring_.allocate_spi().value();  // slot 1 (active)
  const auto pkt = sealed(spi);
  EXPECT_EQ(open(pkt, cache), DropReason::kNone);

  ring_.rotate_random();  // slot 0 new, slot 1 previous: still valid
  cache.update(ring_.snapshot());
  EXPECT_EQ(open(pkt, cache), DropReason::kNone);
  EXPECT_EQ(cache.stats().stale, 1u);

  ring_.rotate_random();  // slot 1 replaced: the new key has handed out nothing yet
  cache.update(ring_.snapshot());
  EXPECT_EQ(open(pkt, cache), DropReason::kUnissuedSpi);
  EXPECT_EQ(cache.stats().stale, 2u);
  ASSERT_EQ(ring_.allocate_spi().value(), spi);  // handed out again, under the new key: derives another key
  EXPECT_EQ(open(pkt, cache), DropReason::kAuthFailed);
}

// Once full, the cache recycles the key objects it evicts (AeadBackend::rekey): a miss derives and prepares
// a key without allocating, and the recycled keys open packets correctly.
TEST_F(KeyCacheTest, SteadyStateMissesAllocateNothing) {
  auto ipsec = crypto::make_ipsec_mb_backend();
  if (!ipsec) GTEST_SKIP() << "intel-ipsec-mb unavailable";
  KeyCache cache(*ipsec, 16);
  cache.update(ring_.snapshot());  // slot 0: every SPI issued
  auto version = [](uint32_t i) { return i % 2 == 0 ? PspVersion::kAesGcm128 : PspVersion::kAesGcm256; };
  for (uint32_t i = 1; i <= 2000; ++i) ASSERT_NE(cache.key_for(i, version(i)), nullptr);  // fill every entry
  const uint64_t before = g_allocations.load();
  for (uint32_t i = 10000; i < 20000; ++i) ASSERT_NE(cache.key_for(i, version(i)), nullptr);
  EXPECT_EQ(g_allocations.load(), before);
  EXPECT_EQ(cache.stats().misses, 12000u);
  EXPECT_GE(cache.stats().reused, 10000u);
  for (uint32_t spi : {0x20001u, 0x20002u}) {
    for (PspVersion v : {PspVersion::kAesGcm128, PspVersion::kAesGcm256}) {
      auto pkt = sealed(spi, v);
      auto r = open_packet(pkt, cache, *ipsec);
      EXPECT_TRUE(r.ok()) << std::hex << spi;
    }
  }
}

TEST_F(KeyCacheTest, CapacityIsFixedAndKeysOutliveABatch) {
  KeyCache cache(*aead_, 3);
  EXPECT_EQ(cache.capacity(), 4u);
  cache.update(ring_.snapshot());
  // Resolve a whole batch of distinct SPIs first (evicting most), then use every pointer: all must work.
  std::vector<std::vector<uint8_t>> pkts;
  std::vector<crypto::AeadOp> ops(net::kMaxBatch);
  for (uint32_t i = 0; i < net::kMaxBatch; ++i) pkts.push_back(sealed(0x100 + i));
  for (uint32_t i = 0; i < net::kMaxBatch; ++i) ASSERT_TRUE(prepare_open(pkts[i], cache, ops[i]).ok());
  aead_->open(ops);
  for (const auto& op : ops) EXPECT_EQ(finish_open(op), DropReason::kNone);
  for (uint32_t i = 0; i < 5000; ++i) cache.key_for(0x1000 + i, PspVersion::kAesGcm128);
  EXPECT_EQ(cache.capacity(), 4u);
  EXPECT_EQ(cache.stats().misses, net::kMaxBatch + 5000u);
}

// Where the backend places keys itself (intel-ipsec-mb), every key lives in the cache's slab, which holds as
// many as the cache can have at once: a capacity-4 cache evicting on every miss, a batch of 64 resolved
// before its one AEAD call, thousands of misses and a rotation never find it full, and every key opens.
// OpenSSL's keys stay on the heap.
TEST_F(KeyCacheTest, KeysLiveInTheSlabWhereTheBackendPlacesThem) {
  EXPECT_FALSE(KeyCache(*aead_, 16).keys_in_slab());
  auto ipsec = crypto::make_ipsec_mb_backend();
  if (!ipsec) GTEST_SKIP() << "intel-ipsec-mb unavailable";
  KeyCache cache(*ipsec, 3);
  ASSERT_TRUE(cache.keys_in_slab());
  cache.update(ring_.snapshot());
  std::vector<std::vector<uint8_t>> pkts;
  std::vector<crypto::AeadOp> ops(net::kMaxBatch);
  for (uint32_t i = 0; i < net::kMaxBatch; ++i) pkts.push_back(sealed(0x100 + i));
  for (uint32_t i = 0; i < net::kMaxBatch; ++i) {
    ASSERT_TRUE(prepare_open(pkts[i], cache, ops[i]).ok());
    EXPECT_TRUE(cache.in_slab(ops[i].key));
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(ops[i].key) % 64, 0u);
  }
  ipsec->open(ops);
  for (const auto& op : ops) EXPECT_EQ(finish_open(op), DropReason::kNone);
  for (uint32_t i = 0; i < 5000; ++i) {
    const auto v = i % 3 == 0 ? PspVersion::kAesGcm256 : PspVersion::kAesGcm128;
    const crypto::AeadKey* k = cache.key_for(0x1000 + i, v);
    ASSERT_NE(k, nullptr) << i;
    ASSERT_TRUE(cache.in_slab(k));
  }
  const uint32_t spi = ring_.allocate_spi().value();  // slot 1 (active)
  const auto pkt = sealed(spi);
  auto copy = pkt;
  EXPECT_TRUE(open_packet(copy, cache, *ipsec).ok());
  ring_.rotate_random();  // slot 1 previous: still valid, its entry stale and re-derived in place
  cache.update(ring_.snapshot());
  copy = pkt;
  EXPECT_TRUE(open_packet(copy, cache, *ipsec).ok());
  EXPECT_EQ(cache.stats().stale, 1u);
}

// A cache sized for more keys than the CPU's caches hold (the daemon's with -x above 4,096) asks ahead with
// the backend's hot bytes of slab keys on huge pages: the hints change nothing, and its keys open packets.
TEST_F(KeyCacheTest, BigCacheHintsSlabKeysAndChangesNothing) {
  auto ipsec = crypto::make_ipsec_mb_backend();
  if (!ipsec) GTEST_SKIP() << "intel-ipsec-mb unavailable";
  KeyCache cache(*ipsec, 2 * KeyCache::kPrefetchAbove);
  ASSERT_TRUE(cache.prefetching());
  ASSERT_TRUE(cache.keys_in_slab());
  cache.update(ring_.snapshot());  // slot 0: every SPI issued
  for (uint32_t spi = 1; spi <= 300; ++spi) {
    const PspVersion v = spi % 2 == 0 ? PspVersion::kAesGcm128 : PspVersion::kAesGcm256;
    ASSERT_TRUE(cache.in_slab(cache.key_for(spi, v)));
  }
  const KeyCacheStats before = cache.stats();
  for (uint32_t spi = 0; spi <= 301; ++spi) {
    for (PspVersion v : {PspVersion::kAesGcm128, PspVersion::kAesGcm256, PspVersion::kAesGmac256}) {
      cache.prefetch_entry(spi, v);
      cache.prefetch_key(spi, v);
    }
  }
  EXPECT_EQ(cache.stats().hits, before.hits);
  EXPECT_EQ(cache.stats().misses, before.misses);
  for (uint32_t spi : {2u, 3u, 300u}) {
    auto pkt = sealed(spi, spi % 2 == 0 ? PspVersion::kAesGcm128 : PspVersion::kAesGcm256);
    EXPECT_TRUE(open_packet(pkt, cache, *ipsec).ok()) << spi;
  }
  EXPECT_EQ(cache.stats().hits, before.hits + 3);
}

TEST(KeySlabTest, HandsOutEachSlotOnceUntilGivenBack) {
  KeySlab slab(1024, 3, true);
  void* a = slab.take();
  void* b = slab.take();
  void* c = slab.take();
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(static_cast<uint8_t*>(b) - static_cast<uint8_t*>(a), 1024);
  EXPECT_EQ(static_cast<uint8_t*>(c) - static_cast<uint8_t*>(b), 1024);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a) % 4096, 0u);
  EXPECT_EQ(slab.take(), nullptr);
  EXPECT_TRUE(slab.holds(b));
  EXPECT_FALSE(slab.holds(static_cast<uint8_t*>(c) + 1024));
  slab.give_back(b);
  EXPECT_EQ(slab.take(), b);
  EXPECT_EQ(slab.take(), nullptr);
}

}  // namespace
}  // namespace pspgw::psp
