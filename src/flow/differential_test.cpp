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

}  // namespace
}  // namespace pspgw::flow
