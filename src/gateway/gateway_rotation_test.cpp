// Tunnels outlive rotations (issue 7 §3): two whole gateways (testing/two_gateways.hpp: in-memory ports,
// real gRPC) with 1,000 tunnels between them, three master-key rotations in a row on BOTH sides while a
// steady stream of UDP frames crosses every tunnel both ways. Every frame carries a sequence number and
// the receiving workloads count them: zero may be lost, on-demand and static (-z) alike. Rotations are
// asked for faster than 1,000 re-keys finish, so later ones are deferred until the re-keys of the previous
// one are done (tunnel_manager.hpp) — which is what keeps the tunnels alive.
//
// Also: --tunnel-idle-timeout closes a quiet tunnel and traffic makes it again on demand.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "gateway/testing/two_gateways.hpp"

namespace pspgw::gateway {
namespace {

using testing::Clock;
using testing::GatewayPair;
using testing::GatewaySpec;
using testing::json;
using testing::TestGateway;
using testing::wait_until;

// Under ThreadSanitizer (scripts/test.sh's TSan tree) ThousandTunnels runs 100: 1,000 tunnels rotated
// three times do not settle within kSettle at TSan's speed, and the races it looks for are per tunnel.
#if defined(__SANITIZE_THREAD__)
constexpr std::size_t kTunnels = 100;
#else
constexpr std::size_t kTunnels = 1000;
#endif
constexpr uint16_t kWorkloadPort = 5001;
constexpr std::size_t kPayload = 64;
constexpr auto kSettle = std::chrono::seconds(60);  // an upper bound for a failing test, not a timing

std::vector<std::string> remote_vips(std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i)
    out.push_back("10.2." + std::to_string(i / 250) + "." + std::to_string(1 + i % 250));
  return out;
}

// Frames across every tunnel both ways, each carrying (direction, sequence number): tunnel = seq % n.
// Counts exactly what each receiving workload got, and that it got it on the right VIP.
class Traffic {
 public:
  Traffic(TestGateway& a, TestGateway& b, const std::string& a_vip, const std::vector<std::string>& b_vips)
      : side_{&a, &b}, a_vip_(test::ip(a_vip)) {
    for (const auto& v : b_vips) b_vips_.push_back(test::ip(v));
    for (auto& r : received_) r.reserve(1u << 20);
  }

  // The next `per_side` frames each way (A -> B first), or A -> B only.
  void send(std::size_t per_side, bool both_ways = true) {
    for (int dir = 0; dir < (both_ways ? 2 : 1); ++dir) {
      net::PacketBatch batch;
      for (std::size_t i = 0; i < per_side && !batch.full(); ++i) {
        net::Packet* p = pool_.alloc();
        ASSERT_NE(p, nullptr);
        ASSERT_TRUE(p->assign(frame(dir, sent_[dir])));
        batch.push(p);
        ++sent_[dir];
      }
      const std::size_t n = side_[dir]->workload->tx_burst(batch);
      EXPECT_EQ(n, batch.size()) << "the test's own host wire refused frames";
      for (net::Packet* p : batch) pool_.free(p);
    }
  }

  // Takes what arrived at both workloads.
  void drain() {
    for (int dir = 0; dir < 2; ++dir) {
      for (;;) {
        net::PacketBatch batch;
        side_[1 - dir]->workload->rx_burst(pool_, batch);
        if (batch.size() == 0) break;
        for (net::Packet* p : batch) {
          take(dir, {p->data(), p->size()});
          pool_.free(p);
        }
      }
    }
  }

  uint64_t sent(int dir) const { return sent_[dir]; }
  uint64_t received(int dir) const { return count_[dir]; }
  uint64_t duplicates() const { return duplicates_; }
  uint64_t misdelivered() const { return misdelivered_; }
  bool all_received() const { return count_[0] == sent_[0] && count_[1] == sent_[1]; }
  // The first few sequence numbers that did not arrive, and their tunnels, for a failure message.
  std::string missing(int dir) const {
    std::string out;
    int n = 0;
    for (uint32_t seq = 0; seq < sent_[dir] && n < 20; ++seq) {
      if (seq < received_[dir].size() && received_[dir][seq]) continue;
      out += std::to_string(seq) + "(t" + std::to_string(seq % b_vips_.size()) + ") ";
      ++n;
    }
    return out;
  }

 private:
  std::vector<uint8_t> frame(int dir, uint32_t seq) const {
    test::UdpSpec s;
    s.src_mac = side_[dir]->workload_mac;
    s.dst_mac = side_[dir]->gateway_mac;
    const net::IpAddr& remote = b_vips_[seq % b_vips_.size()];
    s.src = dir == 0 ? a_vip_ : remote;
    s.dst = dir == 0 ? remote : a_vip_;
    s.dport = kWorkloadPort;
    s.payload.assign(kPayload, static_cast<uint8_t>(dir));
    std::memcpy(s.payload.data(), &seq, sizeof(seq));
    return test::udp_frame(s);
  }

  // Ethernet (14) + IPv4 without options (20) + UDP (8), then the payload.
  void take(int dir, std::span<const uint8_t> f) {
    constexpr std::size_t kL4 = 14 + 20;
    if (f.size() < kL4 + 8 + kPayload || load_be16(&f[kL4 + 2]) != kWorkloadPort) return;  // ARP replies
    uint32_t seq = 0;
    std::memcpy(&seq, &f[kL4 + 8], sizeof(seq));
    const net::IpAddr src = net::IpAddr::v4(std::span<const uint8_t, 4>(&f[14 + 12], 4));
    const net::IpAddr dst = net::IpAddr::v4(std::span<const uint8_t, 4>(&f[14 + 16], 4));
    const net::IpAddr& remote = b_vips_[seq % b_vips_.size()];
    if (seq >= sent_[dir] || f[kL4 + 8 + 4] != dir || src != (dir == 0 ? a_vip_ : remote) ||
        dst != (dir == 0 ? remote : a_vip_)) {
      ++misdelivered_;
      return;
    }
    auto& seen = received_[dir];
    if (seen.size() <= seq) seen.resize(seq + 1, false);
    if (seen[seq]) {
      ++duplicates_;
      return;
    }
    seen[seq] = true;
    ++count_[dir];
  }

  TestGateway* side_[2];
  net::IpAddr a_vip_;
  std::vector<net::IpAddr> b_vips_;
  net::PacketPool pool_{1024};
  uint32_t sent_[2] = {0, 0};
  uint64_t count_[2] = {0, 0};
  std::vector<bool> received_[2];
  uint64_t duplicates_ = 0;
  uint64_t misdelivered_ = 0;
};

uint64_t status(const TestGateway& g, const char* key) {
  return g.admin("status")[key].get<uint64_t>();
}

uint64_t syndrome(const TestGateway& g, const char* key) {
  const json counters = g.admin("counters");
  for (const auto& p : counters["pipes"]) {
    if (p["name"] == "SYND_STATS") return p["syndromes"][key].get<uint64_t>();
  }
  ADD_FAILURE() << "no SYND_STATS";
  return 0;
}

class ThousandTunnels : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    GatewaySpec a, b;
    a.vips = {"10.1.0.1"};
    a.peer_vips = remote_vips(kTunnels);
    b.vips = a.peer_vips;
    b.peer_vips = a.vips;
    a.max_tunnels = b.max_tunnels = 1024;
    if (GetParam()) a.extra_flags = b.extra_flags = {"-z"};
    ASSERT_TRUE(gws_.start(a, b));
    // Room for the whole stream in every queue: a frame the test's own wires drop would hide the
    // gateways' behaviour.
    for (auto* w : {gws_.network_wire.get(), gws_.a->host_wire.get(), gws_.b->host_wire.get()})
      w->set_queue_limit(1u << 20);
    traffic_ = std::make_unique<Traffic>(*gws_.a, *gws_.b, a.vips[0], b.vips);
    gws_.a->announce(a.vips[0], b.vips[0]);
    gws_.b->announce(b.vips[0], a.vips[0]);
  }

  // Every tunnel carries traffic both ways: egress installed on both gateways.
  bool all_connected() const {
    return status(*gws_.a, "tunnels") == kTunnels && status(*gws_.b, "tunnels") == kTunnels;
  }

  // Keeps the stream going (about `per_ms` frames each way per millisecond slice) until `done`.
  bool stream_until(const std::function<bool()>& done, Clock::duration limit, std::size_t per_ms = 8) {
    const auto deadline = Clock::now() + limit;
    while (!done()) {
      if (Clock::now() > deadline) return false;
      stream_for(std::chrono::milliseconds(20), per_ms);
    }
    return true;
  }
  void stream_for(Clock::duration d, std::size_t per_ms = 8) {
    const auto end = Clock::now() + d;
    while (Clock::now() < end) {
      traffic_->send(per_ms);
      traffic_->drain();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  GatewayPair gws_;
  std::unique_ptr<Traffic> traffic_;
};

TEST_P(ThousandTunnels, ThreeRotationsOnBothSidesLoseNoPacket) {
  if (GetParam()) {
    ASSERT_TRUE(wait_until([&] { return all_connected(); }, kSettle)) << "static tunnels did not connect";
  } else {
    // On demand: one frame per tunnel from A makes them all (held, exchanged, delivered); B learns its
    // egress from A's reverse params.
    while (traffic_->sent(0) < kTunnels) {
      traffic_->send(16, false);
      traffic_->drain();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_TRUE(wait_until(
        [&] {
          traffic_->drain();
          return all_connected() && traffic_->all_received();
        },
        kSettle))
        << "on-demand tunnels did not connect: " << traffic_->received(0) << " of " << traffic_->sent(0)
        << "\nA: " << gws_.a->admin("counters")["slow_path"].dump()
        << "\nB: " << gws_.b->admin("status").dump();
    // First packets toward many VIPs of one peer leave in a few batched requests, not one RPC a tunnel.
    const json peers = gws_.a->admin("peers");
    const uint64_t requests = peers["peers"][0]["rpcs_sent"].value("ok", uint64_t{0});
    EXPECT_LE(requests, kTunnels / 2) << peers.dump();
    std::printf("[ measure  ] %zu on-demand tunnels in %llu requests\n", kTunnels,
                static_cast<unsigned long long>(requests));
  }
  // The published key generation counts the first snapshot too: three rotations add three.
  const uint64_t generation = status(*gws_.a, "key_generation") + 3;
  ASSERT_EQ(generation, status(*gws_.b, "key_generation") + 3);
  const auto start = Clock::now();
  stream_for(std::chrono::milliseconds(300));
  // Three rotations on each side, asked for every 300 ms: faster than 2 x 1,000 re-keys on a loaded
  // machine, so the later ones wait for the re-keys of the previous one.
  int deferred = 0;
  for (int round = 1; round <= 3; ++round) {
    for (TestGateway* g : {gws_.a.get(), gws_.b.get()}) {
      const json r = g->admin("rotate-keys", {{"issue_new_keys", round % 2 == 1}});
      deferred += r["deferred"].get<bool>() ? 1 : 0;
      EXPECT_EQ(r["lost"], 0) << "round " << round;
    }
    stream_for(std::chrono::milliseconds(300));
  }
  const auto rotated = Clock::now();
  ASSERT_TRUE(stream_until(
      [&] {
        for (TestGateway* g : {gws_.a.get(), gws_.b.get()}) {
          if (status(*g, "key_generation") != generation || status(*g, "rekeys_pending") != 0) return false;
        }
        return true;
      },
      kSettle))
      << "rotations or re-keys did not finish";
  const auto settled = Clock::now();
  stream_for(std::chrono::milliseconds(300));
  const bool all = wait_until(
      [&] {
        traffic_->drain();
        return traffic_->all_received();
      },
      std::chrono::seconds(10));
  if (!all) {
    for (TestGateway* g : {gws_.a.get(), gws_.b.get()}) {
      const json c = g->admin("counters");
      std::string synd;
      for (const auto& p : c["pipes"]) {
        if (p["name"] == "SYND_STATS") synd = p["syndromes"].dump();
      }
      ADD_FAILURE() << "psp " << c["psp"].dump() << "\nslow " << c["slow_path"].dump() << "\nsynd " << synd;
    }
    ADD_FAILURE() << "missing A->B: " << traffic_->missing(0) << "\nmissing B->A: " << traffic_->missing(1);
  }
  // Zero loss, counted at the receiving workloads.
  EXPECT_EQ(traffic_->received(0), traffic_->sent(0));
  EXPECT_EQ(traffic_->received(1), traffic_->sent(1));
  EXPECT_EQ(traffic_->duplicates(), 0u);
  EXPECT_EQ(traffic_->misdelivered(), 0u);
  for (TestGateway* g : {gws_.a.get(), gws_.b.get()}) {
    EXPECT_EQ(syndrome(*g, "acl_miss"), 0u);
    EXPECT_EQ(syndrome(*g, "unknown_key"), 0u);
    EXPECT_EQ(syndrome(*g, "auth_failed"), 0u);
    const json slow = g->admin("counters")["slow_path"];
    EXPECT_GE(slow["rekeys"].get<uint64_t>(), 3 * kTunnels);  // every tunnel re-keyed after every rotation
  }
  EXPECT_TRUE(all_connected());
  const auto ms = [](Clock::duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  };
  std::printf(
      "[ measure  ] %zu tunnels, %s: %llu + %llu frames, 0 lost; rotations asked in %lld ms, %d of 6 "
      "deferred; all re-keyed %lld ms after the last request (whole test %lld ms)\n",
      kTunnels, GetParam() ? "static" : "on-demand", static_cast<unsigned long long>(traffic_->sent(0)),
      static_cast<unsigned long long>(traffic_->sent(1)), static_cast<long long>(ms(rotated - start)),
      deferred, static_cast<long long>(ms(settled - rotated)),
      static_cast<long long>(ms(Clock::now() - start)));
}

INSTANTIATE_TEST_SUITE_P(Modes, ThousandTunnels, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "Static" : "OnDemand"; });

// --key-rotation-interval: each gateway rotates on its own (a short interval here); the tunnels re-key
// after every timed rotation and carry every frame.
TEST(RotationTimer, GatewaysRotateOnTheirOwnAndLoseNothing) {
  GatewayPair gws;
  GatewaySpec a, b;
  a.vips = {"10.1.0.1"};
  a.peer_vips = remote_vips(20);
  b.vips = a.peer_vips;
  b.peer_vips = a.vips;
  a.extra_flags = {"--key-rotation-interval", "300ms"};
  b.extra_flags = {"--key-rotation-interval", "450ms"};
  ASSERT_TRUE(gws.start(a, b));
  gws.a->announce(a.vips[0], b.vips[0]);
  gws.b->announce(b.vips[0], a.vips[0]);
  Traffic traffic(*gws.a, *gws.b, a.vips[0], b.vips);
  traffic.send(b.vips.size(), false);  // one frame per tunnel from A makes them all
  const uint64_t start_a = status(*gws.a, "key_generation");
  const uint64_t start_b = status(*gws.b, "key_generation");
  ASSERT_TRUE(wait_until(
      [&] {
        traffic.send(2);
        traffic.drain();
        return status(*gws.a, "key_generation") >= start_a + 3 &&
               status(*gws.b, "key_generation") >= start_b + 3;
      },
      kSettle))
      << "no timed rotations";
  ASSERT_TRUE(wait_until(
      [&] {
        traffic.drain();
        return traffic.all_received();
      },
      std::chrono::seconds(10)))
      << traffic.received(0) << "/" << traffic.sent(0) << " " << traffic.received(1) << "/" << traffic.sent(1)
      << "\nmissing A->B: " << traffic.missing(0) << "\nmissing B->A: " << traffic.missing(1) << "\nA slow "
      << gws.a->admin("counters")["slow_path"].dump() << "\nB slow "
      << gws.b->admin("counters")["slow_path"].dump() << "\nA psp " << gws.a->admin("counters")["psp"].dump()
      << "\nB psp " << gws.b->admin("counters")["psp"].dump();
  EXPECT_EQ(traffic.duplicates() + traffic.misdelivered(), 0u);
  EXPECT_GT(gws.a->admin("counters")["slow_path"]["rekeys"].get<uint64_t>(), 0u);
}

// --tunnel-idle-timeout: of two tunnels, the quiet one ages out on both gateways (its entries and SPIs
// freed), the busy one stays; traffic afterwards makes the quiet one again on demand.
class IdleTunnels : public ::testing::Test {
 protected:
  void SetUp() override {
    GatewaySpec a, b;
    a.vips = {"10.1.0.1"};
    a.peer_vips = {"10.2.0.1", "10.2.0.2"};
    b.vips = a.peer_vips;
    b.peer_vips = a.vips;
    a.extra_flags = b.extra_flags = {"--tunnel-idle-timeout", "300ms"};
    ASSERT_TRUE(gws_.start(a, b));
    gws_.a->announce(a.vips[0], b.vips[0]);
    gws_.b->announce(b.vips[0], a.vips[0]);
  }

  // One UDP frame from A's workload to `remote` (or back), and whether it arrived.
  bool send(bool from_a, const std::string& remote, uint32_t seq) {
    TestGateway& from = from_a ? *gws_.a : *gws_.b;
    TestGateway& to = from_a ? *gws_.b : *gws_.a;
    test::UdpSpec s;
    s.src_mac = from.workload_mac;
    s.dst_mac = from.gateway_mac;
    s.src = test::ip(from_a ? "10.1.0.1" : remote);
    s.dst = test::ip(from_a ? remote : "10.1.0.1");
    s.payload.assign(kPayload, 0);
    std::memcpy(s.payload.data(), &seq, sizeof(seq));
    net::PacketBatch out;
    net::Packet* p = pool_.alloc();
    EXPECT_TRUE(p != nullptr && p->assign(test::udp_frame(s)));
    out.push(p);
    EXPECT_EQ(from.workload->tx_burst(out), 1u);
    pool_.free(p);
    return wait_until(
        [&] {
          net::PacketBatch in;
          to.workload->rx_burst(pool_, in);
          bool got = false;
          for (net::Packet* q : in) {
            got = got || (q->size() >= 14 + 28 + 4 && std::memcmp(q->data() + 14 + 28, &seq, 4) == 0);
            pool_.free(q);
          }
          return got;
        },
        std::chrono::seconds(10));
  }

  static bool has_tunnel(const TestGateway& g, const std::string& remote_or_local) {
    const json t = g.admin("tunnels");
    for (const auto& x : t["tunnels"]) {
      if (x["remote_vip"] == remote_or_local || x["local_vip"] == remote_or_local) return true;
    }
    return false;
  }

  GatewayPair gws_;
  net::PacketPool pool_{64};
};

TEST_F(IdleTunnels, QuietTunnelAgesOutBusyOneStaysTrafficMakesItAgain) {
  ASSERT_TRUE(send(true, "10.2.0.1", 1));
  ASSERT_TRUE(send(true, "10.2.0.2", 2));
  ASSERT_TRUE(has_tunnel(*gws_.a, "10.2.0.2") && has_tunnel(*gws_.b, "10.2.0.2"));
  uint32_t seq = 10;
  auto next_keepalive = Clock::now();
  const bool aged = wait_until(
      [&] {
        if (Clock::now() >= next_keepalive) {  // 10.2.0.1 stays busy: a frame every 50 ms
          EXPECT_TRUE(send(true, "10.2.0.1", ++seq));
          next_keepalive = Clock::now() + std::chrono::milliseconds(50);
        }
        return !has_tunnel(*gws_.a, "10.2.0.2") && !has_tunnel(*gws_.b, "10.2.0.2");
      },
      std::chrono::seconds(10));
  ASSERT_TRUE(aged) << "the quiet tunnel did not age out";
  EXPECT_TRUE(has_tunnel(*gws_.a, "10.2.0.1"));
  EXPECT_TRUE(has_tunnel(*gws_.b, "10.2.0.1"));
  // Its entries went with it: one tunnel's EGR_ACL entry on each side.
  EXPECT_EQ(gws_.a->admin("status")["tunnels"], 1);
  EXPECT_EQ(gws_.b->admin("status")["tunnels"], 1);
  // Traffic makes it again, on demand, both ways.
  ASSERT_TRUE(send(true, "10.2.0.2", ++seq));
  ASSERT_TRUE(send(false, "10.2.0.2", ++seq));
  EXPECT_TRUE(has_tunnel(*gws_.a, "10.2.0.2"));
}

}  // namespace
}  // namespace pspgw::gateway
