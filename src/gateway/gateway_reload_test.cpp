// Live reload (issue 10): two whole gateways (testing/two_gateways.hpp: in-memory ports, real gRPC over
// mutual TLS). A steady stream of sequence-numbered UDP frames crosses one tunnel both ways while gateway
// A is reloaded again and again: a peer added, a VIP added and then changed (on both sides), the peer
// removed, and configs refused (a parse error, a change that needs a restart). The unaffected tunnel must
// lose nothing, the new VIP's tunnel must work, the old VIP's must be gone, and a refused config must
// leave the running one as it was.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "base/byteorder.hpp"
#include "gateway/testing/two_gateways.hpp"

namespace pspgw::gateway {
namespace {

using testing::Clock;
using testing::GatewayPair;
using testing::GatewaySpec;
using testing::json;
using testing::TestGateway;
using testing::wait_until;

constexpr uint16_t kWorkloadPort = 5001;
constexpr std::size_t kPayload = 32;
constexpr auto kWait = std::chrono::seconds(20);  // an upper bound for a failing test, not a timing

// Frames between one VIP of A and one VIP of B, both ways, each carrying (direction, sequence number).
class Stream {
 public:
  Stream(TestGateway& a, TestGateway& b, const std::string& a_vip, const std::string& b_vip)
      : side_{&a, &b}, vip_{test::ip(a_vip), test::ip(b_vip)} {}

  void send(std::size_t per_side) {
    for (int dir = 0; dir < 2; ++dir) {
      net::PacketBatch batch;
      for (std::size_t i = 0; i < per_side && !batch.full(); ++i) {
        net::Packet* p = pool_.alloc();
        ASSERT_NE(p, nullptr);
        ASSERT_TRUE(p->assign(frame(dir, sent_[dir]++)));
        batch.push(p);
      }
      EXPECT_EQ(side_[dir]->workload->tx_burst(batch), batch.size());
      for (net::Packet* p : batch) pool_.free(p);
    }
  }
  // Takes what arrived at both workloads; frames of other VIPs go to `other`.
  void drain(std::vector<std::vector<uint8_t>>* other = nullptr) {
    for (int dir = 0; dir < 2; ++dir) {
      net::PacketBatch batch;
      side_[1 - dir]->workload->rx_burst(pool_, batch);
      for (net::Packet* p : batch) {
        take(dir, {p->data(), p->size()}, other);
        pool_.free(p);
      }
    }
  }
  bool all_received() const { return got_[0] == sent_[0] && got_[1] == sent_[1]; }
  // Counting starts over: what was sent so far and did not arrive is forgotten (frames held while the
  // tunnel was made: its set-up is not what a reload test measures).
  void restart_count() {
    for (int dir = 0; dir < 2; ++dir) got_[dir] = sent_[dir];
    bad_ = 0;
  }
  uint64_t sent(int dir) const { return sent_[dir]; }
  uint64_t received(int dir) const { return got_[dir]; }
  uint64_t bad() const { return bad_; }

 private:
  std::vector<uint8_t> frame(int dir, uint32_t seq) const {
    test::UdpSpec s;
    s.src_mac = side_[dir]->workload_mac;
    s.dst_mac = side_[dir]->gateway_mac;
    s.src = vip_[dir];
    s.dst = vip_[1 - dir];
    s.dport = kWorkloadPort;
    s.payload.assign(kPayload, static_cast<uint8_t>(dir));
    std::memcpy(s.payload.data(), &seq, sizeof(seq));
    return test::udp_frame(s);
  }
  void take(int dir, std::span<const uint8_t> f, std::vector<std::vector<uint8_t>>* other) {
    constexpr std::size_t kL4 = 14 + 20;  // Ethernet + IPv4 without options
    if (f.size() < kL4 + 8 + kPayload || load_be16(&f[kL4 + 2]) != kWorkloadPort) return;  // ARP replies
    const net::IpAddr src = net::IpAddr::v4(std::span<const uint8_t, 4>(&f[14 + 12], 4));
    const net::IpAddr dst = net::IpAddr::v4(std::span<const uint8_t, 4>(&f[14 + 16], 4));
    if (src != vip_[dir] || dst != vip_[1 - dir]) {
      if (other) other->emplace_back(f.begin(), f.end());
      return;
    }
    uint32_t seq = 0;
    std::memcpy(&seq, &f[kL4 + 8], sizeof(seq));
    if (seq != got_[dir]) ++bad_;  // out of order, duplicated or a gap
    ++got_[dir];
  }

  TestGateway* side_[2];
  net::IpAddr vip_[2];
  net::PacketPool pool_{512};
  uint32_t sent_[2] = {0, 0};
  uint64_t got_[2] = {0, 0};
  uint64_t bad_ = 0;
};

// A gateway's config: its host port with `vips`, and its peers (address -> [(local VIP, remote VIPs)]).
struct Peer {
  std::string address;
  std::vector<std::pair<std::string, std::vector<std::string>>> sessions;
};

// More host ports after the first: (name, its VIPs).
using MorePorts = std::vector<std::pair<std::string, std::vector<std::string>>>;

std::string config_json(const std::string& name, const std::string& pip, uint16_t grpc_port,
                        const std::vector<std::string>& vips, const std::vector<Peer>& peers,
                        const std::string& gateway_mac, const MorePorts& more_ports = {}) {
  json jp = json::array();
  for (const auto& p : peers) {
    json sessions = json::array();
    for (const auto& [local, remotes] : p.sessions)
      sessions.push_back({{"local-vip", local}, {"remote-vips", remotes}});
    jp.push_back({{"remote-grpc-address", p.address}, {"sessions", sessions}});
  }
  json host_ports = {{{"name", "vm" + name}, {"local-vips", vips}, {"mac", gateway_mac}}};
  for (const auto& [port, port_vips] : more_ports)
    host_ports.push_back({{"name", port}, {"local-vips", port_vips}});
  json c = {
      {"config", {{"local-grpc-address", "127.0.0.1:" + std::to_string(grpc_port)}, {"local-pip", pip}}},
      {"peers", jp},
      {"x-sw", {{"host-ports", host_ports}, {"rpc-deadline-ms", 5000}}}};
  return c.dump();
}

class Reload : public ::testing::Test {
 protected:
  void SetUp() override {
    GatewaySpec a, b;
    a.vips = {"10.1.0.1"};
    a.peer_vips = {"10.2.0.1"};
    b.vips = a.peer_vips;
    b.peer_vips = a.vips;
    ASSERT_TRUE(gws_.start(a, b));
    for (auto* w : {gws_.network_wire.get(), gws_.a->host_wire.get(), gws_.b->host_wire.get()})
      w->set_queue_limit(1u << 20);
    gws_.a->announce("10.1.0.1", "10.2.0.1");
    gws_.b->announce("10.2.0.1", "10.1.0.1");
    stream_ = std::make_unique<Stream>(*gws_.a, *gws_.b, "10.1.0.1", "10.2.0.1");
    a_port_ = gws_.b->gw->tunnels().peer(0).name.substr(10);  // "127.0.0.1:PORT"
    b_port_ = gws_.a->gw->tunnels().peer(0).name.substr(10);
  }

  std::string a_address() const { return "127.0.0.1:" + a_port_; }
  std::string b_address() const { return "127.0.0.1:" + b_port_; }

  // Writes gateway X's config file and reloads it.
  Result<std::string, std::string> reload(TestGateway& g, const std::string& name, const std::string& text) {
    std::ofstream(gws_.dir.path + "/" + name + ".json") << text;
    return g.gw->reload();
  }
  Result<std::string, std::string> reload_a(const std::vector<std::string>& vips,
                                            const std::vector<Peer>& peers, const std::string& grpc = "",
                                            const MorePorts& more_ports = {}) {
    return reload(
        *gws_.a, "a",
        config_json("a", "127.0.0.1", static_cast<uint16_t>(std::stoi(grpc.empty() ? a_port_ : grpc)), vips,
                    peers, "02:50:00:00:0a:01", more_ports));
  }
  Result<std::string, std::string> reload_b(const std::vector<std::string>& vips,
                                            const std::vector<Peer>& peers) {
    return reload(*gws_.b, "b",
                  config_json("b", "127.0.0.2", static_cast<uint16_t>(std::stoi(b_port_)), vips, peers,
                              "02:50:00:00:0b:01"));
  }

  // Keeps the stream going for `d`.
  void stream_for(Clock::duration d, std::vector<std::vector<uint8_t>>* other = nullptr) {
    const auto end = Clock::now() + d;
    while (Clock::now() < end) {
      stream_->send(4);
      stream_->drain(other);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  std::size_t peers(const TestGateway& g) const { return g.admin("peers")["peers"].size(); }
  // Waits for the unaffected tunnel to carry traffic both ways and every frame so far to arrive; returns
  // the disorder seen while it was made (frames held then may overtake each other once).
  uint64_t stream_up() {
    EXPECT_TRUE(wait_until(
        [&] {
          stream_->send(1);
          stream_->drain();
          return stream_->received(0) > 0 && stream_->received(1) > 0;
        },
        kWait));
    // Held frames (the exchange) arrive, or not, within this; from here on every frame counts.
    const auto quiet = Clock::now() + std::chrono::milliseconds(200);
    while (Clock::now() < quiet && !stream_->all_received()) {
      stream_->drain();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    stream_->restart_count();
    stream_for(std::chrono::milliseconds(100));
    EXPECT_TRUE(wait_until(
        [&] {
          stream_->drain();
          return stream_->all_received();
        },
        kWait));
    return stream_->bad();
  }
  void expect_stream_lost_nothing(uint64_t disorder_at_start) {
    ASSERT_TRUE(wait_until(
        [&] {
          stream_->drain();
          return stream_->all_received();
        },
        kWait))
        << "A->B " << stream_->received(0) << "/" << stream_->sent(0) << ", B->A " << stream_->received(1)
        << "/" << stream_->sent(1);
    EXPECT_EQ(stream_->bad(), disorder_at_start);
  }
  static bool connected(const TestGateway& g, const std::string& local, const std::string& remote) {
    const json all = g.admin("tunnels");  // kept: a range-for over a temporary's member would dangle
    for (const auto& t : all["tunnels"]) {
      if (t["local_vip"] == local && t["remote_vip"] == remote && t["state"] == "connected") return true;
    }
    return false;
  }
  // The tunnel is (or soon becomes: crossing exchanges settle) connected.
  bool has_tunnel(const TestGateway& g, const std::string& local, const std::string& remote) const {
    if (wait_until([&] { return connected(g, local, remote); }, std::chrono::seconds(5))) return true;
    std::printf("tunnels: %s\n", g.admin("tunnels")["tunnels"].dump().c_str());
    return false;
  }

  GatewayPair gws_;
  std::unique_ptr<Stream> stream_;
  std::string a_port_, b_port_;
};

TEST_F(Reload, AddPeerChangeVipRemovePeerAndRefusalsLoseNothingOnAnUnaffectedTunnel) {
  // The unaffected tunnel comes up and carries traffic.
  ASSERT_TRUE(wait_until(
      [&] {
        stream_->send(1);
        stream_->drain();
        return stream_->received(0) > 0 && stream_->received(1) > 0;
      },
      kWait));
  stream_for(std::chrono::milliseconds(100));
  // Frames held while the tunnel was made may overtake each other once: order counts from here on.
  ASSERT_TRUE(wait_until(
      [&] {
        stream_->drain();
        return stream_->all_received();
      },
      kWait));
  const uint64_t disorder_at_start = stream_->bad();
  const std::vector<std::string> b_vips{"10.2.0.1"};

  // 1. Add a peer (nobody listens there: it only has to be configured, not reached).
  const Peer b{b_address(), {{"10.1.0.1", {"10.2.0.1"}}}};
  const Peer c{"127.0.0.1:1", {{"10.1.0.1", {"10.3.0.1"}}}};
  auto r = reload_a({"10.1.0.1"}, {b, c});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_NE(r->find("peers +1 -0"), std::string::npos) << *r;
  EXPECT_EQ(peers(*gws_.a), 2u);
  stream_for(std::chrono::milliseconds(100));

  // 2. A new VIP on A with a tunnel to B (both sides reloaded), then the VIP changed: 10.1.0.2 -> 10.1.0.3.
  ASSERT_TRUE(reload_b(b_vips, {{a_address(), {{"10.2.0.1", {"10.1.0.1", "10.1.0.2"}}}}}).ok());
  const Peer b2{b_address(), {{"10.1.0.1", {"10.2.0.1"}}, {"10.1.0.2", {"10.2.0.1"}}}};
  r = reload_a({"10.1.0.1", "10.1.0.2"}, {b2, c});
  ASSERT_TRUE(r.ok()) << r.error();
  gws_.a->announce("10.1.0.2", "10.2.0.1");
  // A frame from the new VIP to B (and one back) while the stream goes on; the stream's drain hands
  // over every frame that is not its own.
  auto new_vip_reaches_b = [&](const std::string& vip) {
    Stream one(*gws_.a, *gws_.b, vip, "10.2.0.1");
    std::vector<std::vector<uint8_t>> other;
    return wait_until(
        [&] {
          one.send(1);
          stream_for(std::chrono::milliseconds(5), &other);
          for (const auto& f : other) {
            if (f.size() > 14 + 20 &&
                net::IpAddr::v4(std::span<const uint8_t, 4>(&f[14 + 12], 4)) == test::ip(vip))
              return true;
          }
          return false;
        },
        kWait);
  };
  EXPECT_TRUE(new_vip_reaches_b("10.1.0.2"));
  EXPECT_TRUE(has_tunnel(*gws_.a, "10.1.0.2", "10.2.0.1"));

  ASSERT_TRUE(reload_b(b_vips, {{a_address(), {{"10.2.0.1", {"10.1.0.1", "10.1.0.3"}}}}}).ok());
  const Peer b3{b_address(), {{"10.1.0.1", {"10.2.0.1"}}, {"10.1.0.3", {"10.2.0.1"}}}};
  r = reload_a({"10.1.0.1", "10.1.0.3"}, {b3, c});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_NE(r->find("local VIPs +1 -1"), std::string::npos) << *r;
  EXPECT_FALSE(connected(*gws_.a, "10.1.0.2", "10.2.0.1"));  // torn down
  gws_.a->announce("10.1.0.3", "10.2.0.1");
  EXPECT_TRUE(new_vip_reaches_b("10.1.0.3"));
  EXPECT_TRUE(has_tunnel(*gws_.a, "10.1.0.3", "10.2.0.1"));

  // 3. Remove the added peer.
  r = reload_a({"10.1.0.1", "10.1.0.3"}, {b3});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_NE(r->find("peers +0 -1"), std::string::npos) << *r;
  EXPECT_EQ(peers(*gws_.a), 1u);
  EXPECT_TRUE(has_tunnel(*gws_.a, "10.1.0.3", "10.2.0.1"));
  stream_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(has_tunnel(*gws_.a, "10.1.0.3", "10.2.0.1"));

  // 4. Refused as a whole, with the error start gives; the running config stays.
  std::ofstream(gws_.dir.path + "/bad.json")
      << R"({"config": {"local-pip": "127.0.0.1"}, "peers": [], "bogus": 1})";
  auto start_error = load_config(gws_.dir.path + "/bad.json", {});
  ASSERT_FALSE(start_error.ok());
  r = reload(*gws_.a, "a", R"({"config": {"local-pip": "127.0.0.1"}, "peers": [], "bogus": 1})");
  ASSERT_FALSE(r.ok());
  const std::string at_start = start_error.error().message.substr(start_error.error().message.find(':'));
  EXPECT_NE(r.error().find(at_start), std::string::npos) << r.error() << "\nvs\n" << at_start;
  EXPECT_TRUE(has_tunnel(*gws_.a, "10.1.0.3", "10.2.0.1")) << "after bogus";
  r = reload_a({"10.1.0.1", "10.1.0.3"}, {b3}, std::to_string(testing::free_port()));  // a new gRPC port
  EXPECT_TRUE(has_tunnel(*gws_.a, "10.1.0.3", "10.2.0.1")) << "after port";
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("config.local-grpc-address"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("needs a restart"), std::string::npos) << r.error();
  // pspctl's path: the admin command answers with the error.
  auto admin = gws_.a->gw->handle("reload", json::object());
  ASSERT_FALSE(admin.ok());
  EXPECT_NE(admin.error().message.find("needs a restart"), std::string::npos);
  EXPECT_EQ(peers(*gws_.a), 1u);
  EXPECT_TRUE(has_tunnel(*gws_.a, "10.1.0.3", "10.2.0.1"));
  stream_for(std::chrono::milliseconds(100));

  // Not one frame of the unaffected tunnel lost, duplicated or reordered, either way.
  ASSERT_TRUE(wait_until(
      [&] {
        stream_->drain();
        return stream_->all_received();
      },
      kWait))
      << "A->B " << stream_->received(0) << "/" << stream_->sent(0) << ", B->A " << stream_->received(1)
      << "/" << stream_->sent(1);
  EXPECT_EQ(stream_->bad(), disorder_at_start);
  std::printf("[ measure  ] %u + %u frames through the unaffected tunnel across 7 reloads, 0 lost\n",
              static_cast<unsigned>(stream_->sent(0)), static_cast<unsigned>(stream_->sent(1)));
}

// New TLS material in the same files: the reload remakes A's channels and starts a gRPC server with the
// new certificate on the same port before the old one stops. The running tunnel loses nothing, and a new
// exchange in each direction runs over the new material.
TEST_F(Reload, NewTlsMaterialTakesEffectWithoutLosingTheRunningTunnel) {
  ASSERT_TRUE(wait_until(
      [&] {
        stream_->send(1);
        stream_->drain();
        return stream_->received(0) > 0 && stream_->received(1) > 0;
      },
      kWait));
  stream_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(wait_until(
      [&] {
        stream_->drain();
        return stream_->all_received();
      },
      kWait));
  const uint64_t disorder_at_start = stream_->bad();
  const uint16_t grpc_port = static_cast<uint16_t>(gws_.a->gw->grpc_port());

  (void)testing::test_ca().write(gws_.dir.path, "a",
                                 testing::test_ca().issue("gateway a, renewed", {"IP:127.0.0.1"}));
  const Peer b{b_address(), {{"10.1.0.1", {"10.2.0.1"}}, {"10.1.0.2", {"10.2.0.1"}}}};
  auto r = reload_a({"10.1.0.1", "10.1.0.2"}, {b});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_NE(r->find("TLS material"), std::string::npos) << *r;
  EXPECT_EQ(gws_.a->gw->grpc_port(), grpc_port);  // the same listening port
  stream_for(std::chrono::milliseconds(100));

  // B -> A's new VIP: B's request is served by A's new server; A's answer... and A -> B over A's new channel.
  ASSERT_TRUE(reload_b({"10.2.0.1"}, {{a_address(), {{"10.2.0.1", {"10.1.0.1", "10.1.0.2"}}}}}).ok());
  gws_.a->announce("10.1.0.2", "10.2.0.1");
  Stream fresh(*gws_.a, *gws_.b, "10.1.0.2", "10.2.0.1");
  std::vector<std::vector<uint8_t>> other;
  EXPECT_TRUE(wait_until(
      [&] {
        fresh.send(1);
        stream_for(std::chrono::milliseconds(5), &other);
        for (const auto& f : other) {
          if (net::IpAddr::v4(std::span<const uint8_t, 4>(&f[14 + 12], 4)) == test::ip("10.2.0.1"))
            return true;
        }
        return false;
      },
      kWait));
  EXPECT_TRUE(has_tunnel(*gws_.a, "10.1.0.2", "10.2.0.1"));

  ASSERT_TRUE(wait_until(
      [&] {
        stream_->drain();
        return stream_->all_received();
      },
      kWait))
      << "A->B " << stream_->received(0) << "/" << stream_->sent(0) << ", B->A " << stream_->received(1)
      << "/" << stream_->sent(1);
  EXPECT_EQ(stream_->bad(), disorder_at_start);
}

}  // namespace
}  // namespace pspgw::gateway

namespace pspgw::gateway {
namespace {

// One frame between `from` (a MemoryPort end) and `to`, UDP to kWorkloadPort.
std::vector<uint8_t> udp(const net::MacAddr& src_mac, const net::MacAddr& dst_mac, const std::string& src,
                         const std::string& dst) {
  test::UdpSpec s;
  s.src_mac = src_mac;
  s.dst_mac = dst_mac;
  s.src = test::ip(src);
  s.dst = test::ip(dst);
  s.dport = kWorkloadPort;
  s.payload.assign(kPayload, 0xee);
  return test::udp_frame(s);
}

void send_one(ports::testing::MemoryPort& port, const std::vector<uint8_t>& frame) {
  net::PacketPool pool(1);
  net::PacketBatch b;
  net::Packet* p = pool.alloc();
  ASSERT_TRUE(p != nullptr && p->assign(frame));
  b.push(p);
  EXPECT_EQ(port.tx_burst(b), 1u);
  pool.free(p);
}

// Frames from `src` (IPv4) in `frames`.
bool any_from(const std::vector<std::vector<uint8_t>>& frames, const std::string& src) {
  for (const auto& f : frames) {
    if (f.size() > 14 + 20 && f[12] == 0x08 && f[13] == 0x00 &&
        net::IpAddr::v4(std::span<const uint8_t, 4>(&f[14 + 12], 4)) == test::ip(src))
      return true;
  }
  return false;
}

// A host port added by a reload is a new port (TAP) with its VIP served and its tunnel working both ways;
// removed, its tunnel is closed on both sides (CloseTunnels) and the port gone; added again, it works again
// (its slot reused). The unaffected tunnel on the first port loses nothing throughout.
TEST_F(Reload, HostPortsAddedAndRemovedLiveLoseNothingOnAnUnaffectedTunnel) {
  const uint64_t disorder_at_start = stream_up();
  const std::vector<std::string> b_vips{"10.2.0.1"};
  ASSERT_TRUE(reload_b(b_vips, {{a_address(), {{"10.2.0.1", {"10.1.0.1", "10.1.0.5"}}}}}).ok());
  const Peer b_with{b_address(), {{"10.1.0.1", {"10.2.0.1"}}, {"10.1.0.5", {"10.2.0.1"}}}};
  const Peer b_without{b_address(), {{"10.1.0.1", {"10.2.0.1"}}}};
  const net::MacAddr vm_x = test::mac("02:00:00:00:00:55");

  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    auto r = reload_a({"10.1.0.1"}, {b_with}, "", {{"vmx", {"10.1.0.5"}}});
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_NE(r->find("host ports +1 -0"), std::string::npos) << *r;
    ASSERT_TRUE(gws_.a->ports->added.contains("vmx"));
    auto& x = *gws_.a->ports->added.at("vmx");
    const json ports = gws_.a->admin("counters")["ports"];
    EXPECT_NE(ports.dump().find("\"vmx\""), std::string::npos) << ports.dump();
    // Served: its workload's ARP is answered (the gateway's MAC for the remote VIP).
    send_one(x, test::arp_request(vm_x, test::ip("10.1.0.5"), test::ip("10.2.0.1")));
    std::vector<std::vector<uint8_t>> at_x;
    net::PacketPool pool(64);
    const auto take_x = [&] {
      net::PacketBatch got;
      x.rx_burst(pool, got);
      for (net::Packet* p : got) {
        at_x.emplace_back(p->data(), p->data() + p->size());
        pool.free(p);
      }
    };
    ASSERT_TRUE(wait_until(
        [&] {
          take_x();
          return !at_x.empty();
        },
        kWait));
    const net::MacAddr gw_x{{at_x[0][6], at_x[0][7], at_x[0][8], at_x[0][9], at_x[0][10], at_x[0][11]}};
    // Its tunnel, both ways, while the stream goes on.
    std::vector<std::vector<uint8_t>> other;
    EXPECT_TRUE(wait_until(
        [&] {
          send_one(x, udp(vm_x, gw_x, "10.1.0.5", "10.2.0.1"));
          stream_for(std::chrono::milliseconds(5), &other);
          return any_from(other, "10.1.0.5");
        },
        kWait));
    EXPECT_TRUE(has_tunnel(*gws_.a, "10.1.0.5", "10.2.0.1"));
    at_x.clear();
    EXPECT_TRUE(wait_until(
        [&] {
          send_one(*gws_.b->workload, udp(gws_.b->workload_mac, gws_.b->gateway_mac, "10.2.0.1", "10.1.0.5"));
          stream_for(std::chrono::milliseconds(5));
          take_x();
          return any_from(at_x, "10.2.0.1");
        },
        kWait));

    // Removed: its tunnel closed on A, the port gone from A's ports; the stream goes on.
    r = reload_a({"10.1.0.1"}, {b_without});
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_NE(r->find("host ports +0 -1"), std::string::npos) << *r;
    EXPECT_FALSE(connected(*gws_.a, "10.1.0.5", "10.2.0.1"));
    // ... and on B (CloseTunnels), though B still allows the pair.
    EXPECT_FALSE(connected(*gws_.b, "10.2.0.1", "10.1.0.5")) << gws_.b->admin("tunnels").dump();
    EXPECT_EQ(gws_.a->admin("counters")["ports"].dump().find("\"vmx\""), std::string::npos);
    gws_.a->ports->added.erase("vmx");
    stream_for(std::chrono::milliseconds(50));
  }
  stream_for(std::chrono::milliseconds(100));
  expect_stream_lost_nothing(disorder_at_start);
}

}  // namespace
}  // namespace pspgw::gateway
