#include "crypt.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "base/byteorder.hpp"
#include "base/hex.hpp"
#include "create.hpp"
#include "psp/seal.hpp"

namespace pspgw::psp_pcap {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes hex(std::string_view s) {
  std::string clean;
  for (char c : s) {
    if (c != ' ' && c != '\n') clean.push_back(c);
  }
  return *parse_hex(clean);
}

// Spec page §4 master keys.
EncryptConfig make_config(psp::Mode mode, psp::PspVersion v, bool vc, uint8_t offset) {
  auto c = parse_encrypt_config(
      "34448a064292601b11a0978f56a2d34cf3fc35ede1a6bc04f8db3e5243a2b0ca "
      "563952565d3a78ae773ec1b779f2f2d99f4a7f53a6fbb9b07d5b71f39364d739 9A345678 transport aes-gcm-128 0 0 0 "
      "no-vc");
  EncryptConfig cfg = std::move(c).value();
  cfg.mode = mode;
  cfg.version = v;
  cfg.vc = vc;
  cfg.transport_crypt_offset = cfg.ipv4_tunnel_crypt_offset = cfg.ipv6_tunnel_crypt_offset = offset;
  return cfg;
}

MasterKeys keys_of(const EncryptConfig& c) {
  return MasterKeys{c.keys.key0.clone(), c.keys.key1.clone()};
}

struct Harness {
  net::PacketPool pool{2 * net::kMaxBatch};
  net::PacketBatch batch;
  std::array<ports::PcapRecord, net::kMaxBatch> recs{};

  void load(const std::vector<Bytes>& frames) {
    batch.clear();
    for (const Bytes& f : frames) {
      net::Packet* p = pool.alloc();
      ASSERT_TRUE(p->assign(f));
      recs[batch.size()] = ports::PcapRecord{{1, static_cast<uint32_t>(batch.size())},
                                             static_cast<uint32_t>(f.size()),
                                             static_cast<uint32_t>(f.size()),
                                             batch.size() + 1};
      batch.push(p);
    }
  }
  std::vector<Bytes> frames() const {
    std::vector<Bytes> out;
    for (const net::Packet* p : batch) out.emplace_back(p->bytes().begin(), p->bytes().end());
    return out;
  }
  std::span<ports::PcapRecord> rec_span() { return {recs.data(), batch.size()}; }
  void release() {
    for (net::Packet* p : batch) pool.free(p);
    batch.clear();
  }
};

Bytes test_frame(net::IpFamily f, bool empty, uint32_t n) {
  Bytes b(kCreateFrameSize);
  b.resize(build_test_frame({f, empty}, n, b));
  return b;
}

std::unique_ptr<crypto::AeadKey> derived_key(const EncryptConfig& c, const crypto::AeadBackend& aead) {
  const psp::MasterKeySnapshot snap(c.keys.key0.clone(), c.keys.key1.clone(), 0);
  auto k = snap.derive(c.spi, c.version);
  return aead.make_key(*psp::aead_alg(static_cast<uint8_t>(c.version)), k->view());
}

std::size_t psp_at(const Bytes& f) {
  return 14 + ((f[14] >> 4) == 4 ? (f[14] & 0xf) * 4 : 40) + 8;
}

TEST(Encryptor, RoundTripsEveryModeFamilyVersionAndVc) {
  auto aead = crypto::make_openssl_backend();
  for (auto mode : {psp::Mode::kTransport, psp::Mode::kTunnel}) {
    for (auto ver : {psp::PspVersion::kAesGcm128, psp::PspVersion::kAesGcm256, psp::PspVersion::kAesGmac128,
                     psp::PspVersion::kAesGmac256}) {
      for (bool vc : {false, true}) {
        for (bool empty : {false, true}) {
          const EncryptConfig cfg = make_config(mode, ver, vc, 1);
          auto key = derived_key(cfg, *aead);
          Harness h;
          const std::vector<Bytes> in = {test_frame(net::IpFamily::kV4, empty, 0),
                                         test_frame(net::IpFamily::kV6, empty, 1)};
          h.load(in);
          Encryptor enc(cfg, *aead, *key, {});
          ASSERT_TRUE(enc.run(h.batch, h.rec_span(), h.pool).ok());
          ASSERT_EQ(enc.stats().encrypted, 2u);
          const auto sealed = h.frames();
          for (std::size_t i = 0; i < 2; ++i) {
            const std::size_t psp = psp_at(sealed[i]);
            EXPECT_EQ(load_be16(sealed[i].data() + psp - 6), 1000);           // UDP dport
            EXPECT_EQ(load_be16(sealed[i].data() + psp - 8), 11111 ^ 22222);  // UDP sport
            EXPECT_EQ(load_be64(sealed[i].data() + psp + 8), i + 1);          // IV 1, 2
            EXPECT_EQ(sealed[i][psp + 3], (static_cast<int>(ver) << 2) | (vc ? 2 : 0) | 1);
          }
          Decryptor dec(keys_of(cfg), *aead, nullptr);
          ASSERT_TRUE(dec.run(h.batch, h.rec_span(), h.pool).ok());
          EXPECT_EQ(dec.stats().decrypted, 2u);
          EXPECT_EQ(h.frames(), in);
          h.release();
        }
      }
    }
  }
}

TEST(Encryptor, SkipsLikeTheReferenceWithoutSpendingIvs) {
  auto aead = crypto::make_openssl_backend();
  const EncryptConfig cfg = make_config(psp::Mode::kTransport, psp::PspVersion::kAesGcm128, false, 2);
  auto key = derived_key(cfg, *aead);
  Bytes arp(60, 0);
  arp[12] = 0x08;
  arp[13] = 0x06;
  Bytes icmp6 = test_frame(net::IpFamily::kV6, true, 0);
  icmp6[14 + 6] = 58;  // next header ICMPv6: transport mode only takes TCP/UDP over IPv6
  const Bytes empty_v4 =
      test_frame(net::IpFamily::kV4, true, 0);  // offset 8 bytes == the UDP segment: sealed
  Harness h;
  h.load({arp, test_frame(net::IpFamily::kV4, false, 0), icmp6, empty_v4});
  Encryptor enc(cfg, *aead, *key, {});
  ASSERT_TRUE(enc.run(h.batch, h.rec_span(), h.pool).ok());
  EXPECT_EQ(enc.stats().encrypted, 2u);
  EXPECT_EQ(enc.stats().skipped[static_cast<int>(EncryptSkip::kNotIp)], 1u);
  EXPECT_EQ(enc.stats().skipped[static_cast<int>(EncryptSkip::kTransportNotTcpUdp)], 1u);
  ASSERT_EQ(h.batch.size(), 2u);
  EXPECT_EQ(h.recs[0].index, 2u);  // records compacted with the batch
  EXPECT_EQ(h.recs[1].index, 4u);
  const auto out = h.frames();
  EXPECT_EQ(load_be64(out[0].data() + psp_at(out[0]) + 8), 1u);
  EXPECT_EQ(load_be64(out[1].data() + psp_at(out[1]) + 8), 2u);
  h.release();

  // Crypt offset 3 (12 bytes) > the 8-byte UDP segment of an empty frame.
  const EncryptConfig big = make_config(psp::Mode::kTransport, psp::PspVersion::kAesGcm128, false, 3);
  Encryptor enc2(big, *aead, *key, {});
  h.load({test_frame(net::IpFamily::kV4, true, 0)});
  ASSERT_TRUE(enc2.run(h.batch, h.rec_span(), h.pool).ok());
  EXPECT_EQ(enc2.stats().skipped[static_cast<int>(EncryptSkip::kCryptOffsetTooBig)], 1u);
  EXPECT_EQ(h.pool.available(), h.pool.capacity());
}

TEST(Encryptor, StopsOnPartialAndOversizedFrames) {
  auto aead = crypto::make_openssl_backend();
  const EncryptConfig cfg = make_config(psp::Mode::kTunnel, psp::PspVersion::kAesGcm128, true, 0);
  auto key = derived_key(cfg, *aead);
  Harness h;
  h.load({test_frame(net::IpFamily::kV4, false, 0)});
  h.recs[0].orig_len = 2000;
  Encryptor enc(cfg, *aead, *key, {});
  auto st = enc.run(h.batch, h.rec_span(), h.pool);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message,
            "record 1: partial capture (1434 of 2000 bytes); psp-pcap needs whole frames");
  h.release();

  Bytes jumbo = test_frame(net::IpFamily::kV6, false, 0);
  jumbo.resize(kMaxFrame - 80 - 8 + 1);  // tunnel IPv6 + VC: at most 9014 - 88
  h.load({jumbo});
  st = enc.run(h.batch, h.rec_span(), h.pool);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message,
            "record 1: frame of 8927 bytes is too large to encrypt (at most 8926 bytes in this mode)");
  h.release();
}

TEST(Encryptor, CorruptedFramesAllFailAuthentication) {
  auto aead = crypto::make_openssl_backend();
  for (auto mode : {psp::Mode::kTransport, psp::Mode::kTunnel}) {
    const EncryptConfig cfg = make_config(mode, psp::PspVersion::kAesGcm256, false, 0);
    auto key = derived_key(cfg, *aead);
    Harness h;
    h.load({test_frame(net::IpFamily::kV4, false, 0), test_frame(net::IpFamily::kV6, true, 1)});
    Encryptor enc(cfg, *aead, *key, EncryptOptions{true, 1, nullptr});
    ASSERT_TRUE(enc.run(h.batch, h.rec_span(), h.pool).ok());
    for (const Bytes& f : h.frames()) EXPECT_EQ(f[psp_at(f) + 2] & 0x80, 0x80);
    Decryptor dec(keys_of(cfg), *aead, nullptr);
    ASSERT_TRUE(dec.run(h.batch, h.rec_span(), h.pool).ok());
    EXPECT_EQ(dec.stats().decrypted, 0u);
    EXPECT_EQ(dec.stats().failed[static_cast<int>(psp::DropReason::kAuthFailed)], 2u);
    EXPECT_EQ(h.batch.size(), 0u);  // never output
    EXPECT_EQ(h.pool.available(), h.pool.capacity());
  }
}

TEST(Decryptor, SkipsNonPspAndCountsFailuresByReason) {
  auto aead = crypto::make_openssl_backend();
  const EncryptConfig cfg = make_config(psp::Mode::kTunnel, psp::PspVersion::kAesGcm128, false, 0);
  auto key = derived_key(cfg, *aead);
  Harness h;
  h.load({test_frame(net::IpFamily::kV4, false, 0)});
  Encryptor enc(cfg, *aead, *key, {});
  ASSERT_TRUE(enc.run(h.batch, h.rec_span(), h.pool).ok());
  Bytes sealed = h.frames()[0];
  h.release();

  Bytes truncated(sealed.begin(), sealed.begin() + 14 + 20 + 8 + 10);
  truncated[14 + 3] = static_cast<uint8_t>(20 + 8 + 10);  // consistent IP length, PSP header cut short
  truncated[14 + 2] = 0;
  Bytes bad_version = sealed;
  bad_version[psp_at(sealed) + 3] = (9 << 2) | 1;
  Bytes arp(60, 0);
  arp[12] = 0x08;
  arp[13] = 0x06;
  h.load({arp, test_frame(net::IpFamily::kV4, false, 0), sealed, bad_version});
  Decryptor dec(keys_of(cfg), *aead, nullptr);
  ASSERT_TRUE(dec.run(h.batch, h.rec_span(), h.pool).ok());
  EXPECT_EQ(dec.stats().decrypted, 1u);
  EXPECT_EQ(dec.stats().skipped[static_cast<int>(DecryptSkip::kNotIp)], 1u);
  EXPECT_EQ(dec.stats().skipped[static_cast<int>(DecryptSkip::kNotPspPort)], 1u);
  EXPECT_EQ(dec.stats().failed[static_cast<int>(psp::DropReason::kBadVersion)], 1u);
  ASSERT_EQ(h.batch.size(), 1u);
  EXPECT_EQ(h.frames()[0], test_frame(net::IpFamily::kV4, false, 0));
  EXPECT_EQ(h.recs[0].index, 3u);
  h.release();
}

// The published AEAD vector (spec page §4), framed in tunnel mode over IPv4 exactly as the reference would.
TEST(Encryptor, ReproducesThePublishedAeadVector) {
  const Bytes inner =
      hex("45 00 00 25 00 01 00 00 40 11 7c c5 7f 00 00 01 7f 00 00 01 04 d2 16 2e 00 11 a0 c4 41 41 41 41 "
          "41 41 41 41 41");
  const Bytes sealed_psp =
      hex("04 01 05 01 11 22 33 44 01 02 03 04 05 06 07 08 45 00 00 25 00 01 00 00 40 11 7c c5 7f 00 00 01"
          "7f 00 00 01 8e 3e 2b 13 45 c7 6b f9 5c da c3 9b 86 17 62 a0 cf df fb be bb c6 31 3a 2b 9d e0 64"
          "75 9c dd 71 c9");
  Bytes frame = hex("0088 99aa bb00 0022 3344 5500 0800");
  frame.insert(frame.end(), inner.begin(), inner.end());

  auto aead = crypto::make_openssl_backend();
  EncryptConfig cfg = make_config(psp::Mode::kTunnel, psp::PspVersion::kAesGcm128, false, 5);
  cfg.spi = 0x11223344;
  auto key = aead->make_key(crypto::AeadAlg::kAesGcm128, hex("ffeeddccbbaa99887766554433221100"));
  Harness h;
  h.load({frame});
  Encryptor enc(cfg, *aead, *key, EncryptOptions{false, 0x0102030405060708, nullptr});
  ASSERT_TRUE(enc.run(h.batch, h.rec_span(), h.pool).ok());
  const Bytes out = h.frames()[0];
  ASSERT_EQ(out.size(), 14 + 20 + 8 + sealed_psp.size());
  EXPECT_EQ(Bytes(out.begin() + 42, out.end()), sealed_psp);
  // Outer IPv4: the inner header with protocol 17 and length 20 + 8 + 69; UDP 1234 ^ 5678 -> 1000, checksum
  // 0.
  EXPECT_EQ(Bytes(out.begin() + 14, out.begin() + 42),
            hex("4500 0061 0001 0000 4011 7c89 7f00 0001 7f00 0001 12fc 03e8 004d 0000"));
  h.release();
}

}  // namespace
}  // namespace pspgw::psp_pcap
