// The reload diff (reload.hpp), one section at a time: what a new config changes, and what needs a restart.
#include "gateway/reload.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace pspgw::gateway {
namespace {

net::IpAddr ip(std::string_view t) {
  return *net::IpAddr::parse(t);
}

GatewayConfig config(std::string_view text) {
  auto r = parse_config(text, "c.json", {});
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r.value()) : GatewayConfig{};
}

// One gateway with two peers and one host port carrying 10.0.0.1 and 10.0.0.2.
const char* const kBase = R"({
  "config": {"local-grpc-address": "10.9.0.1:3000", "local-pip": "10.9.0.1"},
  "peers": [
    {"remote-grpc-address": "10.9.0.2", "sessions": [{"local-vip": "10.0.0.1", "remote-vips": ["10.1.0.1"]}]},
    {"remote-grpc-address": "10.9.0.3", "sessions": [{"local-vip": "10.0.0.2", "remote-vips": ["10.2.0.1", "10.2.0.2"]}]}
  ],
  "x-sw": {"host-ports": [{"name": "tap0", "local-vips": ["10.0.0.1", "10.0.0.2"]}, {"name": "tap1", "local-vips": []}]}
})";

std::string with(std::string text, std::string_view from, std::string_view to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

ConfigDiff diff(const std::string& next) {
  return diff_config(config(kBase), config(next), GatewayFlags{});
}

TEST(ReloadDiff, SameConfigIsEmpty) {
  const ConfigDiff d = diff(kBase);
  EXPECT_TRUE(d.empty()) << d.summary();
}

TEST(ReloadDiff, PeerAddedRemovedAndChangedAreNamed) {
  std::string next =
      with(kBase, R"("remote-grpc-address": "10.9.0.3")", R"("remote-grpc-address": "10.9.0.4")");
  next = with(next, R"("remote-vips": ["10.1.0.1"])", R"("remote-vips": ["10.1.0.1", "10.1.0.2"])");
  const ConfigDiff d = diff(next);
  EXPECT_TRUE(d.restart.empty());
  EXPECT_EQ(d.peers.added, std::vector<std::string>{"10.9.0.4:3000"});
  EXPECT_EQ(d.peers.removed, std::vector<std::string>{"10.9.0.3:3000"});
  EXPECT_EQ(d.peers.changed, std::vector<std::string>{"10.9.0.2:3000"});
  EXPECT_EQ(d.peers.pairs_added, 3u);    // 10.0.0.1->10.1.0.2, and the new peer's two
  EXPECT_EQ(d.peers.pairs_removed, 2u);  // the removed peer's two
  EXPECT_EQ(d.summary(), "peers +1 -1 ~1, VIP pairs +3 -2, local VIPs +0 -0 moved 0");
}

TEST(ReloadDiff, PeerPipChangeIsAChange) {
  std::string next = with(kBase, R"("x-sw": {)", R"("x-sw": {"peer-pips": {"10.9.0.2": "10.9.9.2"}, )");
  const ConfigDiff d = diff(next);
  EXPECT_EQ(d.peers.changed, std::vector<std::string>{"10.9.0.2:3000"});
  EXPECT_EQ(d.peers.pairs_added + d.peers.pairs_removed, 0u);
}

TEST(ReloadDiff, LocalVipsAddedRemovedAndMovedBetweenPorts) {
  std::string next =
      with(kBase, R"("local-vips": ["10.0.0.1", "10.0.0.2"])", R"("local-vips": ["10.0.0.1", "10.0.0.3"])");
  next = with(next, R"("local-vips": []})", R"("local-vips": ["10.0.0.2"]})");  // 10.0.0.2 moves to tap1
  next = with(next, R"("local-vip": "10.0.0.1", "remote-vips": ["10.1.0.1"]})",
              R"("local-vip": "10.0.0.3", "remote-vips": ["10.1.0.1"]})");
  // 10.0.0.1 stays on tap0 without sessions.
  const ConfigDiff d = diff(next);
  EXPECT_TRUE(d.restart.empty());
  EXPECT_EQ(d.vips.added, std::vector<net::IpAddr>{ip("10.0.0.3")});
  EXPECT_TRUE(d.vips.removed.empty());
  EXPECT_EQ(d.vips.moved, std::vector<net::IpAddr>{ip("10.0.0.2")});
  EXPECT_EQ(d.peers.changed, std::vector<std::string>{"10.9.0.2:3000"});  // its session's local VIP changed
}

bool names(const ConfigDiff& d, std::string_view key) {
  return std::any_of(d.restart.begin(), d.restart.end(),
                     [&](const std::string& r) { return r.find(key) == 0; });
}

TEST(ReloadDiff, FixedKeysNeedARestartAndAreAllNamed) {
  std::string next =
      with(kBase, R"("local-grpc-address": "10.9.0.1:3000")", R"("local-grpc-address": "10.9.0.1:3001")");
  next = with(next, R"("local-pip": "10.9.0.1")", R"("local-pip": "10.9.0.9")");
  next = with(next, R"("x-sw": {)",
              R"("x-sw": {"local-mac": "02:00:00:00:00:09", "virt-cookie": "0x1", "rpc-deadline-ms": 100, )"
              R"("tunnels-per-request": 10, "metrics-address": "127.0.0.1:9469", "uplink-mtu": 9000, )");
  const ConfigDiff d = diff(next);
  EXPECT_FALSE(d.empty());
  for (const char* key : {"config.local-grpc-address: 10.9.0.1:3000 -> 10.9.0.1:3001",
                          "config.local-pip: 10.9.0.1 -> 10.9.0.9", "x-sw.local-mac", "x-sw.virt-cookie",
                          "x-sw.rpc-deadline-ms: 2000 -> 100", "x-sw.tunnels-per-request: 4096 -> 10",
                          "x-sw.metrics-address: unset -> 127.0.0.1:9469", "x-sw.uplink-mtu"}) {
    EXPECT_TRUE(names(d, key)) << key;
  }
  EXPECT_EQ(d.restart.size(), 8u);
}

// x-sw.sfc is applied at start and changed live with `pspctl sfc`: a changed section is refused by name.
TEST(ReloadDiff, ServiceChainsChangeLiveThroughPspctlNotReload) {
  const auto sfc = [](std::string_view fail_mode) {
    return std::string(R"({
  "config": {"local-grpc-address": "10.9.0.1:3000", "local-pip": "10.9.0.1"},
  "x-sw": {"host-ports": [{"name": "vm1"}, {"name": "fw-in", "role": "vnf"}, {"name": "fw-out", "role": "vnf"}],
           "sfc": {"pairs": [{"name": "fw", "in": "fw-in", "out": "fw-out"}],
                   "chains": [{"name": "pc", "groups": [{"name": "pg", "fail-mode": ")") +
           std::string(fail_mode) + R"(", "pairs": ["fw"]}]}]}}})";
  };
  EXPECT_TRUE(diff_config(config(sfc("open")), config(sfc("open")), GatewayFlags{}).empty());
  const ConfigDiff d = diff_config(config(sfc("open")), config(sfc("close")), GatewayFlags{});
  ASSERT_EQ(d.restart.size(), 1u);
  EXPECT_TRUE(names(d, "x-sw.sfc changed")) << d.restart[0];
}

TEST(ReloadDiff, MetricsAddressFromTheFlagIsNotTheConfigs) {
  GatewayFlags flags;
  flags.metrics_address = "127.0.0.1:9000";
  const std::string next = with(kBase, R"("x-sw": {)", R"("x-sw": {"metrics-address": "127.0.0.1:9469", )");
  EXPECT_TRUE(diff_config(config(kBase), config(next), flags).restart.empty());
}

// Host ports are matched by name: added and removed ones are live, their order does not matter; a kept
// port's role, MTU or MAC needs a restart.
TEST(ReloadDiff, HostPortsAddedAndRemovedLiveByNameChangedNeedARestart) {
  const ConfigDiff renamed =
      diff(with(kBase, R"({"name": "tap1", "local-vips": []})", R"({"name": "tap2", "local-vips": []})"));
  EXPECT_TRUE(renamed.restart.empty());
  EXPECT_EQ(renamed.ports.added, std::vector<std::string>{"tap2"});
  EXPECT_EQ(renamed.ports.removed, std::vector<std::string>{"tap1"});
  EXPECT_EQ(renamed.summary(), "peers +0 -0 ~0, VIP pairs +0 -0, local VIPs +0 -0 moved 0, host ports +1 -1");
  const ConfigDiff removed = diff(with(kBase, R"(, {"name": "tap1", "local-vips": []})", ""));
  EXPECT_TRUE(removed.restart.empty());
  EXPECT_EQ(removed.ports.removed, std::vector<std::string>{"tap1"});
  const ConfigDiff reordered = diff(with(
      kBase,
      R"({"name": "tap0", "local-vips": ["10.0.0.1", "10.0.0.2"]}, {"name": "tap1", "local-vips": []})",
      R"({"name": "tap1", "local-vips": []}, {"name": "tap0", "local-vips": ["10.0.0.1", "10.0.0.2"]})"));
  EXPECT_TRUE(reordered.empty()) << reordered.summary();
  // A VIP now behind a port of another name moved (its tunnels close), whatever the ports' order.
  const ConfigDiff moved =
      diff(with(kBase, R"({"name": "tap1", "local-vips": []})",
                R"({"name": "tap3", "local-vips": []}, {"name": "tap1", "local-vips": []})"));
  EXPECT_TRUE(moved.vips.moved.empty());
  const ConfigDiff to_new =
      diff(with(with(kBase, R"("local-vips": ["10.0.0.1", "10.0.0.2"])", R"("local-vips": ["10.0.0.1"])"),
                R"({"name": "tap1", "local-vips": []})",
                R"({"name": "tap1", "local-vips": []}, {"name": "tap3", "local-vips": ["10.0.0.2"]})"));
  EXPECT_EQ(to_new.vips.moved, std::vector<net::IpAddr>{ip("10.0.0.2")});
  EXPECT_EQ(to_new.ports.added, std::vector<std::string>{"tap3"});
  EXPECT_TRUE(names(diff(with(kBase, R"({"name": "tap1", "local-vips": []})",
                              R"({"name": "tap1", "mtu": 9000, "local-vips": []})")),
                    "x-sw.host-ports 'tap1': mtu auto -> 9000"));
  EXPECT_TRUE(names(diff(with(kBase, R"({"name": "tap1", "local-vips": []})",
                              R"({"name": "tap1", "mac": "02:00:00:00:00:07", "local-vips": []})")),
                    "x-sw.host-ports 'tap1': mac"));
  EXPECT_TRUE(
      names(diff(with(kBase, R"({"name": "tap1", "local-vips": []})", R"({"name": "tap1", "role": "vnf"})")),
            "x-sw.host-ports 'tap1': role workload -> vnf"));
}

TEST(ReloadDiff, TlsFilesFromTheConfigUnlessTheFlagsWin) {
  const std::string a = with(kBase, R"("x-sw": {)",
                             R"("x-sw": {"grpc-tls": {"cert": "a.crt", "key": "a.key", "ca": "ca.crt"}, )");
  const std::string b = with(kBase, R"("x-sw": {)",
                             R"("x-sw": {"grpc-tls": {"cert": "b.crt", "key": "a.key", "ca": "ca.crt"}, )");
  EXPECT_TRUE(diff_config(config(a), config(b), GatewayFlags{}).tls);
  EXPECT_FALSE(diff_config(config(a), config(a), GatewayFlags{}).tls);
  GatewayFlags flags;
  flags.grpc_tls_cert = "flag.crt";
  EXPECT_FALSE(diff_config(config(a), config(b), flags).tls);
}

TEST(ReloadDiff, DefaultHostPortCarriesEveryLocalVip) {
  const GatewayConfig c = config(R"({
    "config": {"local-pip": "10.9.0.1"},
    "peers": [{"remote-grpc-address": "10.9.0.2", "sessions": [{"local-vip": "10.0.0.1", "remote-vips": ["10.1.0.1"]},
                                                              {"local-vip": "10.0.0.2", "remote-vips": ["10.1.0.1"]}]}]
  })");
  const auto ports = effective_host_ports(c, "psp0");
  ASSERT_EQ(ports.size(), 1u);
  EXPECT_EQ(ports[0].name, "psp0");
  EXPECT_EQ(ports[0].local_vips, (std::vector<net::IpAddr>{ip("10.0.0.1"), ip("10.0.0.2")}));
}

}  // namespace
}  // namespace pspgw::gateway
