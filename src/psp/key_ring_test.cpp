#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <set>
#include <thread>

#include "base/hex.hpp"
#include "psp/key_ring.hpp"
#include "psp/test_util.hpp"

#include "crypto/testing/aligned_alloc_counter.hpp"

namespace pspgw::psp {
namespace {

using testing::hex;
using testing::kK0;
using testing::kK1;
using testing::master_key;

std::vector<uint8_t> bytes(const DerivedKey& k) {
  return {k.view().begin(), k.view().end()};
}

// A ring holding K0 in slot 0 and K1 in slot 1 (active), as after one rotation.
KeyRing published_ring() {
  KeyRing ring(master_key(kK0));
  ring.rotate(master_key(kK1));
  return ring;
}

TEST(KeyRing, PublishedDerivationVectors) {
  const KeyRing ring = published_ring();
  const auto snap = ring.snapshot();
  struct Vector {
    uint32_t spi;
    PspVersion version;
    const char* key;
  };
  for (const Vector v : {
           Vector{0x12345678, PspVersion::kAesGcm128, "96c22dc799198090b74b70ae468e4e30"},
           Vector{0x9A345678, PspVersion::kAesGcm128, "3946da2554eae46ad1ef77a64372edc4"},
           Vector{0x12345678, PspVersion::kAesGcm256,
                  "2b7d72074e42ca334487f2990e3f8c4037e436f38283449b76463e9b7fb2e3de"},
           Vector{0x9A345678, PspVersion::kAesGcm256,
                  "fa00f609df6020289a1c93d6027081a637ad45b24a5576b36e6f49dd43114d80"},
           // GMAC: the derivation depends on the key size only (§4): v2 = v0's key, v3 = v1's.
           Vector{0x12345678, PspVersion::kAesGmac128, "96c22dc799198090b74b70ae468e4e30"},
           Vector{0x9A345678, PspVersion::kAesGmac256,
                  "fa00f609df6020289a1c93d6027081a637ad45b24a5576b36e6f49dd43114d80"},
       }) {
    auto k = ring.derive(v.spi, v.version);
    ASSERT_TRUE(k.ok());
    EXPECT_EQ(bytes(*k), hex(v.key)) << std::hex << v.spi;
    EXPECT_EQ(k->size(), key_size(v.version));
    auto ks = snap->derive(v.spi, v.version);
    ASSERT_TRUE(ks.ok());
    EXPECT_EQ(bytes(*ks), hex(v.key));
  }
}

TEST(KeyRing, SpiValidity) {
  const KeyRing ring = published_ring();
  for (uint32_t spi : {0x00000001u, 0x80000001u, 0x7FFFFFFFu, 0xFFFFFFFFu}) {
    EXPECT_TRUE(ring.derive(spi, PspVersion::kAesGcm128).ok()) << std::hex << spi;
    EXPECT_TRUE(ring.is_live(spi));
  }
  for (uint32_t spi : {0x00000000u, 0x80000000u}) {
    auto k = ring.derive(spi, PspVersion::kAesGcm128);
    ASSERT_FALSE(k.ok());
    EXPECT_EQ(k.error(), KeyError::kInvalidSpi);
    EXPECT_FALSE(ring.is_live(spi));
    EXPECT_EQ(ring.snapshot()->derive(spi, PspVersion::kAesGcm256).error(), KeyError::kInvalidSpi);
  }
  for (uint8_t v = kPspMaxVersion + 1; v < 16; ++v)
    EXPECT_EQ(ring.derive(1, static_cast<PspVersion>(v)).error(), KeyError::kBadVersion);
}

TEST(KeyRing, AllocatorFollowsTheSlotRules) {
  KeyRing ring(master_key(kK0));
  EXPECT_EQ(ring.allocate_spi().value(), 0x00000001u);
  EXPECT_EQ(ring.allocate_spi().value(), 0x00000002u);
  ring.set_spi_counter(0x7FFFFFFF);
  EXPECT_EQ(ring.allocate_spi().value(), 0x7FFFFFFFu);
  EXPECT_EQ(ring.allocate_spi().error(), KeyError::kSpiExhausted);
  EXPECT_EQ(ring.allocate_spi().error(), KeyError::kSpiExhausted);  // stays exhausted: never wraps to 0

  ring.rotate(master_key(kK1));  // slot 1: fresh counter
  EXPECT_EQ(ring.active_slot(), 1);
  EXPECT_EQ(ring.allocate_spi().value(), 0x80000001u);
  ring.set_spi_counter(0x7FFFFFFF);
  EXPECT_EQ(ring.allocate_spi().value(), 0xFFFFFFFFu);
  EXPECT_EQ(ring.allocate_spi().error(), KeyError::kSpiExhausted);

  ring.rotate(master_key(kK0));  // back to slot 0 under a new master key: its counter restarts
  EXPECT_EQ(ring.allocate_spi().value(), 0x00000001u);
}

TEST(KeyRing, AllocatedSpisAreUniqueAndNamedByTheActiveSlot) {
  KeyRing ring(master_key(kK0));
  std::set<uint32_t> seen;
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 5000; ++i) {
      const uint32_t spi = ring.allocate_spi().value();
      EXPECT_EQ(spi_slot(spi), ring.active_slot());
      EXPECT_NE(spi & 0x7fffffffu, 0u);
      EXPECT_TRUE(seen.insert(spi).second);
    }
    ring.rotate(master_key(kK1));
  }
}

TEST(KeyRing, PreviousSlotLivesOneRotationAndDiesAfterTwo) {
  KeyRing ring(master_key(kK0));
  EXPECT_EQ(ring.generation(), 0u);
  EXPECT_FALSE(ring.is_live(0x80000001));  // slot 1 never set
  EXPECT_EQ(ring.derive(0x80000001, PspVersion::kAesGcm128).error(), KeyError::kDeadSlot);
  const uint32_t old_spi = ring.allocate_spi().value();
  const auto original = bytes(ring.derive(old_spi, PspVersion::kAesGcm128).value());

  ring.rotate(master_key(kK1));
  EXPECT_EQ(ring.generation(), 1u);
  EXPECT_TRUE(ring.is_live(old_spi));
  EXPECT_EQ(bytes(ring.derive(old_spi, PspVersion::kAesGcm128).value()), original);

  ring.rotate_random();
  EXPECT_EQ(ring.generation(), 2u);
  EXPECT_EQ(ring.active_slot(), 0);
  // Slot 0 now holds a new master key: the old SPI derives a different key, so its traffic fails auth.
  EXPECT_NE(bytes(ring.derive(old_spi, PspVersion::kAesGcm128).value()), original);
  // An old snapshot is immutable.
  KeyRing ring2(master_key(kK0));
  const auto before = ring2.snapshot();
  ring2.rotate_random();
  ring2.rotate_random();
  EXPECT_EQ(bytes(before->derive(old_spi, PspVersion::kAesGcm128).value()), original);
  EXPECT_EQ(before->generation(), 0u);
  EXPECT_EQ(ring2.snapshot()->generation(), 2u);
}

TEST(KeyRing, RandomRingsDiffer) {
  const KeyRing a = KeyRing::with_random_key();
  const KeyRing b = KeyRing::with_random_key();
  EXPECT_NE(bytes(a.derive(1, PspVersion::kAesGcm256).value()),
            bytes(b.derive(1, PspVersion::kAesGcm256).value()));
}

// The high-water mark: an SPI counts as issued once allocate_spi has returned it, never before; empty
// slots and zero low bits never count.
TEST(KeyRing, HighWaterMarkFollowsAllocation) {
  KeyRing ring(master_key(kK0));
  const auto snap = ring.snapshot();
  EXPECT_FALSE(snap->issued(1));  // nothing handed out yet
  EXPECT_EQ(ring.allocate_spi().value(), 1u);
  EXPECT_EQ(ring.allocate_spi().value(), 2u);
  EXPECT_TRUE(snap->issued(1));  // the snapshot shares the ring's mark
  EXPECT_TRUE(snap->issued(2));
  EXPECT_FALSE(snap->issued(3));
  EXPECT_FALSE(snap->issued(0));
  EXPECT_FALSE(snap->issued(0x80000001));  // slot 1 empty
  EXPECT_FALSE(snap->issued(0x80000000));
  EXPECT_TRUE(ring.snapshot()->issued(2));
}

TEST(KeyRing, RotationStartsTheNewSlotsMarkAtZero) {
  KeyRing ring(master_key(kK0));
  ring.set_spi_counter(100);  // SPIs 1..99 count as handed out
  const auto before = ring.snapshot();
  EXPECT_TRUE(before->issued(99));
  EXPECT_FALSE(before->issued(100));
  ring.rotate(master_key(kK1));
  const auto after = ring.snapshot();
  EXPECT_TRUE(after->issued(99));  // slot 0 is previous: its SPIs still live
  EXPECT_FALSE(after->issued(0x80000001));
  EXPECT_EQ(ring.allocate_spi().value(), 0x80000001u);
  EXPECT_TRUE(after->issued(0x80000001));
  EXPECT_FALSE(before->issued(0x80000001));  // the old snapshot had no slot 1
  ring.rotate(master_key(kK0));              // slot 0 gets a new key: its old SPIs were not issued under it
  EXPECT_FALSE(ring.snapshot()->issued(1));
  EXPECT_TRUE(before->issued(99));  // an old snapshot keeps the old key and its mark
}

TEST(KeyRing, SetSpiCounterNeverLowersTheMark) {
  KeyRing ring(master_key(kK0));
  ring.set_spi_counter(kSpiSlotBit);  // exhausted: all of 1..2^31-1 handed out
  EXPECT_TRUE(ring.snapshot()->issued(kSpiLowMask));
  ring.set_spi_counter(5);
  EXPECT_TRUE(ring.snapshot()->issued(kSpiLowMask));
  EXPECT_EQ(ring.allocate_spi().value(), 5u);
}

// A snapshot built from bare keys (psp-pcap reading a capture's key file) knows nothing of what was issued.
TEST(KeyRing, SnapshotOfBareKeysTreatsEverySpiAsIssued) {
  const MasterKeySnapshot snap(master_key(kK0), std::nullopt, 0);
  EXPECT_TRUE(snap.issued(1));
  EXPECT_TRUE(snap.issued(kSpiLowMask));
  EXPECT_FALSE(snap.issued(0));
  EXPECT_FALSE(snap.issued(0x80000001));
}

TEST(KeyRing, ErrorNames) {
  std::set<std::string_view> names;
  for (KeyError e :
       {KeyError::kSpiExhausted, KeyError::kInvalidSpi, KeyError::kDeadSlot, KeyError::kBadVersion})
    names.insert(to_string(e));
  EXPECT_EQ(names.size(), 4u);
  EXPECT_EQ(names.count("unknown"), 0u);
}

// The control plane derives on whatever thread serves the exchange (gRPC creates its handler threads as it
// sees fit): the ring's own KdfContext, made with the ring, spares each new thread allocating and
// faulting in a manager of its own on the first exchange it serves (issue 7 §5, first-packet latency).
// The same for a snapshot derivation given a context (a worker's key cache).
TEST(KeyRing, DerivingOnAFreshThreadAllocatesNoManager) {
#ifndef PSPGW_COUNTS_ALIGNED_ALLOCATIONS
  GTEST_SKIP() << "posix_memalign is the sanitizer's here";
#endif
  KeyRing ring(master_key(kK0));
  const uint32_t spi = ring.allocate_spi().value();
  const auto expected = bytes(ring.derive(spi, PspVersion::kAesGcm256).value());
  const auto snap = ring.snapshot();
  crypto::KdfContext ctx;
  std::thread([&] {
    const uint64_t before = g_aligned_allocations.load();
    EXPECT_EQ(bytes(ring.derive(spi, PspVersion::kAesGcm256).value()), expected);
    EXPECT_EQ(bytes(snap->derive(spi, PspVersion::kAesGcm256, &ctx).value()), expected);
    ring.rotate(master_key(kK1));  // a rotation on such a thread: the new key is prepared on the ring's too
    EXPECT_EQ(g_aligned_allocations.load(), before);
  }).join();
}

}  // namespace
}  // namespace pspgw::psp
