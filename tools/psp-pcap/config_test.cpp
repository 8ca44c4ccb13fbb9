#include "config.hpp"

#include <gtest/gtest.h>

#include <fstream>

namespace pspgw::psp_pcap {
namespace {

// The google/psp reference cfg/encrypt_tunnel_crypt_off_256_vc.cfg.
constexpr const char* kKey0 =
    "34 44 8a 06 42 92 60 1b 11 a0 97 8f 56 a2 d3 4c f3 fc 35 ed e1 a6 bc 04 f8 db 3e 52 43 a2 b0 ca";
constexpr const char* kKey1 =
    "56 39 52 56 5d 3a 78 ae 77 3e c1 b7 79 f2 f2 d9 9f 4a 7f 53 a6 fb b9 b0 7d 5b 71 f3 93 64 d7 39";

std::string config(const std::string& spi = "1A345678", const std::string& mode = "tunnel",
                   const std::string& alg = "aes-gcm-256", const std::string& offsets = "3\n8\n13",
                   const std::string& vc = "vc") {
  return std::string(kKey0) + "\n" + kKey1 + "\n" + spi + "\n" + mode + "\n" + alg + "\n" + offsets + "\n" +
         vc + "\n";
}

std::string error_of(const std::string& text) {
  auto r = parse_encrypt_config(text);
  return r ? std::string("(parsed)") : r.error().message;
}
int item_of(const std::string& text) {
  auto r = parse_encrypt_config(text);
  return r ? -1 : r.error().item;
}

TEST(EncryptConfig, ParsesTheReferenceFile) {
  auto c = parse_encrypt_config(config());
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->keys.key0.reveal()[0], 0x34);
  EXPECT_EQ(c->keys.key0.reveal()[31], 0xca);
  EXPECT_EQ(c->keys.key1.reveal()[0], 0x56);
  EXPECT_EQ(c->keys.key1.reveal()[31], 0x39);
  EXPECT_EQ(c->spi, 0x1a345678u);
  EXPECT_EQ(c->mode, psp::Mode::kTunnel);
  EXPECT_EQ(c->version, psp::PspVersion::kAesGcm256);
  EXPECT_EQ(c->transport_crypt_offset, 3);
  EXPECT_EQ(c->ipv4_tunnel_crypt_offset, 8);
  EXPECT_EQ(c->ipv6_tunnel_crypt_offset, 13);
  EXPECT_TRUE(c->vc);
}

TEST(EncryptConfig, AcceptsEquivalentSpellings) {
  // One-token keys, 0x SPI, single-digit bytes, everything on one line.
  std::string k0 = "34448a064292601b11a0978f56a2d34cf3fc35ede1a6bc04f8db3e5243a2b0ca";
  auto c = parse_encrypt_config(k0 + " " + kKey1 + " 0x9A345678 transport aes-gcm-128 0 63 1 no-vc");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->keys.key0.reveal()[2], 0x8a);
  EXPECT_EQ(c->spi, 0x9a345678u);
  EXPECT_EQ(c->mode, psp::Mode::kTransport);
  EXPECT_EQ(c->version, psp::PspVersion::kAesGcm128);
  EXPECT_EQ(c->ipv4_tunnel_crypt_offset, 63);
  EXPECT_FALSE(c->vc);
  std::string short_bytes = std::string(kKey0).replace(0, 2, "4");  // "%hhx" reads "4" as 0x04
  auto d = parse_encrypt_config(short_bytes + "\n" + kKey1 + "\n1 tunnel aes-gcm-128 0 0 0 vc");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->keys.key0.reveal()[0], 0x04);
}

TEST(EncryptConfig, NamesEveryMalformedItem) {
  // Item 1 / 2: master keys.
  EXPECT_EQ(error_of(""),
            "item 1 (master key 0), line 1: byte 1 of 32: expected 2 hex digits, found end of file");
  EXPECT_EQ(error_of("34 44 zz"),
            "item 1 (master key 0), line 1: byte 3 of 32: expected 2 hex digits, found 'zz'");
  EXPECT_EQ(
      error_of("34 44 8a0"),
      "item 1 (master key 0), line 1: byte 3 of 32: expected 2 hex digits, found a token of 3 characters");
  EXPECT_EQ(error_of(std::string(kKey0) + "\n56 39"),
            "item 2 (master key 1), line 2: byte 3 of 32: expected 2 hex digits, found end of file");
  EXPECT_EQ(item_of(std::string(64, 'g') + " " + kKey1), 1);
  // Item 3: SPI.
  EXPECT_EQ(error_of(config("xyz")),
            "item 3 (SPI), line 3: expected a 32-bit hex SPI (1 to 8 hex digits), found 'xyz'");
  EXPECT_EQ(item_of(config("123456789")), 3);
  EXPECT_EQ(error_of(config("80000000")),
            "item 3 (SPI), line 3: SPI 80000000 is invalid: its low 31 bits are zero");
  EXPECT_EQ(item_of(config("0")), 3);
  // Item 4: mode; 5: algorithm.
  EXPECT_EQ(error_of(config("1", "tunel")),
            "item 4 (encap mode), line 4: expected 'transport' or 'tunnel', found 'tunel'");
  EXPECT_EQ(error_of(config("1", "tunnel", "aes-gmac-512")),
            "item 5 (crypto algorithm), line 5: expected 'aes-gcm-128', 'aes-gcm-256', 'aes-gmac-128' or "
            "'aes-gmac-256', found 'aes-gmac-512'");
  // Versions 2/3 (integrity only) in the reference's spelling.
  EXPECT_EQ(parse_encrypt_config(config("1", "tunnel", "aes-gmac-128"))->version,
            psp::PspVersion::kAesGmac128);
  EXPECT_EQ(parse_encrypt_config(config("1", "tunnel", "aes-gmac-256"))->version,
            psp::PspVersion::kAesGmac256);
  // Items 6..8: crypt offsets (64 is refused although the reference takes it).
  EXPECT_EQ(error_of(config("1", "tunnel", "aes-gcm-128", "64 0 0")),
            "item 6 (transport crypt offset), line 6: expected a crypt offset in 4-octet units, 0 to 63, "
            "found '64'");
  EXPECT_EQ(item_of(config("1", "tunnel", "aes-gcm-128", "0 -1 0")), 7);
  EXPECT_EQ(item_of(config("1", "tunnel", "aes-gcm-128", "0 0 x")), 8);
  EXPECT_EQ(item_of(config("1", "tunnel", "aes-gcm-128", "0 0")), 8);
  // Item 9: VC; then nothing may follow.
  EXPECT_EQ(error_of(config("1", "tunnel", "aes-gcm-128", "0 0 0", "VC")),
            "item 9 (VC mode), line 7: expected 'vc' or 'no-vc', found 'VC'");
  EXPECT_EQ(error_of(config() + "extra"),
            "item 10 (end of config), line 10: unexpected 'extra' after the last item");
}

TEST(DecryptConfig, TakesTwoKeysOrAFullEncryptConfig) {
  auto k = parse_decrypt_config(std::string(kKey0) + "\n" + kKey1 + "\n");
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->key1.reveal()[1], 0x39);
  EXPECT_TRUE(parse_decrypt_config(config()).ok());
  auto bad = parse_decrypt_config(std::string(kKey0) + "\n" + kKey1 + "\nnonsense");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().item, 3);
  auto one = parse_decrypt_config(kKey0);
  ASSERT_FALSE(one.ok());
  EXPECT_EQ(one.error().item, 2);
}

TEST(ConfigFile, NamesTheFile) {
  auto missing = load_encrypt_config("/nonexistent/psp.cfg");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().item, 0);
  EXPECT_EQ(missing.error().message, "cannot open config /nonexistent/psp.cfg: No such file or directory");

  const std::string path = ::testing::TempDir() + "config_test.cfg";
  std::ofstream(path) << config("1", "sideways");
  auto bad = load_encrypt_config(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message,
            path + ": item 4 (encap mode), line 4: expected 'transport' or 'tunnel', found 'sideways'");
  std::ofstream(path) << config();
  EXPECT_TRUE(load_encrypt_config(path).ok());
  EXPECT_TRUE(load_decrypt_config(path).ok());
}

}  // namespace
}  // namespace pspgw::psp_pcap
