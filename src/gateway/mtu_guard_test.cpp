// The tunnel's payload MTU (path_mtu.hpp) and the worker's check against it (mtu_guard.hpp).
#include "gateway/mtu_guard.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "gateway/path_mtu.hpp"
#include "gateway/test_frames.hpp"
#include "net/headers.hpp"
#include "net/icmp_too_big.hpp"

namespace pspgw::gateway {
namespace {

using test::ip;

TEST(PathMtu, OverheadPerModeFamilyAndVc) {
  // Tunnel: outer IP + UDP 8 + PSP header 16 (+ VC 8) + ICV 16.
  EXPECT_EQ(psp_overhead(psp::Mode::kTunnel, net::IpFamily::kV4, false), 60u);
  EXPECT_EQ(psp_overhead(psp::Mode::kTunnel, net::IpFamily::kV4, true), 68u);
  EXPECT_EQ(psp_overhead(psp::Mode::kTunnel, net::IpFamily::kV6, false), 80u);
  EXPECT_EQ(psp_overhead(psp::Mode::kTunnel, net::IpFamily::kV6, true), 88u);
  // Transport: the packet's own IP header becomes the outer one.
  EXPECT_EQ(psp_overhead(psp::Mode::kTransport, net::IpFamily::kV6, false), 40u);
  EXPECT_EQ(psp_overhead(psp::Mode::kTransport, net::IpFamily::kV4, true), 48u);
  EXPECT_EQ(tunnel_payload_mtu(1500, psp::Mode::kTunnel, net::IpFamily::kV6, false), 1420u);
  EXPECT_EQ(tunnel_payload_mtu(50, psp::Mode::kTunnel, net::IpFamily::kV6, false), 0u);
}

TEST(PathMtu, LoopbackIsFoundAndAnAddressNoInterfaceHoldsIsNot) {
  EXPECT_GE(interface_mtu_of(ip("127.0.0.1")).value_or(0), 1500u);
  EXPECT_FALSE(interface_mtu_of(ip("192.0.2.77")).has_value());
}

struct Frames {
  net::PacketPool pool{16, 70000};
  net::Packet* load(const std::vector<uint8_t>& bytes, uint16_t gso_size = 0) {
    net::Packet* p = pool.alloc();
    EXPECT_TRUE(p->assign(bytes));
    p->meta.gso_size = gso_size;
    return p;
  }
};

std::vector<uint8_t> udp(uint32_t ip_len, uint16_t frag, const char* src = "10.0.0.1",
                         const char* dst = "10.0.0.2") {
  test::UdpSpec s;
  s.src = ip(src);
  s.dst = ip(dst);
  const uint32_t hdrs = s.src.is_v4() ? 28 : 48;
  s.payload.assign(ip_len - hdrs, 0x11);
  s.ipv4_frag = frag;
  return test::udp_frame(s);
}

struct Outcome {
  net::PacketBatch kept, replies, frags;
  int flushes = 0;
};

Outcome apply(MtuGuard& g, Frames& f, const std::vector<net::Packet*>& in) {
  Outcome r;
  for (net::Packet* p : in) r.kept.push(p);
  g.apply(r.kept, f.pool, r.replies, r.frags, [&r](net::PacketBatch&) { ++r.flushes; });
  return r;
}

TEST(MtuGuard, FittingFramesStayTooBigOnesAreAnsweredOrFragmented) {
  Frames f;
  MtuGuard g(1420);
  net::Packet* fits = f.load(udp(1420, net::kIpv4FlagDf));
  net::Packet* df = f.load(udp(1421, net::kIpv4FlagDf));
  net::Packet* v6 = f.load(udp(1500, 0, "fd00::1", "fd00::2"));
  net::Packet* no_df = f.load(udp(1500, 0));
  const Outcome r = apply(g, f, {fits, df, v6, no_df});
  ASSERT_EQ(r.kept.size(), 1u);
  EXPECT_EQ(r.kept[0], fits);
  ASSERT_EQ(r.replies.size(), 2u);
  EXPECT_EQ(r.replies[0]->data()[14 + 20], net::kIcmpDestUnreachable);
  EXPECT_EQ(r.replies[1]->data()[14 + 40], net::kIcmpv6PacketTooBig);
  EXPECT_EQ(load_be32(r.replies[1]->data() + 14 + 44), 1420u);
  EXPECT_EQ(r.frags.size(), 2u);
  EXPECT_EQ(g.counters().icmp_sent, 2u);
  EXPECT_EQ(g.counters().fragmented, 1u);
}

// A super-packet from the TAP (TSO) is judged by its segments (gso_size), never by its own length.
TEST(MtuGuard, GsoSizeDecidesNotTheSuperPacketsLength) {
  Frames f;
  MtuGuard g(1420);
  net::Packet* ok = f.load(udp(9000, net::kIpv4FlagDf), 1392);   // 28 + 1392 = 1420 per segment
  net::Packet* big = f.load(udp(9000, net::kIpv4FlagDf), 1400);  // 1428 per segment
  const Outcome r = apply(g, f, {ok, big});
  ASSERT_EQ(r.kept.size(), 1u);
  EXPECT_EQ(r.kept[0], ok);
  ASSERT_EQ(r.replies.size(), 1u);
  EXPECT_EQ(r.replies[0]->meta.gso_size, 0) << "the error is a plain frame";
}

TEST(MtuGuard, IcmpIsRateLimitedAndUnanswerableOnesAreCounted) {
  Frames f;
  MtuGuard g(576);
  const auto big = udp(600, net::kIpv4FlagDf);
  const auto start = std::chrono::steady_clock::now();
  for (uint32_t i = 0; i < MtuGuard::kIcmpBurst + 5; ++i) {
    Outcome r = apply(g, f, {f.load(big)});
    for (net::Packet* p : r.replies) f.pool.free(p);
  }
  // Beyond the burst, only the tokens the refill rate gave back while the loop ran (a sanitized build on a
  // busy machine runs it for milliseconds); every frame is answered or counted.
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  const auto refilled = static_cast<uint64_t>(ms * MtuGuard::kIcmpPerSecond / 1000) + 1;
  EXPECT_GE(g.counters().icmp_sent, MtuGuard::kIcmpBurst);
  EXPECT_LE(g.counters().icmp_sent, MtuGuard::kIcmpBurst + refilled);
  EXPECT_EQ(g.counters().icmp_sent + g.counters().rate_limited, MtuGuard::kIcmpBurst + 5);
  MtuGuard fresh(576);
  const Outcome r = apply(fresh, f, {f.load(udp(600, net::kIpv4FlagDf, "10.0.0.1", "224.0.0.5"))});
  EXPECT_TRUE(r.kept.empty());
  EXPECT_TRUE(r.replies.empty());
  EXPECT_EQ(fresh.counters().dropped, 1u);
  EXPECT_EQ(f.pool.available(), f.pool.capacity()) << "every frame taken went back to the pool";
}

TEST(MtuGuard, FragmentsBeyondTheBatchAreFlushedFirst) {
  net::PacketPool pool{200, 8192};
  MtuGuard g(576);
  Outcome r;
  for (int i = 0; i < 10; ++i) {
    net::Packet* p = pool.alloc();
    ASSERT_TRUE(p->assign(udp(4000, 0)));  // 8 fragments of 552 payload bytes each at 576
    r.kept.push(p);
  }
  std::size_t flushed = 0;
  g.apply(r.kept, pool, r.replies, r.frags, [&](net::PacketBatch& b) { flushed += b.size(); });
  EXPECT_GT(flushed, 0u) << "80 fragments do not fit one batch";
  EXPECT_EQ(flushed + r.frags.size(), 80u);
  EXPECT_EQ(g.counters().fragmented, 10u);
}

TEST(MtuGuard, ZeroTurnsTheCheckOff) {
  Frames f;
  MtuGuard g(0);
  const Outcome r = apply(g, f, {f.load(udp(9000, net::kIpv4FlagDf))});
  EXPECT_EQ(r.kept.size(), 1u);
}

}  // namespace
}  // namespace pspgw::gateway
