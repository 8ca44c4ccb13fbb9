// Whole gateways in one process for tests (not part of the library): in-memory host and network ports
// (ports/memory_port.hpp), the key exchange over real gRPC on 127.0.0.1. A gateway here may have many
// VIPs on its one host port, so one pair of gateways can carry a thousand tunnels.
//
//   workload A <-host wire-> gateway A <-network wire (127.0.0.1 <-> 127.0.0.2)-> gateway B <-> workload B
//
// Every gateway is made by make_gateway(), and its flags by gateway_flags(): the one place that decides
// the command line of a test gateway.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/unique_fd.hpp"
#include "control/testing/test_certs.hpp"
#include "gateway/gateway.hpp"
#include "gateway/test_frames.hpp"
#include "ports/memory_port.hpp"

namespace pspgw::gateway::testing {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

// A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it, close).
inline uint16_t free_port() {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ADD_FAILURE() << "no free port";
    return 0;
  }
  return ntohs(a.sin_port);
}

struct TempDir {
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "pspgw-gwt-XXXXXX").string();
    path = ::mkdtemp(tmpl.data()) != nullptr ? tmpl : "";
    EXPECT_FALSE(path.empty());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path;
};

// Polls `cond` every 2 ms until it holds or `limit` passes.
inline bool wait_until(const std::function<bool()>& cond, Clock::duration limit) {
  const auto deadline = Clock::now() + limit;
  while (!cond()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// One gateway of a test: its VIPs (all on one host port) and the VIPs of its one peer.
struct GatewaySpec {
  std::string name;  // "a": files a.json, a.sock; host port "vma"
  std::string pip;   // local-pip (and network-wire address)
  std::vector<std::string> vips;
  std::vector<std::string> peer_vips;  // every local VIP gets a session to all of them
  uint16_t grpc_port = 0;
  uint16_t peer_grpc_port = 0;
  std::string gateway_mac;
  uint32_t max_tunnels = 256;
  std::vector<std::string> extra_flags;  // e.g. "-z", "--tunnel-idle-timeout", "300ms"
};

inline std::string config_text(const GatewaySpec& g) {
  json sessions = json::array();
  for (const auto& vip : g.vips) sessions.push_back({{"local-vip", vip}, {"remote-vips", g.peer_vips}});
  json c = {
      {"config", {{"local-grpc-address", "127.0.0.1:" + std::to_string(g.grpc_port)}, {"local-pip", g.pip}}},
      {"peers",
       {{{"remote-grpc-address", "127.0.0.1:" + std::to_string(g.peer_grpc_port)}, {"sessions", sessions}}}},
      {"x-sw",
       {{"host-ports", {{{"name", "vm" + g.name}, {"local-vips", g.vips}, {"mac", g.gateway_mac}}}},
        {"rpc-deadline-ms", 5000}}}};
  return c.dump();
}

// One throwaway CA per test binary; every gateway's certificate names its gRPC host 127.0.0.1.
inline const control::testing::TestCa& test_ca() {
  static const control::testing::TestCa ca;
  return ca;
}

// The command line of every test gateway (the one place to add a flag all of them need): mutual TLS with
// a certificate written next to its admin socket.
inline Result<GatewayFlags, FlagsExit> gateway_flags(const GatewaySpec& g, const std::string& config_path,
                                                     const std::string& admin_path) {
  std::vector<std::string> args{"psp-gateway",
                                "-c",
                                config_path,
                                "--admin-socket",
                                admin_path,
                                "--outer-ip-type",
                                "ipv4",
                                "-d",
                                "vm" + g.name,
                                "-x",
                                std::to_string(g.max_tunnels)};
  const std::filesystem::path admin(admin_path);
  const auto tls = test_ca().write(admin.parent_path().string(), admin.stem().string(),
                                   test_ca().issue("gateway " + g.name, {"IP:127.0.0.1"}));
  for (const std::string& a : {std::string("--grpc-tls-cert"), tls.cert, std::string("--grpc-tls-key"),
                               tls.key, std::string("--grpc-tls-ca"), tls.ca})
    args.push_back(a);
  args.insert(args.end(), g.extra_flags.begin(), g.extra_flags.end());
  std::vector<const char*> argv;
  argv.reserve(args.size());
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_flags(static_cast<int>(argv.size()), argv.data());
}

// Ports handed to Gateway::create through its PortFactory (each one once).
// Host ports other than the first (a reload adds them) are made when the gateway asks, with the PortId
// it gives; the workload's end waits in `added` under the port's name.
struct PortBox {
  std::unique_ptr<ports::Port> host;
  std::unique_ptr<ports::Port> network;
  std::string host_name;
  std::map<std::string, std::unique_ptr<ports::testing::MemoryPort>> added;
};

inline PortFactory memory_ports(const std::shared_ptr<PortBox>& box) {
  PortFactory f;
  f.host = [box](uint16_t, uint16_t, std::size_t, const HostPortConfig& cfg,
                 PortId id) -> Result<std::unique_ptr<ports::Port>, std::string> {
    if (!box->host_name.empty() && cfg.name != box->host_name) {
      ports::testing::EndpointConfig gw_end;
      gw_end.name = cfg.name;
      gw_end.id = id;
      ports::testing::EndpointConfig vm_end;
      vm_end.name = cfg.name + "-guest";
      auto pair = ports::testing::make_pair(gw_end, vm_end);
      box->added[cfg.name] = std::move(pair.b);
      return std::unique_ptr<ports::Port>(std::move(pair.a));
    }
    if (!box->host) return Err{std::string("host port already taken")};
    return std::move(box->host);
  };
  f.network = [box](uint16_t, uint16_t, const net::IpAddr&,
                    PortId) -> Result<std::unique_ptr<ports::Port>, std::string> {
    if (!box->network) return Err{std::string("network port already taken")};
    return std::move(box->network);
  };
  return f;
}

// A started gateway and the workload's end of its host wire.
struct TestGateway {
  // The gateway stops (its workers joined) before the workload's ends of its ports close under them.
  ~TestGateway() { gw.reset(); }
  std::unique_ptr<Gateway> gw;
  std::unique_ptr<ports::testing::MemoryPort> workload;
  std::shared_ptr<ports::testing::Wire> host_wire;
  net::MacAddr gateway_mac;
  net::MacAddr workload_mac;
  std::shared_ptr<PortBox> ports;  // host ports a reload added: ports->added

  // The workload ARPs for `target` from `vip`, as a VM does before its first packet: the gateway learns
  // the workload's MAC (it delivers nothing to a host port before it knows it). The reply stays queued.
  void announce(const std::string& vip, const std::string& target) const {
    net::PacketPool pool(1);
    net::PacketBatch b;
    net::Packet* p = pool.alloc();
    ASSERT_TRUE(p != nullptr && p->assign(test::arp_request(workload_mac, test::ip(vip), test::ip(target))));
    b.push(p);
    EXPECT_EQ(workload->tx_burst(b), 1u);
    pool.free(p);
  }

  json admin(const std::string& cmd, const json& args = json::object()) const {
    auto r = gw->handle(cmd, args);
    EXPECT_TRUE(r.ok()) << cmd;
    return r.ok() ? *r : json::object();
  }
};

inline std::unique_ptr<TestGateway> make_gateway(const GatewaySpec& g,
                                                 std::unique_ptr<ports::testing::MemoryPort> network,
                                                 const std::string& dir) {
  const std::string text = config_text(g);
  const std::string path = dir + "/" + g.name + ".json";
  std::ofstream(path) << text;
  auto flags = gateway_flags(g, path, dir + "/" + g.name + ".sock");
  EXPECT_TRUE(flags.ok()) << (flags.ok() ? "" : flags.error().text);
  auto config = parse_config(text, path, {});
  EXPECT_TRUE(config.ok()) << (config.ok() ? "" : config.error().message);
  if (!flags || !config) return nullptr;

  auto t = std::make_unique<TestGateway>();
  t->gateway_mac = test::mac(g.gateway_mac);
  t->workload_mac = test::mac("02:00:00:00:00:0" + g.name);
  ports::testing::EndpointConfig gw_end;
  gw_end.name = "vm" + g.name;
  gw_end.id = PortId{1};
  ports::testing::EndpointConfig vm_end;
  vm_end.name = "vm" + g.name + "-guest";
  auto host = ports::testing::make_pair(gw_end, vm_end);
  t->host_wire = host.wire;
  t->workload = std::move(host.b);
  auto box = std::make_shared<PortBox>();
  box->host = std::move(host.a);
  box->network = std::move(network);
  box->host_name = "vm" + g.name;
  t->ports = box;
  auto gw = Gateway::create(std::move(*flags), std::move(*config), memory_ports(box));
  EXPECT_TRUE(gw.ok()) << (gw.ok() ? "" : gw.error());
  if (!gw) return nullptr;
  t->gw = std::move(*gw);
  auto started = t->gw->start();
  EXPECT_TRUE(started.ok()) << (started.ok() ? "" : started.error());
  if (!started) return nullptr;
  return t;
}

// Two gateways, each the other's only peer, over one network wire (127.0.0.1 <-> 127.0.0.2).
struct GatewayPair {
  TempDir dir;
  std::shared_ptr<ports::testing::Wire> network_wire;
  std::unique_ptr<TestGateway> a, b;

  // Fills in the addresses, ports and MACs of `a` and `b` and starts both.
  bool start(GatewaySpec sa, GatewaySpec sb) {
    sa.name = "a";
    sb.name = "b";
    sa.pip = "127.0.0.1";
    sb.pip = "127.0.0.2";
    sa.gateway_mac = "02:50:00:00:0a:01";
    sb.gateway_mac = "02:50:00:00:0b:01";
    sa.grpc_port = sb.peer_grpc_port = free_port();
    sb.grpc_port = sa.peer_grpc_port = free_port();
    ports::testing::EndpointConfig net_a;
    net_a.name = "net-a";
    net_a.addr = test::ip(sa.pip);
    net_a.port = psp::kPspUdpPort;
    ports::testing::EndpointConfig net_b = net_a;
    net_b.name = "net-b";
    net_b.addr = test::ip(sb.pip);
    auto wire = ports::testing::make_pair(net_a, net_b);
    network_wire = wire.wire;
    a = make_gateway(sa, std::move(wire.a), dir.path);
    if (!a) return false;
    b = make_gateway(sb, std::move(wire.b), dir.path);
    return b != nullptr;
  }
};

}  // namespace pspgw::gateway::testing
