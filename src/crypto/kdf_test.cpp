#include "crypto/kdf.hpp"

#include <gtest/gtest.h>

#include "base/hex.hpp"

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
