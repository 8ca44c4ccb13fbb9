// N workers through the gateway's own pipeline at once (issue 9 step 5: "with N workers on N cores, >= 0.8
// x N of one worker"). Everything a PacketWorker runs between its port reads and writes, in N threads:
// the gateway's Topology (ROOT, EGR_ACL, PSP_ENCRYPT / PSP_DECRYPT, INGR_ACL, SFC_ENTRY, SYND_STATS; the real
// encap(), encrypt(), decrypt() and decap() actions), one SaTable and MasterKeyBoard shared by all, one
// flow::Worker, WorkerPsp (intel-ipsec-mb backend, IV counter, key cache) and packet pool per thread, the
// workers online in both epoch domains with a quiescent point per batch, as PacketWorker::run does.
//
//   encrypt  frames from the workload (Ethernet + IPv4 + UDP, `bytes` long) copied into pool packets (what a
//            TAP read does), 32 a batch, to 1,024 tunnels: through the host-to-net pipes to the network port
//   decrypt  the datagrams gateway A's pipeline made of them, copied into pool packets (what recvmmsg does),
//            outer headers synthesized (wrap_received), through the net-to-host pipes to the host port
//
// No kernel: port I/O is what the kernel spends on each worker's own queues and sockets. What this shows is
// whether the workers slow each other down (a shared line written per batch or per packet, a lock, the
// memory bus). Each thread count runs `rounds` times, the thread counts interleaved (a shared machine's
// load drifts); the table gives the median aggregate rate and the median over rounds of scaling =
// rate(N) / (N x rate(1)), both rates of the same round.
//
// Run (root not needed): build/bin/bench_workers [--threads 1,2,...] [--bytes 1400] [--seconds 1]
//                        [--rounds 5] [--direction both|encrypt|decrypt] [--table]
//                        (default threads: 1 up to this machine's CPUs, doubling)
// --table: the most workers' rows only, as bench/scale's table rows (| | result | target |).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "crypto/aead.hpp"
#include "flow/epoch.hpp"
#include "gateway/outer.hpp"
#include "gateway/psp_actions.hpp"
#include "gateway/sa_table.hpp"
#include "gateway/test_frames.hpp"
#include "gateway/topology.hpp"
#include "net/packet.hpp"
#include "psp/key_ring.hpp"

namespace pspgw::bench {
namespace {

using Clock = std::chrono::steady_clock;
using gateway::test::ip;
using gateway::test::mac;
constexpr std::size_t kTunnels = 1024;
constexpr std::size_t kBatch = 32;

struct Frame {
  std::vector<uint8_t> bytes;
  net::IpAddr peer;  // decrypt: the datagram's source
  uint16_t peer_port = 0;
};

// Counts what leaves the pipeline and gives the packets back to their pool.
class CountingSink final : public flow::Sink {
 public:
  explicit CountingSink(net::PacketPool& pool) : pool_(pool) {}
  void to_port(PortId, std::span<net::Packet* const> p) override { done(delivered, p); }
  void to_cpu(uint16_t, std::span<net::Packet* const> p) override { done(other, p); }
  void to_kernel(std::span<net::Packet* const> p) override { done(other, p); }
  void dropped(uint8_t, std::span<net::Packet* const> p) override { done(other, p); }
  uint64_t delivered = 0;
  uint64_t other = 0;  // anything else: the benchmark's set-up is wrong

 private:
  void done(uint64_t& n, std::span<net::Packet* const> p) {
    n += p.size();
    for (net::Packet* q : p) pool_.free(q);
  }
  net::PacketPool& pool_;
};

// One gateway's data plane with room for `workers` workers (gateway.cpp's set-up without ports).
struct Side {
  Side(uint16_t workers, net::IpAddr pip_, net::MacAddr local_mac_)
      : pip(pip_),
        local_mac(local_mac_),
        sa_epoch(workers),
        sas(static_cast<uint32_t>(2 * kTunnels), sa_epoch) {
    for (uint16_t w = 0; w < workers; ++w) {
      // The daemon's backend: intel-ipsec-mb where the CPU has AES-NI.
      psp.push_back(std::make_unique<gateway::WorkerPsp>(w, crypto::make_default_backend(), 2 * kTunnels));
    }
    auto hp = std::make_unique<gateway::HostPortInfo>();
    hp->gateway_mac = mac("02:50:00:00:00:01");
    hp->workload_mac.store(gateway::test::mac_bits(mac("02:00:00:00:0b:0b")));
    host_ports.push_back(std::move(hp));
    gateway::PspContext ctx;
    ctx.sas = &sas;
    ctx.master_keys = &keys;
    ctx.workers = &psp;
    ctx.host_ports = &host_ports;
    ctx.local_mac = local_mac;
    ctx.nexthop_mac = mac("02:50:00:00:ee:01");
    gateway::TopologyOptions o;
    o.host_ports = {PortId{1}};
    o.workers = workers;
    o.max_tunnels = kTunnels;
    auto t = gateway::Topology::build(o, ctx);
    if (!t) throw std::runtime_error("topology: " + t.error());
    topo = std::move(*t);
  }

  net::IpAddr pip;
  net::MacAddr local_mac;
  flow::EpochDomain sa_epoch;
  gateway::SaTable sas;
  gateway::MasterKeyBoard keys;
  std::vector<std::unique_ptr<gateway::WorkerPsp>> psp;
  std::vector<std::unique_ptr<gateway::HostPortInfo>> host_ports;
  std::unique_ptr<gateway::Topology> topo;
};

// Two gateways, A (sender) and B (receiver), with kTunnels tunnels A -> B, and the frames of each side.
struct Setup {
  Setup(uint16_t workers, std::size_t bytes)
      : a(workers, ip("2001:db8::1"), mac("02:50:00:00:0a:01")),
        b(workers, ip("2001:db8::2"), mac("02:50:00:00:0b:01")),
        ring_b(psp::KeyRing::with_random_key()) {
    b.keys.publish(ring_b.snapshot());
    const net::IpAddr vip_a = ip("10.1.0.1");
    for (std::size_t t = 0; t < kTunnels; ++t) {
      const net::IpAddr vip_b = ip("10.2." + std::to_string(t / 250) + "." + std::to_string(1 + t % 250));
      const uint32_t spi = ring_b.allocate_spi().value();
      psp::SealParams p;
      p.spi = spi;
      p.version = psp::PspVersion::kAesGcm256;  // the daemon's default --psp-version 1
      p.crypt_offset = 5;                       // the inner IPv4 header in the clear, as bench_psp_seal
      auto key = ring_b.derive(spi, p.version).value();
      auto id = a.sas.install(
          std::make_unique<gateway::TxSa>(p, psp::OuterHeaders{a.pip, b.pip}, key.bytes.clone(), workers));
      if (!id.ok() || !a.topo->add_egress(vip_a, vip_b, *id, 0).ok() ||
          !b.topo->add_ingress(spi, vip_a, vip_b, 0).ok())
        throw std::runtime_error("tunnel set-up failed");
      gateway::test::UdpSpec s;
      s.src_mac = mac("02:00:00:00:0a:0a");
      s.dst_mac = a.host_ports[0]->gateway_mac;
      s.src = vip_a;
      s.dst = vip_b;
      s.sport = static_cast<uint16_t>(40000 + t);
      const std::size_t headers = 14 + 20 + 8;
      s.payload.assign(bytes > headers ? bytes - headers : 1, static_cast<uint8_t>(t));
      plain.push_back({gateway::test::udp_frame(s), {}, 0});
    }
    seal_all();
  }

  // A's pipeline over every plain frame once (one worker), each result reduced to the datagram B receives.
  void seal_all() {
    net::PacketPool pool(64, net::kDefaultBufferSize);
    auto w = a.topo->pipeline().attach_worker({&pool, 1}).value();
    a.sa_epoch.online(w->id());
    struct Keep final : flow::Sink {
      explicit Keep(std::vector<Frame>& out_) : out(out_) {}
      void to_port(PortId, std::span<net::Packet* const> p) override {
        for (net::Packet* q : p) {
          if (!gateway::unwrap_for_send(*q)) throw std::runtime_error("unwrap");
          out.push_back({{q->bytes().begin(), q->bytes().end()}, q->meta.peer, 0});
        }
      }
      void to_cpu(uint16_t, std::span<net::Packet* const>) override { throw std::runtime_error("to cpu"); }
      void to_kernel(std::span<net::Packet* const>) override { throw std::runtime_error("to kernel"); }
      void dropped(uint8_t r, std::span<net::Packet* const>) override {
        throw std::runtime_error("dropped: " + std::to_string(r));
      }
      std::vector<Frame>& out;
    } keep(sealed);
    for (const Frame& f : plain) {
      net::Packet* p = pool.alloc();
      (void)p->assign(f.bytes);
      p->meta.in_port = PortId{1};
      net::PacketBatch batch;
      batch.push(p);
      w->process(batch, keep);
      pool.free(p);
    }
    for (Frame& f : sealed) {
      f.peer = a.pip;
      f.peer_port = 0xc000;
    }
    a.sa_epoch.offline(w->id());
  }

  Side a, b;
  psp::KeyRing ring_b;
  std::vector<Frame> plain, sealed;
};

enum class Dir { kEncrypt, kDecrypt };

// One worker thread's loop until `stop`: packets delivered (and anything else, which must stay 0).
struct ThreadResult {
  uint64_t delivered = 0;
  uint64_t other = 0;
};

ThreadResult run_worker(Side& side, const std::vector<Frame>& frames, Dir dir, std::size_t first,
                        const std::atomic<bool>& start, const std::atomic<bool>& stop) {
  net::PacketPool pool(4 * kBatch, net::kDefaultBufferSize);
  net::PacketPool mirror(64, net::kDefaultBufferSize);
  auto w = side.topo->pipeline().attach_worker({&mirror, 1 + first}).value();
  const uint16_t id = w->id();
  CountingSink sink(pool);
  const gateway::OuterEndpoint local{side.pip, 1000, side.local_mac};
  std::size_t next = first;
  while (!start.load(std::memory_order_acquire)) std::this_thread::yield();
  w->online();
  side.sa_epoch.online(id);
  while (!stop.load(std::memory_order_relaxed)) {
    net::PacketBatch batch;
    for (std::size_t k = 0; k < kBatch; ++k) {
      const Frame& f = frames[next];
      next = next + 1 == frames.size() ? 0 : next + 1;
      net::Packet* p = pool.alloc();
      (void)p->assign(f.bytes);
      if (dir == Dir::kEncrypt) {
        p->meta.in_port = PortId{1};
      } else {
        p->meta.in_port = PortId{0};
        p->meta.peer = f.peer;
        p->meta.peer_port = f.peer_port;
      }
      batch.push(p);
    }
    if (dir == Dir::kDecrypt) (void)gateway::wrap_received(batch, local, 0xff);
    w->process(batch, sink);
    w->quiescent();
    side.sa_epoch.quiescent(id);
  }
  w->offline();
  side.sa_epoch.offline(id);
  return {sink.delivered, sink.other};
}

// `threads` workers for `seconds`: the aggregate rate in Mpps.
double measure(Setup& s, Dir dir, unsigned threads, double seconds) {
  Side& side = dir == Dir::kEncrypt ? s.a : s.b;
  const std::vector<Frame>& frames = dir == Dir::kEncrypt ? s.plain : s.sealed;
  std::atomic<bool> start{false}, stop{false};
  std::vector<ThreadResult> results(threads);
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back(
        [&, t] { results[t] = run_worker(side, frames, dir, t * frames.size() / threads, start, stop); });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // every thread attached and waiting
  const auto t0 = Clock::now();
  start.store(true, std::memory_order_release);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop.store(true);
  for (auto& th : pool) th.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  uint64_t delivered = 0, other = 0;
  for (const auto& r : results) {
    delivered += r.delivered;
    other += r.other;
  }
  if (other != 0 || delivered == 0)
    throw std::runtime_error(std::to_string(other) + " packets not delivered (set-up error)");
  return static_cast<double>(delivered) / elapsed / 1e6;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int run(int argc, char** argv) {
  const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  std::vector<unsigned> threads;
  for (unsigned n = 1; n < cpus; n *= 2) threads.push_back(n);
  threads.push_back(cpus);
  std::size_t bytes = 1400;
  double seconds = 1;
  int rounds = 5;
  bool table = false;
  std::string direction = "both";
  CLI::App app{"bench_workers: N workers through the gateway's pipeline and PSP actions at once"};
  app.add_option("--threads", threads, "worker counts to run (1 is always added)")
      ->delimiter(',')
      ->check(CLI::Range(1u, 1024u));
  app.add_option("--bytes", bytes, "frame size")->check(CLI::Range(64, 1500));
  app.add_option("--seconds", seconds, "each measurement's length")->check(CLI::PositiveNumber);
  app.add_option("--rounds", rounds, "measurements per thread count")->check(CLI::Range(1, 1000));
  app.add_option("--direction", direction)->check(CLI::IsMember({"both", "encrypt", "decrypt"}));
  app.add_flag("--table", table, "bench/scale's rows: the most workers against one");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::vector<Dir> dirs;
  if (direction != "decrypt") dirs.push_back(Dir::kEncrypt);
  if (direction != "encrypt") dirs.push_back(Dir::kDecrypt);
  if (std::find(threads.begin(), threads.end(), 1u) == threads.end()) threads.insert(threads.begin(), 1);
  const unsigned most = *std::max_element(threads.begin(), threads.end());
  Setup setup(static_cast<uint16_t>(most), bytes);
  if (!table) {
    std::printf(
        "bench_workers: %zu-byte frames, %zu tunnels, %u CPUs, %s, %d rounds of %.1f s per thread count\n",
        bytes, kTunnels, cpus, std::string(setup.a.psp[0]->aead->name()).c_str(), rounds, seconds);
    std::printf(
        "| direction | workers | Mpps (median) | Gbit/s of frames | scaling vs 1 worker "
        "|\n|---|---|---|---|---|\n");
  }
  for (const Dir dir : dirs) {
    const char* name = dir == Dir::kEncrypt ? "encrypt" : "decrypt";
    std::vector<std::vector<double>> rates(threads.size());
    for (int r = 0; r < rounds; ++r) {
      for (std::size_t i = 0; i < threads.size(); ++i)
        rates[i].push_back(measure(setup, dir, threads[i], seconds));
    }
    const auto one =
        static_cast<std::size_t>(std::find(threads.begin(), threads.end(), 1u) - threads.begin());
    const double base = median(rates[one]);
    for (std::size_t i = 0; i < threads.size(); ++i) {
      const double m = median(rates[i]);
      // Scaling from each round's own pair of rates (the machine's speed drifts between rounds).
      std::vector<double> per_round;
      for (int r = 0; r < rounds; ++r) per_round.push_back(rates[i][r] / (rates[one][r] * threads[i]));
      const double scaling = median(per_round);
      if (!table) {
        std::printf("| %s | %u | %.2f | %.2f | %.2f |\n", name, threads[i], m,
                    m * static_cast<double>(bytes) * 8 / 1e3, scaling);
      } else if (threads[i] == most) {
        std::printf(
            "| %u workers vs 1 on %u CPUs, %s, %zu B, the gateway's pipeline and PSP actions "
            "without port I/O (bench_workers, medians of %d rounds) | %.2f Mpps vs %.2f; per round "
            "%.2fx, %.2f x N | >= 0.8 x N |\n",
            most, cpus, name, bytes, rounds, m, base, scaling * most, scaling);
      }
    }
  }
  return 0;
}

}  // namespace
}  // namespace pspgw::bench

int main(int argc, char** argv) {
  try {
    return pspgw::bench::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_workers: %s\n", e.what());
    return 1;
  }
}
