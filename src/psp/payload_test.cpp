#include <gtest/gtest.h>

#include <vector>

#include "psp/batch.hpp"
#include "psp/payload.hpp"
#include "psp/test_util.hpp"

namespace pspgw::psp {
namespace {

using net::IpFamily;

class PspPayloadTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    aead_ = crypto::make_backend(GetParam());
    if (!aead_) GTEST_SKIP() << GetParam() << " unavailable";
    keys_ = std::make_unique<testing::FixedResolver>(*aead_, std::vector<uint8_t>(16, 7),
                                                     std::vector<uint8_t>(32, 9));
  }
  static SealParams params(PspVersion v, bool vc, uint8_t off) {
    SealParams p;
    p.version = v;
    p.spi = 0x44;
    p.iv = 3;
    p.has_vc = vc;
    p.crypt_offset = off;
    return p;
  }
  std::unique_ptr<crypto::AeadBackend> aead_;
  std::unique_ptr<testing::FixedResolver> keys_;
  net::PacketPool pool_{4};
};

TEST_P(PspPayloadTest, TunnelAndTransportRoundTrip) {
  for (IpFamily fam : {IpFamily::kV4, IpFamily::kV6}) {
    for (PspVersion v : {PspVersion::kAesGcm128, PspVersion::kAesGcm256}) {
      for (bool vc : {false, true}) {
        for (uint8_t off : {0, 1, 5, 10, 63}) {
          for (std::size_t payload : {std::size_t{0}, std::size_t{300}}) {
            const auto ip = testing::make_ip_packet({fam, 6, payload});
            const bool fits = off * 4u <= ip.size() + (vc ? 8 : 0);
            net::Packet* pkt = testing::load(pool_, ip);
            auto s = seal_tunnel_payload(*pkt, params(v, vc, off), keys_->key(v), *aead_);
            ASSERT_EQ(s.ok(), fits);
            if (fits) {
              EXPECT_EQ(pkt->size(), ip.size() + 16 + (vc ? 8 : 0) + 16);
              EXPECT_EQ(pkt->bytes()[0], fam == IpFamily::kV4 ? 4 : 41);
              auto r = open_payload(*pkt, *keys_, *aead_);
              ASSERT_TRUE(r.ok()) << to_string(r.error());
              EXPECT_EQ(r->mode, Mode::kTunnel);
              EXPECT_EQ(testing::contents(*pkt), ip);
            } else {
              EXPECT_EQ(s.error(), DropReason::kBadCryptOffset);
              EXPECT_EQ(testing::contents(*pkt), ip);
            }
            pool_.free(pkt);
            // Transport: the L4 segment alone.
            const std::vector<uint8_t> seg(ip.begin() + (fam == IpFamily::kV4 ? 20 : 40), ip.end());
            pkt = testing::load(pool_, seg);
            s = seal_transport_payload(*pkt, 6, params(v, vc, off), keys_->key(v), *aead_);
            if (s.ok()) {
              auto r = open_payload(*pkt, *keys_, *aead_);
              ASSERT_TRUE(r.ok()) << to_string(r.error());
              EXPECT_EQ(r->mode, Mode::kTransport);
              EXPECT_EQ(r->header.next_header, 6);
              EXPECT_EQ(testing::contents(*pkt), seg);
            } else {
              EXPECT_EQ(s.error(), DropReason::kBadCryptOffset);
              EXPECT_GT(off * 4u, seg.size() + (vc ? 8 : 0));
            }
            pool_.free(pkt);
          }
        }
      }
    }
  }
}

TEST_P(PspPayloadTest, TunnelRefusesNonIpAndChecksTheInnerPacket) {
  const std::vector<uint8_t> junk(40, 0x11);
  net::Packet* pkt = testing::load(pool_, junk);
  EXPECT_EQ(seal_tunnel_payload(*pkt, params(PspVersion::kAesGcm128, false, 0),
                                keys_->key(PspVersion::kAesGcm128), *aead_)
                .error(),
            DropReason::kBadInnerPacket);
  // Authenticated, but Next Header 4 over bytes that are not an IPv4 packet.
  ASSERT_TRUE(seal_transport_payload(*pkt, 4, params(PspVersion::kAesGcm128, false, 0),
                                     keys_->key(PspVersion::kAesGcm128), *aead_)
                  .ok());
  EXPECT_EQ(open_payload(*pkt, *keys_, *aead_).error(), DropReason::kBadInnerPacket);
}

TEST_P(PspPayloadTest, BatchOfMixedPacketsUsesOneCallEachWay) {
  testing::CountingBackend counting(*aead_);
  net::PacketPool pool(net::kMaxBatch);
  net::PacketBatch batch;
  std::vector<SealJob> jobs;
  std::vector<std::vector<uint8_t>> ips;
  for (std::size_t i = 0; i < net::kMaxBatch; ++i) {
    ips.push_back(testing::make_ip_packet({i % 2 ? IpFamily::kV4 : IpFamily::kV6, 17, i * 20}));
    batch.push(testing::load(pool, ips.back()));
    const PspVersion v = i % 3 ? PspVersion::kAesGcm128 : PspVersion::kAesGcm256;
    SealJob j{params(v, i % 4 == 0, 1), &keys_->key(v)};
    j.params.iv = i;
    if (i == 5) j.key = nullptr;
    jobs.push_back(j);
  }
  std::array<DropReason, net::kMaxBatch> res{};
  seal_payload_batch(batch, jobs, counting, res);
  EXPECT_EQ(counting.seal_calls, 1);
  EXPECT_EQ(counting.ops_seen, net::kMaxBatch - 1);
  for (std::size_t i = 0; i < batch.size(); ++i)
    EXPECT_EQ(res[i], i == 5 ? DropReason::kUnknownKey : DropReason::kNone);
  batch[6]->bytes()[20] ^= 0x80;  // ciphertext
  batch[8]->bytes()[3] ^= 0x20;   // version 8
  std::array<OpenInfo, net::kMaxBatch> infos{};
  open_payload_batch(batch, *keys_, counting, res, infos);
  EXPECT_EQ(counting.open_calls, 1);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const DropReason want = i == 6   ? DropReason::kAuthFailed
                            : i == 8 ? DropReason::kBadVersion
                            : i == 5 ? DropReason::kBadHeader  // never sealed: an IP packet is no PSP header
                                     : DropReason::kNone;
    EXPECT_EQ(res[i], want) << i;
    if (want == DropReason::kNone) {
      EXPECT_EQ(testing::contents(*batch[i]), ips[i]) << i;
    }
  }
}

std::string backend_label(const ::testing::TestParamInfo<const char*>& p) {
  return std::string(p.param) == "openssl" ? "openssl" : "ipsec_mb";
}
INSTANTIATE_TEST_SUITE_P(Backends, PspPayloadTest, ::testing::Values("openssl", "ipsec-mb"), backend_label);

}  // namespace
}  // namespace pspgw::psp
