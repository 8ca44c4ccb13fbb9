#include <gtest/gtest.h>

#include <vector>

#include "psp/key_cache.hpp"
#include "psp/seal.hpp"
#include "psp/test_util.hpp"

namespace pspgw::psp {
namespace {

class KeyCacheTest : public ::testing::Test {
 protected:
  KeyCacheTest() { ring_.rotate(testing::master_key(testing::kK1)); }

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

TEST_F(KeyCacheTest, UnknownKeys) {
  KeyCache cache(*aead_, 16);
  EXPECT_EQ(cache.key_for(1, PspVersion::kAesGcm128), nullptr);  // no snapshot yet
  KeyRing one_slot(testing::master_key(testing::kK0));
  cache.update(one_slot.snapshot());
  EXPECT_EQ(cache.key_for(0x80000001, PspVersion::kAesGcm128), nullptr);  // empty slot
  EXPECT_EQ(cache.key_for(0x00000000, PspVersion::kAesGcm128), nullptr);  // invalid SPI
  EXPECT_EQ(cache.key_for(0x80000000, PspVersion::kAesGcm128), nullptr);
  EXPECT_EQ(cache.key_for(1, PspVersion::kAesGmac128), nullptr);
  EXPECT_NE(cache.key_for(1, PspVersion::kAesGcm128), nullptr);
  EXPECT_EQ(cache.stats().unknown, 5u);
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

  ring_.rotate_random();  // slot 1 replaced: the old SPI now derives another key
  cache.update(ring_.snapshot());
  EXPECT_EQ(open(pkt, cache), DropReason::kAuthFailed);
  EXPECT_EQ(cache.stats().stale, 2u);
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

}  // namespace
}  // namespace pspgw::psp
