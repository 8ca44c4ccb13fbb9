// Tunnel set-up (issue 7 §5): two whole gateways in one process (in-memory ports, real gRPC on 127.0.0.1),
// measuring
//   * static mode (-z): tunnels per second to connect N VIP pairs toward one peer (A: one local VIP and N
//     remote VIPs; B: the N VIPs on its host port), from A's start to every egress SA installed;
//   * on-demand: first-packet latency, a VM's first packet toward a VIP with no tunnel yet, sent -> received
//     by the far VM, the key exchange included, on idle gateways whose channels are connected ahead.
// Run: build/bin/bench_tunnel_setup [pairs ...]   (default: 10000 100000; first-packet over 200 pairs)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
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
#include <thread>
#include <vector>

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
  static const control::testing::TestCa ca;
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

Pair make_pair_of_gateways(std::size_t pairs, bool a_static) {
  Pair p;
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
  EndpointConfig net_a{"net-a", PortId{0}, *net::IpAddr::parse("127.0.0.1"), psp::kPspUdpPort};
  EndpointConfig net_b{"net-b", PortId{0}, *net::IpAddr::parse("127.0.0.2"), psp::kPspUdpPort};
  auto wire = ports::testing::make_pair(net_a, net_b);
  const std::string x = std::to_string(pairs + 64);
  std::vector<std::string> a_args{"-x", x};
  if (a_static) a_args.push_back("-z");
  p.b = make_node(p.dir, "bb", b_cfg, std::move(wire.b), {"-x", x});
  p.a = make_node(p.dir, "aa", a_cfg, std::move(wire.a), a_args);
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

void static_setup(std::size_t pairs) {
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
  std::printf("static (-z): %zu tunnels connected in %.0f ms: %.0f tunnels/s\n", pairs, ms,
              pairs / (ms / 1000.0));
  std::fflush(stdout);
  cleanup(p);
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

void first_packet(std::size_t pairs) {
  Pair p = make_pair_of_gateways(pairs, false);
  if (auto s = p.b.gw->start(); !s) die("start B: " + s.error());
  if (auto s = p.a.gw->start(); !s) die("start A: " + s.error());
  const auto a_vip = *net::IpAddr::parse("10.1.0.1");
  // Both VMs announce themselves (ARP), then the machine idles: channels connect ahead meanwhile.
  send_frame(*p.a.vm, gateway::test::arp_request(p.a.vm_mac, a_vip, *net::IpAddr::parse(remote_vip(0))));
  send_frame(*p.b.vm, gateway::test::arp_request(p.b.vm_mac, *net::IpAddr::parse(remote_vip(0)), a_vip));
  (void)wait_for(*p.a.vm, std::chrono::seconds(1));
  (void)wait_for(*p.b.vm, std::chrono::seconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::vector<double> lat;
  for (std::size_t i = 0; i < pairs; ++i) {
    gateway::test::UdpSpec s;
    s.src_mac = p.a.vm_mac;
    s.dst_mac = *net::MacAddr::parse("02:50:00:00:aa:01");
    s.src = a_vip;
    s.dst = *net::IpAddr::parse(remote_vip(i));
    s.dport = 5001;
    s.payload = std::vector<uint8_t>(64, 0x5a);
    const auto frame = gateway::test::udp_frame(s);
    const auto t0 = Clock::now();
    send_frame(*p.a.vm, frame);
    if (!wait_for(*p.b.vm, std::chrono::seconds(5))) die("first packet " + std::to_string(i) + " lost");
    lat.push_back(ms_between(t0, Clock::now()));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // idle between tunnels
  }
  const double first = lat.front();  // the gateways' first exchange: nothing of it was warm before
  std::sort(lat.begin(), lat.end());
  std::printf(
      "first packet through a new tunnel (exchange included), %zu tunnels: median %.2f ms, p90 %.2f ms, "
      "max %.2f ms; the gateways' first tunnel %.2f ms\n",
      lat.size(), lat[lat.size() / 2], lat[lat.size() * 9 / 10], lat.back(), first);
  cleanup(p);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::vector<std::size_t> sizes;
    for (int i = 1; i < argc; ++i) sizes.push_back(std::strtoull(argv[i], nullptr, 10));
    if (sizes.empty()) sizes = {10000, 100000};
    first_packet(200);
    for (std::size_t n : sizes) static_setup(n);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_tunnel_setup: %s\n", e.what());
    return 1;
  }
}
