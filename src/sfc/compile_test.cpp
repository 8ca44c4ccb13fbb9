// Compiled classifier matches in a real Pipeline: packets that satisfy the match hit, others miss,
// at every range boundary, for IPv4 and IPv6; ARP never hits, not even the empty match.
#include <gtest/gtest.h>

#include "flow/builder.hpp"
#include "flow/testing.hpp"
#include "sfc/compile.hpp"

namespace pspgw::sfc {
namespace {

using flow::testing::FrameSpec;

struct Compiled : ::testing::Test {
  net::PacketPool pool{256, 2048};
  flow::testing::CollectSink sink{pool};
  std::unique_ptr<flow::Pipeline> pl;
  flow::PipeId id{};

  void load(const std::string& text) {
    auto r = flow::PipelineBuilder{}
                 .add_pipe({.name = "SFC_CLS",
                            .lookup = flow::LookupKind::kTernary,
                            .match = classifier_template(),
                            .fwd = flow::TargetRef::port(PortId(1)),
                            .miss = flow::TargetRef::port(PortId(2)),
                            .max_entries = 4096})
                 .build();
    ASSERT_TRUE(r.ok());
    pl = std::move(r).value();
    id = *pl->find_pipe("SFC_CLS");
    auto m = parse_match(text);
    ASSERT_TRUE(m.ok()) << m.error().to_string();
    auto entries = compile(*m);
    ASSERT_TRUE(entries.ok());
    for (const auto& e : *entries) {
      auto h = pl->add_entry(id, {.match = e});
      ASSERT_TRUE(h.ok()) << text << ": " << flow::to_string(h.error());
    }
  }
  bool hit(const std::vector<uint8_t>& frame) {
    auto w = pl->attach_worker();
    auto b = flow::testing::make_batch(pool, {frame});
    (*w)->process(b, sink);
    const bool h = sink.out.at(0).target == flow::Target{flow::TargetKind::kPort, 1};
    sink.clear();
    return h;
  }
  bool hit(const char* src, const char* dst, uint8_t proto, uint16_t sport, uint16_t dport) {
    FrameSpec f;
    f.src = *net::IpAddr::parse(src);
    f.dst = *net::IpAddr::parse(dst);
    f.proto = proto;
    f.sport = sport;
    f.dport = dport;
    return hit(flow::testing::frame(f));
  }
};

TEST_F(Compiled, EmptyMatchIsAllIpNeverArp) {
  load("");
  EXPECT_TRUE(hit("10.0.0.1", "10.0.0.2", 6, 1, 2));
  EXPECT_TRUE(hit("fd00::1", "fd00::2", 17, 1, 2));
  EXPECT_FALSE(hit(flow::testing::arp_frame()));
}

TEST_F(Compiled, Ipv4TcpPortRange) {
  load("ip4 && ip4.dst == 10.1.0.0/16 && tcp.dst >= 5000 && tcp.dst <= 5100");
  for (uint16_t p : {5000, 5001, 5099, 5100}) EXPECT_TRUE(hit("10.0.0.1", "10.1.9.9", 6, 1, p)) << p;
  for (uint16_t p : {0, 4999, 5101, 65535}) EXPECT_FALSE(hit("10.0.0.1", "10.1.9.9", 6, 1, p)) << p;
  EXPECT_FALSE(hit("10.0.0.1", "10.2.9.9", 6, 1, 5000));
  EXPECT_FALSE(hit("10.0.0.1", "10.1.9.9", 17, 1, 5000));
  EXPECT_FALSE(hit("fd00::1", "fd00::2", 6, 1, 5000));
}

TEST_F(Compiled, Ipv6UdpAndNotEqual) {
  load("ip6.src == fd00::/64 && udp.dst != 53");
  EXPECT_TRUE(hit("fd00::1", "fd01::1", 17, 1, 52));
  EXPECT_TRUE(hit("fd00::1", "fd01::1", 17, 1, 54));
  EXPECT_TRUE(hit("fd00::ffff", "fd01::1", 17, 1, 0));
  EXPECT_TRUE(hit("fd00::ffff", "fd01::1", 17, 1, 65535));
  EXPECT_FALSE(hit("fd00::1", "fd01::1", 17, 1, 53));
  EXPECT_FALSE(hit("fd00:0:0:1::1", "fd01::1", 17, 1, 52));
  EXPECT_FALSE(hit("10.0.0.1", "10.0.0.2", 17, 1, 52));
}

TEST_F(Compiled, ProtocolWithoutFamilyCoversBoth) {
  load("tcp.src < 1024 || udp");
  EXPECT_TRUE(hit("10.0.0.1", "10.0.0.2", 6, 1023, 9));
  EXPECT_FALSE(hit("10.0.0.1", "10.0.0.2", 6, 1024, 9));
  EXPECT_TRUE(hit("fd00::1", "fd00::2", 6, 0, 9));
  EXPECT_TRUE(hit("fd00::1", "fd00::2", 17, 40000, 9));
}

TEST(Compile, EntryBudget) {
  auto m = parse_match("tcp.src >= 1 && tcp.src <= 65534 && tcp.dst >= 1 && tcp.dst <= 65534");
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(compile(*m).ok());
  auto one = parse_match("tcp.dst >= 1 && tcp.dst <= 65534");
  ASSERT_TRUE(one.ok());
  auto e = compile(*one);
  ASSERT_TRUE(e.ok());
  EXPECT_LE(e->size(), 2U * 120U);
}

}  // namespace
}  // namespace pspgw::sfc
