// Differential test: the pipeline's exact and ternary lookups against a deliberately naive linear matcher
// on random rules and packets, through adds and removes (one suite over both lookup kinds, bmv2-style):
// big pipes (hash index / tuple space) and small ones (searched linearly), across the size where a pipe
// switches between the two. PSPGW_DIFF_ROUNDS=<n> runs n rounds of 64 packets per check (default 30).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <numeric>
#include <random>

#include "flow/builder.hpp"
#include "flow/extract.hpp"
#include "flow/range.hpp"
#include "flow/testing.hpp"

namespace pspgw::flow {
namespace {

constexpr std::array<Field, 5> kFields = {Field::kIpv4Src, Field::kIpv4Dst, Field::kIpProto, Field::kL4Dst,
                                          Field::kPktMeta};
using Values = std::array<uint64_t, 5>;

int rounds() {
  const char* env = std::getenv("PSPGW_DIFF_ROUNDS");  // NOLINT(concurrency-mt-unsafe): single-threaded test
  const int n = env != nullptr ? std::atoi(env) : 0;   // NOLINT(cert-err34-c): 0 on garbage = default
  return n > 0 ? n : 30;
}

struct Rule {
  Values value, mask;
  uint32_t priority;
  uint16_t port;
  EntryHandle handle;
};

// The reference: every live rule, in full, lowest priority wins.
std::optional<uint16_t> naive(const std::vector<Rule>& rules, const Values& pkt) {
  const Rule* best = nullptr;
  for (const Rule& r : rules) {
    bool all = true;
    for (std::size_t f = 0; f < kFields.size(); ++f) all &= (pkt[f] & r.mask[f]) == r.value[f];
    if (all && (best == nullptr || r.priority < best->priority)) best = &r;
  }
  return best != nullptr ? std::optional<uint16_t>(best->port) : std::nullopt;
}

struct Differential : ::testing::TestWithParam<LookupKind> {
  std::mt19937_64 rng{GetParam() == LookupKind::kExact ? 1U : 2U};
  net::PacketPool pool{256, 2048};
  testing::CollectSink sink{pool};
  Values template_mask{0xffffffff, 0xffffffff, 0xff, 0xffff,
                       GetParam() == LookupKind::kExact ? 0xffU : 0xffffffffU};

  uint64_t pick(std::initializer_list<uint64_t> xs) { return *(xs.begin() + rng() % xs.size()); }
  Values random_packet() {
    return {0x0a000000 | (rng() % 4), 0x0a010000 | (rng() % 8) << 8 | (rng() % 8), pick({6, 17}),
            pick({53, 80, 443, 8080}), rng() % 4};
  }
  // Ternary: 16 distinct masks (the tuple-space bound is 32), each field a wildcard, prefix or partial mask.
  std::vector<Values> masks;
  Values random_mask() {
    if (GetParam() == LookupKind::kExact) return template_mask;
    while (masks.size() < 16) {
      const Values m{pick({0, 0xffffffff, 0xfffffffc}), pick({0, 0xffffffff, 0xffffff00}), pick({0, 0xff}),
                     pick({0, 0xffff, 0xff00}), pick({0, 0xffffffff, 0x1})};
      if (std::find(masks.begin(), masks.end(), m) == masks.end()) masks.push_back(m);
    }
    return masks[rng() % masks.size()];
  }

  // Runs packets through both and compares every decision.
  void compare(Pipeline& pl, Worker& w, const std::vector<Rule>& rules, int n_rounds = rounds()) {
    for (int round = 0; round < n_rounds; ++round) {
      std::vector<Values> pkts(64);
      std::vector<std::vector<uint8_t>> frames;
      for (auto& p : pkts) {
        p = random_packet();
        testing::FrameSpec s;
        std::array<uint8_t, 4> a{};
        for (int i = 0; i < 4; ++i) a[i] = static_cast<uint8_t>(p[0] >> (24 - 8 * i));
        s.src = net::IpAddr::v4(a);
        for (int i = 0; i < 4; ++i) a[i] = static_cast<uint8_t>(p[1] >> (24 - 8 * i));
        s.dst = net::IpAddr::v4(a);
        s.proto = static_cast<uint8_t>(p[2]);
        s.dport = static_cast<uint16_t>(p[3]);
        frames.push_back(testing::frame(s));
      }
      auto b = testing::make_batch(pool, frames);
      for (uint32_t i = 0; i < b.size(); ++i) {
        b[i]->meta.pkt_meta = static_cast<uint32_t>(pkts[i][4]);
        b[i]->meta.regs[0] = i;
      }
      w.process(b, sink);
      ASSERT_EQ(sink.out.size(), pkts.size());
      for (const auto& d : sink.out) {
        const auto want = naive(rules, pkts[d.pkt->meta.regs[0]]);
        const Target expect = want ? Target{TargetKind::kPort, *want} : Target{TargetKind::kKernel, 0};
        ASSERT_EQ(d.target, expect) << "packet " << d.pkt->meta.regs[0];
      }
      sink.clear();
    }
    (void)pl;
  }

  bool add_rule(Pipeline& pl, std::vector<Rule>& rules, uint16_t port, uint32_t prio) {
    Rule r{random_packet(), random_mask(), prio, port, {}};
    EntrySpec e{.fwd = TargetRef::port(PortId(port)), .priority = prio};
    for (std::size_t f = 0; f < kFields.size(); ++f) {
      r.value[f] &= r.mask[f];
      if (GetParam() == LookupKind::kExact) {
        e.match.push_back(eq(kFields[f], r.value[f]));
      } else if (r.mask[f] != 0) {
        e.match.push_back(masked(kFields[f], r.value[f], r.mask[f]));
      }
    }
    auto h = pl.add_entry(PipeId(0), e);
    if (!h) {
      EXPECT_EQ(h.error(), FlowError::kDuplicateEntry);  // same masked key drawn twice
      return false;
    }
    r.handle = *h;
    rules.push_back(r);
    return true;
  }

  std::unique_ptr<Pipeline> pipeline() {
    PipeSpec spec{.name = "P",
                  .lookup = GetParam(),
                  .fwd = TargetRef::drop(),
                  .miss = TargetRef::kernel(),
                  .max_entries = 4096};
    for (std::size_t f = 0; f < kFields.size(); ++f)
      spec.match.push_back(match(kFields[f], template_mask[f]));
    return std::move(PipelineBuilder{}.add_pipe(spec).build()).value();
  }
};

TEST_P(Differential, AgreesWithALinearMatcherThroughAddsAndRemoves) {
  auto pl = pipeline();
  auto w = std::move(pl->attach_worker({.pool = &pool})).value();
  std::vector<Rule> rules;
  const int n = GetParam() == LookupKind::kExact ? 1500 : 200;
  std::vector<uint32_t> prios(2 * n);
  std::iota(prios.begin(), prios.end(), 0U);
  std::shuffle(prios.begin(), prios.end(), rng);
  uint16_t port = 1;
  for (int i = 0; i < n; ++i, ++port) add_rule(*pl, rules, port, prios[port]);
  compare(*pl, *w, rules);

  std::shuffle(rules.begin(), rules.end(), rng);
  for (std::size_t i = 0; i < rules.size() / 2; ++i) ASSERT_TRUE(pl->remove_entry(rules[i].handle).ok());
  rules.erase(rules.begin(), rules.begin() + static_cast<std::ptrdiff_t>(rules.size() / 2));
  compare(*pl, *w, rules);

  for (int i = 0; i < n / 2; ++i, ++port) add_rule(*pl, rules, port, prios[port]);
  compare(*pl, *w, rules);
  EXPECT_EQ(pl->pipe_stats(PipeId(0))->entries, rules.size());
}

// One entry at a time up to 24 and back down, checking after each change: small pipes are searched
// linearly (up to 4 exact / 16 ternary entries), bigger ones through the hash index / tuple space.
TEST_P(Differential, AgreesEntryByEntryAcrossTheLinearSearchBound) {
  auto pl = pipeline();
  auto w = std::move(pl->attach_worker({.pool = &pool})).value();
  std::vector<Rule> rules;
  std::vector<uint32_t> prios(64);
  std::iota(prios.begin(), prios.end(), 0U);
  std::shuffle(prios.begin(), prios.end(), rng);
  const int n_rounds = std::max(1, rounds() / 10);
  for (uint16_t port = 1; rules.size() < 24; ++port) {
    ASSERT_LT(port, prios.size());
    if (add_rule(*pl, rules, port, prios[port])) compare(*pl, *w, rules, n_rounds);
  }
  std::shuffle(rules.begin(), rules.end(), rng);
  while (!rules.empty()) {
    ASSERT_TRUE(pl->remove_entry(rules.back().handle).ok());
    rules.pop_back();
    compare(*pl, *w, rules, n_rounds);
  }
}

INSTANTIATE_TEST_SUITE_P(Lookups, Differential, ::testing::Values(LookupKind::kExact, LookupKind::kTernary),
                         [](const auto& p) { return p.param == LookupKind::kExact ? "Exact" : "Ternary"; });

// Ranges and select groups against the linear reference: each rule is (ipv4.dst prefix, proto or any,
// l4.src range, l4.dst range) expanded into strided prefix entries (range.hpp) sharing its priority, and
// forwards to a port or to a select group. Packet ports are drawn at and around the rules' range bounds.
// A group rule's packet must leave by the member the group's slot table assigns to its symmetric hash.
// The rule shapes keep the pipe within kMaxTuples masks: dst prefix /0 or /24 (2) x proto given x source
// port any or one port (2) x the strided dst-port cover (at most 5 lengths) = 20 masks; see range.hpp.
struct RangeRule {
  uint32_t dst, dst_mask;
  uint8_t proto;  // 0 = any
  uint16_t slo, shi, dlo, dhi;
  uint32_t priority;
  std::optional<uint16_t> port;  // else: the group
  std::vector<EntryHandle> handles;
};

struct RangePacket {
  uint32_t dst;
  uint8_t proto;
  uint16_t sport, dport;
};

const RangeRule* naive_range(const std::vector<RangeRule>& rules, const RangePacket& p) {
  const RangeRule* best = nullptr;
  for (const RangeRule& r : rules) {
    const bool m = (p.dst & r.dst_mask) == r.dst && (r.proto == 0 || r.proto == p.proto) &&
                   p.sport >= r.slo && p.sport <= r.shi && p.dport >= r.dlo && p.dport <= r.dhi;
    if (m && (best == nullptr || r.priority < best->priority)) best = &r;
  }
  return best;
}

TEST(DifferentialRanges, RangesPrefixesAndSelectGroupsAgreeWithALinearMatcher) {
  std::mt19937_64 rng(7);
  net::PacketPool pool{256, 2048};
  testing::CollectSink sink{pool};
  auto built = PipelineBuilder{}
                   .add_pipe({.name = "CLS",
                              .lookup = LookupKind::kTernary,
                              .match = {match(Field::kIpv4Dst), match(Field::kIpProto), match(Field::kL4Src),
                                        match(Field::kL4Dst)},
                              .fwd = TargetRef::drop(),
                              .miss = TargetRef::kernel(),
                              .max_entries = 16384})
                   .build();
  ASSERT_TRUE(built.ok());
  auto pl = std::move(built).value();
  const PipeId cls(0);
  const std::vector<TargetRef> members = {TargetRef::port(PortId(901)), TargetRef::port(PortId(902)),
                                          TargetRef::port(PortId(903))};
  const auto group = pl->add_group(cls, members, TargetRef::drop());
  ASSERT_TRUE(group.ok());
  auto w = std::move(pl->attach_worker({.pool = &pool})).value();

  std::vector<RangeRule> rules;
  std::vector<uint16_t> bounds = {0, 1, 65534, 65535};
  const auto port_range = [&](bool any) -> std::pair<uint16_t, uint16_t> {
    if (any) return {0, 65535};
    const auto a = static_cast<uint16_t>(rng() % 65536);
    const auto len = static_cast<uint16_t>(rng() % 3 == 0 ? rng() % 8 : rng() % 4000);
    const auto b = static_cast<uint16_t>(std::min<uint32_t>(65535, a + len));
    for (uint16_t x : {a, b}) {
      bounds.push_back(x);
      bounds.push_back(static_cast<uint16_t>(x - 1));
      bounds.push_back(static_cast<uint16_t>(x + 1));
    }
    return {a, b};
  };
  for (uint32_t i = 0; i < 40; ++i) {
    RangeRule r{};
    const unsigned len = rng() % 2 == 0 ? 0 : 24;
    r.dst_mask = len == 0 ? 0 : ~0U << (32 - len);
    r.dst = (0x0a000000U | static_cast<uint32_t>(rng() % 4) << 16 | static_cast<uint32_t>(rng() % 4) << 8) &
            r.dst_mask;
    r.proto = rng() % 2 == 0 ? 6 : 17;
    std::tie(r.slo, r.shi) = port_range(true);
    if (rng() % 3 == 0) {
      r.slo = r.shi = static_cast<uint16_t>(rng() % 65536);
      bounds.push_back(r.slo);
    }
    std::tie(r.dlo, r.dhi) = port_range(false);
    r.priority = static_cast<uint32_t>(rng() % 1000) * 64 + i;  // distinct
    if (rng() % 3 != 0) r.port = static_cast<uint16_t>(1 + i);
    bool dup = false;
    for (const FieldMatch& sm : range_matches(Field::kL4Src, r.slo, r.shi))
      for (const FieldMatch& dm : range_matches(Field::kL4Dst, r.dlo, r.dhi)) {
        if (dup) break;
        EntrySpec e{.fwd = r.port ? TargetRef::port(PortId(*r.port)) : TargetRef::group(*group),
                    .priority = r.priority};
        if (r.dst_mask != 0) e.match.push_back(masked(Field::kIpv4Dst, r.dst, r.dst_mask));
        if (r.proto != 0) e.match.push_back(eq(Field::kIpProto, r.proto));
        if (sm.mask != FieldBytes{}) e.match.push_back(sm);
        if (dm.mask != FieldBytes{}) e.match.push_back(dm);
        auto h = pl->add_entry(cls, e);
        if (!h) {  // an earlier rule has an entry with this very key: one key, one priority; skip the rule
          ASSERT_EQ(h.error(), FlowError::kDuplicateEntry);
          dup = true;
          break;
        }
        r.handles.push_back(*h);
      }
    if (dup) {
      for (const EntryHandle& h : r.handles) ASSERT_TRUE(pl->remove_entry(h).ok());
      continue;
    }
    rules.push_back(std::move(r));
  }

  const auto compare = [&] {
    const GroupTable table = *pl->group_table(*group);
    for (int round = 0; round < rounds(); ++round) {
      std::vector<RangePacket> pkts(64);
      std::vector<std::vector<uint8_t>> frames;
      for (auto& p : pkts) {
        p.dst = 0x0a000000U | static_cast<uint32_t>(rng() % 4) << 16 | static_cast<uint32_t>(rng() % 4) << 8 |
                static_cast<uint32_t>(rng() % 4);
        p.proto = rng() % 2 == 0 ? 6 : 17;
        p.sport = rng() % 2 == 0 ? bounds[rng() % bounds.size()] : static_cast<uint16_t>(rng());
        p.dport = rng() % 4 != 0 ? bounds[rng() % bounds.size()] : static_cast<uint16_t>(rng());
        testing::FrameSpec s;
        std::array<uint8_t, 4> a{};
        for (int i = 0; i < 4; ++i) a[i] = static_cast<uint8_t>(p.dst >> (24 - 8 * i));
        s.dst = net::IpAddr::v4(a);
        s.proto = p.proto;
        s.sport = p.sport;
        s.dport = p.dport;
        frames.push_back(testing::frame(s));
      }
      auto b = testing::make_batch(pool, frames);
      for (uint32_t i = 0; i < b.size(); ++i) b[i]->meta.regs[0] = i;
      w->process(b, sink);
      ASSERT_EQ(sink.out.size(), pkts.size());
      for (const auto& d : sink.out) {
        const RangeRule* want = naive_range(rules, pkts[d.pkt->meta.regs[0]]);
        Target expect{TargetKind::kKernel, 0};
        if (want != nullptr && want->port) expect = {TargetKind::kPort, *want->port};
        if (want != nullptr && !want->port) {
          Parsed ps;
          parse_outer(*d.pkt, ps);
          expect = table.slot[symmetric_flow_hash(*d.pkt, ps.outer) % kGroupSlots];
        }
        ASSERT_EQ(d.target, expect) << "packet " << d.pkt->meta.regs[0];
      }
      sink.clear();
    }
  };
  ASSERT_GT(rules.size(), 30U);
  compare();
  // Remove half the rules (every entry of each), shrink the group, compare again.
  std::shuffle(rules.begin(), rules.end(), rng);
  for (std::size_t i = 0; i < rules.size() / 2; ++i)
    for (const EntryHandle& h : rules[i].handles) ASSERT_TRUE(pl->remove_entry(h).ok());
  rules.erase(rules.begin(), rules.begin() + static_cast<std::ptrdiff_t>(rules.size() / 2));
  ASSERT_TRUE(pl->set_group(*group, std::span(members).first(2), TargetRef::drop()).ok());
  compare();
}

}  // namespace
}  // namespace pspgw::flow
