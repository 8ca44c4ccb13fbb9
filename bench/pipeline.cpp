// Flow pipeline benchmarks (issue 3): one exact-match pipe at 1 / 10k / 100k / 1M entries, the 5-pipe H2N
// graph without crypto on 64-byte packets, the chain pipes' cost (issue 8), the gateway's ROOT alone,
// entry inserts per second while a worker forwards, and the H2N graph run by 1..N workers at once (issue 9
// step 5: N = this machine's CPUs).
// Run: build/bin/bench_pipeline --benchmark_min_time=0.5   (one forwarding core; the insert benchmark
// adds a second thread for the worker; BM_H2NWorkers/threads:N runs N).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "base/byteorder.hpp"
#include "flow/builder.hpp"
#include "flow/pipeline.hpp"
#include "net/packet.hpp"

namespace pspgw::flow {
namespace {

constexpr uint32_t kFrameSize = 64;     // Ethernet + IPv4 + UDP + 22 bytes
constexpr std::size_t kPackets = 8192;  // 128 batches, destinations spread over the whole table

// Discards: the packets belong to the benchmark and are reused as they are.
class NullSink final : public Sink {
 public:
  void to_port(PortId, std::span<net::Packet* const> p) override { n += p.size(); }
  void to_cpu(uint16_t, std::span<net::Packet* const> p) override {
    n += p.size();
    if (copies != nullptr)  // the CPU only gets mirror copies here
      for (net::Packet* c : p) copies->free(c);
  }
  void to_kernel(std::span<net::Packet* const> p) override { n += p.size(); }
  void dropped(uint8_t, std::span<net::Packet* const> p) override { n += p.size(); }
  uint64_t n = 0;
  net::PacketPool* copies = nullptr;
};

// A no-op stand-in for encap / encrypt (the graph "without crypto").
class Noop final : public BatchAction {
 public:
  explicit Noop(std::string n) : name_(std::move(n)) {}
  // Reads each packet's argument and writes nothing shared: one instance serves every worker at once.
  void apply(std::span<net::Packet* const> pkts, std::span<const uint64_t> args,
             const ActionContext&) override {
    uint64_t sum = 0;
    for (std::size_t i = 0; i < pkts.size(); ++i) sum += args[i];
    benchmark::DoNotOptimize(sum);
  }
  std::string name() const override { return name_; }

 private:
  std::string name_;
};

uint32_t dst_of(uint32_t i) {
  return 0x0a000000U + i * 2654435761U % 0x00ffffffU;
}  // 10.x.y.z, distinct

net::IpAddr v4(uint32_t a) {
  const std::array<uint8_t, 4> b{static_cast<uint8_t>(a >> 24), static_cast<uint8_t>(a >> 16),
                                 static_cast<uint8_t>(a >> 8), static_cast<uint8_t>(a)};
  return net::IpAddr::v4(b);
}

void write_frame(net::Packet& p, uint32_t dst) {
  std::array<uint8_t, kFrameSize> f{};
  f[12] = 0x08;
  f[14] = 0x45;
  store_be16(&f[16], kFrameSize - 14);
  f[22] = 64;
  f[23] = 17;
  store_be32(&f[26], 0x0b000001);
  store_be32(&f[30], dst);
  store_be16(&f[34], 1234);
  store_be16(&f[36], 5678);
  store_be16(&f[38], kFrameSize - 34);
  (void)p.assign(f);
  p.meta.in_port = PortId(1);
}

// Packets to random entries of a table of `entries`.
struct Traffic {
  Traffic(uint32_t entries, uint64_t seed) : pool(kPackets, 256) {
    std::mt19937_64 rng(seed);
    for (std::size_t i = 0; i < kPackets; ++i) {
      pkts.push_back(pool.alloc());
      write_frame(*pkts.back(), dst_of(static_cast<uint32_t>(rng() % entries)));
    }
  }
  // Forwards every packet once, in batches of 64; returns packets processed.
  uint64_t round(Worker& w, Sink& sink, PipeId start) {
    for (std::size_t i = 0; i < kPackets; i += net::kMaxBatch) {
      net::PacketBatch b;
      for (std::size_t k = 0; k < net::kMaxBatch; ++k) b.push(pkts[i + k]);
      w.process(b, start, sink);
    }
    return kPackets;
  }
  net::PacketPool pool;
  std::vector<net::Packet*> pkts;
};

std::unique_ptr<Pipeline> exact_pipe(uint32_t entries) {
  auto pl = std::move(PipelineBuilder{}
                          .max_workers(2)
                          .add_pipe({.name = "ACL",
                                     .match = {match(Field::kIpv4Dst)},
                                     .fwd = TargetRef::port(PortId(0)),
                                     .miss = TargetRef::cpu(0),
                                     .max_entries = entries})
                          .build())
                .value();
  for (uint32_t i = 0; i < entries; ++i)
    if (!pl->add_entry(PipeId(0), {.match = {eq(Field::kIpv4Dst, v4(dst_of(i)))}}).ok()) std::abort();
  return pl;
}

void report(benchmark::State& state, uint64_t packets) {
  state.SetItemsProcessed(static_cast<int64_t>(packets));
  state.counters["ns/pkt"] = benchmark::Counter(static_cast<double>(packets) * 1e-9,
                                                benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["Mpps"] =
      benchmark::Counter(static_cast<double>(packets) * 1e-6, benchmark::Counter::kIsRate);
}

void BM_ExactPipe(benchmark::State& state) {
  const auto entries = static_cast<uint32_t>(state.range(0));
  static std::map<uint32_t, std::unique_ptr<Pipeline>> cache;  // a 1M-entry table is built once
  auto& pl = cache[entries];
  if (!pl) pl = exact_pipe(entries);
  auto w = std::move(pl->attach_worker()).value();
  Traffic t(entries, 1);
  NullSink sink;
  uint64_t packets = 0;
  // NOLINTNEXTLINE(clang-analyzer-deadcode.DeadStores): the benchmark idiom
  for (auto _ : state) packets += t.round(*w, sink, pl->root());
  if (sink.n != packets) state.SkipWithError("lost packets");
  report(state, packets);
}
BENCHMARK(BM_ExactPipe)->Arg(1)->Arg(10'000)->Arg(100'000)->Arg(1'000'000);

// Seed 002 without crypto: ROOT -> EMPTY (DOCA's vestigial domain-crossing pipe) -> EGR_ACL (encap stub,
// pkt_meta = crypto_id) -> EGR_SAMP (1 in 65536, S bit, mirror) -> PSP_ENCRYPT (encrypt stub) -> p0.
std::unique_ptr<Pipeline> h2n(uint32_t peers, uint16_t max_workers = 2) {
  PipelineBuilder b;
  b.max_workers(max_workers);
  b.add_pipe({.name = "ROOT",
              .lookup = LookupKind::kTernary,
              .match = {match(Field::kInPort), match(Field::kEtherType), match(Field::kIpProto),
                        match(Field::kL4Dst)},
              .miss = TargetRef::kernel(),
              .max_entries = 8});
  b.add_entry("ROOT", {.match = {eq(Field::kInPort, 1), eq(Field::kEtherType, 0x0800)},
                       .fwd = TargetRef::pipe("EMPTY"),
                       .priority = 10});
  b.add_entry("ROOT", {.match = {eq(Field::kInPort, 1), eq(Field::kEtherType, 0x0806)},
                       .fwd = TargetRef::cpu(3),
                       .priority = 1});
  b.add_entry("ROOT", {.match = {eq(Field::kInPort, 1), eq(Field::kEtherType, 0x0800),
                                 eq(Field::kIpProto, 17), eq(Field::kL4Dst, 67)},
                       .fwd = TargetRef::cpu(3),
                       .priority = 1});
  b.add_pipe({.name = "EMPTY", .fwd = TargetRef::pipe("EGR_ACL"), .miss = TargetRef::drop()});
  b.add_entry("EMPTY", {});
  b.add_pipe({.name = "EGR_ACL",
              .match = {match(Field::kIpv4Dst)},
              .actions = {ActionSpec::call(std::make_shared<Noop>("encap()")),
                          ActionSpec::set_meta_from_entry(Field::kPktMeta, "crypto_id")},
              .fwd = TargetRef::pipe("EGR_SAMP"),
              .miss = TargetRef::cpu(1),
              .max_entries = peers});
  b.add_pipe({.name = "EGR_SAMP",
              .match = {match(Field::kRandom, 0xffff)},
              .actions = {ActionSpec::set_bits(Field::kUdpPayload0, 0x80, 0x80)},
              .fwd = TargetRef::pipe("PSP_ENCRYPT"),
              .miss = TargetRef::pipe("PSP_ENCRYPT"),
              .mirror = TargetRef::cpu(2)});
  b.add_entry("EGR_SAMP", {.match = {eq(Field::kRandom, 1)}});
  b.add_pipe({.name = "PSP_ENCRYPT",
              .match = {match(Field::kPktMeta)},
              .actions = {ActionSpec::call(std::make_shared<Noop>("encrypt()"), true)},
              .fwd = TargetRef::port(PortId(0)),
              .miss = TargetRef::drop(),
              .max_entries = peers});
  auto pl = std::move(b.build()).value();
  const PipeId acl = *pl->find_pipe("EGR_ACL"), enc = *pl->find_pipe("PSP_ENCRYPT");
  for (uint32_t i = 0; i < peers; ++i) {
    if (!pl->add_entry(acl, {.match = {eq(Field::kIpv4Dst, v4(dst_of(i)))}, .args = {i}}).ok()) std::abort();
    if (!pl->add_entry(enc, {.match = {eq(Field::kPktMeta, i)}, .args = {i}}).ok()) std::abort();
  }
  return pl;
}

void BM_H2NGraph5Pipes(benchmark::State& state) {
  const auto peers = static_cast<uint32_t>(state.range(0));
  auto pl = h2n(peers);
  net::PacketPool mirror_pool(1024, 256);
  auto w = std::move(pl->attach_worker({.pool = &mirror_pool})).value();
  Traffic t(peers, 2);
  NullSink sink;
  sink.copies = &mirror_pool;
  uint64_t packets = 0;
  // NOLINTNEXTLINE(clang-analyzer-deadcode.DeadStores): the benchmark idiom
  for (auto _ : state) packets += t.round(*w, sink, pl->root());
  report(state, packets);
  state.counters["mirrored"] = static_cast<double>(pl->pipe_stats(*pl->find_pipe("EGR_SAMP"))->mirrored);
}
BENCHMARK(BM_H2NGraph5Pipes)->Arg(1024)->Arg(100'000);

// Workers in parallel (issue 9 step 5, "no shared cache line written per batch"): N threads, each a Worker of
// ONE pipeline, the 5-pipe H2N graph at 100,000 peers, each thread with its own packets (to entries of the
// whole table), mirror pool and sink. They share what the daemon's workers share: the pipes' tables and
// records (read), the epoch domain (each worker announces in its own slot), the per-worker entry counters.
// Mpps is the sum over the threads in real time; scaling = Mpps(threads:N) / (N x Mpps(threads:1)). Run
// alone on an otherwise idle machine: build/bin/bench_pipeline --benchmark_filter=H2NWorkers
// --benchmark_min_time=1
constexpr uint16_t kMaxBenchWorkers = 64;
Pipeline& shared_h2n() {
  static const std::unique_ptr<Pipeline> pl = h2n(100'000, kMaxBenchWorkers);  // built once, thread-safe
  return *pl;
}
void BM_H2NWorkers(benchmark::State& state) {
  Pipeline& pl = shared_h2n();
  net::PacketPool mirror_pool(1024, 256);
  auto w = pl.attach_worker({.pool = &mirror_pool});
  if (!w) {
    state.SkipWithError("no worker slot");
    return;
  }
  Traffic t(100'000, 3 + static_cast<uint64_t>(state.thread_index()));
  NullSink sink;
  sink.copies = &mirror_pool;
  uint64_t packets = 0;
  // NOLINTNEXTLINE(clang-analyzer-deadcode.DeadStores): the benchmark idiom
  for (auto _ : state) packets += t.round(**w, sink, pl.root());
  if (sink.n < packets) state.SkipWithError("lost packets");  // (mirror copies count too)
  state.SetItemsProcessed(static_cast<int64_t>(packets));
  state.counters["Mpps"] =
      benchmark::Counter(static_cast<double>(packets) * 1e-6, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_H2NWorkers)
    ->ThreadRange(1, static_cast<int>(std::clamp<unsigned>(std::thread::hardware_concurrency(), 1,
                                                           kMaxBenchWorkers)))
    ->UseRealTime();

// Service chains (issue 8, src/gateway/topology.cpp build_chains): what the chain pipes cost a host packet
// on its way to EGR_ACL (1024 tunnels). Arg 0: ROOT -> EGR_ACL, no chain pipes (before issue 8); 1: ROOT ->
// SFC_EXIT (ternary, only the never-steered multicast/broadcast entries: a unicast packet misses on) ->
// EGR_ACL, what every packet pays now without a chain;
// 2: an exit-lport classifier (ip.proto == 17) in SFC_EXIT steers every packet to a select group of two
// VNF ports (the symmetric hash picks one): the first pass of a chained packet; 3: the packet back from the
// VNF: SFC_HOP (in-port + source VIP, sets in_port back to the workload's) -> EGR_ACL: the second pass.
std::unique_ptr<Pipeline> chain_graph(int chain_case) {
  PipelineBuilder b;
  b.max_workers(2);
  b.add_pipe({.name = "ROOT",
              .lookup = LookupKind::kTernary,
              .match = {match(Field::kInPort), match(Field::kEtherType)},
              .miss = TargetRef::drop(),
              .max_entries = 8});
  const std::string after_root = chain_case == 0 ? "EGR_ACL" : "SFC_EXIT";
  b.add_entry("ROOT", {.match = {eq(Field::kInPort, 1), eq(Field::kEtherType, 0x0800)},
                       .fwd = TargetRef::pipe(after_root),
                       .priority = 20});
  b.add_entry("ROOT", {.match = {eq(Field::kInPort, 7), eq(Field::kEtherType, 0x0800)},
                       .fwd = TargetRef::pipe(chain_case == 0 ? "EGR_ACL" : "SFC_HOP"),
                       .priority = 20});
  if (chain_case != 0) {
    b.add_pipe({.name = "SFC_EXIT",
                .lookup = LookupKind::kTernary,
                .match = {match(Field::kInPort), match(Field::kEtherType), match(Field::kIpProto),
                          match(Field::kIpv4Src), match(Field::kIpv4Dst), match(Field::kL4Src),
                          match(Field::kL4Dst)},
                .fwd = TargetRef::pipe("EGR_ACL"),
                .miss = TargetRef::pipe("EGR_ACL"),
                .max_entries = 64});
    b.add_pipe({.name = "SFC_HOP",
                .lookup = LookupKind::kTernary,
                .match = {match(Field::kInPort), match(Field::kEtherType), match(Field::kIpv4Src),
                          match(Field::kIpv4Dst)},
                .actions = {ActionSpec::set_meta_from_entry(Field::kInPort, "workload_port")},
                .fwd = TargetRef::pipe("EGR_ACL"),
                .miss = TargetRef::drop(),
                .max_entries = 64});
  }
  b.add_pipe({.name = "EGR_ACL",
              .match = {match(Field::kIpv4Dst)},
              .fwd = TargetRef::port(PortId(0)),
              .miss = TargetRef::cpu(1),
              .max_entries = 1024});
  auto pl = std::move(b.build()).value();
  for (uint32_t i = 0; i < 1024; ++i) {
    if (!pl->add_entry(*pl->find_pipe("EGR_ACL"), {.match = {eq(Field::kIpv4Dst, v4(dst_of(i)))}}).ok())
      std::abort();
  }
  if (chain_case != 0) {  // the never-steered multicast/broadcast entries every SFC_EXIT holds
    const auto mcast = net::IpAddr::parse("224.0.0.0");
    const auto bcast = net::IpAddr::parse("255.255.255.255");
    for (const auto& m : {prefix(Field::kIpv4Dst, *mcast, 4), eq(Field::kIpv4Dst, *bcast)}) {
      if (!pl->add_entry(*pl->find_pipe("SFC_EXIT"), {.match = {eq(Field::kEtherType, 0x0800), m}}).ok())
        std::abort();
    }
  }
  if (chain_case >= 2) {
    const std::vector<TargetRef> vnfs{TargetRef::port(PortId(5)), TargetRef::port(PortId(6))};
    auto g = pl->add_group(*pl->find_pipe("SFC_HOP"), vnfs, TargetRef::drop());
    if (!g) std::abort();
    if (!pl->add_entry(
               *pl->find_pipe("SFC_EXIT"),
               {.match = {eq(Field::kInPort, 1), eq(Field::kEtherType, 0x0800), eq(Field::kIpProto, 17)},
                .fwd = TargetRef::group(*g),
                .priority = 1})
             .ok())
      std::abort();
    if (!pl->add_entry(*pl->find_pipe("SFC_HOP"),
                       {.match = {eq(Field::kInPort, 7), eq(Field::kEtherType, 0x0800),
                                  eq(Field::kIpv4Src, v4(0x0b000001))},

                        .args = {1},
                        .fwd = TargetRef::pipe("EGR_ACL"),
                        .priority = 1})
             .ok())
      std::abort();
  }
  return pl;
}

void BM_ChainPipes(benchmark::State& state) {
  const auto chain_case = static_cast<int>(state.range(0));
  auto pl = chain_graph(chain_case);
  auto w = std::move(pl->attach_worker()).value();
  Traffic t(1024, 5);
  if (chain_case == 3) {
    for (net::Packet* p : t.pkts) p->meta.in_port = PortId(7);  // back from the VNF
  }
  NullSink sink;
  uint64_t packets = 0;
  // NOLINTNEXTLINE(clang-analyzer-deadcode.DeadStores): the benchmark idiom
  for (auto _ : state) {
    packets += t.round(*w, sink, pl->root());
    if (chain_case == 3) {
      for (net::Packet* p : t.pkts) p->meta.in_port = PortId(7);  // SFC_HOP set it to the workload's
    }
  }
  if (sink.n != packets) state.SkipWithError("lost packets");
  report(state, packets);
}
BENCHMARK(BM_ChainPipes)->Arg(0)->Arg(1)->Arg(2)->Arg(3);

// The gateway's ROOT (src/gateway/topology.cpp): ternary on port, eth.type, ip.proto, l4.dst, ipv6.dst; the
// PSP entry, then per host port ARP / IPv6 multicast / DHCP exceptions and the forward entry, over 3 masks.
// Host traffic (IPv4/UDP from port 1) hits the forward entry, the lowest priority: the last one searched.
// 1 host port: 5 entries (searched linearly); 4 host ports: 17 entries (tuple space).
std::unique_ptr<Pipeline> gateway_root(uint16_t host_ports) {
  PipelineBuilder b;
  b.max_workers(2);
  b.add_pipe({.name = "ROOT",
              .lookup = LookupKind::kTernary,
              .match = {match(Field::kInPort), match(Field::kEtherType), match(Field::kIpProto),
                        match(Field::kL4Dst), match(Field::kIpv6Dst)},
              .miss = TargetRef::drop(),
              .max_entries = 8 + 8U * host_ports});
  b.add_entry("ROOT", {.match = {eq(Field::kInPort, 0), eq(Field::kEtherType, 0x86dd),
                                 eq(Field::kIpProto, 17), eq(Field::kL4Dst, 1000)},
                       .fwd = TargetRef::port(PortId(9)),
                       .priority = 10});
  const auto ff00 = net::IpAddr::parse("ff00::");
  for (uint16_t hp = 1; hp <= host_ports; ++hp) {
    const auto port = eq(Field::kInPort, hp);
    b.add_entry("ROOT",
                {.match = {port, eq(Field::kEtherType, 0x0806)}, .fwd = TargetRef::cpu(0), .priority = 5});
    b.add_entry("ROOT", {.match = {port, eq(Field::kEtherType, 0x86dd), prefix(Field::kIpv6Dst, *ff00, 8)},
                         .fwd = TargetRef::cpu(0),
                         .priority = 5});
    b.add_entry("ROOT", {.match = {port, eq(Field::kEtherType, 0x0800), eq(Field::kIpProto, 17),
                                   eq(Field::kL4Dst, 67)},
                         .fwd = TargetRef::cpu(0),
                         .priority = 5});
    b.add_entry(
        "ROOT",
        {.match = {port, eq(Field::kEtherType, 0x0800)}, .fwd = TargetRef::port(PortId(0)), .priority = 20});
  }
  return std::move(b.build()).value();
}

void BM_GatewayRoot(benchmark::State& state) {
  auto pl = gateway_root(static_cast<uint16_t>(state.range(0)));
  auto w = std::move(pl->attach_worker()).value();
  Traffic t(1024, 4);
  NullSink sink;
  uint64_t packets = 0;
  // NOLINTNEXTLINE(clang-analyzer-deadcode.DeadStores): the benchmark idiom
  for (auto _ : state) packets += t.round(*w, sink, pl->root());
  if (sink.n != packets || pl->pipe_stats(pl->root())->misses != 0) state.SkipWithError("not all forwarded");
  report(state, packets);
}
BENCHMARK(BM_GatewayRoot)->Arg(1)->Arg(4);

// Inserts/s into a 100k-entry table while another thread forwards through it.
void BM_InsertWithTraffic(benchmark::State& state) {
  constexpr uint32_t kBase = 100'000, kExtra = 400'000;
  auto big = std::move(PipelineBuilder{}
                           .max_workers(2)
                           .add_pipe({.name = "ACL",
                                      .match = {match(Field::kIpv4Dst)},
                                      .fwd = TargetRef::port(PortId(0)),
                                      .miss = TargetRef::cpu(0),
                                      .max_entries = kBase + kExtra})
                           .build())
                 .value();
  for (uint32_t i = 0; i < kBase; ++i)
    if (!big->add_entry(PipeId(0), {.match = {eq(Field::kIpv4Dst, v4(dst_of(i)))}}).ok()) std::abort();
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> forwarded{0};
  std::thread worker([&] {
    auto w = std::move(big->attach_worker()).value();
    Traffic t(kBase, 3);
    NullSink sink;
    while (!stop.load(std::memory_order_relaxed))
      forwarded.fetch_add(t.round(*w, sink, PipeId(0)), std::memory_order_relaxed);
  });
  std::vector<EntryHandle> added;
  added.reserve(kExtra);
  uint64_t inserts = 0;
  const uint64_t fwd0 = forwarded.load();
  const auto t0 = std::chrono::steady_clock::now();
  // NOLINTNEXTLINE(clang-analyzer-deadcode.DeadStores): the benchmark idiom
  for (auto _ : state) {
    if (added.size() == kExtra) {
      state.PauseTiming();
      for (const auto& h : added) (void)big->remove_entry(h);
      added.clear();
      big->synchronize();
      state.ResumeTiming();
    }
    auto h = big->add_entry(
        PipeId(0), {.match = {eq(Field::kIpv4Dst, v4(dst_of(kBase + static_cast<uint32_t>(added.size()))))}});
    if (!h) {
      state.SkipWithError("insert failed");
      break;
    }
    added.push_back(*h);
    ++inserts;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const uint64_t fwd = forwarded.load() - fwd0;
  stop = true;
  worker.join();
  state.counters["inserts/s"] = benchmark::Counter(static_cast<double>(inserts), benchmark::Counter::kIsRate);
  state.counters["worker_Mpps"] = static_cast<double>(fwd) / secs / 1e6;
}
BENCHMARK(BM_InsertWithTraffic)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace pspgw::flow

BENCHMARK_MAIN();
