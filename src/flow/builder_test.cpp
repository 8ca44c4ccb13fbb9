// Every seed diagram expressed with the builder (stub PSP actions), packets walked through them, and the
// graph errors the builder must reject.
#include <gtest/gtest.h>

#include "flow/builder.hpp"
#include "flow/testing.hpp"

namespace pspgw::flow {
namespace {

using testing::CollectSink;
using testing::make_batch;

net::IpAddr ip(const char* s) {
  return *net::IpAddr::parse(s);
}
constexpr PortId kUplink{0};  // p0
constexpr PortId kVf{1};      // pf0vf0
constexpr uint16_t kRssMiss = 1, kRssSample = 2, kRssException = 3;

// Stands in for src/psp's actions: counts packets; "decrypt()" also sets the syndrome to OK (1).
class StubAction final : public BatchAction {
 public:
  explicit StubAction(std::string n) : name_(std::move(n)) {}
  void apply(std::span<net::Packet* const> pkts, std::span<const uint64_t>, const ActionContext&) override {
    packets += pkts.size();
    if (name_ == "decrypt()")
      for (net::Packet* p : pkts) p->meta.syndrome = 1;
  }
  std::string name() const override { return name_; }
  std::size_t packets = 0;

 private:
  std::string name_;
};
std::shared_ptr<StubAction> stub(const char* n) {
  return std::make_shared<StubAction>(n);
}

// ROOT: classification (seeds 001-003): VF IPv4 -> EGR_ACL, VF ARP / DHCP -> RSS, uplink PSP -> PSP_DECRYPT,
// anything else -> kernel (isolated mode).
void add_root(PipelineBuilder& b) {
  b.add_pipe({.name = "ROOT",
              .lookup = LookupKind::kTernary,
              .match = {match(Field::kInPort), match(Field::kEtherType), match(Field::kIpProto),
                        match(Field::kL4Dst)},
              .miss = TargetRef::kernel(),
              .max_entries = 8});
  b.add_entry("ROOT", {.match = {eq(Field::kInPort, 1), eq(Field::kEtherType, 0x0800)},
                       .fwd = TargetRef::pipe("EGR_ACL"),
                       .priority = 10});
  b.add_entry("ROOT", {.match = {eq(Field::kInPort, 1), eq(Field::kEtherType, 0x0806)},
                       .fwd = TargetRef::cpu(kRssException),
                       .priority = 1});
  b.add_entry("ROOT", {.match = {eq(Field::kInPort, 1), eq(Field::kEtherType, 0x0800),
                                 eq(Field::kIpProto, 17), eq(Field::kL4Dst, 67)},
                       .fwd = TargetRef::cpu(kRssException),
                       .priority = 1});
  b.add_entry("ROOT", {.match = {eq(Field::kInPort, 0), eq(Field::kEtherType, 0x86dd),
                                 eq(Field::kIpProto, 17), eq(Field::kL4Dst, 1000)},
                       .fwd = TargetRef::pipe("PSP_DECRYPT"),
                       .priority = 1});
}

// H2N (seed 001 without sampling: EGR_ACL encaps and encrypts; seed 002 with: EGR_SAMP, PSP_ENCRYPT).
PipelineBuilder h2n(bool sampling) {
  PipelineBuilder b;
  b.alias(Field::kUdpPayload0, 0x80, "psp.S");
  add_root(b);
  b.add_pipe(
      {.name = "PSP_DECRYPT", .fwd = TargetRef::drop(), .miss = TargetRef::drop()});  // N2H half: unused
  if (!sampling) {
    b.add_pipe({.name = "EGR_ACL",
                .match = {match(Field::kIpv4Dst)},
                .actions = {ActionSpec::call(stub("encap()")), ActionSpec::call(stub("encrypt()"), true)},
                .fwd = TargetRef::port(kUplink),
                .miss = TargetRef::drop()});
    return b;
  }
  b.add_pipe({.name = "EGR_ACL",
              .match = {match(Field::kIpv4Dst)},
              .actions = {ActionSpec::call(stub("encap()")),
                          ActionSpec::set_meta_from_entry(Field::kPktMeta, "crypto_id")},
              .fwd = TargetRef::pipe("EGR_SAMP"),
              .miss = TargetRef::cpu(kRssMiss)});
  b.add_pipe({.name = "EGR_SAMP",
              .match = {match(Field::kRandom, 0xffff)},
              .actions = {ActionSpec::set_bits(Field::kUdpPayload0, 0x80, 0x80)},
              .fwd = TargetRef::pipe("PSP_ENCRYPT"),
              .miss = TargetRef::pipe("PSP_ENCRYPT"),
              .mirror = TargetRef::cpu(kRssSample)});
  b.add_entry("EGR_SAMP", {.match = {eq(Field::kRandom, 1)}});
  b.add_pipe({.name = "PSP_ENCRYPT",
              .match = {match(Field::kPktMeta)},
              .actions = {ActionSpec::call(stub("encrypt()"), true)},
              .fwd = TargetRef::port(kUplink),
              .miss = TargetRef::drop()});
  return b;
}

// N2H (seed 003, with and without INGR_SAMP).
PipelineBuilder n2h(bool sampling) {
  PipelineBuilder b;
  b.inner_locator(std::make_shared<UdpTunnelLocator>(1000, 16, 3, 0x02, 8));
  b.alias(Field::kUdpPayload0, 0x80, "psp.S").alias(Field::kUdpPayload4, 0xffffffff, "psp.spi");
  add_root(b);
  b.add_pipe({.name = "EGR_ACL", .fwd = TargetRef::drop(), .miss = TargetRef::drop()});  // H2N half: unused
  b.add_pipe({.name = "PSP_DECRYPT",
              .actions = {ActionSpec::call(stub("decrypt()"))},
              .fwd = TargetRef::pipe(sampling ? "INGR_SAMP" : "INGR_ACL"),
              .miss = TargetRef::drop()});
  b.add_entry("PSP_DECRYPT", {});
  if (sampling) {
    b.add_pipe({.name = "INGR_SAMP",
                .match = {match(Field::kUdpPayload0, 0x80)},
                .fwd = TargetRef::pipe("INGR_ACL"),
                .miss = TargetRef::pipe("INGR_ACL"),
                .mirror = TargetRef::cpu(kRssSample)});
    b.add_entry("INGR_SAMP", {.match = {eq(Field::kUdpPayload0, 0x80)}});
  }
  b.add_pipe({.name = "INGR_ACL",
              .match = {match(Field::kSyndrome), match(Field::kUdpPayload4), match(Field::kInnerIpv4Src)},
              .actions = {ActionSpec::call(stub("decap()"))},
              .fwd = TargetRef::port(kVf),
              .miss = TargetRef::pipe("SYND_STATS")});
  b.add_pipe({.name = "SYND_STATS",
              .match = {match(Field::kSyndrome)},
              .fwd = TargetRef::drop(),
              .miss = TargetRef::drop()});
  b.add_entry("SYND_STATS", {.match = {eq(Field::kSyndrome, 1)}, .fwd = TargetRef::drop(7)});
  return b;
}

struct Seeds : ::testing::Test {
  net::PacketPool pool{256, 2048};
  CollectSink sink{pool};
};

TEST_F(Seeds, H2NWithoutSamplingEncryptsKnownDestinationsDropsTheRest) {
  auto pl = std::move(h2n(false).build()).value();
  const PipeId acl = *pl->find_pipe("EGR_ACL");
  ASSERT_TRUE(pl->add_entry(acl, {.match = {eq(Field::kIpv4Dst, ip("10.0.0.2"))}, .args = {11}}).ok());
  auto w = std::move(pl->attach_worker({.pool = &pool})).value();
  testing::FrameSpec known, unknown;
  unknown.dst = ip("10.9.9.9");
  auto b = make_batch(pool, {testing::frame(known), testing::frame(unknown), testing::arp_frame()}, 1);
  w->process(b, sink);
  EXPECT_EQ(sink.count({TargetKind::kPort, kUplink.value()}), 1U);
  EXPECT_EQ(sink.count({TargetKind::kDrop, kDropByRule}), 1U);
  EXPECT_EQ(sink.count({TargetKind::kCpu, kRssException}), 1U);
  const std::string m = pl->to_mermaid();
  EXPECT_NE(m.find("EGR_ACL[\"EGR_ACL\n    M:ipv4.dst\n    A:encap(),\n    encrypt()\"]"), std::string::npos)
      << m;
  EXPECT_NE(m.find("ROOT-->|\"M:port=1,\n    ipv4\n    n=2\"|EGR_ACL"), std::string::npos) << m;
  EXPECT_NE(m.find("EGR_ACL-.->|\"miss\n    n=1\"|drop"), std::string::npos) << m;
}

TEST_F(Seeds, H2NWithSamplingMissesToTheSlowPathAndResubmitsAtEgrAcl) {
  auto pl = std::move(h2n(true).build()).value();
  const PipeId acl = *pl->find_pipe("EGR_ACL"), enc = *pl->find_pipe("PSP_ENCRYPT");
  auto w = std::move(pl->attach_worker({.pool = &pool})).value();
  testing::FrameSpec s;
  auto b = make_batch(pool, {testing::frame(s)}, 1);
  w->process(b, sink);
  ASSERT_EQ(sink.count({TargetKind::kCpu, kRssMiss}), 1U);  // the RSS miss handler holds it...
  net::Packet* held = sink.out[0].pkt;
  sink.out.clear();
  // ...runs the key exchange, programs the flows, and resubmits at EGR_ACL.
  ASSERT_TRUE(pl->add_entry(acl, {.match = {eq(Field::kIpv4Dst, s.dst)}, .args = {3}}).ok());
  ASSERT_TRUE(pl->add_entry(enc, {.match = {eq(Field::kPktMeta, 3)}, .args = {0x5a}}).ok());
  net::PacketBatch again;
  again.push(held);
  w->process(again, acl, sink);
  ASSERT_EQ(sink.count({TargetKind::kPort, kUplink.value()}), 1U);
  EXPECT_EQ(sink.out[0].pkt->meta.pkt_meta, 3U);
  const auto samp = *pl->pipe_stats(*pl->find_pipe("EGR_SAMP"));
  EXPECT_EQ(samp.hits + samp.misses, 1U);
  const std::string m = pl->to_mermaid();
  EXPECT_NE(m.find("EGR_SAMP[\"EGR_SAMP\n    M:rand()&0xffff\n    A:psp.S=1\"]"), std::string::npos) << m;
  EXPECT_NE(m.find("EGR_SAMP-->|\"mirror\n    n=0\"|RSS2"), std::string::npos) << m;
  EXPECT_NE(m.find("EGR_SAMP-.->|\"miss\n    n="), std::string::npos) << m;
  EXPECT_NE(m.find("A:encap(),\n    pkt_meta=crypto_id"), std::string::npos) << m;
}

TEST_F(Seeds, N2HWithAndWithoutSamplingDeliversAuthenticPacketsAndCountsTheRest) {
  for (bool sampling : {false, true}) {
    auto pl = std::move(n2h(sampling).build()).value();
    const PipeId acl = *pl->find_pipe("INGR_ACL");
    ASSERT_TRUE(pl->add_entry(acl, {.match = {eq(Field::kSyndrome, 1), eq(Field::kUdpPayload4, 0x1234),
                                              eq(Field::kInnerIpv4Src, ip("192.168.0.1"))}})
                    .ok());
    auto w = std::move(pl->attach_worker({.pool = &pool})).value();
    const auto psp = [](uint32_t spi, bool s) {
      return testing::psp_frame(spi, s, ip("192.168.0.1"), ip("192.168.0.2"));
    };
    testing::FrameSpec other;
    other.src = ip("fd00::9");
    other.dst = ip("fd00::1");
    auto b = make_batch(
        pool, {psp(0x1234, false), psp(0x1234, true), psp(0x9999, false), testing::frame(other)}, 0);
    w->process(b, sink);
    EXPECT_EQ(sink.count({TargetKind::kPort, kVf.value()}), 2U) << sampling;
    EXPECT_EQ(sink.count({TargetKind::kDrop, 7}), 1U) << sampling;  // wrong SPI: SYND_STATS
    EXPECT_EQ(sink.count({TargetKind::kKernel, 0}), 1U) << sampling;
    EXPECT_EQ(sink.count({TargetKind::kCpu, kRssSample}), sampling ? 1U : 0U);
    const std::string m = pl->to_mermaid();
    EXPECT_NE(m.find("INGR_ACL[\"INGR_ACL\n    M:synd,psp.spi,inner.ipv4.src\n    A:decap()\"]"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("INGR_ACL-.->|\"miss\n    n=1\"|SYND_STATS"), std::string::npos) << m;
    EXPECT_NE(m.find("ROOT-.->|\"miss\n    n=1\"|kernel"), std::string::npos) << m;
    sink.clear();
  }
}

TEST(Builder, RejectsDanglingTargetsMissingMissCyclesAndBadMirrors) {
  const auto err = [](PipelineBuilder b) { return b.build().error().code; };
  const auto pipe = [](std::string n, TargetRef fwd, TargetRef miss) {
    return PipeSpec{.name = std::move(n), .fwd = std::move(fwd), .miss = std::move(miss)};
  };
  EXPECT_EQ(err(PipelineBuilder{}.add_pipe(pipe("A", TargetRef::pipe("NOPE"), TargetRef::drop()))),
            FlowError::kDanglingTarget);
  EXPECT_EQ(err(PipelineBuilder{}.add_pipe(pipe("A", TargetRef::drop(), TargetRef::pipe("NOPE")))),
            FlowError::kDanglingTarget);
  EXPECT_EQ(err(PipelineBuilder{}.add_pipe(pipe("A", TargetRef::drop(), {}))), FlowError::kNoMissTarget);
  EXPECT_EQ(err(PipelineBuilder{}
                    .add_pipe(pipe("A", TargetRef::pipe("B"), TargetRef::drop()))
                    .add_pipe(pipe("B", TargetRef::drop(), TargetRef::pipe("A")))),
            FlowError::kCycle);
  EXPECT_EQ(err(PipelineBuilder{}
                    .add_pipe(pipe("A", TargetRef::drop(), TargetRef::drop()))
                    .add_pipe(pipe("A", {}, TargetRef::drop()))),
            FlowError::kDuplicatePipe);
  EXPECT_EQ(err(PipelineBuilder{}
                    .add_pipe(pipe("A", TargetRef::drop(), TargetRef::drop()))
                    .add_entry("A", {.fwd = TargetRef::pipe("X")})),
            FlowError::kDanglingTarget);
  auto mirrored = pipe("A", TargetRef::drop(), TargetRef::drop());
  mirrored.mirror = TargetRef::pipe("A");
  EXPECT_EQ(err(PipelineBuilder{}.add_pipe(mirrored)), FlowError::kBadMirrorTarget);
  auto dup = pipe("A", TargetRef::drop(), TargetRef::drop());
  dup.match = {match(Field::kL4Dst), match(Field::kL4Dst)};
  EXPECT_EQ(err(PipelineBuilder{}.add_pipe(dup)), FlowError::kBadTemplate);
  auto wide = pipe("A", TargetRef::drop(), TargetRef::drop());
  wide.match = {match(Field::kIpv6Src), match(Field::kIpv6Dst), match(Field::kInnerIpv6Src),
                match(Field::kInnerIpv6Dst)};
  EXPECT_EQ(err(PipelineBuilder{}.add_pipe(wide)), FlowError::kKeyTooLong);
  auto bad_act = pipe("A", TargetRef::drop(), TargetRef::drop());
  bad_act.actions = {ActionSpec::set_meta(Field::kIpv4Dst, 1)};
  EXPECT_EQ(err(PipelineBuilder{}.add_pipe(bad_act)), FlowError::kBadAction);
  EXPECT_EQ(err(PipelineBuilder{}), FlowError::kNoPipes);
  // The seeds' graphs all build; pipes are numbered in topological order.
  auto pl = std::move(n2h(true).build()).value();
  EXPECT_LT(pl->find_pipe("PSP_DECRYPT")->value(), pl->find_pipe("INGR_SAMP")->value());
  EXPECT_LT(pl->find_pipe("INGR_ACL")->value(), pl->find_pipe("SYND_STATS")->value());
  EXPECT_EQ(pl->root(), *pl->find_pipe("ROOT"));
}

}  // namespace
}  // namespace pspgw::flow
