#include <gtest/gtest.h>

#include <vector>

#include "base/byteorder.hpp"
#include "net/checksum.hpp"
#include "net/headers.hpp"
#include "net/parse.hpp"
#include "psp/batch.hpp"
#include "psp/key_cache.hpp"
#include "psp/test_util.hpp"

namespace pspgw::psp {
namespace {

using net::IpFamily;
using testing::FrameSpec;

class PspEncapTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    aead_ = crypto::make_backend(GetParam());
    if (!aead_) GTEST_SKIP() << GetParam() << " unavailable";
    // Both slots hold keys, every SPI of both counts as handed out: the tests pick their SPIs.
    testing::issue_all(ring_);
    ring_.rotate(testing::master_key(testing::kK1));
    testing::issue_all(ring_);
    cache_ = std::make_unique<KeyCache>(*aead_, 64);
    cache_->update(ring_.snapshot());
  }
  // The sender's key for `spi`: what the receiver would hand out of band.
  std::unique_ptr<crypto::AeadKey> tx_key(uint32_t spi, PspVersion v) {
    auto k = ring_.derive(spi, v).value();
    return aead_->make_key(*aead_alg(static_cast<uint8_t>(v)), k.view());
  }
  // `frame` encapsulated and sealed as `p`'s SA would send it (the key of p.spi): the bytes on the wire.
  std::vector<uint8_t> sealed(const std::vector<uint8_t>& frame, const SealParams& p) {
    const auto key = tx_key(p.spi, p.version);
    net::Packet* pkt = testing::load(pool_, frame);
    const bool ok = encap_frame(*pkt, p, *key, *aead_).ok();
    auto enc = testing::contents(*pkt);
    pool_.free(pkt);
    if (!ok) {
      ADD_FAILURE() << "encap_frame refused the frame";
      return {};
    }
    return enc;
  }
  static SealParams params(Mode mode, PspVersion v, bool vc, uint8_t off) {
    SealParams p;
    p.mode = mode;
    p.version = v;
    p.spi = 0x80000007;
    p.iv = 42;
    p.crypt_offset = off;
    p.has_vc = vc;
    p.vc = 0x0102030405060708;
    return p;
  }

  std::unique_ptr<crypto::AeadBackend> aead_;
  KeyRing ring_{testing::master_key(testing::kK0)};
  std::unique_ptr<KeyCache> cache_;
  net::PacketPool pool_{8};
};

// Checks the outer framing of an encapsulated frame (spec §1, §6).
void expect_outer_framing(const std::vector<uint8_t>& orig, const std::vector<uint8_t>& enc, Mode mode,
                          bool vc) {
  auto f = net::parse_frame(enc);
  ASSERT_TRUE(f.ok());
  auto o = net::parse_frame(orig);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(f->ip.family, o->ip.family);
  EXPECT_EQ(f->ip.l4_proto, net::kIpProtoUdp);
  EXPECT_EQ(f->ip.dst_port, kPspUdpPort);
  const uint8_t* udp = &enc[f->ip.l4_offset];
  EXPECT_EQ(load_be16(udp + 6), 0);  // UDP checksum 0
  const bool l4_ports = o->ip.l4_proto == 6 || o->ip.l4_proto == 17;
  EXPECT_EQ(f->ip.src_port, l4_ports ? (o->ip.src_port ^ o->ip.dst_port) : kPspUdpPort);
  const std::size_t growth = 8 + 16 + (vc ? 8 : 0) + 16 + (mode == Mode::kTunnel ? f->ip.l3_header_len : 0);
  EXPECT_EQ(enc.size(), f->l2_len + o->ip.l3_total_len + growth);
  EXPECT_EQ(f->ip.l3_total_len, o->ip.l3_total_len + growth);
  if (f->ip.family == IpFamily::kV4) {
    EXPECT_TRUE(net::ipv4_checksum_ok(&enc[f->l2_len]));
    if (mode == Mode::kTunnel) {
      EXPECT_EQ(enc[f->l2_len], 0x45);
    }
  }
  const uint8_t nh = enc[f->ip.l4_offset + 8];
  if (mode == Mode::kTunnel) {
    EXPECT_EQ(nh, o->ip.family == IpFamily::kV4 ? 4 : 41);
  } else {
    EXPECT_EQ(nh, orig[o->l2_len + (o->ip.family == IpFamily::kV4 ? 9 : 6)]);
  }
}

TEST_P(PspEncapTest, RoundTripsEveryConfiguration) {
  int cases = 0;
  for (Mode mode : {Mode::kTransport, Mode::kTunnel}) {
    for (IpFamily fam : {IpFamily::kV4, IpFamily::kV6}) {
      for (PspVersion v : {PspVersion::kAesGcm128, PspVersion::kAesGcm256}) {
        for (bool vc : {false, true}) {
          for (uint8_t proto : {uint8_t{17}, uint8_t{6}, uint8_t{1}}) {
            for (std::size_t payload :
                 {std::size_t{0}, std::size_t{1}, std::size_t{100}, std::size_t{1400}}) {
              const auto frame = testing::make_frame({fam, proto, payload});
              auto f = net::parse_frame(frame);
              const std::size_t covered =
                  (vc ? 8 : 0) + f->ip.l3_total_len - (mode == Mode::kTransport ? f->ip.l3_header_len : 0);
              for (uint8_t off : {0, 1, 5, 10, 63}) {
                SCOPED_TRACE(::testing::Message()
                             << "mode " << int(mode) << " fam " << int(fam) << " v " << int(v) << " vc " << vc
                             << " proto " << int(proto) << " payload " << payload << " off " << int(off));
                const auto key = tx_key(0x80000007, v);
                net::Packet* pkt = testing::load(pool_, frame);
                auto s = encap_frame(*pkt, params(mode, v, vc, off), *key, *aead_);
                if (off * 4u > covered) {
                  ASSERT_FALSE(s.ok());
                  EXPECT_EQ(s.error(), DropReason::kBadCryptOffset);
                  EXPECT_EQ(testing::contents(*pkt), frame);  // refused before any change
                  pool_.free(pkt);
                  continue;
                }
                ASSERT_TRUE(s.ok()) << to_string(s.error());
                const auto enc = testing::contents(*pkt);
                expect_outer_framing(frame, enc, mode, vc);
                auto r = decap_frame(*pkt, *cache_, *aead_);
                ASSERT_TRUE(r.ok()) << to_string(r.error());
                EXPECT_EQ(r->mode, mode);
                EXPECT_EQ(r->header.spi, 0x80000007u);
                EXPECT_EQ(r->header.crypt_offset, off);
                EXPECT_EQ(r->header.vc, vc ? 0x0102030405060708u : 0u);
                EXPECT_EQ(testing::contents(*pkt), frame);
                pool_.free(pkt);
                ++cases;
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(cases, 700);
}

TEST_P(PspEncapTest, UnusualFramesRoundTrip) {
  for (const FrameSpec s :
       {FrameSpec{IpFamily::kV4, 17, 50, true}, FrameSpec{IpFamily::kV6, 6, 50, true},
        FrameSpec{IpFamily::kV4, 17, 30, false, 3}, FrameSpec{IpFamily::kV6, 17, 30, false, 0, true}}) {
    for (Mode mode : {Mode::kTransport, Mode::kTunnel}) {
      const auto frame = testing::make_frame(s);
      const auto key = tx_key(0x80000007, PspVersion::kAesGcm128);
      net::Packet* pkt = testing::load(pool_, frame);
      ASSERT_TRUE(encap_frame(*pkt, params(mode, PspVersion::kAesGcm128, false, 1), *key, *aead_).ok());
      auto r = decap_frame(*pkt, *cache_, *aead_);
      ASSERT_TRUE(r.ok()) << to_string(r.error());
      EXPECT_EQ(testing::contents(*pkt), frame);
      pool_.free(pkt);
    }
  }
}

TEST_P(PspEncapTest, EthernetPaddingIsNotEncapsulated) {
  auto frame = testing::make_frame({IpFamily::kV4, 17, 2});
  const auto unpadded = frame;
  frame.resize(60, 0);  // minimum Ethernet frame
  const auto key = tx_key(0x80000007, PspVersion::kAesGcm128);
  net::Packet* pkt = testing::load(pool_, frame);
  ASSERT_TRUE(encap_frame(*pkt, params(Mode::kTunnel, PspVersion::kAesGcm128, false, 0), *key, *aead_).ok());
  ASSERT_TRUE(decap_frame(*pkt, *cache_, *aead_).ok());
  EXPECT_EQ(testing::contents(*pkt), unpadded);
}

TEST_P(PspEncapTest, TunnelMatchesThePublishedVector) {
  // The §4 vector's inner packet, tunnelled: the PSP part of the frame must be the published bytes.
  const auto inner = testing::hex(
      "45 00 00 25 00 01 00 00 40 11 7c c5 7f 00 00 01 7f 00 00 01 04 d2 16 2e 00 11 a0 c4 41 41 41 41 41 41 "
      "41 41 41");
  const auto sealed = testing::hex(
      "04 01 05 01 11 22 33 44 01 02 03 04 05 06 07 08 45 00 00 25 00 01 00 00 40 11 7c c5 7f 00 00 01"
      "7f 00 00 01 8e 3e 2b 13 45 c7 6b f9 5c da c3 9b 86 17 62 a0 cf df fb be bb c6 31 3a 2b 9d e0 64"
      "75 9c dd 71 c9");
  std::vector<uint8_t> frame(14, 0);
  frame[12] = 0x08;
  frame.insert(frame.end(), inner.begin(), inner.end());
  const auto key =
      aead_->make_key(crypto::AeadAlg::kAesGcm128, testing::hex("ffeeddccbbaa99887766554433221100"));
  SealParams p = params(Mode::kTunnel, PspVersion::kAesGcm128, false, 5);
  p.spi = 0x11223344;
  p.iv = 0x0102030405060708;
  net::Packet* pkt = testing::load(pool_, frame);
  ASSERT_TRUE(encap_frame(*pkt, p, *key, *aead_).ok());
  const auto enc = testing::contents(*pkt);
  ASSERT_EQ(enc.size(), 14 + 20 + 8 + sealed.size());
  EXPECT_TRUE(std::equal(sealed.begin(), sealed.end(), enc.begin() + 42));
  EXPECT_EQ(load_be16(&enc[34]), 1234 ^ 5678);                                        // UDP sport
  EXPECT_EQ(load_be16(&enc[16]), 20 + 8 + 69);                                        // outer total length
  EXPECT_TRUE(std::equal(inner.begin() + 12, inner.begin() + 20, enc.begin() + 26));  // addresses copied
}

// Expected open result for a bit flip at `at` inside the PSP part of a frame.
DropReason expected_flip(std::span<const uint8_t> psp, std::size_t byte, int bit) {
  const auto flipped = static_cast<uint8_t>(psp[byte] ^ (1u << bit));
  if (byte == 1 || (byte == 3 && bit <= 1)) return DropReason::kBadHeader;
  if (byte == 3 && bit <= 5)
    return ((flipped >> 2) & 0xf) <= kPspMaxVersion ? DropReason::kAuthFailed : DropReason::kBadVersion;
  if (byte == 2 && bit < 6)
    return 16 + (flipped & 0x3fu) * 4 > psp.size() - 16 ? DropReason::kBadCryptOffset
                                                        : DropReason::kAuthFailed;
  if (byte >= 4 && byte < 8) {
    const uint32_t spi = load_be32(&psp[4]) ^ (1u << (8 * (7 - byte) + bit));
    if ((spi & 0x7fffffff) == 0) return DropReason::kUnissuedSpi;
  }
  return DropReason::kAuthFailed;
}

TEST_P(PspEncapTest, EveryBitFlipOfPspHeaderPayloadAndIcvFails) {
  struct Config {
    Mode mode;
    IpFamily fam;
    PspVersion v;
    bool vc;
    uint8_t off;
    std::size_t payload;
  };
  for (const Config c : {Config{Mode::kTunnel, IpFamily::kV4, PspVersion::kAesGcm128, false, 5, 24},
                         Config{Mode::kTunnel, IpFamily::kV6, PspVersion::kAesGcm256, true, 0, 3},
                         Config{Mode::kTransport, IpFamily::kV4, PspVersion::kAesGcm256, true, 3, 9},
                         Config{Mode::kTransport, IpFamily::kV6, PspVersion::kAesGcm128, false, 2, 0}}) {
    const auto frame = testing::make_frame({c.fam, 17, c.payload});
    const auto enc = sealed(frame, params(c.mode, c.v, c.vc, c.off));
    ASSERT_FALSE(enc.empty());
    auto plan = steps::plan_decap(enc);
    ASSERT_TRUE(plan.ok());
    const std::span<const uint8_t> psp(enc.data() + plan->psp_offset, plan->psp_len);
    for (std::size_t byte = 0; byte < psp.size(); ++byte) {
      for (int bit = 0; bit < 8; ++bit) {
        auto bad = enc;
        bad[plan->psp_offset + byte] ^= static_cast<uint8_t>(1u << bit);
        net::Packet* p = testing::load(pool_, bad);
        auto r = decap_frame(*p, *cache_, *aead_);
        ASSERT_FALSE(r.ok()) << byte << ":" << bit;
        EXPECT_EQ(r.error(), byte < 8 ? expected_flip(psp, byte, bit) : DropReason::kAuthFailed)
            << "byte " << byte << " bit " << bit;
        EXPECT_NE(testing::contents(*p), frame);
        pool_.free(p);
      }
    }
  }
}

TEST_P(PspEncapTest, EveryTruncationFailsWithALengthReason) {
  for (IpFamily fam : {IpFamily::kV4, IpFamily::kV6}) {
    for (Mode mode : {Mode::kTransport, Mode::kTunnel}) {
      const auto frame = testing::make_frame({fam, 17, 40});
      const auto enc = sealed(frame, params(mode, PspVersion::kAesGcm256, true, 1));
      ASSERT_FALSE(enc.empty());
      for (std::size_t n = 0; n < enc.size(); ++n) {
        net::Packet* p = testing::load(pool_, std::span<const uint8_t>(enc).first(n));
        auto r = decap_frame(*p, *cache_, *aead_);
        ASSERT_FALSE(r.ok()) << n;
        EXPECT_EQ(r.error(), DropReason::kTooShort) << n;
        pool_.free(p);
      }
    }
  }
}

TEST_P(PspEncapTest, MalformedOuterHeadersAreRefused) {
  const auto frame = testing::make_frame({IpFamily::kV4, 17, 40});
  const auto enc = sealed(frame, params(Mode::kTunnel, PspVersion::kAesGcm128, false, 0));
  ASSERT_FALSE(enc.empty());
  auto try_decap = [&](std::vector<uint8_t> bytes) {
    net::Packet* p = testing::load(pool_, bytes);
    auto r = decap_frame(*p, *cache_, *aead_);
    pool_.free(p);
    return r.ok() ? DropReason::kNone : r.error();
  };
  EXPECT_EQ(try_decap(enc), DropReason::kNone);
  auto port = enc;
  store_be16(&port[36], 1001);  // UDP dport
  EXPECT_EQ(try_decap(port), DropReason::kBadHeader);
  auto udplen = enc;
  store_be16(&udplen[38], static_cast<uint16_t>(load_be16(&udplen[38]) - 1));
  EXPECT_EQ(try_decap(udplen), DropReason::kBadOuterPacket);
  auto frag = enc;
  store_be16(&frag[20], net::kIpv4FlagMf);
  net::ipv4_set_checksum(&frag[14]);
  EXPECT_EQ(try_decap(frag), DropReason::kBadOuterPacket);
  auto arp = enc;
  store_be16(&arp[12], net::kEtherTypeArp);
  EXPECT_EQ(try_decap(arp), DropReason::kBadOuterPacket);
  auto tcp = enc;
  tcp[23] = 6;
  EXPECT_NE(try_decap(tcp), DropReason::kNone);
  auto sport = enc;  // receivers must not check the source port (§1)
  store_be16(&sport[34], 7);
  EXPECT_EQ(try_decap(sport), DropReason::kNone);
}

TEST_P(PspEncapTest, RefusalsLeaveTheFrameUnchanged) {
  const auto frame = testing::make_frame({IpFamily::kV6, 17, 40});
  const auto key128 = tx_key(0x80000007, PspVersion::kAesGcm128);
  net::Packet* pkt = testing::load(pool_, frame);
  auto p = params(Mode::kTunnel, PspVersion::kAesGmac128, false, 0);
  EXPECT_EQ(encap_frame(*pkt, p, *key128, *aead_).error(), DropReason::kBadVersion);
  p.version = PspVersion::kAesGcm256;  // key size mismatch
  EXPECT_EQ(encap_frame(*pkt, p, *key128, *aead_).error(), DropReason::kBadVersion);
  EXPECT_EQ(testing::contents(*pkt), frame);
  pkt->reset(10);  // too little headroom for IPv6 + UDP + PSP
  ASSERT_TRUE(pkt->assign(frame));
  p.version = PspVersion::kAesGcm128;
  EXPECT_EQ(encap_frame(*pkt, p, *key128, *aead_).error(), DropReason::kNoRoom);
  EXPECT_EQ(testing::contents(*pkt), frame);
  const std::vector<uint8_t> not_ip(60, 0);
  net::Packet* q = testing::load(pool_, not_ip);
  EXPECT_EQ(encap_frame(*q, p, *key128, *aead_).error(), DropReason::kBadInnerPacket);
}

TEST_P(PspEncapTest, UnknownAndStaleKeys) {
  const auto frame = testing::make_frame({IpFamily::kV4, 6, 40});
  KeyRing fresh(testing::master_key(testing::kK0));  // slot 1 empty
  KeyCache cache(*aead_, 4);
  cache.update(fresh.snapshot());
  const auto key = tx_key(0x80000007, PspVersion::kAesGcm128);
  net::Packet* pkt = testing::load(pool_, frame);
  ASSERT_TRUE(encap_frame(*pkt, params(Mode::kTunnel, PspVersion::kAesGcm128, false, 0), *key, *aead_).ok());
  // Slot 1 is empty: like a peer still sending with our previous incarnation's SPI.
  EXPECT_EQ(decap_frame(*pkt, cache, *aead_).error(), DropReason::kUnissuedSpi);
  EXPECT_EQ(cache.stats().unissued, 1u);
  EXPECT_EQ(cache.stats().misses, 0u);  // nothing derived
}

TEST_P(PspEncapTest, BatchesMixResultsWithOneAeadCall) {
  testing::CountingBackend counting(*aead_);
  net::PacketPool pool(80);
  net::PacketBatch batch;
  std::vector<SealJob> jobs;
  const auto k0 = tx_key(0x80000007, PspVersion::kAesGcm128);
  const auto k1 = tx_key(0x00000009, PspVersion::kAesGcm256);
  std::vector<std::vector<uint8_t>> frames;
  for (std::size_t i = 0; i < net::kMaxBatch; ++i) {
    frames.push_back(testing::make_frame({i % 2 ? IpFamily::kV4 : IpFamily::kV6, 17, i * 10}));
    batch.push(testing::load(pool, frames.back()));
    SealJob j{params(i % 3 ? Mode::kTunnel : Mode::kTransport, PspVersion::kAesGcm128, i % 4 == 0, 0),
              k0.get()};
    j.params.iv = i;
    if (i % 5 == 0) {
      j.params.spi = 9;
      j.params.version = PspVersion::kAesGcm256;
      j.key = k1.get();
    }
    if (i == 7) j.params.crypt_offset = 63;  // too large
    jobs.push_back(j);
  }
  std::array<DropReason, net::kMaxBatch> res{};
  encap_batch(batch, jobs, counting, res);
  EXPECT_EQ(counting.seal_calls, 1);
  for (std::size_t i = 0; i < batch.size(); ++i)
    EXPECT_EQ(res[i], i == 7 ? DropReason::kBadCryptOffset : DropReason::kNone) << i;
  batch[9]->bytes()[batch[9]->size() - 1] ^= 1;  // bad ICV
  batch[11]->trim_back(1);                       // truncated
  std::array<OpenInfo, net::kMaxBatch> infos{};
  decap_batch(batch, *cache_, counting, res, infos);
  EXPECT_EQ(counting.open_calls, 1);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const DropReason want = i == 9    ? DropReason::kAuthFailed
                            : i == 11 ? DropReason::kTooShort
                            : i == 7  ? DropReason::kBadHeader  // never sealed: plain UDP, not port 1000
                                      : DropReason::kNone;
    EXPECT_EQ(res[i], want) << i;
    if (want == DropReason::kNone) {
      EXPECT_EQ(testing::contents(*batch[i]), frames[i]) << i;
      EXPECT_EQ(infos[i].mode, i % 3 ? Mode::kTunnel : Mode::kTransport);
    }
  }
}

// The batch open asks the key cache ahead (KeyCache: entries, then keys) and a plain KeyResolver does not;
// either way each packet gets the same verdict and the same restored bytes, bad packets mixed in.
TEST_P(PspEncapTest, BatchOpenIsTheSameWithAndWithoutKeyPrefetch) {
  static_assert(detail::PrefetchingResolver<KeyCache>);
  static_assert(!detail::PrefetchingResolver<KeyResolver>);
  net::PacketPool pool(2 * net::kMaxBatch + 8);
  net::PacketBatch with, without;
  const auto k0 = tx_key(0x80000007, PspVersion::kAesGcm128);
  const auto k1 = tx_key(0x00000009, PspVersion::kAesGcm256);
  for (std::size_t i = 0; i < net::kMaxBatch; ++i) {
    const auto frame = testing::make_frame({i % 2 ? IpFamily::kV4 : IpFamily::kV6, 17, 30 + i});
    net::Packet* a = testing::load(pool, frame);
    SealParams p = params(Mode::kTunnel, PspVersion::kAesGcm128, i % 4 == 0, 0);
    p.iv = i + 1;
    const crypto::AeadKey* key = k0.get();
    if (i % 3 == 0) {
      p.spi = 9;
      p.version = PspVersion::kAesGcm256;
      key = k1.get();
    }
    ASSERT_TRUE(encap_frame(*a, p, *key, *aead_).ok());
    if (i == 5) a->bytes()[a->size() - 1] ^= 1;      // bad ICV
    if (i == 6) a->trim_back(a->size() - 20);        // not even the outer headers
    if (i == 8) a->bytes()[a->size() - 40] ^= 0x80;  // ciphertext bit
    with.push(a);
    without.push(testing::load(pool, testing::contents(*a)));
  }
  std::array<DropReason, net::kMaxBatch> res_with{}, res_without{};
  std::array<OpenInfo, net::kMaxBatch> infos_with{}, infos_without{};
  KeyCache big(*aead_, 2 * KeyCache::kPrefetchAbove);  // large enough to ask ahead
  big.update(ring_.snapshot());
  ASSERT_TRUE(big.prefetching());
  ASSERT_FALSE(cache_->prefetching());
  decap_batch(with, big, *aead_, res_with, infos_with);
  KeyResolver& plain = big;  // the same cache through the interface: no prefetch
  decap_batch(without, plain, *aead_, res_without, infos_without);
  std::size_t opened = 0;
  for (std::size_t i = 0; i < net::kMaxBatch; ++i) {
    EXPECT_EQ(res_with[i], res_without[i]) << i;
    EXPECT_EQ(testing::contents(*with[i]), testing::contents(*without[i])) << i;
    if (res_with[i] == DropReason::kNone) {
      ++opened;
      EXPECT_EQ(infos_with[i].mode, infos_without[i].mode) << i;
    }
  }
  EXPECT_NE(res_with[5], DropReason::kNone);
  EXPECT_NE(res_with[6], DropReason::kNone);
  EXPECT_NE(res_with[8], DropReason::kNone);
  EXPECT_GE(opened, net::kMaxBatch - 4);
}

std::string backend_label(const ::testing::TestParamInfo<const char*>& p) {
  return std::string(p.param) == "openssl" ? "openssl" : "ipsec_mb";
}
INSTANTIATE_TEST_SUITE_P(Backends, PspEncapTest, ::testing::Values("openssl", "ipsec-mb"), backend_label);

bool same_plan(const DecapPlan& a, const DecapPlan& b) {
  return a.l2_len == b.l2_len && a.l3_offset == b.l3_offset && a.udp_offset == b.udp_offset &&
         a.proto_offset == b.proto_offset && a.psp_offset == b.psp_offset && a.psp_len == b.psp_len &&
         a.outer_v4 == b.outer_v4;
}

// plan_decap tries the few-loads planner of the shapes senders write (detail::plan_common) before the general
// parser: where it accepts a frame, the general parser must accept it with the same plan; where it declines,
// plan_decap's verdict is the general parser's. Sealed frames of both outer families and modes, then every
// single-bit flip of their first 70 bytes (Ethernet, IP, UDP and the PSP header's start), every truncation,
// and a byte of Ethernet padding.
TEST_P(PspEncapTest, FastPlannerAgreesWithTheGeneralParser) {
  std::size_t fast = 0, checked = 0;
  const auto check = [&](std::span<const uint8_t> f) {
    DecapPlan quick, general;
    const bool took = detail::plan_common(f, quick);
    const DropReason g = steps::plan_decap_general(f, general);
    if (took) {
      ++fast;
      ASSERT_EQ(g, DropReason::kNone);
      EXPECT_TRUE(same_plan(quick, general));
    }
    DecapPlan p;
    EXPECT_EQ(steps::plan_decap(f, p), g);
    ++checked;
  };
  for (const IpFamily outer : {IpFamily::kV4, IpFamily::kV6}) {
    for (const Mode mode : {Mode::kTunnel, Mode::kTransport}) {
      const auto enc =
          sealed(testing::make_frame({outer, 17, 100}), params(mode, PspVersion::kAesGcm128, false, 1));
      ASSERT_FALSE(enc.empty());
      check(enc);
      for (std::size_t bit = 0; bit < 70 * 8; ++bit) {
        auto bad = enc;
        bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
        check(bad);
      }
      for (std::size_t n = 0; n < enc.size(); ++n) check(std::span<const uint8_t>(enc.data(), n));
      auto padded = enc;
      padded.push_back(0);
      check(padded);
    }
  }
  EXPECT_GT(fast, 400u);  // the fast planner took the sealed frames and the flips that keep their shape
  EXPECT_GT(checked, fast);
}

}  // namespace
}  // namespace pspgw::psp
