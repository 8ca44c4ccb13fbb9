// Whole gateways without root (wireguard-go's TestTwoDevicePing): two Gateway instances in one process,
// their host ports and their network ports in-memory pairs (ports/memory_port.hpp), the key exchange over
// real gRPC on 127.0.0.1, over mutual TLS with a CA and certificates made at test time (unless a test asks
// for --grpc-insecure). The test drives the far end of each host port as "the VM".
//
//   VM A <-host wire-> gateway A <-network wire (127.0.0.1:1000 <-> 127.0.0.2:1000)-> gateway B <-> VM B
//
// Everything waits with deadlines (polling), never with a fixed long sleep.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "admin/testing/promtool.hpp"
#include "base/unique_fd.hpp"
#include "control/testing/test_certs.hpp"
#include "gateway/gateway.hpp"
#include "gateway/test_frames.hpp"
#include "gateway/testing/two_gateways.hpp"
#include "ports/memory_port.hpp"

namespace pspgw::gateway {
namespace {

using nlohmann::json;
using ports::testing::EndpointConfig;
using ports::testing::MemoryPort;
using ports::testing::Verdict;
using ports::testing::WireFrame;
using test::ip;
using test::mac;
using Clock = std::chrono::steady_clock;
using testing::free_port;
using testing::TempDir;
using testing::test_ca;

constexpr auto kWait = std::chrono::seconds(10);  // generous upper bound: a failing test, not a slow one
constexpr uint16_t kVmUdpPort = 5001;

// A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it, close).
// A listening TCP socket that never accepts: a gRPC peer that connects and then hears nothing.
struct SilentListener {
  SilentListener() : fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(::listen(fd.get(), 16), 0);
    EXPECT_EQ(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
    port = ntohs(a.sin_port);
  }
  UniqueFd fd;
  uint16_t port = 0;
};

bool wait_until(const std::function<bool()>& cond, Clock::duration limit = kWait) {
  return testing::wait_until(cond, limit);
}

// The workload behind a host port: the far end of the host wire.
struct Vm {
  Vm(std::unique_ptr<MemoryPort> p, net::MacAddr m, net::IpAddr v)
      : port(std::move(p)), mac_addr(m), vip(v) {}

  void send(const std::vector<std::vector<uint8_t>>& frames) {
    for (std::size_t i = 0; i < frames.size();) {
      net::PacketBatch b;
      for (; i < frames.size() && !b.full(); ++i) {
        net::Packet* p = pool.alloc();
        ASSERT_NE(p, nullptr);
        ASSERT_TRUE(p->assign(frames[i]));
        b.push(p);
      }
      EXPECT_EQ(port->tx_burst(b), b.size());
      for (net::Packet* p : b) pool.free(p);
    }
  }
  void send(const std::vector<uint8_t>& frame) { send(std::vector<std::vector<uint8_t>>{frame}); }

  // Waits for `n` frames (or the deadline) and returns what arrived.
  std::vector<std::vector<uint8_t>> receive(std::size_t n, Clock::duration limit = kWait) {
    std::vector<std::vector<uint8_t>> got;
    wait_until(
        [&] {
          net::PacketBatch b;
          port->rx_burst(pool, b);
          for (net::Packet* p : b) {
            got.emplace_back(p->data(), p->data() + p->size());
            pool.free(p);
          }
          return got.size() >= n;
        },
        limit);
    return got;
  }

  std::vector<uint8_t> udp_to(const Vm& other, const net::MacAddr& gateway_mac,
                              std::vector<uint8_t> payload) const {
    test::UdpSpec s;
    s.src_mac = mac_addr;
    s.dst_mac = gateway_mac;
    s.src = vip;
    s.dst = other.vip;
    s.dport = kVmUdpPort;
    s.payload = std::move(payload);
    return test::udp_frame(s);
  }

  std::unique_ptr<MemoryPort> port;
  net::MacAddr mac_addr;
  net::IpAddr vip;
  net::PacketPool pool{256};
};

// Ports handed to Gateway::create through its PortFactory (each one once).
struct PortBox {
  std::unique_ptr<ports::Port> host;
  std::unique_ptr<ports::Port> host2;  // a second host port, if the node has one
  std::unique_ptr<ports::Port> network;
};

PortFactory memory_ports(const std::shared_ptr<PortBox>& box) {
  PortFactory f;
  f.host = [box](uint16_t, uint16_t, std::size_t, const HostPortConfig&,
                 PortId id) -> Result<std::unique_ptr<ports::Port>, std::string> {
    std::unique_ptr<ports::Port>& port = id.value() == 2 ? box->host2 : box->host;
    if (!port) return Err{std::string("host port already taken")};
    return std::move(port);
  };
  f.network = [box](uint16_t, uint16_t, const net::IpAddr&,
                    PortId) -> Result<std::unique_ptr<ports::Port>, std::string> {
    if (!box->network) return Err{std::string("network port already taken")};
    return std::move(box->network);
  };
  return f;
}

struct NodeSpec {
  std::string name;  // "a"
  std::string pip;   // outer address (local-pip)
  std::string vip;   // the VM's VIP
  std::string peer_vip;
  uint16_t grpc_port = 0;
  uint16_t peer_grpc_port = 0;
  std::string gateway_mac;  // the gateway's MAC on its host port
  uint32_t rpc_deadline_ms = 2000;
  bool insecure = false;    // --grpc-insecure instead of mutual TLS
  std::string vip2;         // "": one host port; else a second host port (PortId 2) with this VIP
  std::string peer_vip2;    // "": none; else a second remote VIP
  uint32_t uplink_mtu = 0;  // x-sw.uplink-mtu; 0: unset
};

// The TLS flags of gateway `name`, its files written under dir.
std::vector<std::string> tls_flags(const std::string& name, const std::string& dir) {
  const auto files = test_ca().write(dir, name, test_ca().issue("gateway " + name, {"IP:127.0.0.1"}));
  return {"--grpc-tls-cert", files.cert, "--grpc-tls-key", files.key, "--grpc-tls-ca", files.ca};
}

// Flags for gateway `spec` (TLS or --grpc-insecure as it says) plus `extra`, config at `path`.
Result<GatewayFlags, FlagsExit> node_flags(const NodeSpec& spec, const std::string& path,
                                           const std::string& dir,
                                           const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{
      "psp-gateway", "-c", path, "--admin-socket", dir + "/" + spec.name + ".sock", "--outer-ip-type",
      "ipv4",        "-d", "vm"};
  if (spec.insecure) {
    args.emplace_back("--grpc-insecure");
  } else {
    for (auto& a : tls_flags(spec.name, dir)) args.push_back(std::move(a));
  }
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_flags(static_cast<int>(argv.size()), argv.data());
}

std::string config_text(const NodeSpec& n) {
  json remote_vips = {n.peer_vip};
  if (!n.peer_vip2.empty()) remote_vips.push_back(n.peer_vip2);
  json sessions = {{{"local-vip", n.vip}, {"remote-vips", remote_vips}}};
  json host_ports = {{{"name", "vm" + n.name}, {"local-vips", {n.vip}}, {"mac", n.gateway_mac}}};
  if (!n.vip2.empty()) {
    sessions.push_back({{"local-vip", n.vip2}, {"remote-vips", remote_vips}});
    host_ports.push_back({{"name", "vm" + n.name + "2"}, {"local-vips", {n.vip2}}, {"mac", n.gateway_mac}});
  }
  json c = {
      {"config", {{"local-grpc-address", "127.0.0.1:" + std::to_string(n.grpc_port)}, {"local-pip", n.pip}}},
      {"peers",
       {{{"remote-grpc-address", "127.0.0.1:" + std::to_string(n.peer_grpc_port)}, {"sessions", sessions}}}},
      {"x-sw",
       {{"host-ports", host_ports},
        {"local-mac", "02:50:53:00:00:0" + n.name},
        {"rpc-deadline-ms", n.rpc_deadline_ms}}}};
  if (n.uplink_mtu != 0) c["x-sw"]["uplink-mtu"] = n.uplink_mtu;
  return c.dump(2);
}

// One gateway, its VM and its end of the network wire.
struct Node {
  std::unique_ptr<Gateway> gw;
  std::unique_ptr<Vm> vm;
  std::unique_ptr<Vm> vm2;  // behind the second host port, if any
  net::MacAddr gateway_mac;

  json counters() const {
    auto r = gw->handle("counters", json::object());
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : json::object();
  }
  uint64_t slow(const char* key) const { return counters()["slow_path"][key].get<uint64_t>(); }
  uint64_t syndrome(const char* key) const {
    const json c = counters();
    for (const auto& p : c["pipes"]) {
      if (p["name"] == "SYND_STATS") return p["syndromes"][key].get<uint64_t>();
    }
    ADD_FAILURE() << "no SYND_STATS";
    return 0;
  }
  std::vector<uint32_t> tx_spis() const {
    std::vector<uint32_t> out;
    const json c = counters();
    for (const auto& t : c["tunnels"]) out.push_back(t["tx_spi"].get<uint32_t>());
    return out;
  }
};

std::unique_ptr<Node> make_node(const NodeSpec& spec, std::unique_ptr<ports::Port> network,
                                const std::string& dir, const std::vector<std::string>& extra = {}) {
  const std::string text = config_text(spec);
  const std::string path = dir + "/" + spec.name + ".json";
  std::ofstream(path) << text;
  auto flags = node_flags(spec, path, dir, extra);
  EXPECT_TRUE(flags.ok()) << (flags.ok() ? "" : flags.error().text);
  auto config = parse_config(text, path, {});
  EXPECT_TRUE(config.ok()) << (config.ok() ? "" : config.error().message);
  if (!flags || !config) return nullptr;

  auto node = std::make_unique<Node>();
  node->gateway_mac = mac(spec.gateway_mac);
  EndpointConfig gw_end;
  gw_end.name = "vm" + spec.name;
  gw_end.id = PortId{1};
  EndpointConfig vm_end;
  vm_end.name = "vm" + spec.name + "-guest";
  auto host = ports::testing::make_pair(gw_end, vm_end);
  node->vm = std::make_unique<Vm>(std::move(host.b), mac("02:00:00:00:00:0" + spec.name), ip(spec.vip));
  auto box = std::make_shared<PortBox>();
  box->host = std::move(host.a);
  box->network = std::move(network);
  if (!spec.vip2.empty()) {
    gw_end.name = "vm" + spec.name + "2";
    gw_end.id = PortId{2};
    vm_end.name = "vm" + spec.name + "2-guest";
    auto host2 = ports::testing::make_pair(gw_end, vm_end);
    node->vm2 = std::make_unique<Vm>(std::move(host2.b), mac("02:00:00:00:02:0" + spec.name), ip(spec.vip2));
    box->host2 = std::move(host2.a);
  }
  auto gw = Gateway::create(std::move(*flags), std::move(*config), memory_ports(box));
  EXPECT_TRUE(gw.ok()) << (gw.ok() ? "" : gw.error());
  if (!gw) return nullptr;
  node->gw = std::move(*gw);
  auto started = node->gw->start();
  EXPECT_TRUE(started.ok()) << (started.ok() ? "" : started.error());
  if (!started) return nullptr;
  return node;
}

std::vector<uint8_t> seq_payload(uint32_t seq, std::size_t len = 64) {
  std::vector<uint8_t> p(len);
  for (std::size_t i = 0; i < len; ++i) p[i] = static_cast<uint8_t>(seq * 13 + i);
  std::memcpy(p.data(), &seq, sizeof(seq));
  return p;
}

// What the receiving VM must see: the sender's frame with the Ethernet header rewritten toward it.
std::vector<uint8_t> as_delivered(std::vector<uint8_t> frame, const Vm& to, const net::MacAddr& gateway_mac) {
  std::memcpy(frame.data(), to.mac_addr.bytes.data(), 6);
  std::memcpy(frame.data() + 6, gateway_mac.bytes.data(), 6);
  return frame;
}

class TwoGateways : public ::testing::Test {
 protected:
  virtual bool insecure() const { return false; }
  virtual std::vector<std::string> extra_flags_a() const { return {}; }
  virtual uint32_t uplink_mtu() const { return 0; }
  virtual std::vector<std::string> extra_flags_b() const { return {}; }
  void SetUp() override {
    const uint16_t grpc_a = free_port();
    const uint16_t grpc_b = free_port();
    ASSERT_NE(grpc_a, grpc_b);
    EndpointConfig net_a;
    net_a.name = "net-a";
    net_a.addr = ip("127.0.0.1");
    net_a.port = psp::kPspUdpPort;
    EndpointConfig net_b = net_a;
    net_b.name = "net-b";
    net_b.addr = ip("127.0.0.2");
    auto wire = ports::testing::make_pair(net_a, net_b);
    wire_ = wire.wire;
    NodeSpec a{"a", "127.0.0.1", "10.1.0.1", "10.2.0.1", grpc_a, grpc_b, "02:50:00:00:0a:01"};
    NodeSpec b{"b", "127.0.0.2", "10.2.0.1", "10.1.0.1", grpc_b, grpc_a, "02:50:00:00:0b:01"};
    a.insecure = b.insecure = insecure();
    a.uplink_mtu = b.uplink_mtu = uplink_mtu();
    a_ = make_node(a, std::move(wire.a), dir_.path, extra_flags_a());
    ASSERT_NE(a_, nullptr);
    b_ = make_node(b, std::move(wire.b), dir_.path, extra_flags_b());
    ASSERT_NE(b_, nullptr);
  }
  void TearDown() override {
    a_.reset();
    b_.reset();
  }

  // The VM asks for its peer's VIP, as a workload does before its first packet; the gateway learns the
  // VM's MAC from it.
  void arp(Node& n, const net::IpAddr& target) {
    n.vm->send(test::arp_request(n.vm->mac_addr, n.vm->vip, target));
    auto got = n.vm->receive(1);
    ASSERT_EQ(got.size(), 1u);
  }

  // The first packet A -> B: held, key exchange, delivered. Returns what VM B received.
  void connect() {
    arp(*a_, b_->vm->vip);
    arp(*b_, a_->vm->vip);
    const auto frame = a_->vm->udp_to(*b_->vm, a_->gateway_mac, seq_payload(0));
    a_->vm->send(frame);
    auto got = b_->vm->receive(1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0], as_delivered(frame, *b_->vm, b_->gateway_mac));
  }

  void expect_flows(uint32_t seq) {
    const auto ab = a_->vm->udp_to(*b_->vm, a_->gateway_mac, seq_payload(seq));
    a_->vm->send(ab);
    auto got = b_->vm->receive(1);
    ASSERT_EQ(got.size(), 1u) << "A -> B, seq " << seq;
    EXPECT_EQ(got[0], as_delivered(ab, *b_->vm, b_->gateway_mac));
    const auto ba = b_->vm->udp_to(*a_->vm, b_->gateway_mac, seq_payload(seq + 1));
    b_->vm->send(ba);
    got = a_->vm->receive(1);
    ASSERT_EQ(got.size(), 1u) << "B -> A, seq " << seq;
    EXPECT_EQ(got[0], as_delivered(ba, *a_->vm, a_->gateway_mac));
  }

  TempDir dir_;
  std::shared_ptr<ports::testing::Wire> wire_;
  std::unique_ptr<Node> a_, b_;
};

TEST_F(TwoGateways, ArpForARemoteVipGetsTheProxyReply) {
  a_->vm->send(test::arp_request(a_->vm->mac_addr, a_->vm->vip, b_->vm->vip));
  auto got = a_->vm->receive(1);
  ASSERT_EQ(got.size(), 1u);
  const auto& r = got[0];
  ASSERT_GE(r.size(), 14u + 28u);  // padded to the Ethernet minimum, or not
  EXPECT_EQ(std::vector<uint8_t>(r.begin(), r.begin() + 6),
            std::vector<uint8_t>(a_->vm->mac_addr.bytes.begin(), a_->vm->mac_addr.bytes.end()));
  EXPECT_EQ(std::vector<uint8_t>(r.begin() + 6, r.begin() + 12),
            std::vector<uint8_t>(a_->gateway_mac.bytes.begin(), a_->gateway_mac.bytes.end()));
  EXPECT_EQ(load_be16(&r[12]), net::kEtherTypeArp);
  EXPECT_EQ(load_be16(&r[14 + 6]), net::kArpReply);
  EXPECT_EQ(std::vector<uint8_t>(r.begin() + 22, r.begin() + 28),
            std::vector<uint8_t>(a_->gateway_mac.bytes.begin(), a_->gateway_mac.bytes.end()));  // sender MAC
  EXPECT_EQ(net::IpAddr::v4(std::span<const uint8_t, 4>(&r[28], 4)), b_->vm->vip);              // sender IP
  EXPECT_EQ(net::IpAddr::v4(std::span<const uint8_t, 4>(&r[38], 4)), a_->vm->vip);              // target IP
  EXPECT_TRUE(wait_until([&] { return a_->slow("exceptions_answered") == 1; }));

  // An address no tunnel leads to is not ours to claim.
  a_->vm->send(test::arp_request(a_->vm->mac_addr, a_->vm->vip, ip("10.9.9.9")));
  ASSERT_TRUE(wait_until([&] { return a_->slow("exceptions_ignored") == 1; }));
  EXPECT_TRUE(a_->vm->receive(1, std::chrono::milliseconds(0)).empty());
}

TEST_F(TwoGateways, FirstPacketIsHeldExchangedAndDeliveredThenTheReverseNeedsNoExchange) {
  connect();
  EXPECT_EQ(a_->slow("held"), 1u);
  EXPECT_EQ(a_->slow("exchanges_started"), 1u);
  EXPECT_EQ(a_->slow("exchanges_ok"), 1u);
  // Counted just after the hand-off to the worker, which may have delivered it already.
  EXPECT_TRUE(wait_until([&] { return a_->slow("resubmitted") == 1; }));
  // B learned its egress SA from A's reverse params: B -> A goes straight through.
  const auto frame = b_->vm->udp_to(*a_->vm, b_->gateway_mac, seq_payload(1));
  b_->vm->send(frame);
  auto got = a_->vm->receive(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], as_delivered(frame, *a_->vm, a_->gateway_mac));
  EXPECT_EQ(b_->slow("exchanges_started"), 0u);
  EXPECT_EQ(b_->slow("held"), 0u);
  EXPECT_EQ(a_->slow("exchanges_started"), 1u);
  const auto tunnels = a_->gw->handle("tunnels", json::object());
  ASSERT_TRUE(tunnels.ok());
  ASSERT_EQ((*tunnels)["tunnels"].size(), 1u);
  EXPECT_EQ((*tunnels)["tunnels"][0]["state"], "connected");
  EXPECT_EQ((*tunnels)["tunnels"][0]["remote_pip"], "127.0.0.2");
  // A decrypted with the master keys it started with: taking the first snapshot is not a rotation.
  EXPECT_TRUE(wait_until([&] { return a_->counters()["psp"]["rx_packets"].get<uint64_t>() >= 1; }));
  EXPECT_EQ(a_->counters()["psp"]["key_rotations"], 0u);
}

TEST_F(TwoGateways, ThousandFramesArriveInOrder) {
  connect();
  std::vector<std::vector<uint8_t>> frames;
  for (uint32_t i = 1; i <= 1000; ++i) {
    frames.push_back(a_->vm->udp_to(*b_->vm, a_->gateway_mac, seq_payload(i, 64 + i % 700)));
  }
  a_->vm->send(frames);
  auto got = b_->vm->receive(frames.size());
  ASSERT_EQ(got.size(), frames.size());
  for (std::size_t i = 0; i < frames.size(); ++i) {
    ASSERT_EQ(got[i], as_delivered(frames[i], *b_->vm, b_->gateway_mac)) << "frame " << i;
  }
}

// A burst before the tunnel exists: every packet is held behind one exchange and resubmitted in order.
TEST_F(TwoGateways, BurstBeforeTheTunnelIsHeldAndDeliveredInOrder) {
  arp(*a_, b_->vm->vip);
  arp(*b_, a_->vm->vip);
  std::vector<std::vector<uint8_t>> frames;
  for (uint32_t i = 0; i < 40; ++i)
    frames.push_back(a_->vm->udp_to(*b_->vm, a_->gateway_mac, seq_payload(i)));
  a_->vm->send(frames);
  auto got = b_->vm->receive(frames.size());
  ASSERT_EQ(got.size(), frames.size());
  for (std::size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(got[i], as_delivered(frames[i], *b_->vm, b_->gateway_mac)) << "frame " << i;
  }
  EXPECT_EQ(a_->slow("exchanges_started"), 1u);
  EXPECT_EQ(a_->slow("held"), frames.size());
  EXPECT_TRUE(wait_until([&] { return a_->slow("resubmitted") == frames.size(); }));
}

TEST_F(TwoGateways, TamperedOnTheWireIsCountedAndNotDelivered) {
  connect();
  std::atomic<int> tamper{1};
  wire_->set_hook([&tamper](WireFrame& f) {
    if (f.from == 0 && tamper.fetch_sub(1) > 0) f.bytes[f.bytes.size() / 2] ^= 0x80;
    return Verdict::kPass;
  });
  const auto bad = a_->vm->udp_to(*b_->vm, a_->gateway_mac, seq_payload(1));
  const auto good = a_->vm->udp_to(*b_->vm, a_->gateway_mac, seq_payload(2));
  a_->vm->send(std::vector<std::vector<uint8_t>>{bad, good});
  auto got = b_->vm->receive(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], as_delivered(good, *b_->vm, b_->gateway_mac));  // the tampered one never arrives
  EXPECT_EQ(b_->syndrome("auth_failed"), 1u);
  EXPECT_EQ(b_->syndrome("acl_miss"), 0u);
  EXPECT_TRUE(wait_until([&] { return b_->counters()["psp"]["auth_failures"] == 1; }));
  EXPECT_TRUE(b_->vm->receive(1, std::chrono::milliseconds(0)).empty());
  wire_->set_hook({});
}

TEST_F(TwoGateways, KeyRotationKeepsTrafficFlowing) {
  connect();
  expect_flows(10);
  auto spis = a_->tx_spis();
  ASSERT_EQ(spis.size(), 1u);
  const auto generation = [&] {
    auto st = b_->gw->handle("status", json::object());
    return st.ok() ? (*st)["key_generation"].get<uint64_t>() : 0;
  };
  for (uint64_t round = 1; round <= 2; ++round) {
    const uint32_t before = spis[0];
    const uint64_t g = generation();
    auto r = b_->gw->handle("rotate-keys", {{"issue_new_keys", true}});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ((*r)["lost"], 0);
    // Right after the previous re-key the rotation waits a moment (A may still have packets sealed with the
    // SPI it left in flight); the control thread makes it then.
    if (!(*r)["deferred"].get<bool>()) {
      EXPECT_EQ((*r)["rekey_due"], 1);
    }
    ASSERT_TRUE(wait_until([&] { return generation() == g + 1; })) << "round " << round;
    expect_flows(100 * static_cast<uint32_t>(round));  // the previous slot still decrypts meanwhile
    ASSERT_TRUE(wait_until([&] { return b_->slow("rekeys") == round; })) << "round " << round;
    expect_flows(100 * static_cast<uint32_t>(round) + 50);
    spis = a_->tx_spis();
    ASSERT_EQ(spis.size(), 1u);
    // A now sends under B's new key slot (each slot's SPI counter restarts with its new master key).
    EXPECT_EQ(psp::spi_slot(spis[0]), static_cast<int>(round % 2));
    EXPECT_NE(psp::spi_slot(spis[0]), psp::spi_slot(before));
  }
  EXPECT_EQ(b_->syndrome("unknown_key"), 0u);
  EXPECT_EQ(b_->syndrome("auth_failed"), 0u);
  // And the other side rotates too.
  auto r = a_->gw->handle("rotate-keys", {{"issue_new_keys", true}});
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(wait_until([&] { return a_->slow("rekeys") == 1; }));
  expect_flows(1000);
}

// The same two gateways with --grpc-insecure (plaintext, callers by source address 127.0.0.1).
// --metrics-address on gateway A: /metrics scraped over HTTP while traffic flows.
class TwoGatewaysWithMetrics : public TwoGateways {
 protected:
  std::vector<std::string> extra_flags_a() const override {
    return {"--metrics-address", "127.0.0.1:0", "--metrics-max-tunnels", "10"};
  }
  std::string scrape() const {
    httplib::Client client("127.0.0.1", a_->gw->metrics_port());
    auto res = client.Get("/metrics");
    EXPECT_TRUE(res);
    if (!res) return {};
    EXPECT_EQ(res->status, 200);
    return res->body;
  }
  // The value of the sample `series` (name with its labels), or -1 when absent.
  static double value(const std::string& text, const std::string& series) {
    const auto at = text.find("\n" + series + " ");
    if (at == std::string::npos) return -1;
    return std::strtod(text.c_str() + at + 1 + series.size() + 1, nullptr);
  }
};

TEST_F(TwoGatewaysWithMetrics, CountersMoveWithTrafficAndPromtoolAcceptsTheScrape) {
  ASSERT_NE(a_->gw->metrics_port(), 0);
  const std::string tunnel = R"({local_vip="10.1.0.1",remote_vip="10.2.0.1"})";
  const std::string before = scrape();
  EXPECT_EQ(value(before, "psp_gateway_port_rx_packets_total{port=\"vma\"}"), 0);
  EXPECT_EQ(value(before, "psp_gateway_tunnels"), 0);
  EXPECT_EQ(value(before, "psp_gateway_tunnel_tx_packets_total" + tunnel), -1);

  connect();
  for (uint32_t seq = 1; seq < 10; seq += 2) expect_flows(seq);
  // Workers publish their port and PSP counters every 100 ms; the tunnels' come from the flow entries.
  std::string after;
  EXPECT_TRUE(wait_until([&] {
    after = scrape();
    return value(after, "psp_gateway_tunnel_tx_packets_total" + tunnel) >= 6 &&
           value(after, "psp_gateway_tunnel_rx_packets_total" + tunnel) >= 5 &&
           value(after, "psp_gateway_port_rx_packets_total{port=\"vma\"}") >= 6 &&  // + the ARP
           value(after, "psp_gateway_psp_tx_packets_total") >= 6;
  })) << after;
  EXPECT_EQ(value(after, "psp_gateway_tunnels"), 1);
  EXPECT_EQ(value(after, "psp_gateway_slow_path_exchanges_ok_total"), 1);
  EXPECT_NE(after.find("psp_gateway_peer_tunnels{peer=\"" + a_->gw->tunnels().peer(0).name + "\"} 1\n"),
            std::string::npos);
  // The same numbers as pspctl's JSON: one snapshot, two renderings.
  const json c = a_->counters();
  EXPECT_GE(c["tunnels"][0]["tx_packets"].get<uint64_t>(), 6u);
  // Per-peer RPC outcomes: A sent the one exchange and it was answered OK.
  const std::string peer = a_->gw->tunnels().peer(0).name;
  EXPECT_EQ(value(after, "psp_gateway_peer_rpcs_total{peer=\"" + peer + "\",direction=\"sent\",code=\"ok\"}"),
            1)
      << after;
  const json peers = a_->gw->handle("peers", json::object()).value();
  EXPECT_EQ(peers["peers"][0]["rpcs_sent"]["ok"], 1);
  EXPECT_EQ(peers["peers"][0]["rpcs_ok"], 1);
  EXPECT_EQ(peers["peers"][0]["rpcs_failed"], 0);

  const auto lint = admin::testing::promtool_check(after);
  if (!lint.available) GTEST_SKIP() << "promtool not installed (scripts/deps.sh installs package prometheus)";
  EXPECT_EQ(lint.status, 0) << lint.output << "\n" << after;
}

// Gateways on a standard 1500-byte uplink: the tunnel carries inner packets of up to 1500 - 60 bytes (outer
// IPv4 20, UDP 8, PSP header 16, ICV 16), and nothing larger is encapsulated (mtu_guard.hpp).
class TwoGatewaysOn1500 : public TwoGateways {
 protected:
  static constexpr uint32_t kPayloadMtu = 1440;
  uint32_t uplink_mtu() const override { return 1500; }
  // A UDP frame A -> B whose IP packet is `ip_len` bytes, with the IPv4 flags `frag` (DF or not).
  std::vector<uint8_t> sized(uint32_t ip_len, uint16_t frag, uint32_t seq) const {
    test::UdpSpec s;
    s.src_mac = a_->vm->mac_addr;
    s.dst_mac = a_->gateway_mac;
    s.src = a_->vm->vip;
    s.dst = b_->vm->vip;
    s.dport = kVmUdpPort;
    s.payload = seq_payload(seq, ip_len - 28);
    s.ipv4_frag = frag;
    return test::udp_frame(s);
  }
  void SetUp() override {
    TwoGateways::SetUp();
    // Every datagram on the network wire fits the uplink: outer IPv4 + UDP + the PSP packet <= 1500.
    wire_->set_hook([this](WireFrame& f) {
      if (f.bytes.size() + 28 > 1500) ++oversized_on_wire_;
      return Verdict::kPass;
    });
  }
  std::atomic<int> oversized_on_wire_{0};
};

TEST_F(TwoGatewaysOn1500, DfPacketTooBigForTheTunnelGetsFragmentationNeededBack) {
  connect();
  const auto fits = sized(kPayloadMtu, net::kIpv4FlagDf, 1);
  a_->vm->send(fits);
  auto got = b_->vm->receive(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], as_delivered(fits, *b_->vm, b_->gateway_mac)) << "exactly the payload MTU goes whole";

  const auto big = sized(kPayloadMtu + 1, net::kIpv4FlagDf, 2);
  a_->vm->send(big);
  got = a_->vm->receive(1);
  ASSERT_EQ(got.size(), 1u) << "an ICMP error back to the sender";
  const std::vector<uint8_t>& r = got[0];
  ASSERT_EQ(r.size(), 14u + 576u);
  EXPECT_EQ(0, std::memcmp(r.data(), a_->vm->mac_addr.bytes.data(), 6));
  EXPECT_EQ(0, std::memcmp(r.data() + 6, a_->gateway_mac.bytes.data(), 6));
  const uint8_t* ip4 = r.data() + 14;
  EXPECT_EQ(ip4[9], net::kIpProtoIcmp);
  EXPECT_EQ(net::IpAddr::v4(std::span<const uint8_t, 4>(ip4 + 12, 4)), b_->vm->vip);
  EXPECT_EQ(net::IpAddr::v4(std::span<const uint8_t, 4>(ip4 + 16, 4)), a_->vm->vip);
  EXPECT_EQ(ip4[20], 3);
  EXPECT_EQ(ip4[21], 4);
  EXPECT_EQ(load_be16(ip4 + 26), kPayloadMtu) << "the next-hop MTU is the tunnel's";
  EXPECT_EQ(0, std::memcmp(ip4 + 28, big.data() + 14, 28)) << "the offending IP and UDP headers quoted";
  EXPECT_TRUE(b_->vm->receive(1, std::chrono::milliseconds(50)).empty()) << "and nothing reaches B";
  EXPECT_TRUE(wait_until([&] { return a_->slow("too_big_icmp_sent") == 1; }));
  EXPECT_EQ(a_->slow("too_big_fragmented"), 0u);
  EXPECT_EQ(oversized_on_wire_.load(), 0);
}

// Without DF the sender allowed fragments: the inner packet is fragmented before encapsulation and B's
// workload gets the fragments (its stack reassembles), never an outer fragment.
TEST_F(TwoGatewaysOn1500, PacketWithoutDfIsFragmentedBeforeEncap) {
  connect();
  const auto big = sized(3000, 0, 3);
  a_->vm->send(big);
  auto got = b_->vm->receive(3);
  ASSERT_EQ(got.size(), 3u);
  std::vector<uint8_t> payload;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const uint8_t* ip4 = got[i].data() + 14;
    const uint16_t frag = load_be16(ip4 + 6);
    EXPECT_LE(load_be16(ip4 + 2), kPayloadMtu);
    EXPECT_EQ((frag & net::kIpv4FragOffsetMask) * 8u, payload.size()) << "fragment " << i;
    EXPECT_EQ((frag & net::kIpv4FlagMf) != 0, i + 1 < got.size());
    payload.insert(payload.end(), ip4 + 20, ip4 + load_be16(ip4 + 2));
  }
  EXPECT_EQ(payload, std::vector<uint8_t>(big.begin() + 34, big.end())) << "UDP header and data, whole";
  EXPECT_TRUE(wait_until([&] { return a_->slow("too_big_fragmented") == 1; }));
  EXPECT_EQ(a_->slow("too_big_icmp_sent"), 0u);
  EXPECT_EQ(oversized_on_wire_.load(), 0);
}

// A request the peer refuses is counted as refused, per peer, with the status code and the last error.
TEST_F(TwoGateways, RefusedAndFailedRpcsAreCountedPerPeer) {
  connect();
  // B asks A to rotate twice within a minute: A answers the second with RESOURCE_EXHAUSTED.
  auto r1 = b_->gw->tunnels().request_peer_rotation(0, false, b_->gw->transport());
  auto r2 = b_->gw->tunnels().request_peer_rotation(0, false, b_->gw->transport());
  EXPECT_TRUE(r1.ok());
  EXPECT_FALSE(r2.ok());
  const json a_peers = a_->gw->handle("peers", json::object()).value();
  EXPECT_EQ(a_peers["peers"][0]["rpcs_received"]["resource_exhausted"], 1) << a_peers.dump();
  EXPECT_EQ(a_peers["peers"][0]["rpcs_refused"], 1);
  const json b_peers = b_->gw->handle("peers", json::object()).value();
  EXPECT_EQ(b_peers["peers"][0]["rpcs_sent"]["resource_exhausted"], 1) << b_peers.dump();
  EXPECT_NE(b_peers["peers"][0]["last_error"].get<std::string>().find("sent resource_exhausted"),
            std::string::npos);
}

// pspctl sample on|off [--rate N]: sampling switched and re-rated live, as --sample-rate does at start.
class TwoGatewaysSampling : public TwoGateways {
 protected:
  std::vector<std::string> extra_flags_a() const override { return {"--sample-rate", "1"}; }
  // The sample count once the control thread has taken every sample the workers queued (unchanged for
  // 50 ms; samples travel through a ring to the control thread, after the frames themselves).
  uint64_t settled_samples() const {
    uint64_t last = a_->slow("samples");
    for (int i = 0; i < 40; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      const uint64_t now = a_->slow("samples");
      if (now == last) return now;
      last = now;
    }
    return last;
  }
  // Sends `n` frames A -> B (all delivered) and returns how many A sampled meanwhile.
  uint64_t samples_while_sending(uint32_t n, uint32_t seq0) {
    const uint64_t before = settled_samples();
    for (uint32_t i = 0; i < n; ++i)
      a_->vm->send(a_->vm->udp_to(*b_->vm, a_->gateway_mac, seq_payload(seq0 + i)));
    EXPECT_EQ(b_->vm->receive(n).size(), n);
    return settled_samples() - before;
  }
};

TEST_F(TwoGatewaysSampling, OffStopsSamplesOnWithARateResumesThem) {
  connect();
  EXPECT_GT(samples_while_sending(64, 100), 0u);  // 1 in 2
  auto off = a_->gw->handle("sample", {{"on", false}});
  ASSERT_TRUE(off.ok()) << off.error().message;
  EXPECT_EQ((*off)["sampling"], false);
  EXPECT_EQ(a_->gw->handle("status", json::object()).value()["sample_rate"], 0);
  EXPECT_EQ(samples_while_sending(64, 200), 0u);
  auto on = a_->gw->handle("sample", {{"on", true}, {"rate", 2}});
  ASSERT_TRUE(on.ok()) << on.error().message;
  EXPECT_EQ((*on)["rate"], 2);
  EXPECT_EQ(a_->gw->handle("status", json::object()).value()["sample_rate"], 2);
  EXPECT_GT(samples_while_sending(128, 300), 0u);  // 1 in 4
  EXPECT_FALSE(a_->gw->handle("sample", {{"on", true}, {"rate", 17}}).ok());
  EXPECT_FALSE(a_->gw->handle("sample", {{"rate", 2}}).ok());  // "on" is required
}

// A gateway started without --sample-rate has the sampling pipes all the same, empty: sample on works
// (no rate given and none used before: 1 in 1024), and with --rate it samples what it sends.
TEST_F(TwoGatewaysSampling, OnWorksOnAGatewayStartedWithoutSampleRate) {
  connect();
  EXPECT_EQ(b_->gw->handle("status", json::object()).value()["sample_rate"], 0);
  auto on = b_->gw->handle("sample", {{"on", true}});
  ASSERT_TRUE(on.ok()) << on.error().message;
  EXPECT_EQ((*on)["rate"], 10);
  auto every_other = b_->gw->handle("sample", {{"on", true}, {"rate", 1}});
  ASSERT_TRUE(every_other.ok()) << every_other.error().message;
  EXPECT_EQ(b_->gw->handle("status", json::object()).value()["sample_rate"], 1);
  const uint64_t before = b_->slow("samples");
  for (uint32_t i = 0; i < 64; ++i)
    b_->vm->send(b_->vm->udp_to(*a_->vm, b_->gateway_mac, seq_payload(400 + i)));
  EXPECT_EQ(a_->vm->receive(64).size(), 64u);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (b_->slow("samples") == before && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GT(b_->slow("samples"), before);
}

class TwoInsecureGateways : public TwoGateways {
 protected:
  bool insecure() const override { return true; }
};

TEST_F(TwoInsecureGateways, FirstPacketIsExchangedAndDeliveredBothWays) {
  connect();
  expect_flows(1);
}

// --psp-version 2 / 3 on both gateways (AES-GMAC-128/256, integrity only): tunnels come up with that
// version, traffic flows both ways, the payload crosses the wire in the clear and a flipped payload bit
// is still caught by the ICV.
class TwoGmacGateways : public TwoGateways, public ::testing::WithParamInterface<const char*> {
 protected:
  std::vector<std::string> extra_flags_a() const override { return {"--psp-version", GetParam()}; }
  std::vector<std::string> extra_flags_b() const override { return {"--psp-version", GetParam()}; }
};

TEST_P(TwoGmacGateways, TrafficFlowsBothWaysWithThePayloadClearAndAuthenticated) {
  const std::string name = std::string(GetParam()) == "2" ? "aes-gmac-128" : "aes-gmac-256";
  EXPECT_EQ((*a_->gw->handle("status", json::object()))["psp_version"], name);
  connect();
  expect_flows(1);
  // On the wire: the PSP header names the version and the inner frame's payload is readable.
  const auto payload = seq_payload(7);
  std::atomic<int> seen{0};
  std::atomic<int> version{-1};
  wire_->set_hook([&](WireFrame& f) {
    if (f.from == 0 &&
        std::search(f.bytes.begin(), f.bytes.end(), payload.begin(), payload.end()) != f.bytes.end()) {
      ++seen;
    }
    if (f.from == 0 && f.bytes.size() > 4) version = (f.bytes[3] >> 2) & 0xf;  // UDP payload: the PSP header
    return Verdict::kPass;
  });
  const auto frame = a_->vm->udp_to(*b_->vm, a_->gateway_mac, payload);
  a_->vm->send(frame);
  auto got = b_->vm->receive(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], as_delivered(frame, *b_->vm, b_->gateway_mac));
  EXPECT_EQ(seen, 1);
  EXPECT_EQ(version, std::stoi(GetParam()));
  // Tampering with a clear payload byte fails authentication.
  std::atomic<int> tamper{1};
  wire_->set_hook([&tamper](WireFrame& f) {
    if (f.from == 0 && tamper.fetch_sub(1) > 0) f.bytes[f.bytes.size() - 20] ^= 0x01;
    return Verdict::kPass;
  });
  a_->vm->send(a_->vm->udp_to(*b_->vm, a_->gateway_mac, seq_payload(8)));
  EXPECT_TRUE(wait_until([&] { return b_->counters()["psp"]["auth_failures"] == 1; }));
  EXPECT_TRUE(b_->vm->receive(1, std::chrono::milliseconds(0)).empty());
  wire_->set_hook({});
  expect_flows(9);
}

INSTANTIATE_TEST_SUITE_P(Versions, TwoGmacGateways, ::testing::Values("2", "3"));

TEST_F(TwoGateways, EachPeerIsBoundToThePipOfItsFirstExchange) {
  auto before = a_->gw->handle("peers", json::object());
  ASSERT_TRUE(before.ok());
  EXPECT_FALSE((*before)["peers"][0].contains("pip"));
  connect();
  for (auto [n, pip] : {std::pair{a_.get(), "127.0.0.2"}, std::pair{b_.get(), "127.0.0.1"}}) {
    auto peers = n->gw->handle("peers", json::object());
    ASSERT_TRUE(peers.ok());
    EXPECT_EQ((*peers)["peers"][0]["pip"], pip);
  }
}

// Start-up refuses what it cannot run securely, saying why.
class GatewaySecurity : public ::testing::Test {
 protected:
  // Gateway::create with the node's config and these flags (no TLS flags of its own unless given).
  Result<std::unique_ptr<Gateway>, std::string> create(const std::vector<std::string>& extra,
                                                       const json& x_sw_tls = nullptr) {
    NodeSpec spec{"c", "127.0.0.1", "10.1.0.1", "10.2.0.1", free_port(), free_port(), "02:50:00:00:0a:01"};
    json c = json::parse(config_text(spec));
    if (!x_sw_tls.is_null()) c["x-sw"]["grpc-tls"] = x_sw_tls;
    const std::string path = dir_.path + "/c.json";
    std::ofstream(path) << c.dump();
    std::vector<std::string> args{"psp-gateway", "-c", path, "--outer-ip-type", "ipv4", "-d", "vm"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    auto flags = parse_flags(static_cast<int>(argv.size()), argv.data());
    EXPECT_TRUE(flags.ok());
    auto config = parse_config(c.dump(), path, {});
    EXPECT_TRUE(config.ok());
    if (!flags || !config) return Err{std::string("setup")};
    auto box = std::make_shared<PortBox>();
    return Gateway::create(std::move(*flags), std::move(*config), memory_ports(box));
  }
  static void expect_error(const Result<std::unique_ptr<Gateway>, std::string>& r,
                           const std::vector<std::string>& parts) {
    ASSERT_FALSE(r.ok());
    for (const auto& p : parts)
      EXPECT_NE(r.error().find(p), std::string::npos) << p << " not in: " << r.error();
  }
  TempDir dir_;
};

TEST_F(GatewaySecurity, WithoutTlsMaterialOrGrpcInsecureItRefusesToStartAndSaysHow) {
  expect_error(create({}), {"--grpc-tls-cert FILE --grpc-tls-key FILE --grpc-tls-ca FILE", "x-sw.grpc-tls",
                            "openssl", "--grpc-insecure"});
}

TEST_F(GatewaySecurity, TlsFromFlagsOrConfigStartsAndBadMaterialFailsNamingTheFile) {
  const auto flags = tls_flags("s", dir_.path);  // cert, key, ca at [1], [3], [5]
  EXPECT_TRUE(create(flags).ok());
  EXPECT_TRUE(create({}, {{"cert", flags[1]}, {"key", flags[3]}, {"ca", flags[5]}}).ok());
  EXPECT_TRUE(create({"--grpc-insecure"}).ok());
  // A key of another certificate: fails at start, not at the first RPC.
  const auto other = tls_flags("other", dir_.path);
  expect_error(create({flags[0], flags[1], other[2], other[3], flags[4], flags[5]}),
               {other[3], "does not belong to the certificate"});
  expect_error(create({flags[0], dir_.path + "/nope.crt", flags[2], flags[3], flags[4], flags[5]}),
               {dir_.path + "/nope.crt", "cannot read"});
  expect_error(create({flags[0], flags[1], flags[2], flags[3]}), {"--grpc-tls-ca is missing"});
  expect_error(create({"--grpc-insecure", flags[0], flags[1]}), {"--grpc-insecure and TLS material"});
}

// Issue 7 §6: EGR_ACL matches the in-port. Gateway A has two host ports (10.1.0.1 behind port 1, 10.1.0.2
// behind port 2), both routed to B. Once port 2's tunnel is up, port 1's workload sending as 10.1.0.2 is
// not encrypted: the slow path drops it as dropped_wrong_port. Port 2's own first packet (held, exchanged,
// resubmitted with its in-port) arrives.
TEST(TwoHostPorts, AWorkloadCannotSendAsAnotherPortsVip) {
  TempDir dir;
  const uint16_t grpc_a = free_port();
  const uint16_t grpc_b = free_port();
  EndpointConfig net_a;
  net_a.name = "net-a";
  net_a.addr = ip("127.0.0.1");
  net_a.port = psp::kPspUdpPort;
  EndpointConfig net_b = net_a;
  net_b.name = "net-b";
  net_b.addr = ip("127.0.0.2");
  auto wire = ports::testing::make_pair(net_a, net_b);
  NodeSpec spec_a{"a", "127.0.0.1", "10.1.0.1", "10.2.0.1", grpc_a, grpc_b, "02:50:00:00:0a:01"};
  spec_a.vip2 = "10.1.0.2";
  NodeSpec spec_b{"b", "127.0.0.2", "10.2.0.1", "10.1.0.1", grpc_b, grpc_a, "02:50:00:00:0b:01"};
  spec_b.peer_vip2 = "10.1.0.2";
  auto a = make_node(spec_a, std::move(wire.a), dir.path);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(a->vm2, nullptr);
  auto b = make_node(spec_b, std::move(wire.b), dir.path);
  ASSERT_NE(b, nullptr);
  b->vm->send(test::arp_request(b->vm->mac_addr, b->vm->vip, ip("10.1.0.2")));  // B learns its VM's MAC
  ASSERT_EQ(b->vm->receive(1).size(), 1u);

  const auto own = a->vm2->udp_to(*b->vm, a->gateway_mac, seq_payload(1));
  a->vm2->send(own);
  auto got = b->vm->receive(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], as_delivered(own, *b->vm, b->gateway_mac));

  Vm impostor(nullptr, a->vm->mac_addr, ip("10.1.0.2"));  // port 1's workload, port 2's VIP
  const auto spoofed = impostor.udp_to(*b->vm, a->gateway_mac, seq_payload(2));
  a->vm->send(spoofed);
  EXPECT_TRUE(wait_until([&] { return a->slow("dropped_wrong_port") == 1; }));
  EXPECT_TRUE(b->vm->receive(1, std::chrono::milliseconds(200)).empty());
  EXPECT_EQ(a->slow("held"), 1u);  // only port 2's first packet
  EXPECT_EQ(a->counters()["psp"]["tx_packets"], 1u);

  a->vm2->send(a->vm2->udp_to(*b->vm, a->gateway_mac, seq_payload(3)));  // port 2 still sends
  EXPECT_EQ(b->vm->receive(1).size(), 1u);
}

// A gateway whose peer is unreachable: the held packet is dropped (counted) once the exchange fails, and
// the exchange fails within its RPC deadline.
class UnreachablePeer : public ::testing::Test {
 protected:
  std::unique_ptr<Node> make(uint16_t peer_grpc_port, uint32_t deadline_ms) {
    EndpointConfig net_c;
    net_c.name = "net-c";
    net_c.addr = ip("127.0.0.3");
    net_c.port = psp::kPspUdpPort;
    EndpointConfig far = net_c;
    far.name = "nobody";
    auto wire = ports::testing::make_pair(net_c, far);
    far_ = std::move(wire.b);
    return make_node({"c", "127.0.0.3", "10.3.0.1", "10.4.0.1", free_port(), peer_grpc_port,
                      "02:50:00:00:0c:01", deadline_ms},
                     std::move(wire.a), dir_.path);
  }
  void expect_dropped_within(Node& c, std::chrono::milliseconds limit) {
    const Vm peer(nullptr, mac("02:00:00:00:00:0d"), ip("10.4.0.1"));
    const auto start = Clock::now();
    c.vm->send(c.vm->udp_to(peer, c.gateway_mac, seq_payload(1)));
    ASSERT_TRUE(wait_until([&] { return c.slow("dropped_exchange_failed") == 1; }));
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    EXPECT_LT(took, limit);
    EXPECT_EQ(c.slow("held"), 1u);
    EXPECT_EQ(c.slow("exchanges_failed"), 1u);
    EXPECT_EQ(c.slow("resubmitted"), 0u);
    const auto tunnels = c.gw->handle("tunnels", json::object());
    ASSERT_TRUE(tunnels.ok());
    ASSERT_EQ((*tunnels)["tunnels"].size(), 1u);
    EXPECT_EQ((*tunnels)["tunnels"][0]["state"], "backoff");
    EXPECT_TRUE(c.vm->receive(1, std::chrono::milliseconds(0)).empty());
    EXPECT_EQ(far_->queued(), 0u);  // nothing went out on the wire
  }

  TempDir dir_;
  std::unique_ptr<MemoryPort> far_;
};

TEST_F(UnreachablePeer, NobodyListensHeldPacketsAreDroppedQuickly) {
  auto c = make(free_port(), 300);
  ASSERT_NE(c, nullptr);
  expect_dropped_within(*c, std::chrono::milliseconds(300 + 700));
}

TEST_F(UnreachablePeer, SilentPeerFailsWithinTheRpcDeadline) {
  SilentListener silent;
  auto c = make(silent.port, 300);
  ASSERT_NE(c, nullptr);
  expect_dropped_within(*c, std::chrono::milliseconds(300 + 700));
}

}  // namespace
}  // namespace pspgw::gateway
