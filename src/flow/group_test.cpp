// Select groups: the symmetric flow hash, the slot table's fairness and stickiness through membership
// changes, and the data path (entry -> group -> member) including fail-over to if_empty.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "flow/builder.hpp"
#include "flow/extract.hpp"
#include "flow/group.hpp"
#include "flow/testing.hpp"

namespace pspgw::flow {
namespace {

using testing::CollectSink;
using testing::frame;
using testing::FrameSpec;
using testing::make_batch;

net::IpAddr ip(const char* s) {
  return *net::IpAddr::parse(s);
}
Target port(uint16_t p) {
  return {TargetKind::kPort, p};
}

uint32_t sym_hash(const std::vector<uint8_t>& bytes) {
  static net::PacketPool pool{4, 2048};
  net::Packet* p = pool.alloc();
  EXPECT_TRUE(p->assign(bytes));
  Parsed ps;
  parse_outer(*p, ps);
  EXPECT_NE(ps.outer.family, 0);
  const uint32_t h = symmetric_flow_hash(*p, ps.outer);
  pool.free(p);
  return h;
}

FrameSpec flow(const char* src, const char* dst, uint8_t proto, uint16_t sport, uint16_t dport) {
  FrameSpec s;
  s.src = ip(src);
  s.dst = ip(dst);
  s.proto = proto;
  s.sport = sport;
  s.dport = dport;
  return s;
}
FrameSpec reversed(FrameSpec s) {
  std::swap(s.src, s.dst);
  std::swap(s.sport, s.dport);
  return s;
}

TEST(SymmetricHash, BothDirectionsAgreeIpv4AndIpv6) {
  for (const auto& s :
       {flow("10.0.0.1", "10.0.0.2", 6, 1234, 80), flow("192.168.9.9", "10.1.1.1", 17, 53, 40000),
        flow("fd00::1", "fd00::2", 6, 443, 51000), flow("fd00::ffff", "2001:db8::1", 17, 1, 2)}) {
    EXPECT_EQ(sym_hash(frame(s)), sym_hash(frame(reversed(s))));
  }
}

TEST(SymmetricHash, DistinguishesFlows) {
  std::set<uint32_t> seen;
  for (uint16_t sp = 1000; sp < 1100; ++sp)
    seen.insert(sym_hash(frame(flow("10.0.0.1", "10.0.0.2", 6, sp, 80))));
  EXPECT_GT(seen.size(), 95U);
  EXPECT_NE(sym_hash(frame(flow("10.0.0.1", "10.0.0.2", 6, 1, 80))),
            sym_hash(frame(flow("10.0.0.1", "10.0.0.2", 17, 1, 80))));
}

std::map<Target, uint32_t, bool (*)(Target, Target)> counts(const GroupTable& t) {
  std::map<Target, uint32_t, bool (*)(Target, Target)> c(
      [](Target a, Target b) { return std::pair(a.kind, a.id) < std::pair(b.kind, b.id); });
  for (Target x : t.slot) ++c[x];
  return c;
}

TEST(Rebalance, FairAndMovesOnlyWhatItMust) {
  const std::vector<Target> three = {port(1), port(2), port(3)};
  const GroupTable t3 = rebalance(nullptr, three, port(99));
  for (auto [m, n] : counts(t3)) EXPECT_TRUE(n == 85 || n == 86) << m.id;

  // A member leaves: only its slots move.
  const std::vector<Target> two = {port(1), port(3)};
  const GroupTable t2 = rebalance(&t3, two, port(99));
  for (uint32_t s = 0; s < kGroupSlots; ++s) {
    EXPECT_NE(t2.slot[s], port(2));
    if (!(t3.slot[s] == port(2))) {
      EXPECT_EQ(t2.slot[s], t3.slot[s]) << s;
    }
  }
  for (auto [m, n] : counts(t2)) EXPECT_EQ(n, 128U) << m.id;

  // A member joins: slots move only to it, about a quarter of them.
  const std::vector<Target> four = {port(1), port(3), port(4), port(5)};
  const GroupTable t4 = rebalance(&t2, four, port(99));
  uint32_t moved = 0;
  for (uint32_t s = 0; s < kGroupSlots; ++s) {
    if (t4.slot[s] == t2.slot[s]) continue;
    ++moved;
    EXPECT_TRUE(t4.slot[s] == port(4) || t4.slot[s] == port(5));
  }
  EXPECT_EQ(moved, 128U);
  for (auto [m, n] : counts(t4)) EXPECT_EQ(n, 64U) << m.id;

  const GroupTable none = rebalance(&t4, {}, port(99));
  for (Target x : none.slot) EXPECT_EQ(x, port(99));
  const GroupTable back = rebalance(&none, two, port(99));
  for (auto [m, n] : counts(back)) EXPECT_EQ(n, 128U) << m.id;
}

struct Group : ::testing::Test {
  net::PacketPool pool{1024, 2048};
  CollectSink sink{pool};
  std::unique_ptr<Pipeline> pl;
  PipeId cls{}, after{};
  void SetUp() override {
    auto r =
        PipelineBuilder{}
            .add_pipe({.name = "CLS",
                       .lookup = LookupKind::kTernary,
                       .match = {match(Field::kIpProto)},
                       .fwd = TargetRef::port(PortId(9)),
                       .miss = TargetRef::pipe("NEXT")})
            .add_pipe({.name = "NEXT", .fwd = TargetRef::port(PortId(8)), .miss = TargetRef::port(PortId(7))})
            .add_entry("NEXT", {})
            .build();
    ASSERT_TRUE(r.ok());
    pl = std::move(r).value();
    cls = *pl->find_pipe("CLS");
    after = cls;
  }
  // Sends each frame in a batch of its own (a sink sees packets grouped by target, not in order); returns
  // the port each left by (0xffff: not a port).
  std::vector<uint16_t> send(const std::vector<std::vector<uint8_t>>& frames) {
    auto w = pl->attach_worker();
    EXPECT_TRUE(w.ok());
    std::vector<uint16_t> out;
    for (const auto& f : frames) {
      auto b = make_batch(pool, {f});
      (*w)->process(b, sink);
      EXPECT_EQ(sink.out.size(), 1U);
      const Target t = sink.out.at(0).target;
      out.push_back(t.kind == TargetKind::kPort ? t.id : 0xffff);
      sink.clear();
    }
    return out;
  }
};

std::vector<TargetRef> ports(std::initializer_list<uint16_t> ps) {
  std::vector<TargetRef> v;
  for (uint16_t p : ps) v.push_back(TargetRef::port(PortId(p)));
  return v;
}

TEST_F(Group, SpreadsFlowsAndKeepsBothDirectionsTogether) {
  const auto g = pl->add_group(after, ports({1, 2}), TargetRef::drop());
  ASSERT_TRUE(g.ok());
  ASSERT_TRUE(pl->add_entry(cls, {.match = {eq(Field::kIpProto, 6)}, .fwd = TargetRef::group(*g)}).ok());
  std::vector<std::vector<uint8_t>> fwd, rev;
  for (uint16_t i = 0; i < 64; ++i) {
    const FrameSpec s = flow("10.0.0.1", "10.0.0.2", 6, static_cast<uint16_t>(10000 + i), 80);
    fwd.push_back(frame(s));
    rev.push_back(frame(reversed(s)));
  }
  const auto a = send(fwd), b = send(rev);
  ASSERT_EQ(a.size(), 64U);
  EXPECT_EQ(a, b);
  EXPECT_GT(std::count(a.begin(), a.end(), 1), 10);
  EXPECT_GT(std::count(a.begin(), a.end(), 2), 10);
  // Not TCP: the pipe's miss, not the group.
  EXPECT_EQ(send({frame(flow("10.0.0.1", "10.0.0.2", 17, 1, 2))}), std::vector<uint16_t>{8});

  // A third instance joins: flows that move go to it only; one leaves: only its flows move.
  ASSERT_TRUE(pl->set_group(*g, ports({1, 2, 3}), TargetRef::drop()).ok());
  const auto c = send(fwd);
  for (std::size_t i = 0; i < c.size(); ++i)
    if (c[i] != a[i]) {
      EXPECT_EQ(c[i], 3) << i;
    }
  ASSERT_TRUE(pl->set_group(*g, ports({2, 3}), TargetRef::drop()).ok());
  const auto d = send(fwd);
  for (std::size_t i = 0; i < d.size(); ++i)
    if (c[i] != 1) {
      EXPECT_EQ(d[i], c[i]) << i;
    }
  EXPECT_EQ(send(rev), d);
}

TEST_F(Group, EmptyGroupUsesIfEmptyAndMembersMayBePipes) {
  const auto g = pl->add_group(after, {}, TargetRef::drop(3));
  ASSERT_TRUE(g.ok());
  ASSERT_TRUE(pl->add_entry(cls, {.match = {eq(Field::kIpProto, 6)}, .fwd = TargetRef::group(*g)}).ok());
  EXPECT_EQ(send({frame(flow("10.0.0.1", "10.0.0.2", 6, 1, 2))}), std::vector<uint16_t>{0xffff});
  const auto st = pl->pipe_stats(cls);
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(st->drops.size(), 1U);
  EXPECT_EQ(st->drops[0].first, 3);
  // Fail open: bypass to the next pipe (whose hit is port 8).
  ASSERT_TRUE(pl->set_group(*g, {}, TargetRef::pipe("NEXT")).ok());
  EXPECT_EQ(send({frame(flow("10.0.0.1", "10.0.0.2", 6, 1, 2))}), std::vector<uint16_t>{8});
}

TEST_F(Group, Errors) {
  EXPECT_EQ(pl->add_group(after, ports({1, 1}), TargetRef::drop()).error(), FlowError::kBadGroupMember);
  const std::vector<TargetRef> upstream = {TargetRef::pipe("CLS")};
  EXPECT_EQ(pl->add_group(after, upstream, TargetRef::drop()).error(), FlowError::kBadGroupMember);
  EXPECT_EQ(pl->add_group(after, ports({1}), TargetRef{}).error(), FlowError::kBadGroupMember);
  EXPECT_EQ(
      pl->add_entry(cls, {.match = {eq(Field::kIpProto, 6)}, .fwd = TargetRef::group(GroupId(5))}).error(),
      FlowError::kUnknownGroup);
  const auto g = pl->add_group(after, ports({1}), TargetRef::drop());
  ASSERT_TRUE(g.ok());
  const std::vector<TargetRef> nested = {TargetRef::group(*g)};
  EXPECT_EQ(pl->add_group(after, nested, TargetRef::drop()).error(), FlowError::kBadGroupMember);
  // An entry of a pipe after the group's `after` may not use it.
  const auto next = *pl->find_pipe("NEXT");
  EXPECT_EQ(pl->add_entry(next, {.fwd = TargetRef::group(*g)}).error(), FlowError::kGroupNotAfter);
  EXPECT_EQ(pl->add_group(next, ports({1}), TargetRef::pipe("NEXT")).error(), FlowError::kBadGroupMember);
  const auto h = pl->add_entry(cls, {.match = {eq(Field::kIpProto, 6)}, .fwd = TargetRef::group(*g)});
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(pl->remove_group(*g).error(), FlowError::kGroupInUse);
  ASSERT_TRUE(pl->remove_entry(*h).ok());
  EXPECT_TRUE(pl->remove_group(*g).ok());
  EXPECT_EQ(pl->set_group(*g, ports({1}), TargetRef::drop()).error(), FlowError::kUnknownGroup);
  EXPECT_EQ(pl->group_table(*g).error(), FlowError::kUnknownGroup);
  pl->synchronize();
  const auto again = pl->add_group(after, ports({2}), TargetRef::drop());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->value(), g->value());  // the slot is reused after the grace period
}

TEST_F(Group, DumpShowsTheGroup) {
  const auto g = pl->add_group(after, ports({1, 2}), TargetRef::drop());
  ASSERT_TRUE(g.ok());
  ASSERT_TRUE(pl->add_entry(cls, {.match = {eq(Field::kIpProto, 6)}, .fwd = TargetRef::group(*g)}).ok());
  EXPECT_NE(pl->to_mermaid().find("group0"), std::string::npos) << pl->to_mermaid();
  EXPECT_NE(pl->to_json().find("\"group\""), std::string::npos) << pl->to_json();
}

TEST(GroupBuild, PipeTargetsCannotBeGroups) {
  auto r = PipelineBuilder{}
               .add_pipe({.name = "A", .fwd = TargetRef::group(GroupId(0)), .miss = TargetRef::drop()})
               .build();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, FlowError::kUnknownGroup);
}

}  // namespace
}  // namespace pspgw::flow
