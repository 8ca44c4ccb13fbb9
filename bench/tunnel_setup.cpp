// Tunnel set-up (issue 7 §5, issue 9 §7): two whole gateways in one process (in-memory ports, real gRPC on
// 127.0.0.1), measuring
//   * static mode (-z): tunnels per second to connect N VIP pairs toward one peer (A: one local VIP and N
//     remote VIPs; B: the N VIPs on its host port), from A's start to every egress SA installed;
//   * on demand: tunnels per second when A's VM sends a first packet toward each of the N VIPs at once;
//   * first-packet latency, a VM's first packet toward a VIP with no tunnel yet, sent -> received by the
//     far VM, the key exchange included, on idle gateways whose channels are connected ahead;
//   * resident memory of one gateway with the largest N tunnels (B in a forked child: this process is A).
// Run: build/bin/bench_tunnel_setup [--table] [--memory] [--on-demand] [pairs ...]   (default: 10000 100000;
// first packet over 200 pairs); --table prints the results as README table rows (bench/scale); --memory
// measures the resident memory only, of one gateway with each count of pairs in turn; --on-demand runs the
// on-demand set-up only (to profile it).
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/proc_status.hpp"
#include "base/unique_fd.hpp"
#include "control/testing/test_certs.hpp"
#include "gateway/gateway.hpp"
#include "gateway/test_frames.hpp"
#include "ports/memory_port.hpp"

namespace {

using namespace pspgw;  // NOLINT(google-build-using-namespace)
using nlohmann::json;
using ports::testing::EndpointConfig;
using ports::testing::MemoryPort;
using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

uint16_t free_port() {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return 0;
  }
  return ntohs(a.sin_port);
}

std::string remote_vip(std::size_t i) {  // 10.2.0.1 ... (skips .0 and .255 of each /24)
  const std::size_t net = i / 254;
  return "10." + std::to_string(2 + net / 256) + "." + std::to_string(net % 256) + "." +
         std::to_string(i % 254 + 1);
}

struct Failed : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] void die(const std::string& what) {
  throw Failed(what);
}

// One CA for every gateway of the run (made before the memory run forks: both processes trust it).
const control::testing::TestCa& test_ca() {
  static const control::testing::TestCa ca;
  return ca;
}

// One gateway and the VM end of its host port.
struct Node {
  std::unique_ptr<gateway::Gateway> gw;
  std::unique_ptr<MemoryPort> vm;
  net::MacAddr vm_mac, gateway_mac;
};

Node make_node(const std::string& dir, const std::string& name, const json& config,
               std::unique_ptr<ports::Port> network, const std::vector<std::string>& extra_args) {
  const std::string path = dir + "/" + name + ".json";
  const std::string admin = dir + "/" + name + ".sock";
  std::ofstream(path) << config.dump();
  // Mutual TLS, as a deployment runs it: a throwaway CA, each certificate naming the gRPC host 127.0.0.1.
  const control::testing::TestCa& ca = test_ca();
  const auto tls = ca.write(dir, name, ca.issue("gateway " + name, {"IP:127.0.0.1"}));
  std::vector<const char*> argv{"psp-gateway",
                                "-c",
                                path.c_str(),
                                "--admin-socket",
                                admin.c_str(),
                                "--outer-ip-type",
                                "ipv4",
                                "-d",
                                "vm",
                                "--grpc-tls-cert",
                                tls.cert.c_str(),
                                "--grpc-tls-key",
                                tls.key.c_str(),
                                "--grpc-tls-ca",
                                tls.ca.c_str()};
  for (const auto& a : extra_args) argv.push_back(a.c_str());
  auto flags = gateway::parse_flags(static_cast<int>(argv.size()), argv.data());
  if (!flags) die("flags: " + flags.error().text);
  const auto parse_start = Clock::now();
  auto cfg = gateway::parse_config(config.dump(), path, {});
  if (!cfg) die("config: " + cfg.error().message);
  std::fprintf(stderr, "config %s parsed in %.1f ms\n", name.c_str(), ms_between(parse_start, Clock::now()));

  Node n;
  n.vm_mac = *net::MacAddr::parse("02:00:00:00:00:" + name);
  n.gateway_mac = *net::MacAddr::parse("02:50:00:00:" + name + ":01");
  EndpointConfig gw_end{"vm" + name, PortId{1}, {}, 0};
  EndpointConfig vm_end{"vm" + name + "-guest", PortId{}, {}, 0};
  auto host = ports::testing::make_pair(gw_end, vm_end);
  n.vm = std::move(host.b);
  auto box = std::make_shared<std::pair<std::unique_ptr<ports::Port>, std::unique_ptr<ports::Port>>>(
      std::move(host.a), std::move(network));
  gateway::PortFactory f;
  f.host = [box](uint16_t, uint16_t, std::size_t, const gateway::HostPortConfig&,
                 PortId) -> Result<std::unique_ptr<ports::Port>, std::string> {
    return std::move(box->first);
  };
  f.network = [box](uint16_t, uint16_t, const net::IpAddr&,
                    PortId) -> Result<std::unique_ptr<ports::Port>, std::string> {
    return std::move(box->second);
  };
  auto g = gateway::Gateway::create(std::move(*flags), std::move(*cfg), f);
  if (!g) die("create: " + g.error());
  n.gw = std::move(*g);
  return n;
}

// A and B with `pairs` VIP pairs between A's 10.1.0.1 and B's remote_vip(0..pairs-1).
struct Pair {
  std::string dir;
  Node a, b;
};

// The two gateways' configs and arguments, before either exists.
struct PairPlan {
  std::string dir;
  json a_cfg, b_cfg;
  std::vector<std::string> a_args, b_args;
};

PairPlan plan_pair(std::size_t pairs, bool a_static) {
  PairPlan p;
  std::string tmpl = (std::filesystem::temp_directory_path() / "pspgw-bench-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) die("mkdtemp");
  p.dir = tmpl;
  const uint16_t grpc_a = free_port(), grpc_b = free_port();
  json remotes = json::array();
  json b_sessions = json::array();
  for (std::size_t i = 0; i < pairs; ++i) {
    remotes.push_back(remote_vip(i));
    b_sessions.push_back({{"local-vip", remote_vip(i)}, {"remote-vips", {"10.1.0.1"}}});
  }
  json a_cfg = {
      {"config", {{"local-grpc-address", "127.0.0.1:" + std::to_string(grpc_a)}, {"local-pip", "127.0.0.1"}}},
      {"peers",
       {{{"remote-grpc-address", "127.0.0.1:" + std::to_string(grpc_b)},
         {"sessions", {{{"local-vip", "10.1.0.1"}, {"remote-vips", remotes}}}}}}},
      {"x-sw",
       {{"host-ports", {{{"name", "vmaa"}, {"local-vips", {"10.1.0.1"}}, {"mac", "02:50:00:00:aa:01"}}}},
        {"rpc-deadline-ms", 10000}}}};
  json b_cfg = {
      {"config", {{"local-grpc-address", "127.0.0.1:" + std::to_string(grpc_b)}, {"local-pip", "127.0.0.2"}}},
      {"peers", {{{"remote-grpc-address", "127.0.0.1:" + std::to_string(grpc_a)}, {"sessions", b_sessions}}}},
      {"x-sw",
       {{"host-ports", {{{"name", "vmbb"}, {"local-vips", remotes}, {"mac", "02:50:00:00:bb:01"}}}},
        {"rpc-deadline-ms", 10000}}}};
  const std::string x = std::to_string(pairs + 64);
  p.a_cfg = std::move(a_cfg);
  p.b_cfg = std::move(b_cfg);
  p.a_args = {"-x", x};
  if (a_static) p.a_args.push_back("-z");
  p.b_args = {"-x", x};
  return p;
}

ports::testing::MemoryPair network_wire() {
  EndpointConfig net_a{"net-a", PortId{0}, *net::IpAddr::parse("127.0.0.1"), psp::kPspUdpPort};
  EndpointConfig net_b{"net-b", PortId{0}, *net::IpAddr::parse("127.0.0.2"), psp::kPspUdpPort};
  return ports::testing::make_pair(net_a, net_b);
}

Pair make_pair_of_gateways(std::size_t pairs, bool a_static) {
  PairPlan plan = plan_pair(pairs, a_static);
  auto wire = network_wire();
  Pair p;
  p.dir = plan.dir;
  p.b = make_node(p.dir, "bb", plan.b_cfg, std::move(wire.b), plan.b_args);
  p.a = make_node(p.dir, "aa", plan.a_cfg, std::move(wire.a), plan.a_args);
  return p;
}

void cleanup(Pair& p) {
  p.a.gw.reset();
  p.b.gw.reset();
  std::error_code ec;
  std::filesystem::remove_all(p.dir, ec);
}

std::size_t tunnels(gateway::Gateway& g) {
  auto r = g.handle("status", json::object());
  return r.ok() ? (*r)["tunnels"].get<std::size_t>() : 0;
}

// Tunnels per second, static mode: A's start to its last SA.
double static_setup(std::size_t pairs) {
  Pair p = make_pair_of_gateways(pairs, true);
  if (auto s = p.b.gw->start(); !s) die("start B: " + s.error());
  const auto start = Clock::now();
  if (auto s = p.a.gw->start(); !s) die("start A: " + s.error());
  // Requests go out in config order: the last pair connected means all are (checked below). Polling one
  // pair's state costs nothing, where counting 100k tunnels would take CPU from the gateways.
  const control::VipPair last{*net::IpAddr::parse("10.1.0.1"), *net::IpAddr::parse(remote_vip(pairs - 1))};
  while (p.a.gw->tunnels().state(last) != control::PairState::kConnected) {
    if (Clock::now() - start > std::chrono::minutes(2)) die("static tunnels did not connect");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const double ms = ms_between(start, Clock::now());
  if (tunnels(*p.a.gw) != pairs) die("only " + std::to_string(tunnels(*p.a.gw)) + " tunnels connected");
  std::fprintf(stderr, "static (-z): %zu tunnels connected in %.0f ms: %.0f tunnels/s\n", pairs, ms,
               pairs / (ms / 1000.0));
  cleanup(p);
  return pairs / (ms / 1000.0);
}

void send_frame(MemoryPort& port, const std::vector<uint8_t>& frame) {
  net::PacketPool pool(4);
  net::PacketBatch b;
  net::Packet* pkt = pool.alloc();
  (void)pkt->assign(frame);
  b.push(pkt);
  (void)port.tx_burst(b);
  pool.free(pkt);
}

std::size_t drain(MemoryPort& port) {
  static net::PacketPool pool(256);
  net::PacketBatch b;
  port.rx_burst(pool, b);
  const std::size_t n = b.size();
  for (net::Packet* pkt : b) pool.free(pkt);
  return n;
}

// Sleeps in poll() on the port's eventfd (readable while frames wait): a spinning VM thread would take a
// CPU from the gateways' threads, and the latency it measures would be that of a loaded machine.
bool wait_for(MemoryPort& port, Clock::duration limit) {
  const auto deadline = Clock::now() + limit;
  for (;;) {
    if (drain(port) > 0) return true;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{port.fd(), POLLIN, 0};
    (void)::poll(&pfd, 1, static_cast<int>(left.count()) + 1);
  }
}

struct FirstPacket {
  double median = 0, p90 = 0, max = 0, first = 0;
};

gateway::test::UdpSpec first_packet_spec(const Node& a, std::size_t i) {
  gateway::test::UdpSpec s;
  s.src_mac = a.vm_mac;
  s.dst_mac = *net::MacAddr::parse("02:50:00:00:aa:01");
  s.src = *net::IpAddr::parse("10.1.0.1");
  s.dst = *net::IpAddr::parse(remote_vip(i));
  s.dport = 5001;
  s.payload = std::vector<uint8_t>(64, 0x5a);
  return s;
}

// Both VMs announce themselves (ARP), then the machine idles: channels connect ahead meanwhile.
void announce(Pair& p) {
  const auto a_vip = *net::IpAddr::parse("10.1.0.1");
  send_frame(*p.a.vm, gateway::test::arp_request(p.a.vm_mac, a_vip, *net::IpAddr::parse(remote_vip(0))));
  send_frame(*p.b.vm, gateway::test::arp_request(p.b.vm_mac, *net::IpAddr::parse(remote_vip(0)), a_vip));
  (void)wait_for(*p.a.vm, std::chrono::seconds(1));
  (void)wait_for(*p.b.vm, std::chrono::seconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
}

FirstPacket first_packet(std::size_t pairs) {
  Pair p = make_pair_of_gateways(pairs, false);
  if (auto s = p.b.gw->start(); !s) die("start B: " + s.error());
  if (auto s = p.a.gw->start(); !s) die("start A: " + s.error());
  announce(p);
  std::vector<double> lat;
  for (std::size_t i = 0; i < pairs; ++i) {
    const auto frame = gateway::test::udp_frame(first_packet_spec(p.a, i));
    const auto t0 = Clock::now();
    send_frame(*p.a.vm, frame);
    if (!wait_for(*p.b.vm, std::chrono::seconds(5))) die("first packet " + std::to_string(i) + " lost");
    lat.push_back(ms_between(t0, Clock::now()));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // idle between tunnels
  }
  FirstPacket r;
  r.first = lat.front();  // the gateways' first exchange: nothing of it was warm before
  std::sort(lat.begin(), lat.end());
  r.median = lat[lat.size() / 2];
  r.p90 = lat[lat.size() * 9 / 10];
  r.max = lat.back();
  std::fprintf(
      stderr,
      "first packet through a new tunnel (exchange included), %zu tunnels: median %.2f ms, p90 %.2f ms, "
      "max %.2f ms; the gateways' first tunnel %.2f ms\n",
      lat.size(), r.median, r.p90, r.max, r.first);
  cleanup(p);
  return r;
}

// Tunnels per second on demand: A's VM sends a first packet toward each of B's `pairs` VIPs, keeping
// kWindow VIPs waiting for their tunnel at a time (a sender that floods 100,000 new destinations at once
// meets the bounded worker -> control ring and hold queue, by design, and that would be measured instead),
// and sends again toward a VIP still not connected a second later. From the first packet to the last
// tunnel connected, or to a 90-second bound (then: the tunnels connected by then over the time).
struct OnDemand {
  std::size_t connected = 0;
  double seconds = 0;
  double rate() const { return seconds > 0 ? static_cast<double>(connected) / seconds : 0; }
};
OnDemand on_demand_setup(std::size_t pairs) {
  constexpr std::size_t kWindow = 256;  // below the worker's ring to the control thread (512 frames)
  Pair p = make_pair_of_gateways(pairs, false);
  if (auto s = p.b.gw->start(); !s) die("start B: " + s.error());
  if (auto s = p.a.gw->start(); !s) die("start A: " + s.error());
  announce(p);
  const auto a_vip = *net::IpAddr::parse("10.1.0.1");
  struct Waiting {
    std::size_t vip;
    Clock::time_point sent;
  };
  std::vector<Waiting> waiting;
  std::size_t next = 0, connected = 0;
  net::PacketPool pool(net::kMaxBatch);
  net::PacketBatch b;
  const auto send = [&](std::size_t vip) {
    net::Packet* pkt = pool.alloc();
    (void)pkt->assign(gateway::test::udp_frame(first_packet_spec(p.a, vip)));
    b.push(pkt);
    if (b.full()) {
      (void)p.a.vm->tx_burst(b);
      for (net::Packet* x : b) pool.free(x);
      b.clear();
    }
  };
  const auto start = Clock::now();
  const auto bound = start + std::chrono::seconds(90);
  while (connected < pairs && Clock::now() < bound) {
    const auto now = Clock::now();
    std::vector<Waiting> still;
    for (Waiting& w : waiting) {
      if (p.a.gw->tunnels().state({a_vip, *net::IpAddr::parse(remote_vip(w.vip))}) ==
          control::PairState::kConnected) {
        ++connected;
        continue;
      }
      if (now - w.sent > std::chrono::seconds(1)) {
        send(w.vip);
        w.sent = now;
      }
      still.push_back(w);
    }
    waiting.swap(still);
    while (waiting.size() < kWindow && next < pairs) {
      send(next);
      waiting.push_back({next++, now});
    }
    if (!b.empty()) {
      (void)p.a.vm->tx_burst(b);
      for (net::Packet* x : b) pool.free(x);
      b.clear();
    }
    (void)drain(*p.b.vm);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  OnDemand r;
  r.seconds = ms_between(start, Clock::now()) / 1000.0;
  r.connected = connected;
  std::fprintf(stderr, "on demand: %zu of %zu tunnels connected in %.1f s: %.0f tunnels/s\n", r.connected,
               pairs, r.seconds, r.rate());
  cleanup(p);
  return r;
}

// ---- resident memory of one gateway with `pairs` tunnels ---------------------------------------------

struct Memory {
  double before_mb = 0, rss_mb = 0, peak_mb = 0;
};

// Gateway B runs in a child process (forked before either process has a thread), so that this process's
// resident set is gateway A's alone: A's start with -z to its last SA over real gRPC, then its RSS and
// peak (VmRSS, VmHWM). Runs first, while the process has no other thread.
Memory one_gateway_memory(std::size_t pairs) {
  (void)test_ca();
  PairPlan plan = plan_pair(pairs, true);
  int go[2], ready[2];
  if (::pipe(go) != 0 || ::pipe(ready) != 0) die("pipe");
  const pid_t child = ::fork();
  if (child < 0) die("fork");
  if (child == 0) {
    ::close(go[1]);
    ::close(ready[0]);
    int rc = 0;
    try {
      auto wire = network_wire();
      Node b = make_node(plan.dir, "bb", plan.b_cfg, std::move(wire.b), plan.b_args);
      plan.a_cfg = json();  // this process's copy of the plans: not the gateway's (as in A below)
      plan.b_cfg = json();
      if (auto s = b.gw->start(); !s) die("start B: " + s.error());
      (void)!::write(ready[1], "r", 1);
      char c;
      (void)!::read(go[0], &c, 1);  // the parent closes it when done
      ::malloc_trim(0);
      std::fprintf(stderr, "its peer, %zu tunnels in the other direction: RSS %.1f MB (peak %.1f MB)\n",
                   pairs, proc_status_kib("VmRSS") / 1024.0, proc_status_kib("VmHWM") / 1024.0);
      b.gw.reset();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "gateway B: %s\n", e.what());
      rc = 1;
    }
    std::_Exit(rc);
  }
  ::close(go[0]);
  ::close(ready[1]);
  char c;
  if (::read(ready[0], &c, 1) != 1) die("gateway B did not start");
  const std::string a_dump = plan.a_cfg.dump();
  plan.a_cfg = json();  // the plans' JSON trees (~100 MB at 100k pairs) are not the gateway's
  plan.b_cfg = json();
  ::malloc_trim(0);
  Memory m;
  m.before_mb = proc_status_kib("VmRSS") / 1024.0;
  auto wire = network_wire();
  Node a = make_node(plan.dir, "aa", json::parse(a_dump), std::move(wire.a), plan.a_args);
  if (auto s = a.gw->start(); !s) die("start A: " + s.error());
  const auto start = Clock::now();
  const control::VipPair last{*net::IpAddr::parse("10.1.0.1"), *net::IpAddr::parse(remote_vip(pairs - 1))};
  while (a.gw->tunnels().state(last) != control::PairState::kConnected) {
    if (Clock::now() - start > std::chrono::minutes(2)) die("memory run: tunnels did not connect");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (tunnels(*a.gw) != pairs) die("memory run: " + std::to_string(tunnels(*a.gw)) + " tunnels");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // grace periods, freed requests
  ::malloc_trim(0);  // what the set-up freed (requests, the parsed config) back to the system
  m.rss_mb = proc_status_kib("VmRSS") / 1024.0;
  m.peak_mb = proc_status_kib("VmHWM") / 1024.0;
  std::fprintf(stderr,
               "one gateway, %zu tunnels: RSS %.1f MB (peak %.1f MB; the process before it %.1f MB)\n", pairs,
               m.rss_mb, m.peak_mb, m.before_mb);
  a.gw.reset();
  ::close(go[1]);
  int status = 0;
  (void)::waitpid(child, &status, 0);
  std::error_code ec;
  std::filesystem::remove_all(plan.dir, ec);
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::vector<std::size_t> sizes;
    bool table = false, memory_only = false, on_demand_only = false;
    for (int i = 1; i < argc; ++i) {
      if (std::string_view(argv[i]) == "--table") {
        table = true;
      } else if (std::string_view(argv[i]) == "--memory") {
        memory_only = true;
      } else if (std::string_view(argv[i]) == "--on-demand") {
        on_demand_only = true;
      } else {
        sizes.push_back(std::strtoull(argv[i], nullptr, 10));
      }
    }
    if (sizes.empty()) sizes = {10000, 100000};
    if (memory_only) {  // each in a process of its own: the first run's freed heap would count in the next
      for (std::size_t n : sizes) {
        const pid_t child = ::fork();
        if (child < 0) die("fork");
        if (child == 0) {
          const Memory m = one_gateway_memory(n);
          if (table) {
            std::printf(
                "| resident memory, one gateway process with %zu tunnels (before the gateway; peak) | "
                "%.1f MB (%.1f MB; %.1f MB) | <= 100 MB |\n",
                n, m.rss_mb, m.before_mb, m.peak_mb);
          }
          std::fflush(stdout);
          std::_Exit(0);
        }
        int status = 0;
        if (::waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
          die("memory run of " + std::to_string(n) + " pairs failed");
        }
      }
      return 0;
    }
    if (on_demand_only) {
      for (std::size_t n : sizes) (void)on_demand_setup(n);
      return 0;
    }
    const std::size_t largest = *std::max_element(sizes.begin(), sizes.end());
    const Memory mem = one_gateway_memory(largest);  // first: no thread may exist when it forks
    const FirstPacket fp = first_packet(200);
    std::vector<std::pair<double, OnDemand>> rates;  // static, on demand
    for (std::size_t n : sizes) {
      const double st = static_setup(n);
      rates.emplace_back(st, on_demand_setup(n));
    }
    if (!table) return 0;
    std::printf("| | result | target |\n|---|---|---|\n");
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      const OnDemand& od = rates[i].second;
      const std::string partial =
          od.connected == sizes[i] ? "" : " (" + std::to_string(od.connected) + " in 90 s)";
      std::printf(
          "| tunnels/s, %zu VIP pairs toward one peer: static (-z) / on demand (first packets) | %.0f / "
          "%.0f%s | >= 10,000 |\n",
          sizes[i], rates[i].first, od.rate(), partial.c_str());
    }
    std::printf(
        "| first packet through a new tunnel, exchange included (200 tunnels) | median %.2f ms, p90 %.2f ms, "
        "max %.2f ms, first %.2f ms | <= 5 ms |\n",
        fp.median, fp.p90, fp.max, fp.first);
    std::printf(
        "| resident memory, one gateway process with %zu tunnels (before the gateway; peak) | %.1f MB "
        "(%.1f MB; %.1f MB) | <= 100 MB |\n",
        largest, mem.rss_mb, mem.before_mb, mem.peak_mb);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_tunnel_setup: %s\n", e.what());
    return 1;
  }
}
