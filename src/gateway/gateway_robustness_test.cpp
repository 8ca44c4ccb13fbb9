// Bad input and faults against whole gateways (testing/two_gateways.hpp: in-memory ports, real gRPC over
// mutual TLS on 127.0.0.1): the rows of docs/robustness.md that no narrower test proves. Each test sends
// what a broken or hostile party would, checks that nothing wrong is delivered or sent, that every drop
// is counted under its reason, and that good traffic still flows afterwards.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "base/unique_fd.hpp"
#include "control/tls.hpp"
#include "gateway/gateway.hpp"
#include "gateway/test_frames.hpp"
#include "gateway/testing/two_gateways.hpp"
#include "ports/memory_port.hpp"
#include "psp/header.hpp"
#include "psp_gateway.grpc.pb.h"

namespace pspgw::gateway {
namespace {

using ports::testing::Verdict;
using ports::testing::WireFrame;
using test::ip;
using testing::free_port;
using testing::GatewayPair;
using testing::GatewaySpec;
using testing::json;
using testing::TempDir;
using testing::TestGateway;
using testing::wait_until;
using Clock = std::chrono::steady_clock;

constexpr auto kWait = std::chrono::seconds(10);  // an upper bound for a failing test, not a timing
constexpr uint16_t kWorkloadPort = 5001;

// Frames into and out of a workload's end of its host wire.
void send(const TestGateway& g, const std::vector<std::vector<uint8_t>>& frames) {
  net::PacketPool pool(net::kMaxBatch);
  for (std::size_t i = 0; i < frames.size();) {
    net::PacketBatch b;
    for (; i < frames.size() && !b.full(); ++i) {
      net::Packet* p = pool.alloc();
      ASSERT_TRUE(p != nullptr && p->assign(frames[i]));
      b.push(p);
    }
    g.workload->tx_burst(b);
    for (net::Packet* p : b) pool.free(p);
  }
}

// Everything the workload received within `limit` once `n` frames arrived (or the limit passed).
std::vector<std::vector<uint8_t>> receive(
    const TestGateway& g, std::size_t n, std::chrono::milliseconds limit = std::chrono::milliseconds(kWait)) {
  std::vector<std::vector<uint8_t>> got;
  net::PacketPool pool(net::kMaxBatch);
  wait_until(
      [&] {
        net::PacketBatch b;
        g.workload->rx_burst(pool, b);
        for (net::Packet* p : b) {
          got.emplace_back(p->data(), p->data() + p->size());
          pool.free(p);
        }
        return got.size() >= n;
      },
      limit);
  return got;
}

std::vector<uint8_t> udp(const TestGateway& from, const std::string& src, const std::string& dst,
                         const std::string& text) {
  test::UdpSpec s;
  s.src_mac = from.workload_mac;
  s.dst_mac = from.gateway_mac;
  s.src = ip(src);
  s.dst = ip(dst);
  s.dport = kWorkloadPort;
  s.payload.assign(text.begin(), text.end());
  return test::udp_frame(s);
}

uint64_t slow(const TestGateway& g, const char* key) {
  return g.admin("counters")["slow_path"][key].get<uint64_t>();
}
uint64_t psp_counter(const TestGateway& g, const char* key) {
  return g.admin("counters")["psp"][key].get<uint64_t>();
}

bool contains(const std::vector<std::vector<uint8_t>>& frames, const std::string& text) {
  for (const auto& f : frames) {
    if (std::search(f.begin(), f.end(), text.begin(), text.end()) != f.end()) return true;
  }
  return false;
}

// Gateway A (10.1.0.1) and B (10.2.0.1), each the other's peer; the wire between them counted.
class Robustness : public ::testing::Test {
 protected:
  virtual std::vector<std::string> extra_flags() const { return {}; }
  void SetUp() override {
    GatewaySpec a{.vips = {"10.1.0.1"}, .peer_vips = {"10.2.0.1"}, .extra_flags = extra_flags()};
    GatewaySpec b{.vips = {"10.2.0.1"}, .peer_vips = {"10.1.0.1"}};
    ASSERT_TRUE(pair_.start(a, b));
    pair_.network_wire->set_hook([this](WireFrame& f) {
      ++on_wire_[f.from];
      return Verdict::kPass;
    });
    pair_.a->announce("10.1.0.1", "10.2.0.1");
    pair_.b->announce("10.2.0.1", "10.1.0.1");
    ASSERT_EQ(receive(*pair_.a, 1).size(), 1u);  // the ARP replies
    ASSERT_EQ(receive(*pair_.b, 1).size(), 1u);
  }
  void TearDown() override {
    if (pair_.network_wire) pair_.network_wire->set_hook({});
  }

  // A -> B delivers `text` (the first one also makes the tunnel).
  void expect_a_to_b(const std::string& text) {
    send(*pair_.a, {udp(*pair_.a, "10.1.0.1", "10.2.0.1", text)});
    const auto got = receive(*pair_.b, 1);
    ASSERT_EQ(got.size(), 1u) << text;
    EXPECT_TRUE(contains(got, text)) << text;
  }

  GatewayPair pair_;
  std::atomic<uint64_t> on_wire_[2]{};
};

// Host side: runts, truncated and inconsistent IPv4/IPv6 headers, an unknown EtherType. None reaches the
// network; each is dropped and counted (no route: it parses to no VIP pair; or an exception nobody
// answers); the tunnel's traffic flows on.
TEST_F(Robustness, MalformedFramesFromAWorkloadAreCountedAndNeverSent) {
  expect_a_to_b("before");
  const TestGateway& a = *pair_.a;
  const auto good = udp(a, "10.1.0.1", "10.2.0.1", "x");
  std::vector<std::vector<uint8_t>> bad;
  bad.emplace_back(good.begin(), good.begin() + 10);  // shorter than an Ethernet header
  bad.emplace_back(good.begin(), good.begin() + 20);  // IPv4 EtherType, 6 bytes of IP header
  auto ihl = good;
  ihl[14] = 0x43;  // IHL 3 (12 bytes): below the minimum
  bad.push_back(ihl);
  auto total = good;
  store_be16(&total[16], 1400);  // total length past the frame
  net::ipv4_set_checksum(&total[14]);
  bad.push_back(total);
  auto version = good;
  version[14] = 0x75;  // version 7
  bad.push_back(version);
  auto v6 = good;
  store_be16(&v6[12], net::kEtherTypeIpv6);  // an IPv6 EtherType in front of an IPv4 header
  bad.push_back(v6);
  auto ethertype = good;
  store_be16(&ethertype[12], 0x88b5);  // IEEE local experimental
  bad.push_back(ethertype);
  const uint64_t wire_before = on_wire_[0];
  const uint64_t rx_before = a.admin("counters")["ports"][1]["rx_packets"].get<uint64_t>();
  send(a, bad);
  ASSERT_TRUE(wait_until(
      [&] { return a.admin("counters")["ports"][1]["rx_packets"].get<uint64_t>() >= rx_before + bad.size(); },
      kWait));
  const json c = a.admin("counters");
  uint64_t counted = c["slow_path"]["dropped_no_route"].get<uint64_t>() +
                     c["slow_path"]["exceptions_ignored"].get<uint64_t>() +
                     c["slow_path"]["dropped_cpu_queue_full"].get<uint64_t>();
  for (const auto& p : c["pipes"]) {
    if (p["name"] == "ROOT") counted += p["misses"].get<uint64_t>();
  }
  ASSERT_TRUE(wait_until(
      [&] {
        const json now = a.admin("counters");
        uint64_t n = now["slow_path"]["dropped_no_route"].get<uint64_t>() +
                     now["slow_path"]["exceptions_ignored"].get<uint64_t>();
        for (const auto& p : now["pipes"]) {
          if (p["name"] == "ROOT") n += p["misses"].get<uint64_t>();
        }
        counted = n;
        return n >= bad.size();
      },
      kWait))
      << c.dump();
  EXPECT_EQ(counted, bad.size()) << a.admin("counters").dump();
  const json after = a.admin("counters")["slow_path"];
  std::printf("[ counted  ] dropped_no_route %llu, exceptions_ignored %llu of %zu malformed frames\n",
              static_cast<unsigned long long>(after["dropped_no_route"].get<uint64_t>()),
              static_cast<unsigned long long>(after["exceptions_ignored"].get<uint64_t>()), bad.size());
  EXPECT_EQ(on_wire_[0].load(), wire_before) << "a malformed frame reached the network";
  EXPECT_TRUE(receive(*pair_.b, 1, std::chrono::milliseconds(100)).empty());
  expect_a_to_b("after");
}

// A flood of ARP requests, IPv6 Neighbor Solicitations and DHCP discovers from a workload: every frame is
// answered or counted (ignored, or dropped at the bounded ring to the control thread), the replies never
// outnumber the requests, nothing leaves on the network, and the tunnel's traffic flows meanwhile.
TEST_F(Robustness, ArpNdAndDhcpFloodIsBoundedCountedAndTrafficFlows) {
  expect_a_to_b("before");
  const TestGateway& a = *pair_.a;
  std::vector<std::vector<uint8_t>> flood;
  for (int i = 0; i < 256; ++i) {
    flood.push_back(test::arp_request(a.workload_mac, ip("10.1.0.1"), ip("10.2.0.1")));
    test::UdpSpec dhcp;
    dhcp.src_mac = a.workload_mac;
    dhcp.dst_mac = test::mac("ff:ff:ff:ff:ff:ff");
    dhcp.src = ip("0.0.0.0");
    dhcp.dst = ip("255.255.255.255");
    dhcp.sport = 68;
    dhcp.dport = 67;
    dhcp.payload.assign(240 + static_cast<std::size_t>(i % 7),
                        static_cast<uint8_t>(i));  // not a valid DHCP message
    flood.push_back(test::udp_frame(dhcp));
    test::UdpSpec ns;  // to the solicited-node group, ICMPv6 type 135 with a garbage body
    ns.src_mac = a.workload_mac;
    ns.dst_mac = test::mac("33:33:ff:00:00:01");
    ns.src = ip("fe80::1");
    ns.dst = ip("ff02::1:ff00:1");
    auto f = test::udp_frame(ns);
    f[14 + 6] = 58;    // next header ICMPv6
    f[14 + 40] = 135;  // Neighbor Solicitation
    flood.push_back(std::move(f));
  }
  const uint64_t wire_before = on_wire_[0];
  const uint64_t answered_before = slow(a, "exceptions_answered");
  const uint64_t ignored_before = slow(a, "exceptions_ignored");
  for (int round = 0; round < 8; ++round) {
    send(a, flood);
    expect_a_to_b("during " + std::to_string(round));
  }
  const uint64_t sent = 8 * flood.size();
  uint64_t accounted = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        const json c = a.admin("counters");
        accounted = c["slow_path"]["exceptions_answered"].get<uint64_t>() - answered_before +
                    c["slow_path"]["exceptions_ignored"].get<uint64_t>() - ignored_before +
                    c["slow_path"]["dropped_cpu_queue_full"].get<uint64_t>() +
                    c["slow_path"]["dropped_no_route"].get<uint64_t>();
        return accounted >= sent;
      },
      kWait))
      << accounted << " of " << sent << ": " << a.admin("counters").dump();
  EXPECT_EQ(accounted, sent);
  const json sp = a.admin("counters")["slow_path"];
  std::printf("[ counted  ] %llu flood frames: answered %llu, ignored %llu, cpu ring full %llu\n",
              static_cast<unsigned long long>(sent),
              static_cast<unsigned long long>(sp["exceptions_answered"].get<uint64_t>() - answered_before),
              static_cast<unsigned long long>(sp["exceptions_ignored"].get<uint64_t>() - ignored_before),
              static_cast<unsigned long long>(sp["dropped_cpu_queue_full"].get<uint64_t>()));
  const uint64_t answered = slow(a, "exceptions_answered") - answered_before;
  EXPECT_LE(answered, 8u * 256u) << "at most one reply per ARP request";
  const auto replies = receive(a, answered, std::chrono::milliseconds(2000));
  EXPECT_LE(replies.size(), answered);
  EXPECT_EQ(on_wire_[0].load(), wire_before + 8) << "only the 8 tunnel packets left on the network";
  expect_a_to_b("after");
}

// A workload sending to a VIP no peer serves, or as a source VIP that is not its own: dropped before any
// key exchange (no route), nothing on the wire.
TEST_F(Robustness, PacketsToAVipOfNoPeerOrFromAForeignVipAreDroppedAsNoRoute) {
  const TestGateway& a = *pair_.a;
  send(a, {udp(a, "10.1.0.1", "10.9.9.9", "nobody"), udp(a, "10.1.0.77", "10.2.0.1", "spoofed")});
  ASSERT_TRUE(wait_until([&] { return slow(a, "dropped_no_route") == 2; }, kWait));
  EXPECT_EQ(slow(a, "exchanges_started"), 0u);
  EXPECT_EQ(slow(a, "held"), 0u);
  EXPECT_TRUE(receive(*pair_.b, 1, std::chrono::milliseconds(100)).empty());
  EXPECT_EQ(on_wire_[0].load(), 0u);
  expect_a_to_b("own VIP");
}

// The S and D bits are in the AAD: a middlebox that sets either on a sealed packet fails authentication;
// nothing is delivered and the drop is counted as auth_failed.
TEST_F(Robustness, SOrDBitSetOnTheWireFailsAuthentication) {
  expect_a_to_b("before");
  std::atomic<int> set_bit{0};  // 0x80 S, 0x40 D: on the next A -> B datagram only
  pair_.network_wire->set_hook([&](WireFrame& f) {
    ++on_wire_[f.from];
    const int bit = set_bit.exchange(0);
    if (f.from == 0 && bit != 0) f.bytes[3] = static_cast<uint8_t>(f.bytes[3] | bit);  // PSP byte 3
    return Verdict::kPass;
  });
  int n = 0;
  for (int bit : {0x80, 0x40}) {
    set_bit = bit;
    send(*pair_.a, {udp(*pair_.a, "10.1.0.1", "10.2.0.1", "tampered")});
    ++n;
    ASSERT_TRUE(wait_until([&] { return psp_counter(*pair_.b, "auth_failures") == static_cast<uint64_t>(n); },
                           kWait));
  }
  EXPECT_TRUE(receive(*pair_.b, 1, std::chrono::milliseconds(100)).empty());
  expect_a_to_b("after");
}

// A packet captured on the wire and replayed after the receiver rotated its master key twice (the key of
// its SPI retired): not delivered, counted as an unissued SPI or a failed authentication.
TEST_F(Robustness, PacketOfARetiredMasterKeyIsDroppedAndCounted) {
  std::vector<uint8_t> captured;
  pair_.network_wire->set_hook([&](WireFrame& f) {
    ++on_wire_[f.from];
    if (f.from == 0 && captured.empty()) captured = f.bytes;
    return Verdict::kPass;
  });
  expect_a_to_b("captured");
  ASSERT_FALSE(captured.empty());
  const TestGateway& b = *pair_.b;
  for (uint64_t round = 1; round <= 2; ++round) {
    const uint64_t gen = b.admin("status")["key_generation"].get<uint64_t>();
    b.admin("rotate-keys", {{"issue_new_keys", true}});
    ASSERT_TRUE(wait_until([&] { return b.admin("status")["key_generation"].get<uint64_t>() > gen; }, kWait));
    ASSERT_TRUE(wait_until([&] { return slow(b, "rekeys") >= round; }, kWait));
  }
  expect_a_to_b("after two rotations");
  const json before = b.admin("counters")["psp"];
  std::atomic<bool> substitute{true};  // the next A -> B datagram is replaced by the captured one
  pair_.network_wire->set_hook([&](WireFrame& f) {
    ++on_wire_[f.from];
    if (f.from == 0 && substitute.exchange(false)) f.bytes = captured;
    return Verdict::kPass;
  });
  send(*pair_.a, {udp(*pair_.a, "10.1.0.1", "10.2.0.1", "replaced")});
  const auto dropped = [&] {
    const json now = b.admin("counters")["psp"];
    return now["unissued_spi"].get<uint64_t>() - before["unissued_spi"].get<uint64_t>() +
           now["auth_failures"].get<uint64_t>() - before["auth_failures"].get<uint64_t>() +
           now["unknown_key"].get<uint64_t>() - before["unknown_key"].get<uint64_t>();
  };
  ASSERT_TRUE(wait_until([&] { return dropped() == 1; }, kWait)) << b.admin("counters").dump();
  EXPECT_TRUE(receive(b, 1, std::chrono::milliseconds(100)).empty());
}

// A's gRPC address, read back from its config file.
uint16_t grpc_port_of(const GatewayPair& pair, const std::string& name) {
  std::ifstream in(pair.dir.path + "/" + name + ".json");
  const json c = json::parse(in);
  const std::string addr = c["config"]["local-grpc-address"].get<std::string>();
  return static_cast<uint16_t>(std::stoi(addr.substr(addr.rfind(':') + 1)));
}

// A TLS channel to `port` with a test-CA certificate naming `ip` (127.0.0.1: gateway A's configured peer).
std::shared_ptr<grpc::Channel> channel_as(const std::string& dir, const std::string& ip, uint16_t port) {
  const auto files =
      testing::test_ca().write(dir, "caller-" + ip, testing::test_ca().issue("caller", {"IP:" + ip}));
  auto material = control::load_tls(files);
  EXPECT_TRUE(material.ok());
  return grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                             control::tls_channel_credentials(*material));
}

grpc::Status raw_call(const std::shared_ptr<grpc::Channel>& ch, const std::string& bytes) {
  grpc::GenericStub stub(ch);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  const grpc::Slice slice(bytes);
  const grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, "/psp_gateway.PSP_Gateway/RequestMultipleTunnelParams", grpc::StubOptions(), &request,
                 &response, [&done](const grpc::Status& st) { done.set_value(st); });
  return done.get_future().get();
}

// Control plane: bytes that are no MultiTunnelRequest, a message over gRPC's 4 MiB limit, a flood of
// well-formed requests from the authenticated peer and one from a certificate naming no peer. Each is
// answered with an error or served within the per-session bound (at most 4 ingress SPIs), nothing else
// changes, the gateway stays responsive and the tunnel carries traffic again both ways afterwards.
TEST_F(Robustness, MalformedOversizedAndFloodedGrpcRequestsAreRefusedOrBounded) {
  expect_a_to_b("before");
  const uint16_t port = grpc_port_of(pair_, "a");
  auto peer = channel_as(pair_.dir.path, "127.0.0.1", port);
  const grpc::Status garbage = raw_call(peer, std::string(100, '\xff'));
  EXPECT_FALSE(garbage.ok());
  std::printf("[ refused  ] garbage bytes: %d %s\n", garbage.error_code(), garbage.error_message().c_str());
  const grpc::Status oversized = raw_call(peer, std::string(5u << 20, '\x0a'));
  EXPECT_EQ(oversized.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << oversized.error_message();

  auto stub = psp_gateway::PSP_Gateway::NewStub(peer);
  psp_gateway::MultiTunnelRequest req;
  req.add_psp_versions_accepted(1);
  auto* t = req.add_tunnels();
  t->set_virt_src_ip("10.2.0.1");
  t->set_virt_dst_ip("10.1.0.1");
  t->set_inner_type(4);
  int ok = 0;
  int refused = 0;
  const auto start = Clock::now();
  for (int i = 0; i < 300; ++i) {
    req.set_request_id(1000 + static_cast<uint64_t>(i));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    psp_gateway::MultiTunnelResponse resp;
    (stub->RequestMultipleTunnelParams(&ctx, req, &resp).ok() ? ok : refused)++;
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  std::printf("[ measured ] 300 tunnel requests from the peer in %lld ms: %d served, %d refused\n",
              static_cast<long long>(took.count()), ok, refused);
  EXPECT_EQ(ok + refused, 300);
  const json tunnels = pair_.a->admin("tunnels");
  ASSERT_EQ(tunnels["tunnels"].size(), 1u) << tunnels.dump();
  const auto rx_spis = tunnels["tunnels"][0]["rx_spis"];
  EXPECT_LE(rx_spis.size(), 4u) << tunnels.dump();

  auto stranger = psp_gateway::PSP_Gateway::NewStub(channel_as(pair_.dir.path, "127.0.0.9", port));
  for (int i = 0; i < 50; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    psp_gateway::MultiTunnelResponse resp;
    EXPECT_EQ(stranger->RequestMultipleTunnelParams(&ctx, req, &resp).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  EXPECT_EQ(pair_.a->admin("tunnels")["tunnels"].size(), 1u);

  expect_a_to_b("after");  // A's egress was never touched
  // B's SPI may have been retired by the flood (the peer's own requests replace its ingress SPIs): B is
  // told by the stale-key signal and re-exchanges, so B -> A flows again.
  bool delivered = false;
  for (int i = 0; i < 100 && !delivered; ++i) {
    send(*pair_.b, {udp(*pair_.b, "10.2.0.1", "10.1.0.1", "b to a")});
    delivered = contains(receive(*pair_.a, 1, std::chrono::milliseconds(100)), "b to a");
  }
  EXPECT_TRUE(delivered);
}

// --sample-pcap on a full disk (/dev/full: every write fails with ENOSPC). The failure is found within a
// tick, logged once, the samples it loses are counted as samples_not_written and the file is not written
// again; every packet is still delivered and the samples are still logged.
class SamplePcapOnAFullDisk : public Robustness {
 protected:
  std::vector<std::string> extra_flags() const override {
    return {"--sample-rate", "1", "--sample-pcap", "/dev/full"};
  }
};

TEST_F(SamplePcapOnAFullDisk, TrafficFlowsAndLostSamplesAreCounted) {
  for (int i = 0; i < 20; ++i) expect_a_to_b("sampled " + std::to_string(i));
  const TestGateway& a = *pair_.a;
  ASSERT_TRUE(wait_until([&] { return slow(a, "samples_not_written") > 0; }, kWait))
      << a.admin("counters").dump();
  for (int i = 20; i < 40; ++i) expect_a_to_b("sampled " + std::to_string(i));
  ASSERT_TRUE(wait_until(
      [&] {
        const json sp = a.admin("counters")["slow_path"];
        return sp["samples"].get<uint64_t>() > 0 && sp["samples_not_written"] == sp["samples"];
      },
      kWait))
      << a.admin("counters").dump();
}

// A gateway with no running peer: A (127.0.0.3, VIP 10.3.0.1) whose peer for 10.4.0.1 listens at
// `peer_grpc_port`; the far end of its network wire is kept for a peer started later.
struct LonePeer {
  TempDir dir;
  std::unique_ptr<ports::testing::MemoryPort> far;
  std::unique_ptr<TestGateway> a;
  std::unique_ptr<TestGateway> b;

  bool start_a(uint16_t grpc_port, uint16_t peer_grpc_port,
               std::vector<std::string> peer_vips = {"10.4.0.1"}) {
    ports::testing::EndpointConfig near{.name = "net-a", .addr = ip("127.0.0.3"), .port = psp::kPspUdpPort};
    ports::testing::EndpointConfig other{.name = "net-b", .addr = ip("127.0.0.4"), .port = psp::kPspUdpPort};
    auto wire = ports::testing::make_pair(near, other);
    far = std::move(wire.b);
    a = testing::make_gateway({.name = "a",
                               .pip = "127.0.0.3",
                               .vips = {"10.3.0.1"},
                               .peer_vips = std::move(peer_vips),
                               .grpc_port = grpc_port,
                               .peer_grpc_port = peer_grpc_port,
                               .gateway_mac = "02:50:00:00:0a:01"},
                              std::move(wire.a), dir.path);
    if (!a) return false;
    a->announce("10.3.0.1", "10.4.0.1");
    return receive(*a, 1).size() == 1;
  }
  bool start_b(uint16_t grpc_port, uint16_t peer_grpc_port) {
    b = testing::make_gateway({.name = "b",
                               .pip = "127.0.0.4",
                               .vips = {"10.4.0.1"},
                               .peer_vips = {"10.3.0.1"},
                               .grpc_port = grpc_port,
                               .peer_grpc_port = peer_grpc_port,
                               .gateway_mac = "02:50:00:00:0b:01"},
                              std::move(far), dir.path);
    if (!b) return false;
    b->announce("10.4.0.1", "10.3.0.1");
    return receive(*b, 1).size() == 1;
  }
};

// A peer's gRPC service that takes the key-exchange request and never answers it (the warm-up call for no
// tunnels is answered): the peer is mid exchange for as long as the test wants, then "killed" (Shutdown
// now: its connections close under the call).
class StallingPeer final : public psp_gateway::PSP_Gateway::Service {
 public:
  std::atomic<int> stalled{0};
  grpc::Status RequestMultipleTunnelParams(grpc::ServerContext* context,
                                           const psp_gateway::MultiTunnelRequest* req,
                                           psp_gateway::MultiTunnelResponse*) override {
    if (req->tunnels_size() == 0) return grpc::Status::OK;
    ++stalled;
    while (!context->IsCancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return {grpc::StatusCode::CANCELLED, "killed"};
  }
};

// `service` on 127.0.0.1:port over mutual TLS with the test CA (as gateway B would serve).
std::unique_ptr<grpc::Server> serve(StallingPeer& service, uint16_t port, const std::string& dir) {
  const auto files =
      testing::test_ca().write(dir, "stalling", testing::test_ca().issue("gateway b", {"IP:127.0.0.1"}));
  auto material = control::load_tls(files);
  if (!material) return nullptr;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port), control::tls_server_credentials(*material));
  builder.RegisterService(&service);
  return builder.BuildAndStart();
}

// The peer dies while our key exchange waits on its answer: the exchange fails as soon as its connection
// goes (not at the 5 s RPC deadline), the held packet is dropped and counted, the pair backs off; once the
// peer is back on the same address, traffic makes the tunnel and flows.
TEST(Faults, PeerKilledMidKeyExchangeFailsFastAndTheRestartedPeerIsReached) {
  LonePeer net;
  const uint16_t a_port = free_port();
  const uint16_t peer_port = free_port();
  StallingPeer service;
  auto server = serve(service, peer_port, net.dir.path);
  ASSERT_NE(server, nullptr);

  ASSERT_TRUE(net.start_a(a_port, peer_port));
  const TestGateway& a = *net.a;
  send(a, {udp(a, "10.3.0.1", "10.4.0.1", "held")});
  ASSERT_TRUE(wait_until([&] { return service.stalled.load() == 1; }, kWait)) << a.admin("counters").dump();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(slow(a, "exchanges_failed"), 0u);
  EXPECT_EQ(slow(a, "held"), 1u);
  const auto killed = Clock::now();
  server->Shutdown(std::chrono::system_clock::now());  // killed: its calls and connections go
  server.reset();
  ASSERT_TRUE(wait_until([&] { return slow(a, "dropped_exchange_failed") == 1; }, kWait));
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed);
  std::printf("[ measured ] exchange failed %lld ms after the peer was killed (RPC deadline 5000 ms)\n",
              static_cast<long long>(took.count()));
  EXPECT_LT(took, std::chrono::milliseconds(2500));
  EXPECT_EQ(slow(a, "exchanges_failed"), 1u);
  EXPECT_EQ(slow(a, "resubmitted"), 0u);
  EXPECT_TRUE(receive(a, 1, std::chrono::milliseconds(0)).empty());

  ASSERT_TRUE(net.start_b(peer_port, a_port));  // the peer restarted on the same address
  bool delivered = false;
  for (int i = 0; i < 100 && !delivered; ++i) {  // after the pair's backoff (100 ms, doubling, 2 s cap)
    send(a, {udp(a, "10.3.0.1", "10.4.0.1", "after restart")});
    delivered = contains(receive(*net.b, 1, std::chrono::milliseconds(100)), "after restart");
  }
  EXPECT_TRUE(delivered);
}

// A peer that never answers: what the workload sends meanwhile is held up to the per-pair bound (64); the
// rest is dropped and counted as dropped_hold_full, never queued without bound.
TEST(Faults, HoldQueueFullDropsAndCountsTheRest) {
  LonePeer net;
  StallingPeer service;
  const uint16_t peer_port = free_port();
  auto server = serve(service, peer_port, net.dir.path);
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(net.start_a(free_port(), peer_port));
  const TestGateway& a = *net.a;
  std::vector<std::vector<uint8_t>> burst;
  for (int i = 0; i < 200; ++i) burst.push_back(udp(a, "10.3.0.1", "10.4.0.1", "burst " + std::to_string(i)));
  send(a, burst);
  ASSERT_TRUE(wait_until([&] { return slow(a, "held") + slow(a, "dropped_hold_full") == 200; }, kWait))
      << a.admin("counters").dump();
  EXPECT_EQ(slow(a, "held"), 64u);
  EXPECT_EQ(slow(a, "dropped_hold_full"), 136u);
  EXPECT_EQ(slow(a, "exchanges_started"), 1u);
  server->Shutdown(std::chrono::system_clock::now());
}

// The hold queue full in total (64 pairs x 64 packets, their exchanges stalled at a peer that never
// answers): a first packet toward a 65th VIP is dropped and counted, and its pair's exchange is queued all
// the same (PendingPairs), so it starts with the others once exchange threads are free (the peer killed).
// Before, a packet that could not be held started nothing: its tunnel waited for a packet that fit.
TEST(Faults, FirstPacketThatCannotBeHeldStillStartsItsExchange) {
  constexpr std::size_t kPerPair = 64, kPairs = 64;  // SlowPathOptions: hold_per_pair x (hold_total / it)
  LonePeer net;
  StallingPeer service;
  const uint16_t peer_port = free_port();
  auto server = serve(service, peer_port, net.dir.path);
  ASSERT_NE(server, nullptr);
  std::vector<std::string> vips;
  for (std::size_t i = 0; i <= kPairs; ++i) vips.push_back("10.4.0." + std::to_string(i + 1));
  ASSERT_TRUE(net.start_a(free_port(), peer_port, vips));
  const TestGateway& a = *net.a;
  for (std::size_t i = 0; i < kPairs; ++i) {  // one pair at a time: within the worker's ring to the CPU
    std::vector<std::vector<uint8_t>> burst;
    for (std::size_t k = 0; k < kPerPair; ++k) burst.push_back(udp(a, "10.3.0.1", vips[i], "held"));
    send(a, burst);
    ASSERT_TRUE(wait_until([&] { return slow(a, "held") == (i + 1) * kPerPair; }, kWait))
        << a.admin("counters").dump();
  }
  send(a, {udp(a, "10.3.0.1", vips[kPairs], "no room")});
  ASSERT_TRUE(wait_until([&] { return slow(a, "dropped_hold_full") == 1; }, kWait))
      << a.admin("counters").dump();
  EXPECT_LT(slow(a, "exchanges_started"), kPairs);     // the rest wait for a free exchange thread
  server->Shutdown(std::chrono::system_clock::now());  // the stalled exchanges fail: threads free
  ASSERT_TRUE(wait_until([&] { return slow(a, "exchanges_started") == kPairs + 1; }, kWait))
      << a.admin("counters").dump();
  EXPECT_EQ(slow(a, "pending_full"), 0u);
  const auto all_counted = [&] { return slow(a, "dropped_exchange_failed") == kPairs * kPerPair; };
  EXPECT_TRUE(wait_until(all_counted, kWait)) << a.admin("counters").dump();
}

}  // namespace
}  // namespace pspgw::gateway
