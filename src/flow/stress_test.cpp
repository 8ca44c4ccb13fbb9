// Concurrency: entries churned by the control plane while workers forward (run under ThreadSanitizer by
// scripts/test.sh, label "tsan"), plus the grace-period rules of the epoch domain.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include "flow/builder.hpp"
#include "flow/testing.hpp"

namespace pspgw::flow {
namespace {

TEST(Epoch, RetiredObjectsWaitForEveryOnlineReader) {
  EpochDomain d(2);
  d.online(0);
  d.online(1);
  int freed = 0;
  d.retire([&] { ++freed; });
  EXPECT_EQ(d.poll(), 0U);  // both readers may still hold it
  d.quiescent(0);
  EXPECT_EQ(d.poll(), 0U);
  d.offline(1);  // an offline reader holds nothing
  EXPECT_EQ(d.poll(), 1U);
  EXPECT_EQ(freed, 1);
  d.retire([&] { ++freed; });
  d.quiescent(0);
  d.synchronize();
  EXPECT_EQ(freed, 2);
  EXPECT_EQ(d.pending(), 0U);
}

net::IpAddr addr(uint32_t i) {
  const std::array<uint8_t, 4> b{10, 1, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)};
  return net::IpAddr::v4(b);
}

constexpr uint32_t kAddrs = 512;
constexpr uint32_t kProbeAddr = 0xffff;  // 10.1.255.255: never in the workers' traffic
constexpr uint16_t kProbePort = 9;

struct Shared {
  std::atomic<bool> stop{false};
  std::atomic<uint32_t> probe{0};  // generation of the probe entry the control plane just added
  // Per worker: the entry is removed only once both have tested it (a worker that read `probe` just
  // before the other acked must still find the entry).
  std::array<std::atomic<uint32_t>, 2> acked{};
  std::atomic<uint32_t> probe_failures{0};
  std::atomic<uint64_t> probe_packets{0};  // both workers test each probe
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> delivered{0};
};

void forward(Pipeline& pl, Shared& sh, std::size_t me, uint64_t seed) {
  net::PacketPool pool(256, 256);
  testing::CollectSink sink(pool);
  auto w = std::move(pl.attach_worker({.pool = &pool, .seed = seed})).value();
  std::mt19937 rng(static_cast<uint32_t>(seed));
  uint64_t sent = 0, delivered = 0;
  std::vector<std::vector<uint8_t>> frames(32);
  while (!sh.stop.load(std::memory_order_relaxed)) {
    if (const uint32_t g = sh.probe.load(std::memory_order_acquire);
        g != sh.acked[me].load(std::memory_order_relaxed)) {
      // The entry was added before `probe` was published: this very batch must see it.
      testing::FrameSpec s;
      s.dst = addr(kProbeAddr);
      auto b = testing::make_batch(pool, {testing::frame(s)});
      w->process(b, sink);
      if (sink.out.size() != 1 || !(sink.out[0].target == Target{TargetKind::kPort, kProbePort}))
        sh.probe_failures.fetch_add(1);
      sh.probe_packets.fetch_add(1);
      sink.clear();
      sh.acked[me].store(g, std::memory_order_release);
    }
    for (auto& f : frames) {
      testing::FrameSpec s;
      s.dst = addr(rng() % kAddrs);
      s.dport = static_cast<uint16_t>(rng() % 4);
      f = testing::frame(s);
    }
    auto b = testing::make_batch(pool, frames);
    sent += b.size();
    w->process(b, sink);
    delivered += sink.out.size();
    sink.clear();
  }
  sh.sent += sent;
  sh.delivered += delivered;
}

TEST(Stress, ChurnWhileWorkersForwardIsRaceFreeAndEveryPacketLeavesOnce) {
  auto pl = std::move(PipelineBuilder{}
                          .max_workers(2)
                          .add_pipe({.name = "ACL",
                                     .match = {match(Field::kIpv4Dst)},
                                     .fwd = TargetRef::pipe("T"),
                                     .miss = TargetRef::cpu(0),
                                     .max_entries = kAddrs + 1})
                          .add_pipe({.name = "T",
                                     .lookup = LookupKind::kTernary,
                                     .match = {match(Field::kL4Dst)},
                                     .fwd = TargetRef::port(PortId(1)),
                                     .miss = TargetRef::port(PortId(2)),
                                     .max_entries = 16})
                          .build())
                .value();
  const PipeId acl = *pl->find_pipe("ACL"), t = *pl->find_pipe("T");
  Shared sh;
  std::thread w1(forward, std::ref(*pl), std::ref(sh), 0, 1), w2(forward, std::ref(*pl), std::ref(sh), 1, 2);

  std::mt19937 rng(7);
  std::vector<std::optional<EntryHandle>> live(kAddrs);
  std::vector<EntryHandle> ternary;
  uint64_t ops = 0;
  uint32_t probes = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  while (std::chrono::steady_clock::now() < deadline && ops < 400000) {
    const uint32_t a = rng() % kAddrs;
    if (live[a]) {
      EXPECT_TRUE(pl->remove_entry(*live[a]).ok());
      EXPECT_EQ(pl->remove_entry(*live[a]).error(), FlowError::kStaleHandle);
      live[a].reset();
    } else {
      auto h = pl->add_entry(acl, {.match = {eq(Field::kIpv4Dst, addr(a))}});
      if (h) {
        live[a] = *h;
      } else {  // the documented back-pressure: every free record is in a grace period
        EXPECT_EQ(h.error(), FlowError::kReclaimPending);
        pl->synchronize();
      }
    }
    if (++ops % 64 == 0) {  // new and vanishing masks: tuple sets published and retired
      if (ternary.size() < 4) {
        const uint32_t mask = 1U << (rng() % 2);
        auto h = pl->add_entry(t, {.match = {masked(Field::kL4Dst, rng() & mask, mask)},
                                   .priority = static_cast<uint32_t>(rng() % 8)});
        if (h) ternary.push_back(*h);
      } else {
        EXPECT_TRUE(pl->remove_entry(ternary.back()).ok());
        ternary.pop_back();
      }
    }
    if (ops % 4096 == 0) {  // visibility: added, then announced; the worker's next batch must hit it
      const EntrySpec probe{.match = {eq(Field::kIpv4Dst, addr(kProbeAddr))},
                            .fwd = TargetRef::port(PortId(kProbePort))};
      auto h = pl->add_entry(acl, probe);
      if (!h) {
        pl->synchronize();
        h = pl->add_entry(acl, probe);
      }
      if (!h) break;
      sh.probe.store(++probes, std::memory_order_release);
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      const auto tested = [&] {
        return sh.acked[0].load(std::memory_order_acquire) == probes &&
               sh.acked[1].load(std::memory_order_acquire) == probes;
      };
      while (!tested() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
      EXPECT_TRUE(pl->remove_entry(*h).ok());
    }
    if (::testing::Test::HasFailure()) break;
  }
  sh.stop = true;
  w1.join();
  w2.join();
  pl->synchronize();
  EXPECT_GT(ops, 1000U);
  EXPECT_GT(probes, 0U);
  EXPECT_EQ(sh.probe_failures.load(), 0U);
  EXPECT_GT(sh.sent.load(), 0U);
  EXPECT_EQ(sh.sent.load(), sh.delivered.load());
  const auto st = *pl->pipe_stats(acl);
  EXPECT_EQ(st.hits + st.misses, sh.sent.load() + sh.probe_packets.load());
  std::size_t n_live = 0;
  for (const auto& h : live) n_live += h.has_value();
  EXPECT_EQ(st.entries, n_live);
  std::printf("ops=%llu probes=%u packets=%llu\n", static_cast<unsigned long long>(ops), probes,
              static_cast<unsigned long long>(sh.sent.load()));
}

// Select groups churned while workers forward: membership changes (tables published and retired), entries
// switched between two groups, a group removed and re-added once its entry is gone. Every packet leaves
// exactly once, by a member port or the groups' if_empty drop.
TEST(Stress, GroupChurnWhileWorkersForward) {
  auto pl = std::move(PipelineBuilder{}
                          .max_workers(2)
                          .add_pipe({.name = "CLS",
                                     .lookup = LookupKind::kTernary,
                                     .match = {match(Field::kIpProto)},
                                     .fwd = TargetRef::port(PortId(9)),
                                     .miss = TargetRef::port(PortId(9))})
                          .build())
                .value();
  const PipeId cls = *pl->find_pipe("CLS");
  const auto members = [](uint32_t bits) {
    std::vector<TargetRef> m;
    for (uint16_t p = 1; p <= 4; ++p)
      if ((bits >> (p - 1)) & 1) m.push_back(TargetRef::port(PortId(p)));
    return m;
  };
  std::array<GroupId, 2> g{*pl->add_group(cls, members(3), TargetRef::drop(3)),
                           *pl->add_group(cls, members(12), TargetRef::drop(3))};
  auto entry = *pl->add_entry(cls, {.match = {eq(Field::kIpProto, 17)}, .fwd = TargetRef::group(g[0])});
  std::size_t on = 0;

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> sent{0}, ok{0}, misses{0};
  const auto forwarder = [&](uint64_t seed) {
    net::PacketPool pool(256, 256);
    testing::CollectSink sink(pool);
    auto w = std::move(pl->attach_worker({.pool = &pool, .seed = seed})).value();
    std::mt19937 rng(static_cast<uint32_t>(seed));
    std::vector<std::vector<uint8_t>> frames(32);
    uint64_t n = 0, good = 0, missed = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      for (auto& f : frames) {
        testing::FrameSpec s;
        s.sport = static_cast<uint16_t>(rng());
        f = testing::frame(s);
      }
      auto b = testing::make_batch(pool, frames);
      n += b.size();
      w->process(b, sink);
      // Port 9: the pipe's miss, while the entry moves between groups.
      for (const auto& d : sink.out) {
        good += (d.target.kind == TargetKind::kPort && d.target.id >= 1 && d.target.id <= 4) ||
                d.target == Target{TargetKind::kDrop, 3} || d.target == Target{TargetKind::kPort, 9};
        missed += d.target == Target{TargetKind::kPort, 9};
      }
      sink.clear();
    }
    sent += n;
    ok += good;
    misses += missed;
  };
  std::thread w1(forwarder, 1), w2(forwarder, 2);
  std::mt19937 rng(11);
  uint64_t ops = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1000);
  while (std::chrono::steady_clock::now() < deadline && ops < 200000 && !::testing::Test::HasFailure()) {
    ++ops;
    const std::size_t which = rng() % 2;
    EXPECT_TRUE(pl->set_group(g[which], members(rng() % 16), TargetRef::drop(3)).ok());
    if (ops % 16 == 0) {  // move the entry to the other group, then recreate the one it left
      EXPECT_TRUE(pl->remove_entry(entry).ok());
      on ^= 1;
      auto moved = pl->add_entry(cls, {.match = {eq(Field::kIpProto, 17)}, .fwd = TargetRef::group(g[on])});
      if (!moved) {
        ADD_FAILURE() << to_string(moved.error());
        break;
      }
      entry = *moved;
      EXPECT_TRUE(pl->remove_group(g[on ^ 1]).ok());
      auto again = pl->add_group(cls, members(rng() % 16), TargetRef::drop(3));
      if (!again) {  // every slot in a grace period: let the workers pass one
        pl->synchronize();
        again = pl->add_group(cls, members(rng() % 16), TargetRef::drop(3));
      }
      if (!again) {
        ADD_FAILURE() << to_string(again.error());
        break;
      }
      g[on ^ 1] = *again;
    }
  }
  stop = true;
  w1.join();
  w2.join();
  pl->synchronize();
  EXPECT_GT(ops, 100U);
  EXPECT_GT(sent.load(), 0U);
  EXPECT_EQ(ok.load(), sent.load());
  EXPECT_LT(misses.load(), sent.load());
  std::printf("group ops=%llu packets=%llu missed=%llu\n", static_cast<unsigned long long>(ops),
              static_cast<unsigned long long>(sent.load()), static_cast<unsigned long long>(misses.load()));
}

}  // namespace
}  // namespace pspgw::flow
