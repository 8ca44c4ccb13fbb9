// The fused segment seal (segment_seal.hpp) against the path it replaces: GsoSegmenter's segments, each
// encapsulated and sealed on its own (encap_tunnel + prepare_frame_seal) and reduced to the UDP payload.
// Bit for bit, for every PSP version, VC and crypt offset (including clear bytes that reach into the
// payload), inner and outer family, TCP and UDP super-packets, both AEAD backends. Also the samples of a
// super-packet (its encapsulated segments, unsealed) against the same reference.
#include "gateway/segment_seal.hpp"

#include <gtest/gtest.h>

#include <random>
#include <tuple>
#include <vector>

#include "gateway/outer.hpp"
#include "ports/gso.hpp"
#include "ports/port.hpp"
#include "ports/test_frames.hpp"

namespace pspgw::gateway {
namespace {

using Bytes = std::vector<uint8_t>;

struct Case {
  psp::PspVersion version;
  bool vc;
  uint8_t crypt_offset;  // 4-byte units: 0, inside the inner headers, past them into the payload
  bool inner_v6;
  bool outer_v6;
  uint8_t proto;
};

psp::OuterHeaders outer_of(bool v6) {
  psp::OuterHeaders o;
  o.local = *net::IpAddr::parse(v6 ? "2001:db8::1" : "192.0.2.1");
  o.peer = *net::IpAddr::parse(v6 ? "2001:db8::2" : "192.0.2.2");
  return o;
}

const psp::EthAddrs kEth =
    psp::eth_addrs(*net::MacAddr::parse("02:00:00:00:00:02"), *net::MacAddr::parse("02:00:00:00:00:01"));

class SegmentSealTest : public ::testing::TestWithParam<std::tuple<const char*, Case>> {
 protected:
  void SetUp() override {
    const auto& [backend, c] = GetParam();
    aead_ = crypto::make_backend(backend);
    if (!aead_) GTEST_SKIP() << backend << " unavailable";
    c_ = c;
    psp::SealParams p;
    p.version = c.version;
    p.spi = 0x80000011;
    p.crypt_offset = c.crypt_offset;
    p.has_vc = c.vc;
    p.vc = 0x0102030405060708;
    t_ = *psp::EncapTemplate::make(p, outer_of(c.outer_v6));
    const crypto::AeadAlg alg = *psp::aead_alg(static_cast<uint8_t>(c.version));
    Bytes key(crypto::key_size(alg));
    std::mt19937 rng(7);
    for (uint8_t& b : key) b = static_cast<uint8_t>(rng());
    key_ = aead_->make_key(alg, key);
  }

  // A super-packet of `payload` bytes: TCP with 12 bytes of options, or UDP.
  Bytes super_frame(uint32_t payload) const {
    ports::test::L4Spec s;
    s.v6 = c_.inner_v6;
    s.proto = c_.proto;
    s.payload = payload;
    s.tcp_options = c_.proto == net::kIpProtoTcp ? 12 : 0;
    s.tcp_flags = 0x18;  // PSH|ACK: PSH only on the last segment
    return ports::test::build_frame(s);
  }

  // The path before: GsoSegmenter's segments, each encap()ped, sealed and reduced to its UDP payload,
  // with IVs first_iv, first_iv + 1, ...
  std::vector<Bytes> reference(const Bytes& frame, uint16_t gso, uint64_t first_iv, bool seal) {
    auto seg = ports::GsoSegmenter::start(frame, gso);
    EXPECT_TRUE(seg.ok());
    std::vector<Bytes> out;
    uint64_t iv = first_iv;
    while (seg && !seg->done()) {
      net::PacketBatch b;
      EXPECT_TRUE(seg->next(pool_, b, net::Metadata{}).ok());
      for (net::Packet* p : b) {
        EXPECT_EQ(psp::encap_tunnel(*p, t_, kEth, iv++, 0x4321), psp::EncapError::kNone);
        if (seal) {
          crypto::AeadOp op;
          const psp::DropReason r = psp::prepare_frame_seal(*p, t_, *key_, op);
          if (r == psp::DropReason::kBadCryptOffset) {  // a segment shorter than the clear bytes: dropped
            pool_.free(p);
            continue;
          }
          EXPECT_EQ(r, psp::DropReason::kNone);
          aead_->seal({&op, 1});
          EXPECT_TRUE(op.ok);
          EXPECT_TRUE(unwrap_for_send(*p));
        }
        out.emplace_back(p->bytes().begin(), p->bytes().end());
        pool_.free(p);
      }
    }
    return out;
  }

  // encap() of the super-packet as the gateway's action runs it.
  net::Packet* encapped_super(const Bytes& frame, uint16_t gso, uint64_t iv) {
    net::Packet* sp = pool_.alloc();
    EXPECT_TRUE(sp->assign(frame));
    sp->meta.gso_size = gso;
    auto seg = ports::GsoSegmenter::start(sp->bytes(), gso);
    EXPECT_TRUE(seg.ok());
    const auto first = static_cast<uint32_t>(seg->header_len() - seg->l3_offset() + seg->payload(0).size());
    EXPECT_EQ(psp::encap_tunnel_gso(*sp, t_, kEth, iv, 0x4321, first), psp::EncapError::kNone);
    sp->meta.gso_encapped = true;
    return sp;
  }

  std::unique_ptr<crypto::AeadBackend> aead_;
  std::unique_ptr<crypto::AeadKey> key_;
  psp::EncapTemplate t_;
  Case c_{};
  net::PacketPool pool_{256, ports::kGsoRxBufferSize};
  AeadOps scratch_;
};

TEST_P(SegmentSealTest, SealsWhatSegmentingThenSealingWould) {
  for (const uint32_t payload : {1u, 1400u, 1401u, 20000u, 64000u}) {
    SCOPED_TRACE(::testing::Message() << "payload " << payload);
    const uint16_t gso = 1400;
    const Bytes frame = super_frame(payload);
    IvCounter iv(0);
    net::Packet* sp = encapped_super(frame, gso, iv.next());
    const uint64_t first_segment_iv = IvCounter(0).next() + 1;
    ASSERT_TRUE(unwrap_for_send(*sp));
    const net::IpAddr peer = sp->meta.peer;
    auto seal = SegmentSeal::start(*sp, t_, *key_, pool_.buffer_size());
    ASSERT_TRUE(seal.ok()) << psp::to_string(seal.error());
    std::vector<Bytes> got;
    for (int guard = 0; !seal->done() && guard < 100; ++guard) {
      net::PacketBatch b;
      seal->next(pool_, b, *aead_, iv, scratch_);
      for (net::Packet* p : b) {
        EXPECT_EQ(p->meta.peer, peer);
        EXPECT_EQ(p->meta.gso_size, 0);
        got.emplace_back(p->bytes().begin(), p->bytes().end());
        pool_.free(p);
      }
    }
    EXPECT_TRUE(seal->done());
    pool_.free(sp);
    const std::vector<Bytes> want = reference(frame, gso, first_segment_iv, true);
    EXPECT_EQ(seal->dropped(), seal->segment_count() - want.size());
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], want[i]) << "segment " << i;
  }
}

// A sample of a super-packet (EGR_SAMP mirrors it after encap(), before the seal) reaches the CPU as the
// frames its segments are before sealing: the reference's encapsulated segments, ICV room zeroed.
TEST_P(SegmentSealTest, SamplesAreTheEncapsulatedSegments) {
  const uint16_t gso = 1000;
  const Bytes frame = super_frame(5500);
  net::Packet* sp = encapped_super(frame, gso, 77);
  const uint32_t inner = encapped_inner_offset(sp->bytes());
  ASSERT_EQ(inner, t_.size());
  auto seg = ports::GsoSegmenter::start_at(sp->bytes(), static_cast<uint16_t>(inner), gso);
  ASSERT_TRUE(seg.ok());
  std::vector<Bytes> got;
  while (!seg->done()) {
    net::PacketBatch b;
    ASSERT_TRUE(seg->next(pool_, b, sp->meta).ok());
    for (net::Packet* p : b) {
      ASSERT_TRUE(finish_encapped_segment(*p));
      got.emplace_back(p->bytes().begin(), p->bytes().end());
      pool_.free(p);
    }
  }
  pool_.free(sp);
  const std::vector<Bytes> want = reference(frame, gso, 77, false);
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].size(), want[i].size());
    // The IV: one per super-packet here, one per segment there; the ICV room: zero here, unwritten there.
    const std::size_t iv_at = t_.psp_offset() + 8;
    Bytes a = got[i], b = want[i];
    std::fill_n(a.begin() + static_cast<std::ptrdiff_t>(iv_at), 8, 0);
    std::fill_n(b.begin() + static_cast<std::ptrdiff_t>(iv_at), 8, 0);
    a.resize(a.size() - psp::kPspIcvSize);
    b.resize(b.size() - psp::kPspIcvSize);
    EXPECT_EQ(a, b) << "segment " << i;
  }
}

TEST_P(SegmentSealTest, RefusesWhatItCannotSeal) {
  const Bytes frame = super_frame(3000);
  net::Packet* sp = encapped_super(frame, 1400, 1);
  ASSERT_TRUE(unwrap_for_send(*sp));
  // A re-key to an SA of another shape (another crypt offset) since encap(): its header is not this one's.
  psp::SealParams other;
  other.version = c_.version;
  other.spi = 0x80000012;
  other.crypt_offset = static_cast<uint8_t>(c_.crypt_offset + 1);
  other.has_vc = c_.vc;
  other.vc = 0x0102030405060708;
  const auto t2 = *psp::EncapTemplate::make(other, outer_of(c_.outer_v6));
  auto s = SegmentSeal::start(*sp, t2, *key_, pool_.buffer_size());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error(), psp::DropReason::kBadHeader);
  // Segments larger than the pool's buffers.
  s = SegmentSeal::start(*sp, t_, *key_, 1500);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error(), psp::DropReason::kNoRoom);
  // Not a super-packet inside (the inner IP header's version nibble broken).
  sp->data()[t_.psp_header_size()] = 0x00;
  s = SegmentSeal::start(*sp, t_, *key_, pool_.buffer_size());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error(), psp::DropReason::kBadInnerPacket);
  pool_.free(sp);
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (auto v : {psp::PspVersion::kAesGcm128, psp::PspVersion::kAesGcm256, psp::PspVersion::kAesGmac128,
                 psp::PspVersion::kAesGmac256}) {
    for (const bool vc : {false, true}) {
      for (const uint8_t off : {uint8_t{0}, uint8_t{3}, uint8_t{20}}) {  // 0, 12 B, 80 B (into the payload)
        out.push_back({v, vc, off, false, true, net::kIpProtoTcp});
      }
    }
  }
  for (const bool inner_v6 : {false, true}) {
    for (const bool outer_v6 : {false, true}) {
      for (const uint8_t proto : {net::kIpProtoTcp, net::kIpProtoUdp}) {
        if (!inner_v6 && outer_v6 && proto == net::kIpProtoTcp) continue;  // in the loop above
        out.push_back({psp::PspVersion::kAesGcm256, false, 0, inner_v6, outer_v6, proto});
      }
    }
  }
  return out;
}

std::string case_name(const ::testing::TestParamInfo<std::tuple<const char*, Case>>& info) {
  const auto& [backend, c] = info.param;
  std::string s = std::string(backend) == "ipsec-mb" ? "imb" : backend;
  s += "_v" + std::to_string(static_cast<int>(c.version)) + (c.vc ? "_vc" : "") + "_off" +
       std::to_string(c.crypt_offset) + (c.inner_v6 ? "_i6" : "_i4") + (c.outer_v6 ? "_o6" : "_o4") +
       (c.proto == net::kIpProtoTcp ? "_tcp" : "_udp");
  return s;
}

INSTANTIATE_TEST_SUITE_P(All, SegmentSealTest,
                         ::testing::Combine(::testing::Values("ipsec-mb", "openssl"),
                                            ::testing::ValuesIn(cases())),
                         case_name);

}  // namespace
}  // namespace pspgw::gateway
