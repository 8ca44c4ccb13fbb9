// Semantics of one pipe and small graphs: hit / miss / priority / default target, actions, mirror,
// counters across add / remove, generational handles, inner fields, sampling, malformed packets, dump.
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "base/proc_status.hpp"
#include "flow/builder.hpp"
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
Target cpu(uint16_t r) {
  return {TargetKind::kCpu, r};
}
Target drop(uint8_t r) {
  return {TargetKind::kDrop, r};
}

std::vector<uint8_t> to(const char* dst, uint16_t dport = 5678) {
  FrameSpec s;
  s.dst = ip(dst);
  s.dport = dport;
  return frame(s);
}

// Records each call: batch size and arguments; drops packets whose argument is 0xdead.
class RecordingAction final : public BatchAction {
 public:
  void apply(std::span<net::Packet* const> pkts, std::span<const uint64_t> args,
             const ActionContext&) override {
    ++calls;
    for (std::size_t i = 0; i < pkts.size(); ++i) {
      seen_args.push_back(args[i]);
      if (args[i] == 0xdead) pkts[i]->meta.drop_reason = 5;
    }
  }
  std::string name() const override { return "record()"; }
  int calls = 0;
  std::vector<uint64_t> seen_args;
};

struct Fixture : ::testing::Test {
  net::PacketPool pool{512, 2048};
  CollectSink sink{pool};
};

using Pipe1 = Fixture;

std::unique_ptr<Pipeline> one_exact_pipe(uint32_t max_entries = 64) {
  auto r = PipelineBuilder{}
               .add_pipe({.name = "ACL",
                          .match = {match(Field::kIpv4Dst)},
                          .fwd = TargetRef::port(PortId(1)),
                          .miss = TargetRef::cpu(7),
                          .max_entries = max_entries})
               .build();
  EXPECT_TRUE(r.ok());
  return std::move(r).value();
}

TEST_F(Pipe1, ExactHitAndMissGoToTheirTargetsOneSinkCallEach) {
  auto pl = one_exact_pipe();
  auto h = pl->add_entry(PipeId(0), {.match = {eq(Field::kIpv4Dst, ip("10.0.0.2"))}});
  ASSERT_TRUE(h.ok());
  auto w = std::move(pl->attach_worker({.pool = &pool})).value();
  auto b = make_batch(pool, {to("10.0.0.2"), to("10.0.0.9"), to("10.0.0.2"), to("10.0.0.2"), to("1.2.3.4")});
  w->process(b, sink);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(sink.count(port(1)), 3U);
  EXPECT_EQ(sink.count(cpu(7)), 2U);
  EXPECT_EQ(sink.calls, 2U);
  EXPECT_EQ(*pl->entry_hits(*h), 3U);
  auto st = *pl->pipe_stats(PipeId(0));
  EXPECT_EQ(st.hits, 3U);
  EXPECT_EQ(st.misses, 2U);
  EXPECT_EQ(st.entries, 1U);
}

TEST_F(Pipe1, TernaryLowestPriorityWinsAndUnmatchedMisses) {
  auto pl = std::move(PipelineBuilder{}
                          .add_pipe({.name = "T",
                                     .lookup = LookupKind::kTernary,
                                     .match = {match(Field::kIpv4Dst), match(Field::kL4Dst)},
                                     .fwd = TargetRef::drop(),
                                     .miss = TargetRef::kernel()})
                          .build())
                .value();
  ASSERT_TRUE(pl->add_entry(PipeId(0), {.match = {prefix(Field::kIpv4Dst, ip("10.0.0.0"), 8)},
                                        .fwd = TargetRef::port(PortId(1)),
                                        .priority = 10})
                  .ok());
  ASSERT_TRUE(
      pl->add_entry(PipeId(0), {.match = {eq(Field::kIpv4Dst, ip("10.0.0.2")), eq(Field::kL4Dst, 5678)},
                                .fwd = TargetRef::port(PortId(2)),
                                .priority = 1})
          .ok());
  ASSERT_TRUE(
      pl->add_entry(PipeId(0),
                    {.match = {eq(Field::kL4Dst, 5678)}, .fwd = TargetRef::port(PortId(3)), .priority = 20})
          .ok());
  auto w = std::move(pl->attach_worker({.pool = &pool})).value();
  auto b = make_batch(pool, {to("10.0.0.2"), to("10.0.0.3"), to("192.168.0.1"), to("192.168.0.1", 80)});
  for (uint32_t i = 0; i < b.size(); ++i) b[i]->meta.regs[0] = i;
  w->process(b, sink);
  std::array<Target, 4> got{};
  for (const auto& d : sink.out) got[d.pkt->meta.regs[0]] = d.target;
  EXPECT_EQ(got[0], port(2));
  EXPECT_EQ(got[1], port(1));
  EXPECT_EQ(got[2], port(3));
  EXPECT_EQ(got[3], (Target{TargetKind::kKernel, 0}));
}

// Overlapping entries of equal priority: the entry of the mask added first wins, the same whether the pipe
// is small (searched linearly) or big (tuple space), and also when its other entries come and go.
TEST_F(Pipe1, TernaryTieGoesToTheFirstMaskInSmallAndBigPipes) {
  auto pl = std::move(PipelineBuilder{}
                          .add_pipe({.name = "T",
                                     .lookup = LookupKind::kTernary,
                                     .match = {match(Field::kIpv4Dst), match(Field::kL4Dst)},
                                     .fwd = TargetRef::drop(),
                                     .miss = TargetRef::kernel()})
                          .build())
                .value();
  // The first mask is l4.dst's; the tied entry in it comes last (the highest record number).
  ASSERT_TRUE(pl->add_entry(PipeId(0), {.match = {eq(Field::kL4Dst, 1)}, .priority = 1}).ok());
  ASSERT_TRUE(pl->add_entry(PipeId(0), {.match = {eq(Field::kIpv4Dst, ip("10.0.0.2"))},
                                        .fwd = TargetRef::port(PortId(2)),
                                        .priority = 5})
                  .ok());
  ASSERT_TRUE(
      pl->add_entry(PipeId(0),
                    {.match = {eq(Field::kL4Dst, 5678)}, .fwd = TargetRef::port(PortId(1)), .priority = 5})
          .ok());
  auto w = std::move(pl->attach_worker({.pool = &pool})).value();
  const auto winner = [&] {
    auto b = make_batch(pool, {to("10.0.0.2")});
    w->process(b, sink);
    const Target t = sink.out.at(0).target;
    sink.clear();
    return t;
  };
  EXPECT_EQ(winner(), port(1));
  std::vector<EntryHandle> more;  // 20 more entries in the first mask: past the linear search bound
  for (uint16_t d = 2; d <= 21; ++d) {
    auto h = pl->add_entry(PipeId(0), {.match = {eq(Field::kL4Dst, d)}, .priority = 1});
    ASSERT_TRUE(h.ok());
    more.push_back(*h);
  }
  EXPECT_EQ(winner(), port(1));
  for (const EntryHandle& h : more) ASSERT_TRUE(pl->remove_entry(h).ok());
  EXPECT_EQ(winner(), port(1));
}

// A worker extracts only the fields some entry matches (TupleSet::fields): a wide template whose entries name
// one field matches like the full key, whatever the other fields hold or whether the packet has them at
// all; the set follows entries that name more fields and goes back when they go; small (linear) and big
// (tuple space) alike. An empty pipe misses everything.
TEST_F(Pipe1, TernaryMatchesOnTheFieldsItsEntriesNameAsTheTemplateWould) {
  auto pl = std::move(PipelineBuilder{}
                          .add_pipe({.name = "T",
                                     .lookup = LookupKind::kTernary,
                                     .match = {match(Field::kIpv4Src), match(Field::kIpv4Dst),
                                               match(Field::kIpv6Src), match(Field::kIpv6Dst),
                                               match(Field::kL4Dst)},
                                     .fwd = TargetRef::drop(),
                                     .miss = TargetRef::kernel()})
                          .build())
                .value();
  auto w = std::move(pl->attach_worker({.pool = &pool})).value();
  const auto from = [](const char* src, const char* dst, uint16_t dport) {
    FrameSpec f;
    f.src = ip(src);
    f.dst = ip(dst);
    f.dport = dport;
    return frame(f);
  };
  const std::vector<std::vector<uint8_t>> frames = {
      from("10.0.0.1", "10.0.0.2", 53), from("10.9.9.9", "192.168.1.1", 53),
      from("2001:db8::1", "ff02::1", 53), from("10.0.0.1", "10.0.0.2", 80),
      from("2001:db8::1", "2001:db8::2", 80)};
  const auto targets = [&] {
    auto b = make_batch(pool, frames);
    for (uint32_t i = 0; i < b.size(); ++i) b[i]->meta.regs[0] = i;
    w->process(b, sink);
    std::vector<Target> got(frames.size());
    for (const auto& d : sink.out) got[d.pkt->meta.regs[0]] = d.target;
    sink.clear();
    return got;
  };
  const Target kernel{TargetKind::kKernel, 0};
  EXPECT_EQ(targets(), std::vector<Target>(frames.size(), kernel));  // no entry: every packet misses

  auto dns = pl->add_entry(
      PipeId(0), {.match = {eq(Field::kL4Dst, 53)}, .fwd = TargetRef::port(PortId(1)), .priority = 5});
  ASSERT_TRUE(dns.ok());
  const std::vector<Target> by_port = {port(1), port(1), port(1), kernel, kernel};
  EXPECT_EQ(targets(), by_port);
  auto src = pl->add_entry(PipeId(0), {.match = {prefix(Field::kIpv4Src, ip("10.9.0.0"), 16)},
                                       .fwd = TargetRef::port(PortId(2)),
                                       .priority = 0});
  ASSERT_TRUE(src.ok());
  auto v6 = pl->add_entry(
      PipeId(0),
      {.match = {eq(Field::kIpv6Dst, ip("2001:db8::2"))}, .fwd = TargetRef::port(PortId(3)), .priority = 0});
  ASSERT_TRUE(v6.ok());
  const std::vector<Target> all = {port(1), port(2), port(1), kernel, port(3)};
  EXPECT_EQ(targets(), all);
  std::vector<EntryHandle> more;            // past the linear search bound, in l4.dst's mask: tuple space
  for (uint16_t d = 1000; d < 1020; ++d) {  // 20 > flow/pipe.hpp kLinearMaxTernary
    auto h = pl->add_entry(PipeId(0), {.match = {eq(Field::kL4Dst, d)}, .priority = 7});
    ASSERT_TRUE(h.ok());
    more.push_back(*h);
  }
  EXPECT_EQ(targets(), all);
  ASSERT_TRUE(pl->remove_entry(*src).ok());
  ASSERT_TRUE(pl->remove_entry(*v6).ok());
  EXPECT_EQ(targets(), by_port);
  for (const EntryHandle& h : more) ASSERT_TRUE(pl->remove_entry(h).ok());
  EXPECT_EQ(targets(), by_port);
  ASSERT_TRUE(pl->remove_entry(*dns).ok());
  EXPECT_EQ(targets(), std::vector<Target>(frames.size(), kernel));
}

TEST_F(Pipe1, EntryTargetOverridesDefaultAndDropsAreCountedByReason) {
  auto pl = one_exact_pipe();
  ASSERT_TRUE(
      pl->add_entry(PipeId(0), {.match = {eq(Field::kIpv4Dst, ip("10.0.0.3"))}, .fwd = TargetRef::drop(9)})
          .ok());
  ASSERT_TRUE(pl->add_entry(PipeId(0), {.match = {eq(Field::kIpv4Dst, ip("10.0.0.2"))}}).ok());
  auto w = std::move(pl->attach_worker({.pool = &pool})).value();
  auto b = make_batch(pool, {to("10.0.0.3"), to("10.0.0.2"), to("10.0.0.3")});
  w->process(b, sink);
  EXPECT_EQ(sink.count(drop(9)), 2U);
  EXPECT_EQ(sink.count(port(1)), 1U);
  auto st = *pl->pipe_stats(PipeId(0));
  ASSERT_EQ(st.drops.size(), 1U);
  EXPECT_EQ(st.drops[0], (std::pair<uint8_t, uint64_t>{9, 2}));
}

TEST_F(Pipe1, ActionsRunOncePerBatchWithEntryArgumentsAndMetaSteersTheNextPipe) {
  auto act = std::make_shared<RecordingAction>();
  auto pl =
      std::move(PipelineBuilder{}
                    .add_pipe({.name = "EGR_ACL",
                               .match = {match(Field::kIpv4Dst)},
                               .actions = {ActionSpec::set_meta_from_entry(Field::kPktMeta, "crypto_id"),
                                           ActionSpec::call(act, true)},
                               .fwd = TargetRef::pipe("PSP_ENCRYPT"),
                               .miss = TargetRef::cpu(1)})
                    .add_pipe({.name = "PSP_ENCRYPT",
                               .match = {match(Field::kPktMeta)},
                               .fwd = TargetRef::port(PortId(0)),
                               .miss = TargetRef::drop()})
                    .build())
          .value();
  const PipeId acl = *pl->find_pipe("EGR_ACL"), enc = *pl->find_pipe("PSP_ENCRYPT");
  ASSERT_TRUE(pl->add_entry(acl, {.match = {eq(Field::kIpv4Dst, ip("10.0.0.2"))}, .args = {7, 0x77}}).ok());
  ASSERT_TRUE(pl->add_entry(acl, {.match = {eq(Field::kIpv4Dst, ip("10.0.0.3"))}, .args = {8, 0xdead}}).ok());
  ASSERT_TRUE(pl->add_entry(acl, {.match = {eq(Field::kIpv4Dst, ip("10.0.0.4"))}, .args = {9, 0x99}}).ok());
  ASSERT_TRUE(
      pl->add_entry(enc, {.match = {eq(Field::kPktMeta, 7)}, .fwd = TargetRef::port(PortId(2))}).ok());
  ASSERT_TRUE(pl->add_entry(enc, {.match = {eq(Field::kPktMeta, 8)}}).ok());
  auto w = std::move(pl->attach_worker({.pool = &pool})).value();
  auto b = make_batch(pool, {to("10.0.0.2"), to("10.0.0.3"), to("10.0.0.4"), to("10.0.0.2")});
  w->process(b, sink);
  EXPECT_EQ(act->calls, 1);
  EXPECT_EQ(act->seen_args, (std::vector<uint64_t>{0x77, 0xdead, 0x99, 0x77}));
  EXPECT_EQ(sink.count(port(2)), 2U);            // crypto_id 7
  EXPECT_EQ(sink.count(drop(5)), 1U);            // the action dropped 10.0.0.3
  EXPECT_EQ(sink.count(drop(kDropByRule)), 1U);  // crypto_id 9 has no PSP_ENCRYPT entry
  EXPECT_EQ(pl->pipe_stats(acl)->drops, (std::vector<std::pair<uint8_t, uint64_t>>{{5, 1}}));
}

TEST_F(Pipe1, MirrorCopiesHitsAfterActionsAndCountsLostCopies) {
  auto build = [] {
    return std::move(PipelineBuilder{}
                         .add_pipe({.name = "SAMP",
                                    .match = {match(Field::kL4Dst)},
                                    .actions = {ActionSpec::set_meta(Field::kReg1, 42)},
                                    .fwd = TargetRef::port(PortId(0)),
                                    .miss = TargetRef::port(PortId(0)),
                                    .mirror = TargetRef::cpu(3)})
                         .build())
        .value();
  };
  auto pl = build();
  ASSERT_TRUE(pl->add_entry(PipeId(0), {.match = {eq(Field::kL4Dst, 80)}}).ok());
  auto w = std::move(pl->attach_worker({.pool = &pool})).value();
  auto b = make_batch(pool, {to("10.0.0.2", 80), to("10.0.0.2", 81), to("10.0.0.2", 80)});
  w->process(b, sink);
  EXPECT_EQ(sink.count(port(0)), 3U);
  ASSERT_EQ(sink.count(cpu(3)), 2U);
  for (const auto& d : sink.out)
    if (d.target == cpu(3)) {
      EXPECT_EQ(d.pkt->meta.regs[1], 42U);
    }
  EXPECT_EQ(pl->pipe_stats(PipeId(0))->mirrored, 2U);

  auto pl2 = build();  // no pool: copies are lost and counted, originals still forwarded
  ASSERT_TRUE(pl2->add_entry(PipeId(0), {.match = {eq(Field::kL4Dst, 80)}}).ok());
  auto w2 = std::move(pl2->attach_worker()).value();
  sink.clear();
  auto b2 = make_batch(pool, {to("10.0.0.2", 80)});
  w2->process(b2, sink);
  EXPECT_EQ(sink.count(port(0)), 1U);
  EXPECT_EQ(pl2->pipe_stats(PipeId(0))->drops,
            (std::vector<std::pair<uint8_t, uint64_t>>{{kDropMirrorNoBuffer, 1}}));
}

TEST_F(Pipe1, HandlesExpireAndCountersRestartAfterReAdd) {
  auto pl = one_exact_pipe(2);
  const EntrySpec e{.match = {eq(Field::kIpv4Dst, ip("10.0.0.2"))}};
  auto h = *pl->add_entry(PipeId(0), e);
  auto w = std::move(pl->attach_worker({.pool = &pool})).value();
  auto b = make_batch(pool, {to("10.0.0.2"), to("10.0.0.2")});
  w->process(b, sink);
  EXPECT_EQ(*pl->entry_hits(h), 2U);

  ASSERT_TRUE(pl->remove_entry(h).ok());
  EXPECT_EQ(pl->remove_entry(h).error(), FlowError::kStaleHandle);
  EXPECT_EQ(pl->entry_hits(h).error(), FlowError::kStaleHandle);
  sink.clear();
  b = make_batch(pool, {to("10.0.0.2")});
  w->process(b, sink);
  EXPECT_EQ(sink.count(cpu(7)), 1U);  // removed: a miss from the next batch on

  // Churn until the slot is reused: the old handle stays stale, the new entry's count starts at 0.
  EntryHandle again{};
  for (int i = 0; i < 1000 && again.slot != h.slot; ++i) {
    pl->synchronize();
    again = *pl->add_entry(PipeId(0), e);
    if (again.slot != h.slot) {
      ASSERT_TRUE(pl->remove_entry(again).ok());
    }
  }
  ASSERT_EQ(again.slot, h.slot);
  EXPECT_NE(again.generation, h.generation);
  EXPECT_EQ(pl->remove_entry(h).error(), FlowError::kStaleHandle);
  EXPECT_EQ(*pl->entry_hits(again), 0U);
  EXPECT_EQ(pl->remove_entry(EntryHandle{PipeId(9), 0, 1}).error(), FlowError::kStaleHandle);
}

// Records go out in index order, the last released first; a pipe's records, bookkeeping, per-worker hit
// counters and hash index become resident with its entries, not with max_entries (100,000 tunnels' tables
// were ~77 MB of zeroes written ahead); a worker attached after entries exist counts their hits.
TEST_F(Pipe1, RecordsGoOutInOrderAndOnlyUsedOnesBecomeResident) {
  const long before = proc_status_kib("VmRSS");
  auto pl = one_exact_pipe(1U << 20);  // room for 1.5M records: 36 MB of them, 12 MB of counters a worker
  std::vector<EntryHandle> h;
  for (const char* dst : {"10.0.0.1", "10.0.0.2", "10.0.0.3"}) {
    h.push_back(*pl->add_entry(PipeId(0), {.match = {eq(Field::kIpv4Dst, ip(dst))}}));
    EXPECT_EQ(h.back().slot, h.size() - 1);
  }
  auto w = std::move(pl->attach_worker({.pool = &pool})).value();
  // Nor the hash index (16 MB for 2M slots): its EMPTY words are the kernel's zero pages until written.
  EXPECT_LT(proc_status_kib("VmRSS") - before, 8 * 1024);

  auto b = make_batch(pool, {to("10.0.0.2"), to("10.0.0.3"), to("10.0.0.3")});
  w->process(b, sink);
  EXPECT_EQ(*pl->entry_hits(h[1]), 1U);
  EXPECT_EQ(*pl->entry_hits(h[2]), 2U);

  ASSERT_TRUE(pl->remove_entry(h[0]).ok());
  ASSERT_TRUE(pl->remove_entry(h[1]).ok());
  w->quiescent();     // the worker's batch ended: both records are released after the grace period
  pl->synchronize();  // the last released goes out first, then the other, then a fresh one
  EXPECT_EQ(pl->add_entry(PipeId(0), {.match = {eq(Field::kIpv4Dst, ip("10.0.0.4"))}})->slot, 1U);
  const EntryHandle reused = *pl->add_entry(PipeId(0), {.match = {eq(Field::kIpv4Dst, ip("10.0.0.5"))}});
  EXPECT_EQ(reused.slot, 0U);
  EXPECT_EQ(*pl->entry_hits(reused), 0U);
  EXPECT_EQ(pl->add_entry(PipeId(0), {.match = {eq(Field::kIpv4Dst, ip("10.0.0.6"))}})->slot, 3U);
  // A handle naming a record no entry has used yet is stale, like any other.
  EXPECT_EQ(pl->entry_hits(EntryHandle{PipeId(0), 500000, 1}).error(), FlowError::kStaleHandle);
  EXPECT_EQ(pl->remove_entry(EntryHandle{PipeId(0), 4, 1}).error(), FlowError::kStaleHandle);
}

TEST_F(Pipe1, EntryValidationErrorsAreTyped) {
  auto pl =
      std::move(PipelineBuilder{}
                    .add_pipe({.name = "A",
                               .match = {match(Field::kIpv4Dst), match(Field::kRandom, 0xff)},
                               .actions = {ActionSpec::set_meta_from_entry(Field::kPktMeta, "id")},
                               .fwd = TargetRef::pipe("B"),
                               .miss = TargetRef::drop(),
                               .max_entries = 1})
                    .add_pipe({.name = "B", .fwd = TargetRef::port(PortId(0)), .miss = TargetRef::drop()})
                    .build())
          .value();
  const auto add = [&](const EntrySpec& e) { return pl->add_entry(PipeId(0), e); };
  const FieldMatch d = eq(Field::kIpv4Dst, ip("1.1.1.1"));
  EXPECT_EQ(add({.match = {d}, .args = {1}}).error(), FlowError::kMissingField);
  EXPECT_EQ(add({.match = {d, eq(Field::kL4Dst, 1)}, .args = {1}}).error(), FlowError::kFieldNotInTemplate);
  EXPECT_EQ(add({.match = {d, masked(Field::kRandom, 1, 1)}, .args = {1}}).error(),
            FlowError::kMaskNotAllowed);
  EXPECT_EQ(add({.match = {d, eq(Field::kRandom, 0x100)}, .args = {1}}).error(),
            FlowError::kValueOutsideMask);
  EXPECT_EQ(add({.match = {d, eq(Field::kRandom, 1)}}).error(), FlowError::kWrongArgCount);
  EXPECT_EQ(add({.match = {d, eq(Field::kRandom, 1)}, .args = {1}, .fwd = TargetRef::pipe("A")}).error(),
            FlowError::kTargetNotDownstream);
  EXPECT_EQ(add({.match = {d, eq(Field::kRandom, 1)}, .args = {1}, .fwd = TargetRef::pipe("Z")}).error(),
            FlowError::kUnknownPipe);
  ASSERT_TRUE(add({.match = {d, eq(Field::kRandom, 1)}, .args = {1}}).ok());
  EXPECT_EQ(add({.match = {d, eq(Field::kRandom, 1)}, .args = {2}}).error(), FlowError::kTableFull);
  EXPECT_EQ(pl->add_entry(PipeId(7), {}).error(), FlowError::kUnknownPipe);
  // A match-all pipe takes one entry; a second is the same (empty) key.
  ASSERT_TRUE(pl->add_entry(PipeId(1), {}).ok());
  EXPECT_EQ(pl->add_entry(PipeId(1), {}).error(), FlowError::kDuplicateEntry);
}

TEST_F(Pipe1, InnerFieldsAndTunnelHeaderBitsThroughTheLocator) {
  // PSP-shaped: SPI = udp.payload[4:8], S = bit 7 of byte 3; inner packet after the 16-byte header.
  auto pl = std::move(PipelineBuilder{}
                          .inner_locator(std::make_shared<UdpTunnelLocator>(1000, 16, 3, 0x02, 8))
                          .alias(Field::kUdpPayload0, 0x80, "psp.S")
                          .add_pipe({.name = "ACL",
                                     .match = {match(Field::kUdpPayload4), match(Field::kUdpPayload0, 0x80),
                                               match(Field::kInnerIpv4Src)},
                                     .actions = {ActionSpec::set_bits(Field::kUdpPayload0, 0x80, 0)},
                                     .fwd = TargetRef::pipe("CHECK"),
                                     .miss = TargetRef::drop(1)})
                          .add_pipe({.name = "CHECK",
                                     .match = {match(Field::kUdpPayload0, 0x80)},
                                     .fwd = TargetRef::port(PortId(1)),
                                     .miss = TargetRef::port(PortId(2))})
                          .build())
                .value();
  ASSERT_TRUE(
      pl->add_entry(PipeId(0), {.match = {eq(Field::kUdpPayload4, 0x1234), eq(Field::kUdpPayload0, 0x80),
                                          eq(Field::kInnerIpv4Src, ip("192.168.1.1"))}})
          .ok());
  ASSERT_TRUE(pl->add_entry(PipeId(1), {.match = {eq(Field::kUdpPayload0, 0x80)}}).ok());
  auto w = std::move(pl->attach_worker({.pool = &pool})).value();
  const auto p = [](uint32_t spi, bool s, const char* src) {
    return testing::psp_frame(spi, s, ip(src), ip("192.168.1.2"));
  };
  auto b = make_batch(pool, {p(0x1234, true, "192.168.1.1"), p(0x1234, false, "192.168.1.1"),
                             p(0x1235, true, "192.168.1.1"), p(0x1234, true, "192.168.1.9")});
  w->process(b, sink);
  EXPECT_EQ(sink.count(port(2)), 1U);  // hit; S cleared by the action, so CHECK misses
  EXPECT_EQ(sink.count(drop(1)), 3U);
  EXPECT_NE(pl->to_mermaid().find("M:udp.payload[4:8],psp.S,inner.ipv4.src"), std::string::npos);
}

TEST_F(Pipe1, RandomSamplingHitsAboutOneInFour) {
  auto pl = std::move(PipelineBuilder{}
                          .add_pipe({.name = "SAMP",
                                     .match = {match(Field::kRandom, 0x3)},
                                     .fwd = TargetRef::port(PortId(1)),
                                     .miss = TargetRef::port(PortId(0))})
                          .build())
                .value();
  ASSERT_TRUE(pl->add_entry(PipeId(0), {.match = {eq(Field::kRandom, 1)}}).ok());
  auto w = std::move(pl->attach_worker({.pool = &pool, .seed = 12345})).value();
  std::size_t sampled = 0;
  for (int round = 0; round < 100; ++round) {
    auto b = make_batch(pool, std::vector<std::vector<uint8_t>>(64, to("10.0.0.1")));
    w->process(b, sink);
    sampled += sink.count(port(1));
    sink.clear();
  }
  EXPECT_GT(sampled, 1300U);  // expected 1600 of 6400
  EXPECT_LT(sampled, 1900U);
}

TEST_F(Pipe1, MalformedAndShortPacketsMissWithoutTouchingBytesBeyondTheirEnd) {
  auto pl = std::move(PipelineBuilder{}
                          .add_pipe({.name = "T",
                                     .lookup = LookupKind::kTernary,
                                     .match = {match(Field::kEtherType), match(Field::kL4Dst),
                                               match(Field::kUdpPayload4)},
                                     .fwd = TargetRef::port(PortId(1)),
                                     .miss = TargetRef::kernel()})
                          .build())
                .value();
  ASSERT_TRUE(pl->add_entry(PipeId(0), {.match = {eq(Field::kEtherType, 0x0800)}, .priority = 5}).ok());
  ASSERT_TRUE(pl->add_entry(PipeId(0), {.match = {eq(Field::kUdpPayload4, 0x41414141)},
                                        .fwd = TargetRef::port(PortId(2)),
                                        .priority = 1})
                  .ok());
  auto w = std::move(pl->attach_worker({.pool = &pool})).value();
  const auto good = to("10.0.0.2");
  for (std::size_t len = 0; len <= good.size(); ++len) {
    auto b = make_batch(
        pool, {std::vector<uint8_t>(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(len))});
    w->process(b, sink);
    ASSERT_EQ(sink.out.size(), 1U);
    const Target want = len < 14 ? Target{TargetKind::kKernel, 0} : len < good.size() ? port(1) : port(2);
    EXPECT_EQ(sink.out[0].target, want) << len;
    sink.clear();
  }
}

TEST_F(Pipe1, DumpsMermaidInTheSeedStyleAndJson) {
  auto pl = one_exact_pipe();
  ASSERT_TRUE(pl->add_entry(PipeId(0), {.match = {eq(Field::kIpv4Dst, ip("10.0.0.2"))}}).ok());
  auto w = std::move(pl->attach_worker({.pool = &pool})).value();
  auto b = make_batch(pool, {to("10.0.0.2"), to("10.0.0.7")});
  w->process(b, sink);
  const std::string m = pl->to_mermaid();
  EXPECT_NE(m.find("flowchart LR"), std::string::npos);
  EXPECT_NE(m.find("ingress-->ACL"), std::string::npos);
  EXPECT_NE(m.find("ACL[\"ACL\n    M:ipv4.dst\"]"), std::string::npos) << m;
  EXPECT_NE(m.find("ACL-->|\"M:ipv4.dst=10.0.0.2\n    n=1\"|port1"), std::string::npos) << m;
  EXPECT_NE(m.find("ACL-.->|\"miss\n    n=1\"|RSS7"), std::string::npos) << m;
  EXPECT_NE(m.find("RSS7[[RSS7]]"), std::string::npos) << m;
  const auto j = nlohmann::json::parse(pl->to_json());
  EXPECT_EQ(j["root"], "ACL");
  EXPECT_EQ(j["pipes"][0]["counters"]["hits"], 1);
  EXPECT_EQ(j["pipes"][0]["miss"]["kind"], "cpu");
  EXPECT_EQ(j["pipes"][0]["entry_list"][0]["match"], "ipv4.dst=10.0.0.2");
}

}  // namespace
}  // namespace pspgw::flow
