// The gateway's encap + seal (encap_template.hpp) against the shared decap (encap.hpp), every version,
// family pair, VC and mode; GMAC frames made by the OpenSSL reference (EVP AES-GCM with AAD only).
#include "psp/encap_template.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <vector>

#include "base/byteorder.hpp"
#include "net/checksum.hpp"
#include "net/headers.hpp"
#include "net/parse.hpp"
#include "psp/key_cache.hpp"
#include "psp/test_util.hpp"

namespace pspgw::psp {
namespace {

using net::IpFamily;
using testing::FrameSpec;

constexpr PspVersion kVersions[] = {PspVersion::kAesGcm128, PspVersion::kAesGcm256, PspVersion::kAesGmac128,
                                    PspVersion::kAesGmac256};

OuterHeaders outer_of(IpFamily f) {
  OuterHeaders o;
  o.local = *net::IpAddr::parse(f == IpFamily::kV4 ? "192.0.2.1" : "2001:db8::1");
  o.peer = *net::IpAddr::parse(f == IpFamily::kV4 ? "192.0.2.2" : "2001:db8::2");
  return o;
}

const EthAddrs kEth =
    eth_addrs(*net::MacAddr::parse("02:00:00:00:00:02"), *net::MacAddr::parse("02:00:00:00:00:01"));

SealParams sa_params(PspVersion v, bool vc, uint8_t off, uint32_t spi = 0x80000007) {
  SealParams p;
  p.version = v;
  p.spi = spi;
  p.crypt_offset = off;
  p.has_vc = vc;
  p.vc = 0x0102030405060708;
  return p;
}

class EncapTemplateTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    aead_ = crypto::make_backend(GetParam());
    if (!aead_) GTEST_SKIP() << GetParam() << " unavailable";
    testing::issue_all(ring_);
    ring_.rotate(testing::master_key(testing::kK1));
    testing::issue_all(ring_);
    cache_ = std::make_unique<KeyCache>(*aead_, 64);
    cache_->update(ring_.snapshot());
  }
  std::unique_ptr<crypto::AeadKey> tx_key(uint32_t spi, PspVersion v) {
    auto k = ring_.derive(spi, v).value();
    return aead_->make_key(*aead_alg(static_cast<uint8_t>(v)), k.view());
  }
  // encap() then encrypt() as the daemon's actions run them, one packet.
  DropReason encap_and_seal(net::Packet& pkt, const EncapTemplate& t, const crypto::AeadKey& key, Mode mode,
                            uint64_t iv) {
    const EncapError e = mode == Mode::kTunnel ? encap_tunnel(pkt, t, kEth, iv, 0x12345)
                                               : encap_transport(pkt, t, kEth, iv, 0x12345);
    if (e != EncapError::kNone) return DropReason::kNoRoom;
    crypto::AeadOp op;
    if (const DropReason r = prepare_frame_seal(pkt, t, key, op); r != DropReason::kNone) return r;
    aead_->seal({&op, 1});
    return op.ok ? DropReason::kNone : DropReason::kAuthFailed;
  }

  std::unique_ptr<crypto::AeadBackend> aead_;
  KeyRing ring_{testing::master_key(testing::kK0)};
  std::unique_ptr<KeyCache> cache_;
  net::PacketPool pool_{8};
};

// Tunnel: every version x outer family x inner family x VC; decap restores the inner packet exactly, the
// outer headers are what §1 asks for, and GMAC leaves the inner packet readable on the wire.
TEST_P(EncapTemplateTest, TunnelRoundTripsEveryShape) {
  for (PspVersion v : kVersions) {
    for (IpFamily outer : {IpFamily::kV4, IpFamily::kV6}) {
      for (IpFamily inner : {IpFamily::kV4, IpFamily::kV6}) {
        for (bool vc : {false, true}) {
          SCOPED_TRACE(::testing::Message() << "v" << int(v) << " outer " << int(outer) << " inner "
                                            << int(inner) << " vc " << vc);
          const uint8_t off = static_cast<uint8_t>((inner == IpFamily::kV4 ? 5 : 10) + (vc ? 2 : 0));
          const auto t = EncapTemplate::make(sa_params(v, vc, off), outer_of(outer)).value();
          const auto key = tx_key(t.spi(), v);
          const auto frame = testing::make_frame({inner, 17, 200});
          net::Packet* pkt = testing::load(pool_, frame);
          ASSERT_EQ(encap_and_seal(*pkt, t, *key, Mode::kTunnel, 77), DropReason::kNone);
          const auto enc = testing::contents(*pkt);
          auto f = net::parse_frame(enc);
          ASSERT_TRUE(f.ok());
          EXPECT_EQ(f->ip.family, outer);
          EXPECT_EQ(f->ip.dst_port, kPspUdpPort);
          EXPECT_EQ(f->ip.src_port, 0xc000 | (0x12345 & 0x3fff));
          EXPECT_EQ(load_be16(&enc[f->ip.l4_offset + 6]), 0);  // UDP checksum 0
          EXPECT_TRUE(std::equal(kEth.begin(), kEth.end(), enc.begin()));
          EXPECT_TRUE(outer != IpFamily::kV4 || net::ipv4_checksum_ok(&enc[14]));
          const std::size_t inner_len = frame.size() - 14;
          EXPECT_EQ(enc.size(), t.size() + inner_len + kPspIcvSize);
          const auto hdr = decode_header({enc.data() + t.psp_offset(), enc.size() - t.psp_offset()}).value();
          EXPECT_EQ(hdr.iv, 77u);
          EXPECT_EQ(hdr.next_header, inner == IpFamily::kV4 ? 4 : 41);
          const bool gmac = v == PspVersion::kAesGmac128 || v == PspVersion::kAesGmac256;
          EXPECT_EQ(std::equal(frame.begin() + 14, frame.end(), enc.begin() + t.size()), gmac);
          auto r = decap_frame(*pkt, *cache_, *aead_);
          ASSERT_TRUE(r.ok()) << to_string(r.error());
          EXPECT_EQ(r->header.vc, vc ? 0x0102030405060708u : 0u);
          EXPECT_EQ(pkt->size(), frame.size());
          EXPECT_TRUE(std::equal(frame.begin() + 12, frame.end(), pkt->bytes().begin() + 12));
          pool_.free(pkt);
        }
      }
    }
  }
}

// Transport: the L4 segment behind the IP header (and IPv6 extension headers) is carried; decap rebuilds
// [outer IP, protocol restored][L4] (psp_actions.hpp: the outer addresses are the workload's).
TEST_P(EncapTemplateTest, TransportRoundTripsEveryVersion) {
  for (PspVersion v : kVersions) {
    for (IpFamily fam : {IpFamily::kV4, IpFamily::kV6}) {
      SCOPED_TRACE(::testing::Message() << "v" << int(v) << " family " << int(fam));
      const auto t = EncapTemplate::make(sa_params(v, false, 1), outer_of(fam)).value();
      const auto key = tx_key(t.spi(), v);
      FrameSpec spec{fam, 6, 64};
      spec.ipv6_dest_opts = fam == IpFamily::kV6;
      const auto frame = testing::make_frame(spec);
      const auto parsed = net::parse_frame(frame).value();
      net::Packet* pkt = testing::load(pool_, frame);
      ASSERT_EQ(encap_and_seal(*pkt, t, *key, Mode::kTransport, 5), DropReason::kNone);
      auto r = decap_frame(*pkt, *cache_, *aead_);
      ASSERT_TRUE(r.ok()) << to_string(r.error());
      EXPECT_EQ(r->mode, Mode::kTransport);
      EXPECT_EQ(r->header.next_header, 6);
      const auto out = net::parse_frame(pkt->bytes()).value();
      EXPECT_EQ(out.ip.l4_proto, 6);
      const std::size_t l4_len = frame.size() - parsed.ip.l4_offset;
      ASSERT_EQ(pkt->size() - out.ip.l4_offset, l4_len);
      EXPECT_TRUE(std::equal(frame.begin() + parsed.ip.l4_offset, frame.end(),
                             pkt->bytes().begin() + out.ip.l4_offset));
      pool_.free(pkt);
    }
  }
}

// The re-key race: encap() wrote the old SA's header, then the SA was replaced before encrypt(). The packet
// is sealed with the new key and must name the new SPI; an SA that writes another header refuses it.
TEST_P(EncapTemplateTest, SealNamesTheSpiOfTheKeyThatSeals) {
  const auto old_sa =
      EncapTemplate::make(sa_params(PspVersion::kAesGcm256, true, 2, 0x80000007), outer_of(IpFamily::kV6))
          .value();
  const auto new_sa =
      EncapTemplate::make(sa_params(PspVersion::kAesGcm256, true, 2, 0x80000009), outer_of(IpFamily::kV6))
          .value();
  const auto new_key = tx_key(new_sa.spi(), PspVersion::kAesGcm256);
  const auto frame = testing::make_frame({IpFamily::kV4, 17, 100});
  net::Packet* pkt = testing::load(pool_, frame);
  ASSERT_EQ(encap_tunnel(*pkt, old_sa, kEth, 9, 1), EncapError::kNone);
  pkt->data()[old_sa.psp_offset() + 3] |= 0x80;  // EGR_SAMP sampled it in between: still this SA's header
  crypto::AeadOp op;
  ASSERT_EQ(prepare_frame_seal(*pkt, new_sa, *new_key, op), DropReason::kNone);
  aead_->seal({&op, 1});
  EXPECT_EQ(load_be32(pkt->data() + old_sa.psp_offset() + 4), 0x80000009u);
  auto r = decap_frame(*pkt, *cache_, *aead_);
  ASSERT_TRUE(r.ok()) << to_string(r.error());
  EXPECT_EQ(r->header.spi, 0x80000009u);
  EXPECT_TRUE(r->header.sample);
  pool_.free(pkt);

  for (const SealParams& other :
       {sa_params(PspVersion::kAesGcm128, true, 2), sa_params(PspVersion::kAesGcm256, true, 3), [] {
          auto p = sa_params(PspVersion::kAesGcm256, true, 2);
          p.vc = 99;
          return p;
        }()}) {
    const auto t = EncapTemplate::make(other, outer_of(IpFamily::kV6)).value();
    const auto key = tx_key(t.spi(), other.version);
    net::Packet* p = testing::load(pool_, frame);
    ASSERT_EQ(encap_tunnel(*p, old_sa, kEth, 10, 1), EncapError::kNone);
    EXPECT_EQ(prepare_frame_seal(*p, t, *key, op), DropReason::kBadHeader);
    pool_.free(p);
  }
  // A key of another algorithm than the SA's version.
  net::Packet* p = testing::load(pool_, frame);
  ASSERT_EQ(encap_tunnel(*p, new_sa, kEth, 11, 1), EncapError::kNone);
  EXPECT_EQ(prepare_frame_seal(*p, new_sa, *tx_key(1, PspVersion::kAesGmac256), op), DropReason::kBadVersion);
  pool_.free(p);
}

// header_of compares the header's bytes 1-3 as one masked word: every bit of them but the S bit decides,
// the Next Header (byte 0) and the S bit do not; with a VC, every VC bit decides too.
TEST_P(EncapTemplateTest, SealChecksEveryHeaderBitButTheSampleBitAndNextHeader) {
  for (const bool vc : {false, true}) {
    const auto t =
        EncapTemplate::make(sa_params(PspVersion::kAesGcm256, vc, 2), outer_of(IpFamily::kV4)).value();
    const auto key = tx_key(t.spi(), PspVersion::kAesGcm256);
    const auto frame = testing::make_frame({IpFamily::kV4, 17, 100});
    for (uint32_t bit = 0; bit < 8 * t.psp_header_size(); ++bit) {
      const uint32_t byte = bit / 8;
      if (byte >= 4 && byte < kPspHeaderSize) continue;  // SPI and IV: written by the seal
      net::Packet* p = testing::load(pool_, frame);
      ASSERT_EQ(encap_tunnel(*p, t, kEth, 5, 1), EncapError::kNone);
      p->data()[t.psp_offset() + byte] ^= static_cast<uint8_t>(1u << (bit % 8));
      crypto::AeadOp op;
      const bool ignored = byte == 0 || (byte == 3 && bit % 8 == 7);
      EXPECT_EQ(prepare_frame_seal(*p, t, *key, op), ignored ? DropReason::kNone : DropReason::kBadHeader)
          << "vc " << vc << " bit " << bit;
      pool_.free(p);
    }
  }
}

TEST_P(EncapTemplateTest, RefusalsAreNamed) {
  const auto t =
      EncapTemplate::make(sa_params(PspVersion::kAesGcm128, false, 0), outer_of(IpFamily::kV4)).value();
  std::vector<uint8_t> arp(60, 0);
  store_be16(&arp[12], 0x0806);
  net::Packet* pkt = testing::load(pool_, arp);
  EXPECT_EQ(encap_tunnel(*pkt, t, kEth, 1, 0), EncapError::kBadFrame);
  EXPECT_EQ(encap_transport(*pkt, t, kEth, 1, 0), EncapError::kBadFrame);
  pool_.free(pkt);
  auto frag = testing::make_frame({IpFamily::kV4, 17, 100});
  store_be16(&frag[14 + 6], net::kIpv4FlagMf);
  net::ipv4_set_checksum(&frag[14]);
  pkt = testing::load(pool_, frag);
  EXPECT_EQ(encap_transport(*pkt, t, kEth, 1, 0), EncapError::kFragment);
  pool_.free(pkt);
  pkt = pool_.alloc();
  const auto frame = testing::make_frame({IpFamily::kV4, 17, 100});
  pkt->reset(20);  // too little headroom for Eth + IPv4 + UDP + PSP
  ASSERT_TRUE(pkt->assign(frame));
  EXPECT_EQ(encap_tunnel(*pkt, t, kEth, 1, 0), EncapError::kTooBig);
  pool_.free(pkt);
  EXPECT_EQ(
      EncapTemplate::make(sa_params(static_cast<PspVersion>(4), false, 0), outer_of(IpFamily::kV4)).error(),
      DropReason::kBadVersion);
  OuterHeaders mixed = outer_of(IpFamily::kV4);
  mixed.peer = outer_of(IpFamily::kV6).peer;
  EXPECT_EQ(EncapTemplate::make(sa_params(PspVersion::kAesGcm128, false, 0), mixed).error(),
            DropReason::kBadOuterPacket);
}

// The OpenSSL reference, called directly: GCM with the whole [PSP header][payload] as AAD and no text is
// the GMAC ICV (spec §3). Returns the tag.
std::array<uint8_t, 16> reference_gmac(std::span<const uint8_t> key, std::span<const uint8_t> psp) {
  const EVP_CIPHER* c = key.size() == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  std::array<uint8_t, 12> nonce;
  std::copy(psp.begin() + 4, psp.begin() + 16, nonce.begin());  // SPI || IV as on the wire
  std::array<uint8_t, 16> tag{};
  int n = 0;
  EXPECT_EQ(EVP_EncryptInit_ex(ctx, c, nullptr, key.data(), nonce.data()), 1);
  EXPECT_EQ(EVP_EncryptUpdate(ctx, nullptr, &n, psp.data(), static_cast<int>(psp.size())), 1);
  EXPECT_EQ(EVP_EncryptFinal_ex(ctx, tag.data(), &n), 1);
  EXPECT_EQ(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag.data()), 1);
  EVP_CIPHER_CTX_free(ctx);
  return tag;
}

// Interop: v2/v3 frames sealed by the reference open with this backend; one flipped payload bit fails.
TEST_P(EncapTemplateTest, DecapsGmacFramesOfTheOpenSslReference) {
  for (PspVersion v : {PspVersion::kAesGmac128, PspVersion::kAesGmac256}) {
    for (uint8_t off : {0, 5}) {
      SCOPED_TRACE(::testing::Message() << "v" << int(v) << " crypt offset " << int(off));
      const uint32_t spi = 0x00000042;
      const auto inner = testing::make_ip_packet({IpFamily::kV4, 17, 300});
      PspHeaderFields h;
      h.next_header = 4;
      h.crypt_offset = off;
      h.version = static_cast<uint8_t>(v);
      h.spi = spi;
      h.iv = 0x1122334455667788;
      std::vector<uint8_t> psp(kPspHeaderSize);
      encode_header(h, psp);
      psp.insert(psp.end(), inner.begin(), inner.end());
      const auto derived = ring_.derive(spi, v).value();
      const auto tag = reference_gmac(derived.view(), psp);
      psp.insert(psp.end(), tag.begin(), tag.end());
      // [Eth][IPv6][UDP 1000][PSP]: the outer headers as any sender would write them.
      auto frame = testing::make_frame({IpFamily::kV6, 17, psp.size()});
      auto f = net::parse_frame(frame).value();
      std::copy(psp.begin(), psp.end(), frame.begin() + f.ip.l4_offset + 8);
      store_be16(&frame[f.ip.l4_offset + 2], kPspUdpPort);
      store_be16(&frame[f.ip.l4_offset + 6], 0);
      net::Packet* pkt = testing::load(pool_, frame);
      auto r = decap_frame(*pkt, *cache_, *aead_);
      ASSERT_TRUE(r.ok()) << to_string(r.error());
      EXPECT_TRUE(std::equal(inner.begin(), inner.end(), pkt->bytes().begin() + 14));
      pool_.free(pkt);
      frame[frame.size() - 20] ^= 1;  // the last payload byte: clear, but authenticated
      pkt = testing::load(pool_, frame);
      EXPECT_EQ(decap_frame(*pkt, *cache_, *aead_).error(), DropReason::kAuthFailed);
      pool_.free(pkt);
    }
  }
}

std::string backend_label(const ::testing::TestParamInfo<const char*>& p) {
  return std::string(p.param) == "openssl" ? "openssl" : "ipsec_mb";
}
INSTANTIATE_TEST_SUITE_P(Backends, EncapTemplateTest, ::testing::Values("openssl", "ipsec-mb"),
                         backend_label);

}  // namespace
}  // namespace pspgw::psp
