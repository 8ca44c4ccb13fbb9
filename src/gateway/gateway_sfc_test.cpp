// Service chains through whole gateways over in-memory ports (issue 8): workload A behind gateway A,
// workload B behind gateway B, B's traffic chained through VNFs that are test threads joining the two
// in-memory ends of each VNF port pair (a bump in the wire that logs, can drop a UDP port, reflect, or stop).
//
//   vm A <-> gateway A <-PSP-> gateway B -[SFC_ENTRY]-> fw1 -> fw2 -> fw3 -[SFC_HOP]-> vm B
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "base/byteorder.hpp"
#include "gateway/testing/two_gateways.hpp"

namespace pspgw::gateway {
namespace {

using nlohmann::json;
using ports::testing::EndpointConfig;
using ports::testing::MemoryPort;
using test::ip;
using test::mac;
using testing::Clock;
using testing::TempDir;
using testing::wait_until;

constexpr auto kWait = std::chrono::seconds(20);  // an upper bound for a loaded machine, not a timing
constexpr auto kSilence = std::chrono::milliseconds(300);  // how long "nothing arrives" is watched

// Where a frame's UDP header starts (IPv4 without options, or IPv6 without extension headers), 0 if the
// frame is not UDP.
std::size_t udp_at(const std::vector<uint8_t>& f) {
  if (f.size() < 14 + 20 + 8) return 0;
  if (f[12] == 0x08 && f[13] == 0x00) return f[14 + 9] == net::kIpProtoUdp ? 14 + 20 : 0;
  if (f[12] == 0x86 && f[13] == 0xdd && f.size() >= 14 + 40 + 8)
    return f[14 + 6] == net::kIpProtoUdp ? 14 + 40 : 0;
  return 0;
}
// The UDP destination port of a frame, 0 if not UDP.
uint16_t udp_dport(const std::vector<uint8_t>& f) {
  const std::size_t at = udp_at(f);
  return at == 0 ? 0 : load_be16(f.data() + at + 2);
}
uint16_t udp_sport(const std::vector<uint8_t>& f) {
  const std::size_t at = udp_at(f);
  return at == 0 ? 0 : load_be16(f.data() + at);
}

// A bump-in-the-wire VNF: frames in one port come out of the other, unchanged.
struct Vnf {
  enum class Mode : uint8_t { kForward, kReflect, kStopped };
  std::string name;
  std::unique_ptr<MemoryPort> in, out;  // the VNF's ends of its ingress / egress port
  std::atomic<Mode> mode{Mode::kForward};
  std::atomic<uint16_t> drop_dport{0};
  std::atomic<uint64_t> forward{0}, reverse{0}, dropped{0};
  net::PacketPool pool{128};

  // One pass: returns whether anything moved.
  bool pump(const std::function<void(const std::string&)>& log) {
    return move(*in, *out, forward, "+", log) | move(*out, *in, reverse, "-", log);
  }

 private:
  bool move(MemoryPort& from, MemoryPort& to, std::atomic<uint64_t>& count, const char* way,
            const std::function<void(const std::string&)>& log) {
    net::PacketBatch b;
    from.rx_burst(pool, b);
    if (b.empty()) return false;
    net::PacketBatch pass;
    for (net::Packet* p : b) {
      const std::vector<uint8_t> f(p->data(), p->data() + p->size());
      const Mode m = mode.load();
      const uint16_t drop = drop_dport.load();
      if (m == Mode::kStopped || (drop != 0 && (udp_dport(f) == drop || udp_sport(f) == drop))) {
        ++dropped;
        pool.free(p);
        continue;
      }
      if (udp_dport(f) != 0) {  // data, not health probes
        log(name + way);
        ++count;
      }
      pass.push(p);
    }
    if (!pass.empty()) (mode.load() == Mode::kReflect ? from : to).tx_burst(pass);
    for (net::Packet* p : pass) pool.free(p);
    return true;
  }
};

// Gateway B with its workload port "vmb" and the VNF ports fwN-in / fwN-out.
struct ChainedGateway {
  // The gateway stops (its workers joined) before the VNFs' and the workload's ends close under them.
  ~ChainedGateway() { gw.reset(); }
  std::unique_ptr<Gateway> gw;
  std::unique_ptr<MemoryPort> vm;
  std::vector<std::unique_ptr<Vnf>> vnfs;
  net::MacAddr gateway_mac = mac("02:50:00:00:0b:01");
  net::MacAddr vm_mac = mac("02:00:00:00:00:0b");

  json sfc(const std::vector<std::string>& argv) const {
    auto r = gw->handle("sfc", json{{"argv", argv}});
    EXPECT_TRUE(r.ok()) << argv[0] << ": " << (r.ok() ? "" : r.error().message);
    return r.ok() ? *r : json::object();
  }
  json counters() const { return *gw->handle("counters", json::object()); }
  uint64_t pipe_drop(const std::string& pipe, const std::string& reason) const {
    const json c = counters();
    for (const auto& p : c["pipes"])
      if (p["name"] == pipe) return p.value("drop_reasons", json::object()).value(reason, uint64_t{0});
    return 0;
  }
};

class SfcGateways : public ::testing::Test {
 protected:
  // x-sw.sfc of gateway B; `vnfs` VNFs (fw1..fwN) are declared as host ports either way.
  void start(const json& sfc, std::size_t vnfs = 3) {
    testing::GatewaySpec sa, sb;
    sa.name = "a";
    sb.name = "b";
    sa.pip = "127.0.0.1";
    sb.pip = "127.0.0.2";
    sa.vips = sb.peer_vips = {a_vip_};
    sb.vips = sa.peer_vips = {b_vip_};
    if (v6_) sa.extra_flags = sb.extra_flags = {"--inner-ip-type", "ipv6"};
    if (transport_) sa.extra_flags = sb.extra_flags = {"--mode", "transport"};
    sa.gateway_mac = "02:50:00:00:0a:01";
    sb.gateway_mac = "02:50:00:00:0b:01";
    sa.grpc_port = sb.peer_grpc_port = testing::free_port();
    sb.grpc_port = sa.peer_grpc_port = testing::free_port();
    EndpointConfig net_a;
    net_a.name = "net-a";
    net_a.addr = ip(sa.pip);
    net_a.port = psp::kPspUdpPort;
    EndpointConfig net_b = net_a;
    net_b.name = "net-b";
    net_b.addr = ip(sb.pip);
    auto wire = ports::testing::make_pair(net_a, net_b);
    a_ = testing::make_gateway(sa, std::move(wire.a), dir_.path);
    ASSERT_NE(a_, nullptr);
    b_ = make_b(sb, std::move(wire.b), sfc, vnfs);
    ASSERT_NE(b_, nullptr);
    pump_ = std::thread([this] { run_vnfs(); });
    // The workloads' first frames teach the gateways their MACs (an ARP request, answered for IPv4 VIPs).
    a_->announce(a_vip_, b_vip_);
    if (!v6_) {
      ASSERT_EQ(receive(*a_->workload, 1).size(), 1u);  // the proxy ARP reply
    }
    announce_b();
  }
  void TearDown() override {
    stop_ = true;
    if (pump_.joinable()) pump_.join();
    a_.reset();
    b_.reset();
  }

  std::unique_ptr<ChainedGateway> make_b(const testing::GatewaySpec& g,
                                         std::unique_ptr<ports::testing::MemoryPort> network, const json& sfc,
                                         std::size_t vnfs) {
    json host_ports = {{{"name", "vmb"}, {"local-vips", g.vips}, {"mac", g.gateway_mac}}};
    for (std::size_t i = 1; i <= vnfs; ++i) {
      host_ports.push_back({{"name", "fw" + std::to_string(i) + "-in"}, {"role", "vnf"}});
      host_ports.push_back({{"name", "fw" + std::to_string(i) + "-out"}, {"role", "vnf"}});
    }
    json c = {{"config",
               {{"local-grpc-address", "127.0.0.1:" + std::to_string(g.grpc_port)}, {"local-pip", g.pip}}},
              {"peers",
               {{{"remote-grpc-address", "127.0.0.1:" + std::to_string(g.peer_grpc_port)},
                 {"sessions", {{{"local-vip", g.vips[0]}, {"remote-vips", g.peer_vips}}}}}}},
              {"x-sw", {{"host-ports", host_ports}, {"rpc-deadline-ms", 5000}, {"sfc", sfc}}}};
    const std::string text = c.dump();
    const std::string path = dir_.path + "/b.json";
    std::ofstream(path) << text;
    auto flags = testing::gateway_flags(g, path, dir_.path + "/b.sock");
    auto config = parse_config(text, path, {});
    EXPECT_TRUE(config.ok()) << (config.ok() ? "" : config.error().message);
    if (!flags || !config) return nullptr;

    auto b = std::make_unique<ChainedGateway>();
    auto gw_side = std::make_shared<std::vector<std::unique_ptr<ports::Port>>>();
    const auto pair = [&](const std::string& name, std::size_t index) {
      EndpointConfig gw_end;
      gw_end.name = name;
      gw_end.id = PortId{static_cast<uint16_t>(index + 1)};
      EndpointConfig far;
      far.name = name + "-far";
      auto p = ports::testing::make_pair(gw_end, far);
      gw_side->push_back(std::move(p.a));
      return std::move(p.b);
    };
    b->vm = pair("vmb", 0);
    for (std::size_t i = 1; i <= vnfs; ++i) {
      auto v = std::make_unique<Vnf>();
      v->name = "fw" + std::to_string(i);
      v->in = pair(v->name + "-in", 2 * i - 1);
      v->out = pair(v->name + "-out", 2 * i);
      b->vnfs.push_back(std::move(v));
    }
    PortFactory f;
    f.host = [gw_side](uint16_t, uint16_t, std::size_t index, const HostPortConfig&,
                       PortId) -> Result<std::unique_ptr<ports::Port>, std::string> {
      if (!(*gw_side)[index]) return Err{std::string("host port already taken")};
      return std::move((*gw_side)[index]);
    };
    auto net = std::make_shared<std::unique_ptr<ports::Port>>(std::move(network));
    f.network = [net](uint16_t, uint16_t, const net::IpAddr&,
                      PortId) -> Result<std::unique_ptr<ports::Port>, std::string> {
      return std::move(*net);
    };
    auto gw = Gateway::create(std::move(*flags), std::move(*config), f);
    EXPECT_TRUE(gw.ok()) << (gw.ok() ? "" : gw.error());
    if (!gw) return nullptr;
    b->gw = std::move(*gw);
    auto started = b->gw->start();
    EXPECT_TRUE(started.ok()) << (started.ok() ? "" : started.error());
    return started ? std::move(b) : nullptr;
  }

  void run_vnfs() {
    const auto log = [this](const std::string& what) {
      std::lock_guard lock(log_mu_);
      log_.push_back(what);
    };
    while (!stop_) {
      bool moved = false;
      for (auto& v : b_->vnfs) moved |= v->pump(log);
      if (!moved) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  std::vector<std::string> take_log() {
    std::lock_guard lock(log_mu_);
    return std::exchange(log_, {});
  }

  void announce_b() {
    send_b(test::arp_request(b_->vm_mac, ip(b_vip_), ip(a_vip_)));
    if (!v6_) {
      ASSERT_EQ(receive(*b_->vm, 1).size(), 1u);  // the proxy ARP reply
    }
  }
  void send(MemoryPort& port, const std::vector<uint8_t>& frame) {
    net::PacketPool pool(1);
    net::PacketBatch batch;
    net::Packet* p = pool.alloc();
    ASSERT_TRUE(p != nullptr && p->assign(frame));
    batch.push(p);
    EXPECT_EQ(port.tx_burst(batch), 1u);
    pool.free(p);
  }
  void send_b(const std::vector<uint8_t>& frame) { send(*b_->vm, frame); }
  std::vector<std::vector<uint8_t>> receive(MemoryPort& port, std::size_t n, Clock::duration limit = kWait) {
    net::PacketPool pool(64);
    std::vector<std::vector<uint8_t>> got;
    wait_until(
        [&] {
          net::PacketBatch b;
          port.rx_burst(pool, b);
          for (net::Packet* p : b) {
            got.emplace_back(p->data(), p->data() + p->size());
            pool.free(p);
          }
          return got.size() >= n;
        },
        limit);
    return got;
  }

  std::vector<uint8_t> a_to_b(uint16_t dport, uint16_t sport = 40000) const {
    test::UdpSpec s;
    s.src_mac = a_->workload_mac;
    s.dst_mac = a_->gateway_mac;
    s.src = ip(a_vip_);
    s.dst = ip(b_vip_);
    s.sport = sport;
    s.dport = dport;
    return test::udp_frame(s);
  }
  std::vector<uint8_t> b_to_a(uint16_t sport, uint16_t dport = 40000) const {
    test::UdpSpec s;
    s.src_mac = b_->vm_mac;
    s.dst_mac = b_->gateway_mac;
    s.src = ip(b_vip_);
    s.dst = ip(a_vip_);
    s.sport = sport;
    s.dport = dport;
    return test::udp_frame(s);
  }
  // A -> B on `dport` arrives at vm B (true) or not within kSilence / kWait.
  bool a_reaches_b(uint16_t dport, uint16_t sport = 40000) {
    send(*a_->workload, a_to_b(dport, sport));
    return receive(*b_->vm, 1, kWait).size() == 1;
  }
  bool a_reaches_b_quietly(uint16_t dport) {
    send(*a_->workload, a_to_b(dport));
    return receive(*b_->vm, 1, kSilence).size() == 1;
  }
  bool b_reaches_a(uint16_t sport, uint16_t dport = 40000) {
    send_b(b_to_a(sport, dport));
    return receive(*a_->workload, 1, kWait).size() == 1;
  }

  static json chain(const std::vector<std::vector<std::string>>& hops,
                    const std::string& fail_mode = "close") {
    json groups = json::array();
    for (std::size_t h = 0; h < hops.size(); ++h)
      groups.push_back(
          {{"name", "pg" + std::to_string(h + 1)}, {"fail-mode", fail_mode}, {"pairs", hops[h]}});
    return {{"name", "pc1"}, {"groups", groups}};
  }
  static json pairs(std::size_t n) {
    json p = json::array();
    for (std::size_t i = 1; i <= n; ++i) {
      const std::string fw = "fw" + std::to_string(i);
      p.push_back({{"name", fw}, {"in", fw + "-in"}, {"out", fw + "-out"}});
    }
    return p;
  }
  static json classifier(const std::string& direction, bool bidi, const std::string& match = "") {
    return {{"name", "c1"},           {"chain", "pc1"},         {"port", "vmb"},
            {"direction", direction}, {"bi-directional", bidi}, {"match", match}};
  }

  // IPv6 inner traffic (--inner-ip-type ipv6 on both gateways): set before start().
  void inner_ipv6() {
    v6_ = true;
    a_vip_ = "fd00:1::1";
    b_vip_ = "fd00:2::1";
  }

  // Transport mode (--mode transport): the VIPs are the gateways' own addresses (config.local-pip).
  void transport_mode() {
    transport_ = true;
    a_vip_ = "127.0.0.1";
    b_vip_ = "127.0.0.2";
  }

  bool v6_ = false;
  bool transport_ = false;
  std::string a_vip_ = "10.1.0.1", b_vip_ = "10.2.0.1";
  TempDir dir_;
  std::unique_ptr<testing::TestGateway> a_;
  std::unique_ptr<ChainedGateway> b_;
  std::thread pump_;
  std::atomic<bool> stop_{false};
  std::mutex log_mu_;
  std::vector<std::string> log_;
};

TEST_F(SfcGateways, ThreeHopsInOrderThenDeliveredAndADroppedPortStaysUnreachable) {
  start({{"pairs", pairs(3)},
         {"chains", {chain({{"fw1"}, {"fw2"}, {"fw3"}})}},
         {"classifiers", {classifier("entry-lport", false, "udp")}}});
  ASSERT_TRUE(a_reaches_b(5001));
  EXPECT_EQ(take_log(), (std::vector<std::string>{"fw1+", "fw2+", "fw3+"}));
  b_->vnfs[1]->drop_dport = 7777;
  EXPECT_FALSE(a_reaches_b_quietly(7777));
  EXPECT_TRUE(a_reaches_b(5002));
  const json sfc = b_->counters()["sfc"];
  EXPECT_EQ(sfc["classifiers"][0]["packets"], 3u);
  EXPECT_EQ(sfc["hops"][0]["packets"], 3u);
  EXPECT_EQ(sfc["hops"][1]["packets"], 2u);  // fw2 dropped 7777
  EXPECT_EQ(sfc["hops"][2]["packets"], 2u);
}

TEST_F(SfcGateways, BiDirectionalRepliesCrossTheSameHopsInReverseOrderBeforeEncryption) {
  start({{"pairs", pairs(3)},
         {"chains", {chain({{"fw1"}, {"fw2"}, {"fw3"}})}},
         {"classifiers", {classifier("entry-lport", true, "udp")}}});
  ASSERT_TRUE(a_reaches_b(5001));
  ASSERT_TRUE(b_reaches_a(5001));
  EXPECT_EQ(take_log(), (std::vector<std::string>{"fw1+", "fw2+", "fw3+", "fw3-", "fw2-", "fw1-"}));
  const json c = b_->counters()["sfc"]["classifiers"][0];
  EXPECT_EQ(c["packets"], 1u);
  EXPECT_EQ(c["return_packets"], 1u);
}

// IPv6 inside the tunnel: the same chain, both ways, in order and in reverse.
TEST_F(SfcGateways, InnerIpv6BiDirectionalChainCrossesEveryHopBothWays) {
  inner_ipv6();
  start({{"pairs", pairs(3)},
         {"chains", {chain({{"fw1"}, {"fw2"}, {"fw3"}})}},
         {"classifiers", {classifier("entry-lport", true, "ip6 && udp.dst == 5001")}}});
  take_log();
  ASSERT_TRUE(a_reaches_b(5001));
  ASSERT_TRUE(b_reaches_a(5001));
  EXPECT_EQ(take_log(), (std::vector<std::string>{"fw1+", "fw2+", "fw3+", "fw3-", "fw2-", "fw1-"}));
  ASSERT_TRUE(a_reaches_b(5002));  // not matched: straight through
  EXPECT_TRUE(take_log().empty());
  const json c = b_->counters()["sfc"]["classifiers"][0];
  EXPECT_EQ(c["packets"], 1u);
  EXPECT_EQ(c["return_packets"], 1u);
}

// Transport mode (no inner header: the packet's own addresses are the hosts'): the same chain both ways.
TEST_F(SfcGateways, TransportModeBiDirectionalChainCrossesEveryHopBothWays) {
  transport_mode();
  start({{"pairs", pairs(2)},
         {"chains", {chain({{"fw1"}, {"fw2"}})}},
         {"classifiers", {classifier("entry-lport", true, "udp.dst == 5001")}}},
        2);
  take_log();
  ASSERT_TRUE(a_reaches_b(5001));
  ASSERT_TRUE(b_reaches_a(5001));
  EXPECT_EQ(take_log(), (std::vector<std::string>{"fw1+", "fw2+", "fw2-", "fw1-"}));
  ASSERT_TRUE(a_reaches_b(5002));
  EXPECT_TRUE(take_log().empty());
}

TEST_F(SfcGateways, ExitLportChainsTrafficFromTheWorkloadBeforeEncryption) {
  start({{"pairs", pairs(1)},
         {"chains", {chain({{"fw1"}})}},
         {"classifiers", {classifier("exit-lport", false, "udp.dst == 40000")}}},
        1);
  ASSERT_TRUE(b_reaches_a(5001));
  EXPECT_EQ(take_log(), (std::vector<std::string>{"fw1+"}));
  ASSERT_TRUE(a_reaches_b(5001));  // not classified the other way: uni-directional
  EXPECT_TRUE(take_log().empty());
}

TEST_F(SfcGateways, TwoInstancesShareTheFlowsAndEachFlowSticksBothWays) {
  start({{"pairs", pairs(2)},
         {"chains", {chain({{"fw1", "fw2"}})}},
         {"classifiers", {classifier("entry-lport", true, "udp")}}},
        2);
  ASSERT_TRUE(a_reaches_b(5001));
  take_log();
  for (uint16_t flow = 0; flow < 32; ++flow) {
    const uint16_t sport = static_cast<uint16_t>(41000 + flow);
    ASSERT_TRUE(a_reaches_b(5001, sport));
    ASSERT_TRUE(b_reaches_a(5001, sport));
    const auto log = take_log();
    ASSERT_EQ(log.size(), 2u) << ::testing::PrintToString(log);
    EXPECT_EQ(log[0].substr(0, 3), log[1].substr(0, 3)) << "flow " << flow;  // one instance both ways
  }
  EXPECT_GT(b_->vnfs[0]->forward.load(), 4u);
  EXPECT_GT(b_->vnfs[1]->forward.load(), 4u);
}

// A third instance joins the group: a flow either stays where it was or moves to the new one, never
// between the two old ones (the group's sticky slots, kept by the program's member order).
TEST_F(SfcGateways, AnInstanceJoiningMovesFlowsOnlyToItself) {
  start({{"pairs", pairs(3)},
         {"chains", {chain({{"fw1", "fw2"}})}},
         {"classifiers", {classifier("entry-lport", true, "udp")}}});
  ASSERT_TRUE(a_reaches_b(5001));
  const auto instance_of = [&](uint16_t sport) {
    EXPECT_TRUE(a_reaches_b(5001, sport));
    const auto log = take_log();
    return log.size() == 1 ? log[0].substr(0, 3) : std::string("?");
  };
  take_log();
  std::map<uint16_t, std::string> before;
  for (uint16_t sport = 43000; sport < 43032; ++sport) before[sport] = instance_of(sport);
  b_->sfc({"group-pair-add", "pg1", "fw3"});
  int moved = 0;
  for (const auto& [sport, was] : before) {
    const std::string now = instance_of(sport);
    if (now != was) {
      EXPECT_EQ(now, "fw3") << "flow " << sport << " moved from " << was;
      ++moved;
    }
  }
  EXPECT_GT(moved, 0);
  EXPECT_LT(moved, 24);  // about a third
}

TEST_F(SfcGateways, AReflectingVnfIsCountedAndDroppedNeverLooped) {
  start({{"pairs", pairs(1)},
         {"chains", {chain({{"fw1"}})}},
         {"classifiers", {classifier("entry-lport", false, "udp")}}},
        1);
  b_->vnfs[0]->mode = Vnf::Mode::kReflect;
  EXPECT_FALSE(a_reaches_b_quietly(5001));
  EXPECT_TRUE(wait_until([&] { return b_->pipe_drop("SFC_HOP", "sfc_no_hop") == 1; }, kWait));
  EXPECT_EQ(b_->vnfs[0]->forward.load(), 1u);  // seen once: not sent back into it
}

TEST_F(SfcGateways, AStoppedInstanceFailsCloseWithinTheHealthTimeAndComesBack) {
  json sfc = {{"pairs", pairs(1)},
              {"chains", {chain({{"fw1"}})}},
              {"classifiers", {classifier("entry-lport", false, "udp")}},
              {"health", {{"interval-ms", 100}, {"misses", 2}, {"timeout-ms", 100}}}};
  start(sfc, 1);
  ASSERT_TRUE(a_reaches_b(5001));
  b_->vnfs[0]->mode = Vnf::Mode::kStopped;
  ASSERT_TRUE(wait_until([&] { return !b_->counters()["sfc"]["instances"][0]["live"].get<bool>(); }, kWait));
  EXPECT_FALSE(a_reaches_b_quietly(5002));
  EXPECT_GE(b_->pipe_drop("SFC_ENTRY", "sfc_no_instance"), 1u);
  b_->vnfs[0]->mode = Vnf::Mode::kForward;
  ASSERT_TRUE(wait_until([&] { return b_->counters()["sfc"]["instances"][0]["live"].get<bool>(); }, kWait));
  EXPECT_TRUE(a_reaches_b(5003));
}

// An instance's traffic counters count data only: the health probes through the same ports are counted
// as probes (probes_sent / probes_returned), not as traffic.
TEST_F(SfcGateways, InstanceCountersCountDataNotProbes) {
  json sfc = {{"pairs", pairs(1)},
              {"chains", {chain({{"fw1"}})}},
              {"classifiers", {classifier("entry-lport", false, "udp")}},
              {"health", {{"interval-ms", 100}, {"misses", 3}, {"timeout-ms", 200}}}};
  start(sfc, 1);
  const auto instance = [&] { return b_->counters()["sfc"]["instances"][0]; };
  ASSERT_TRUE(wait_until([&] { return instance()["probes_returned"].get<uint64_t>() >= 3; }, kWait));
  for (uint16_t i = 0; i < 3; ++i) ASSERT_TRUE(a_reaches_b(static_cast<uint16_t>(5001 + i)));
  // Port counters are published every 100 ms, probes counted as they go: wait for both to agree.
  EXPECT_TRUE(wait_until(
      [&] {
        const json i = instance();
        return i["in_tx"] == 3u && i["out_rx"] == 3u && i["in_rx"] == 0u && i["out_tx"] == 0u;
      },
      kWait))
      << instance().dump();
  EXPECT_GE(instance()["probes_sent"].get<uint64_t>(), 3u);
}

// A one-armed instance (in == out: the VNF sends a frame back out of the port it came in on) serves both
// directions of a bi-directional classifier: SFC_HOP tells them apart by the workload's VIP as destination
// or source. A second classifier that needs the same port for traffic toward the workload in another
// continuation (a bi-directional exit-lport chain's return traffic) is refused, naming both (README,
// "Limits, and why").
TEST_F(SfcGateways, AOneArmedInstanceServesBothDirectionsAndAnAmbiguousSecondClassifierIsRefused) {
  start({{"pairs", {{{"name", "fw1"}, {"in", "fw1-in"}, {"out", "fw1-in"}}, pairs(2)[1]}},
         {"chains", {chain({{"fw1"}, {"fw2"}})}},
         {"classifiers", {classifier("entry-lport", true, "udp")}}},
        2);
  b_->vnfs[0]->mode = Vnf::Mode::kReflect;  // back out of the port it came in on: one-armed
  take_log();
  ASSERT_TRUE(a_reaches_b(5001));
  ASSERT_TRUE(b_reaches_a(5001));
  EXPECT_EQ(take_log(), (std::vector<std::string>{"fw1+", "fw2+", "fw2-", "fw1+"}));
  // c2's return traffic to vm B would come back from fw1's one port addressed to vm B, as c1's forward
  // traffic does, but must go back toward the workload where c1's goes on to fw2.
  auto refused = b_->gw->handle(
      "sfc", json{{"argv", {"classifier-add", "pc1", "vmb", "exit-lport", "bi-directional", "c2", "tcp"}}});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("c1"), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("c2"), std::string::npos) << refused.error().message;
  ASSERT_TRUE(a_reaches_b(5002));  // refused: nothing changed
}

TEST_F(SfcGateways, FailOpenBypassesADeadHop) {
  json sfc = {{"pairs", pairs(2)},
              {"chains", {chain({{"fw1"}, {"fw2"}}, "open")}},
              {"classifiers", {classifier("entry-lport", false, "udp")}},
              {"health", {{"interval-ms", 100}, {"misses", 2}, {"timeout-ms", 100}}}};
  start(sfc, 2);
  b_->vnfs[0]->mode = Vnf::Mode::kStopped;
  ASSERT_TRUE(wait_until([&] { return !b_->counters()["sfc"]["instances"][0]["live"].get<bool>(); }, kWait));
  take_log();
  ASSERT_TRUE(a_reaches_b(5001));
  EXPECT_EQ(take_log(), (std::vector<std::string>{"fw2+"}));
}

TEST_F(SfcGateways, VerbsAddAndRemoveAChainAtRunTimeAndRefuseOverlaps) {
  start(json::object(), 1);
  ASSERT_TRUE(a_reaches_b(5001));
  b_->sfc({"pair-add", "fw1-in", "fw1-out", "fw1"});
  b_->sfc({"chain-add", "pc1"});
  b_->sfc({"group-add", "pc1", "pg1", "--fail-mode", "close"});
  b_->sfc({"group-pair-add", "pg1", "fw1"});
  b_->sfc({"classifier-add", "pc1", "vmb", "entry-lport", "bi-directional", "c1", "udp.dst == 5001"});
  auto overlap = b_->gw->handle(
      "sfc", json{{"argv", {"classifier-add", "pc1", "vmb", "entry-lport", "uni-directional", "c2", "ip4"}}});
  ASSERT_FALSE(overlap.ok());
  EXPECT_NE(overlap.error().message.find("c1"), std::string::npos) << overlap.error().message;
  EXPECT_NE(overlap.error().message.find("c2"), std::string::npos) << overlap.error().message;
  take_log();
  ASSERT_TRUE(a_reaches_b(5001));
  EXPECT_EQ(take_log(), (std::vector<std::string>{"fw1+"}));
  ASSERT_TRUE(a_reaches_b(5002));  // not matched: straight through
  EXPECT_TRUE(take_log().empty());
  const json show = b_->sfc({"show"});
  EXPECT_EQ(show["classifiers"][0]["name"], "c1");
  EXPECT_EQ(show["counters"]["classifiers"][0]["packets"], 1u);
  b_->sfc({"classifier-del", "c1"});
  ASSERT_TRUE(a_reaches_b(5001));
  EXPECT_TRUE(take_log().empty());
  auto in_use = b_->gw->handle("sfc", json{{"argv", {"pair-del", "fw1"}}});
  EXPECT_FALSE(in_use.ok());  // still in pg1
}

TEST_F(SfcGateways, VnfPortsGetNoArpAnswersAndAreNeverAWorkload) {
  start({{"pairs", pairs(1)}}, 1);
  b_->vnfs[0]->mode = Vnf::Mode::kStopped;  // the test sends on its port itself
  const auto answered = [&] { return b_->counters()["slow_path"]["exceptions_answered"].get<uint64_t>(); };
  const uint64_t before = answered();
  send(*b_->vnfs[0]->in, test::arp_request(mac("02:00:00:00:0f:01"), ip("10.2.0.9"), ip("10.1.0.1")));
  EXPECT_TRUE(wait_until([&] { return b_->pipe_drop("ROOT", "root_miss") >= 1; }, kWait));
  EXPECT_EQ(answered(), before);
  ASSERT_TRUE(a_reaches_b(5001));  // vm B's MAC is still its own, not the frame's from the VNF port
}

}  // namespace
}  // namespace pspgw::gateway
