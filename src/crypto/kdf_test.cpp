#include "crypto/kdf.hpp"

#include <gtest/gtest.h>
#include <openssl/rand.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <new>
#include <thread>
#include <vector>

#include "base/byteorder.hpp"
#include "base/hex.hpp"

// Counts every allocation of this test binary, so a test can prove that derivation allocates nothing.
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

#include "crypto/testing/aligned_alloc_counter.hpp"

namespace pspgw::crypto {
namespace {

MasterKey master(std::string_view hex) {
  auto bytes = parse_hex(hex);
  EXPECT_TRUE(bytes && bytes->size() == MasterKey::size());
  return MasterKey(std::span<const uint8_t, 32>(bytes->data(), 32));
}

// Published vectors: PSP Architecture Specification, "Examples of key derivation" (spec §4).
constexpr std::string_view kK0 = "34448a064292601b11a0978f56a2d34cf3fc35ede1a6bc04f8db3e5243a2b0ca";
constexpr std::string_view kK1 = "563952565d3a78ae773ec1b779f2f2d99f4a7f53a6fbb9b07d5b71f39364d739";

TEST(Kdf, PublishedV0Spi12345678) {
  EXPECT_EQ(to_hex(derive_psp_key_v0(master(kK0), 0x12345678).reveal()), "96c22dc799198090b74b70ae468e4e30");
}

TEST(Kdf, PublishedV0Spi9A345678) {
  EXPECT_EQ(to_hex(derive_psp_key_v0(master(kK1), 0x9A345678).reveal()), "3946da2554eae46ad1ef77a64372edc4");
}

TEST(Kdf, PublishedV1Spi12345678) {
  EXPECT_EQ(to_hex(derive_psp_key_v1(master(kK0), 0x12345678).reveal()),
            "2b7d72074e42ca334487f2990e3f8c4037e436f38283449b76463e9b7fb2e3de");
}

TEST(Kdf, PublishedV1Spi9A345678) {
  EXPECT_EQ(to_hex(derive_psp_key_v1(master(kK1), 0x9A345678).reveal()),
            "fa00f609df6020289a1c93d6027081a637ad45b24a5576b36e6f49dd43114d80");
}

// RFC 4493 has no AES-256 vectors; NIST SP 800-38B Appendix D.3, Example 10 (Mlen = 128) does.
TEST(Kdf, CmacAes256NistExample10) {
  const MasterKey key = master("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
  const std::array<uint8_t, 16> block = {0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96,
                                         0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93, 0x17, 0x2a};
  EXPECT_EQ(to_hex(cmac_aes256_block(key, block).reveal()), "28a7023f452e8f82bd4bf28d8c37c35c");
}

TEST(Kdf, KdfKeyCmacNistExample10) {
  const KdfKey key(master("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4"));
  const std::array<uint8_t, 16> block = {0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96,
                                         0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93, 0x17, 0x2a};
  EXPECT_EQ(to_hex(key.cmac_block(block).reveal()), "28a7023f452e8f82bd4bf28d8c37c35c");
}

TEST(Kdf, KdfKeyPublishedVectors) {
  const KdfKey k0(master(kK0));
  const KdfKey k1(master(kK1));
  EXPECT_EQ(to_hex(k0.derive_v0(0x12345678).reveal()), "96c22dc799198090b74b70ae468e4e30");
  EXPECT_EQ(to_hex(k1.derive_v0(0x9A345678).reveal()), "3946da2554eae46ad1ef77a64372edc4");
  EXPECT_EQ(to_hex(k0.derive_v1(0x12345678).reveal()),
            "2b7d72074e42ca334487f2990e3f8c4037e436f38283449b76463e9b7fb2e3de");
  EXPECT_EQ(to_hex(k1.derive_v1(0x9A345678).reveal()),
            "fa00f609df6020289a1c93d6027081a637ad45b24a5576b36e6f49dd43114d80");
}

// The SP 800-108 block, written here independently of kdf.cpp.
std::array<uint8_t, 16> reference_block(uint32_t counter, const char* label, uint32_t spi, uint32_t bits) {
  std::array<uint8_t, 16> b{};
  store_be32(b.data(), counter);
  std::copy(label, label + 4, b.begin() + 4);
  store_be32(b.data() + 8, spi);
  store_be32(b.data() + 12, bits);
  return b;
}

// Differential: the intel-ipsec-mb derivation against OpenSSL's CMAC, over random master keys and SPIs.
TEST(Kdf, KdfKeyMatchesOpenSslCmac) {
  for (int round = 0; round < 200; ++round) {
    MasterKey mk;
    ASSERT_EQ(RAND_bytes(mk.mutable_bytes().data(), static_cast<int>(mk.size())), 1);
    uint32_t spi = 0;
    ASSERT_EQ(RAND_bytes(reinterpret_cast<uint8_t*>(&spi), sizeof(spi)), 1);
    const KdfKey key(mk);
    const std::array<uint8_t, 16> any = reference_block(static_cast<uint32_t>(round), "anyx", spi, spi ^ 7);
    EXPECT_TRUE(key.cmac_block(any) == cmac_aes256_block(mk, any));
    EXPECT_TRUE(key.derive_v0(spi) == cmac_aes256_block(mk, reference_block(1, "Pv0", spi, 128)));
    const Secret<32> v1 = key.derive_v1(spi);
    const Secret<16> first = cmac_aes256_block(mk, reference_block(1, "Pv1", spi, 256));
    const Secret<16> second = cmac_aes256_block(mk, reference_block(2, "Pv1", spi, 256));
    EXPECT_TRUE(std::equal(first.reveal().begin(), first.reveal().end(), v1.reveal().begin()));
    EXPECT_TRUE(std::equal(second.reveal().begin(), second.reveal().end(), v1.reveal().begin() + 16));
  }
}

// A packet with an unknown SPI costs one derivation: it must not allocate (issue 7 §6). A thread's first
// KdfKey construction or derivation allocates its intel-ipsec-mb manager (once per thread, kdf.hpp); that
// allocation is posix_memalign, which this operator new does not see, so the warm-up is for the record.
TEST(Kdf, DerivationAllocatesNothing) {
  const KdfKey key(master(kK0));
  (void)key.derive_v0(0);  // warm-up: this thread's manager exists from here on
  uint32_t sink = 0;
  const uint64_t before = g_allocations.load();
  for (uint32_t spi = 1; spi <= 1000; ++spi) {
    sink ^= key.derive_v0(spi).reveal()[0];
    sink ^= key.derive_v1(spi).reveal()[31];
  }
  EXPECT_EQ(g_allocations.load(), before);
  EXPECT_LT(sink, 256u);  // uses the keys, so the loop stays
}

// The key ring and each worker's key cache derive through a KdfContext made when they are: a thread's
// first derivation through it (a gRPC handler's, a worker's first packet) allocates no manager and gives
// the keys a thread's own manager gives; without one, a fresh thread's first derivation does allocate.
TEST(Kdf, AFreshThreadDerivingThroughAContextAllocatesNoManager) {
#ifndef PSPGW_COUNTS_ALIGNED_ALLOCATIONS
  GTEST_SKIP() << "posix_memalign is the sanitizer's here";
#endif
  const KdfKey key(master(kK0));
  KdfContext ctx;
  const Secret<16> v0 = key.derive_v0(0x1234);
  const Secret<32> v1 = key.derive_v1(0x1234);
  std::thread([&] {
    const uint64_t before = g_aligned_allocations.load();
    EXPECT_TRUE(key.derive_v0(0x1234, ctx) == v0);
    EXPECT_TRUE(key.derive_v1(0x1234, ctx) == v1);
    EXPECT_EQ(g_aligned_allocations.load(), before);
    const KdfKey other(master(kK1), &ctx);  // preparing a key (a rotation) needs no thread manager either
    EXPECT_EQ(g_aligned_allocations.load(), before);
    EXPECT_TRUE(other.derive_v0(0x9A345678, ctx) == derive_psp_key_v0(master(kK1), 0x9A345678));
  }).join();
  std::thread([&] {
    const uint64_t before = g_aligned_allocations.load();
    EXPECT_TRUE(key.derive_v0(0x1234) == v0);
    EXPECT_GT(g_aligned_allocations.load(), before);  // the thread's own manager: what the context avoids
  }).join();
}

// One KdfKey, derived from on several threads at once (each on its own ipsec-mb manager, created on the
// thread's first derivation), gives every thread the keys a single thread computes.
TEST(Kdf, ConcurrentDerivationsOnOneKey) {
  const MasterKey mk = master(kK0);
  const KdfKey key(mk);
  constexpr uint32_t kSpis = 2000;
  std::vector<Secret<32>> expected;
  expected.reserve(kSpis);
  for (uint32_t spi = 0; spi < kSpis; ++spi) expected.push_back(key.derive_v1(spi));
  std::atomic<int> mismatches{0};
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&mk, &key, &expected, &mismatches] {
      for (uint32_t spi = 0; spi < kSpis; ++spi) {
        const Secret<32> v1 = key.derive_v1(spi);
        const Secret<16> v0 = key.derive_v0(spi);
        const bool v1_ok = v1 == expected[spi];
        const bool v0_ok = v0 == cmac_aes256_block(mk, reference_block(1, "Pv0", spi, 128));
        if (!v1_ok || !v0_ok) mismatches.fetch_add(1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// The second half of a v1 key is counter 2 of the same KDF, so it must differ from the first; and the
// SPI (the KDF context) must change the key.
TEST(Kdf, V1HalvesAndSpiAreDistinct) {
  const MasterKey mk = master(kK0);
  const Secret<32> key = derive_psp_key_v1(mk, 0x12345678);
  const auto bytes = key.reveal();
  EXPECT_FALSE(std::equal(bytes.begin(), bytes.begin() + 16, bytes.begin() + 16));
  EXPECT_FALSE(derive_psp_key_v0(mk, 0x12345678) == derive_psp_key_v0(mk, 0x12345679));
}

}  // namespace
}  // namespace pspgw::crypto
