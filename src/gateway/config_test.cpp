#include "gateway/config.hpp"

#include <gtest/gtest.h>

#include <fstream>

namespace pspgw::gateway {
namespace {

net::IpAddr ip(std::string_view t) {
  return *net::IpAddr::parse(t);
}

const ConfigInputs kInputs{ip("192.168.1.1")};

GatewayConfig ok(std::string_view text, const ConfigInputs& inputs = kInputs) {
  auto r = parse_config(text, "c.json", inputs);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r.value()) : GatewayConfig{};
}

std::string error(std::string_view text, const ConfigInputs& inputs = kInputs) {
  auto r = parse_config(text, "c.json", inputs);
  EXPECT_FALSE(r.ok()) << text;
  return r.ok() ? "" : r.error().message;
}

// The shape of DOCA's sample configs: one peer per remote host, prefixes and defaulted local VIPs.
TEST(Config, DocaExample) {
  GatewayConfig c = ok(R"({
    "config": { "local-grpc-address": "10.0.0.1" },
    "peers": [
      { "remote-grpc-address": "10.0.0.2",
        "sessions": [ { "local-vip": "192.168.1.1", "remote-vips": ["192.168.2.2", "192.168.3.0/24"] } ] },
      { "remote-grpc-address": "[fd00::3]:3001",
        "sessions": [ { "remote-vips": ["192.168.4.4"] } ] }
    ]
  })");
  EXPECT_EQ(c.source, "c.json");
  EXPECT_EQ(c.local_grpc_address.to_string(), "10.0.0.1:3000");
  ASSERT_EQ(c.peers.size(), 2u);
  EXPECT_EQ(c.peers[0].remote_grpc_address.to_string(), "10.0.0.2:3000");
  EXPECT_EQ(c.peers[1].remote_grpc_address.to_string(), "[fd00::3]:3001");
  const auto& remotes = c.peers[0].sessions[0].remote_vips;
  ASSERT_EQ(remotes.size(), 1u + 256u);
  EXPECT_EQ(remotes[1], ip("192.168.3.0"));
  EXPECT_EQ(remotes[256], ip("192.168.3.255"));
  EXPECT_EQ(c.peers[1].sessions[0].local_vip, ip("192.168.1.1"));  // the unsecured port's IPv4
  EXPECT_EQ(c.local_vips(), std::vector<net::IpAddr>{ip("192.168.1.1")});
  EXPECT_FALSE(c.local_pip.has_value());
  EXPECT_TRUE(c.sw.host_ports.empty());
  EXPECT_EQ(c.sw.virt_cookie, kDocaVirtCookie);
}

TEST(Config, AddressDefaultsAndForms) {
  EXPECT_EQ(ok("{}").local_grpc_address.to_string(), "0.0.0.0:3000");
  EXPECT_EQ(ok(R"({"config": {"local-grpc-address": "[::]:4000"}})").local_grpc_address.to_string(),
            "[::]:4000");
  EXPECT_EQ(ok(R"({"config": {"local-grpc-address": "fd00::1"}})").local_grpc_address.to_string(),
            "[fd00::1]:3000");
  EXPECT_EQ(
      ok(R"({"config": {"local-grpc-address": "10.1.1.1:50051", "local-pip": "2001:db8::1"}})").local_pip,
      ip("2001:db8::1"));
  auto named = parse_grpc_address("gw-2.example:3005", false);
  ASSERT_TRUE(named.has_value());
  EXPECT_EQ(named->to_string(), "gw-2.example:3005");
  EXPECT_FALSE(parse_grpc_address("gw-2.example", true).has_value());  // listening needs an IP
  EXPECT_FALSE(parse_grpc_address("10.0.0.1:0", false).has_value());
  EXPECT_FALSE(parse_grpc_address("10.0.0.1:70000", false).has_value());
  EXPECT_FALSE(parse_grpc_address("[10.0.0.1]:3000", false).has_value());
  EXPECT_FALSE(parse_grpc_address("[fd00::1]3000", false).has_value());
}

TEST(Config, IPv6SessionsAndSlash32) {
  GatewayConfig c = ok(R"({"peers": [{"remote-grpc-address": "h", "sessions": [
      {"local-vip": "fd00::1", "remote-vips": ["fd00::2", "fd00::3"]},
      {"local-vip": "10.0.0.1", "remote-vips": ["10.0.0.2/32"]}]}]})");
  EXPECT_EQ(c.peers[0].sessions[0].remote_vips.size(), 2u);
  EXPECT_EQ(c.peers[0].sessions[1].remote_vips, std::vector<net::IpAddr>{ip("10.0.0.2")});
  EXPECT_EQ(c.peers[0].remote_grpc_address.to_string(), "h:3000");
}

TEST(Config, HostPortRoles) {
  GatewayConfig c = ok(R"({"x-sw": {"host-ports": [{"name": "vm1"}, {"name": "fw1-in", "role": "vnf"},
                                                   {"name": "vm2", "role": "workload"}]}})");
  ASSERT_EQ(c.sw.host_ports.size(), 3u);
  EXPECT_EQ(c.sw.host_ports[0].role,
            HostPortRole::kWorkload);  // the default: configs without roles unchanged
  EXPECT_EQ(c.sw.host_ports[1].role, HostPortRole::kVnf);
  EXPECT_EQ(c.sw.host_ports[2].role, HostPortRole::kWorkload);
  EXPECT_EQ(error(R"({"x-sw": {"host-ports": [{"name": "p", "role": "router"}]}})"),
            "c.json: x-sw.host-ports[0].role: 'router' is not a port role (workload, vnf)");
  EXPECT_EQ(error(R"({"x-sw": {"host-ports": [{"name": "p", "role": "vnf", "local-vips": ["10.0.0.1"]}]}})"),
            "c.json: x-sw.host-ports[0].local-vips: a vnf port carries no VIPs");
}

// x-sw.sfc: the chains as `pspctl sfc` verbs, replayed on a registry while parsing, so every error
// names its key.
TEST(Config, ServiceChains) {
  const std::string ports =
      R"("host-ports": [{"name": "vm1"}, {"name": "fw1-in", "role": "vnf"}, {"name": "fw1-out", "role": "vnf"}])";
  const auto with = [&](const std::string& sfc) {
    return R"({"x-sw": {)" + ports + R"(, "sfc": )" + sfc + "}}";
  };
  GatewayConfig c = ok(with(R"({
      "pairs": [{"name": "fw1", "in": "fw1-in", "out": "fw1-out"}],
      "chains": [{"name": "pc1", "groups": [{"name": "pg1", "fail-mode": "open", "pairs": ["fw1"]}]}],
      "classifiers": [{"name": "c1", "chain": "pc1", "port": "vm1", "direction": "entry-lport",
                       "bi-directional": true, "match": "tcp.dst == 80"}],
      "health": {"interval-ms": 200, "misses": 2, "timeout-ms": 100}})"));
  using V = std::vector<std::string>;
  EXPECT_EQ(c.sw.sfc.verbs,
            (std::vector<V>{
                V{"pair-add", "fw1-in", "fw1-out", "fw1"},
                V{"chain-add", "pc1"},
                V{"group-add", "pc1", "pg1", "--fail-mode", "open"},
                V{"group-pair-add", "pg1", "fw1"},
                V{"classifier-add", "pc1", "vm1", "entry-lport", "bi-directional", "c1", "tcp.dst == 80"},
            }));
  EXPECT_EQ(c.sw.sfc.interval_ms, 200u);
  EXPECT_EQ(c.sw.sfc.misses, 2u);
  EXPECT_EQ(c.sw.sfc.timeout_ms, 100u);
  EXPECT_EQ(error(with(R"({"pairs": [{"name": "p", "in": "vm1", "out": "fw1-out"}]})")).substr(0, 25),
            "c.json: x-sw.sfc.pairs[0]");
  EXPECT_NE(error(with(R"({"classifiers": [{"name": "c", "chain": "nope", "port": "vm1",
                            "direction": "entry-lport", "bi-directional": false}]})"))
                .find("x-sw.sfc.classifiers[0]: no port chain 'nope'"),
            std::string::npos);
  EXPECT_NE(
      error(with(R"({"chains": [{"name": "pc"}], "classifiers": [{"name": "c", "chain": "pc", "port": "vm1",
                            "direction": "entry-lport", "bi-directional": false, "match": "tcp.dst == x"}]})"))
          .find("column 12"),
      std::string::npos);
  EXPECT_NE(
      error(with(R"({"chains": [{"name": "pc"}], "classifiers": [{"name": "c", "chain": "pc", "port": "vm1",
                            "direction": "sideways", "bi-directional": false}]})"))
          .find("'sideways' is not entry-lport or exit-lport"),
      std::string::npos);
  EXPECT_EQ(error(with(R"({"health": {"misses": 0}})")),
            "c.json: x-sw.sfc.health.misses: 0 is outside 1..100");
}

TEST(Config, SoftwareExtension) {
  GatewayConfig c = ok(R"({
    "config": { "local-pip": "198.51.100.1" },
    "peers": [ { "remote-grpc-address": "198.51.100.2",
                 "sessions": [ { "local-vip": "10.0.0.1", "remote-vips": ["10.0.1.1"] },
                               { "local-vip": "10.0.0.2", "remote-vips": ["10.0.1.1"] } ] } ],
    "x-sw": {
      "host-ports": [ { "name": "vm1", "mtu": 9000, "local-vips": ["10.0.0.1"], "mac": "02:00:00:00:00:01" },
                      { "name": "vm2", "local-vips": ["10.0.0.2"] } ],
      "local-mac": "02:aa:bb:cc:dd:ee",
      "virt-cookie": "0x0102030405060708",
      "rpc-deadline-ms": 500,
      "tunnels-per-request": 1000,
      "uplink-mtu": 9000
    } })");
  ASSERT_EQ(c.sw.host_ports.size(), 2u);
  EXPECT_EQ(c.sw.uplink_mtu, 9000u);
  EXPECT_FALSE(ok("{}").sw.uplink_mtu.has_value());
  EXPECT_EQ(c.sw.host_ports[0].mtu, 9000u);
  EXPECT_EQ(c.sw.host_ports[1].mtu, 0u) << "unset: from the uplink, at start";
  EXPECT_EQ(c.sw.host_ports[1].local_vips, std::vector<net::IpAddr>{ip("10.0.0.2")});
  EXPECT_EQ(c.sw.host_ports[0].mac->to_string(), "02:00:00:00:00:01");
  EXPECT_EQ(c.sw.local_mac->to_string(), "02:AA:BB:CC:DD:EE");
  EXPECT_EQ(c.sw.virt_cookie, 0x0102030405060708ULL);
  EXPECT_EQ(c.sw.rpc_deadline, std::chrono::milliseconds(500));
  EXPECT_EQ(c.sw.tunnels_per_request, 1000u);
  EXPECT_EQ(ok("{}").sw.tunnels_per_request, 4096u);
  EXPECT_EQ(ok(R"({"x-sw": {"virt-cookie": 42}})").sw.virt_cookie, 42u);
}

TEST(Config, GrpcTlsAndPeerPips) {
  GatewayConfig c = ok(R"({
    "peers": [ { "remote-grpc-address": "198.51.100.2",
                 "sessions": [ { "local-vip": "10.0.0.1", "remote-vips": ["10.0.1.1"] } ] },
               { "remote-grpc-address": "peer.example:3001",
                 "sessions": [ { "local-vip": "10.0.0.1", "remote-vips": ["10.0.2.1"] } ] } ],
    "x-sw": { "grpc-tls": { "cert": "a.crt", "key": "a.key", "ca": "ca.crt" },
              "peer-pips": { "198.51.100.2:3000": "203.0.113.2" } } })");
  EXPECT_EQ(c.sw.grpc_tls.cert, "a.crt");
  EXPECT_EQ(c.sw.grpc_tls.key, "a.key");
  EXPECT_EQ(c.sw.grpc_tls.ca, "ca.crt");
  EXPECT_EQ(c.peers[0].pip, ip("203.0.113.2"));  // ":3000" is the default port: the same address
  EXPECT_FALSE(c.peers[1].pip.has_value());
  EXPECT_EQ(error(R"({"x-sw": {"grpc-tls": {"cert": "a", "key": "b", "ca": "c", "crl": "d"}}})"),
            "c.json: x-sw.grpc-tls.crl: unknown key (expected one of: cert, key, ca)");
  EXPECT_EQ(error(R"({"x-sw": {"grpc-tls": {"cert": "a", "key": "b"}}})"),
            "c.json: x-sw.grpc-tls.ca: missing (cert, key and ca go together)");
  const std::string one_peer =
      R"("peers": [{"remote-grpc-address": "h", "sessions": [{"local-vip": "10.0.0.1", "remote-vips": ["10.0.1.1"]}]}])";
  EXPECT_EQ(error("{" + one_peer + R"(, "x-sw": {"peer-pips": {"h:3001": "10.0.0.1"}}})"),
            "c.json: x-sw.peer-pips.h:3001: names no peers[].remote-grpc-address");
  EXPECT_EQ(error("{" + one_peer + R"(, "x-sw": {"peer-pips": {"h": "not-an-ip"}}})"),
            "c.json: x-sw.peer-pips.h: 'not-an-ip' is not an IP address");
}

TEST(Config, UnknownKeysNameThePathAndTheFile) {
  EXPECT_EQ(error(R"({"peer": []})"), "c.json: peer: unknown key (expected one of: config, peers, x-sw)");
  EXPECT_EQ(error(R"({"config": {"local-grpc-adress": "1.2.3.4"}})"),
            "c.json: config.local-grpc-adress: unknown key (expected one of: local-grpc-address, local-pip)");
  EXPECT_EQ(error(R"({"peers": [{"remote-grpc-address": "h", "sessions": [{"remote-vip": ["10.0.0.2"]}]}]})"),
            "c.json: peers[0].sessions[0].remote-vip: unknown key (expected one of: local-vip, remote-vips)");
  EXPECT_EQ(
      error(R"({"x-sw": {"host-ports": [{"name": "p", "speed": 10}]}})"),
      "c.json: x-sw.host-ports[0].speed: unknown key (expected one of: name, role, mtu, local-vips, mac)");
}

TEST(Config, TypeErrorsNameTheExpectedType) {
  EXPECT_EQ(error(R"({"peers": [{"remote-grpc-address": 3000, "sessions": []}]})"),
            "c.json: peers[0].remote-grpc-address: expected a string, got integer");
  EXPECT_EQ(error(R"({"peers": {}})"), "c.json: peers: expected an array, got object");
  EXPECT_EQ(error(R"({"peers": [{"remote-grpc-address": "h", "sessions": [{"remote-vips": "10.0.0.2"}]}]})"),
            "c.json: peers[0].sessions[0].remote-vips: expected an array, got string");
  EXPECT_EQ(error(R"({"x-sw": {"rpc-deadline-ms": "2s"}})"),
            "c.json: x-sw.rpc-deadline-ms: expected a non-negative integer, got string");
  EXPECT_EQ(error(R"({"x-sw": {"rpc-deadline-ms": 5}})"),
            "c.json: x-sw.rpc-deadline-ms: 5 is outside 50..60000");
  EXPECT_EQ(error(R"({"x-sw": {"tunnels-per-request": 5000}})"),
            "c.json: x-sw.tunnels-per-request: 5000 is outside 1..4096");
  EXPECT_EQ(error("[]"), "c.json: (top level): expected an object, got array");
}

TEST(Config, MetricsAddress) {
  EXPECT_EQ(error(R"({"x-sw": {"metrics-address": "127.0.0.1"}})"),
            "c.json: x-sw.metrics-address: '127.0.0.1' is not ip:port (IPv6: [ip]:port)");
  EXPECT_EQ(error(R"({"x-sw": {"metrics-address": 9469}})"),
            "c.json: x-sw.metrics-address: expected a string, got integer");
  auto c = parse_config(R"({"x-sw": {"metrics-address": "[::1]:9469"}})", "c.json", {});
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_TRUE(c->sw.metrics_address);
  EXPECT_EQ(c->sw.metrics_address->to_string(), "[::1]:9469");
  EXPECT_EQ(parse_listen_address("0.0.0.0:0")->port, 0);
  EXPECT_FALSE(parse_listen_address("::1"));
  EXPECT_FALSE(parse_listen_address("[::1]"));
  EXPECT_FALSE(parse_listen_address("host.example:80"));
}

TEST(Config, DuplicatePairsNameBothPlaces) {
  EXPECT_EQ(
      error(R"({"peers": [
      {"remote-grpc-address": "a", "sessions": [{"local-vip": "10.0.0.1", "remote-vips": ["10.0.1.1"]}]},
      {"remote-grpc-address": "b", "sessions": [{"local-vip": "10.0.0.1", "remote-vips": ["10.0.2.1", "10.0.1.1"]}]}]})"),
      "c.json: peers[1].sessions[0].remote-vips[1]: '10.0.1.1' repeats the pair (local 10.0.0.1, remote "
      "10.0.1.1) of peers[0].sessions[0].remote-vips[0] (10.0.1.1)");
  // Through a prefix.
  EXPECT_EQ(
      error(R"({"peers": [{"remote-grpc-address": "a", "sessions": [
      {"local-vip": "10.0.0.1", "remote-vips": ["10.0.1.0/24", "10.0.1.7"]}]}]})"),
      "c.json: peers[0].sessions[0].remote-vips[1]: '10.0.1.7' repeats the pair (local 10.0.0.1, remote "
      "10.0.1.7) of peers[0].sessions[0].remote-vips[0] (10.0.1.0/24)");
  // The same remote VIP behind two different local VIPs is two pairs: allowed.
  ok(R"({"peers": [{"remote-grpc-address": "a", "sessions": [
      {"local-vip": "10.0.0.1", "remote-vips": ["10.0.1.1"]}, {"local-vip": "10.0.0.2", "remote-vips": ["10.0.1.1"]}]}]})");
}

TEST(Config, PrefixExpansionIsBounded) {
  // Five /16s are 327680 pairs: past the bound, refused with a message instead of minutes of work.
  const std::string e = error(R"({ "config": {}, "peers": [ { "remote-grpc-address": "10.0.0.2", "sessions": [
    { "local-vip": "192.168.1.1",
      "remote-vips": ["10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16", "10.4.0.0/16", "10.5.0.0/16"] } ] } ] })");
  EXPECT_NE(e.find("remote-vips[4]"), std::string::npos) << e;
  EXPECT_NE(e.find("VIP pairs"), std::string::npos) << e;
}

TEST(Config, RemoteVipRules) {
  auto session = [](std::string_view remotes) {
    return std::string(
               R"({"peers": [{"remote-grpc-address": "a", "sessions": [{"local-vip": "10.0.0.1", "remote-vips": [)") +
           std::string(remotes) + "]}]}]}";
  };
  const std::string where = "c.json: peers[0].sessions[0].remote-vips[0]: ";
  EXPECT_EQ(error(session(R"("10.0.0.0/15")")), where + "'10.0.0.0/15': prefix length must be 16..32");
  EXPECT_EQ(error(session(R"("10.0.0.0/33")")), where + "'10.0.0.0/33': prefix length must be 16..32");
  EXPECT_EQ(error(session(R"("10.0.1.5/24")")), where + "'10.0.1.5/24' has host bits set");
  EXPECT_EQ(error(session(R"("fd00::/120")")),
            where + "'fd00::/120': IPv6 prefixes are not supported, list the addresses");
  EXPECT_EQ(error(session(R"("fd00::2")")),
            where + "'fd00::2' and local-vip 10.0.0.1 are of different IP families");
  EXPECT_EQ(error(session(R"("10.0.0.0/16")")), where + "'10.0.0.0/16' includes the session's own local-vip");
  EXPECT_EQ(error(session(R"("host")")), where + "'host' is not an IP address or IPv4 prefix");
  EXPECT_EQ(error(session("")),
            "c.json: peers[0].sessions[0].remote-vips: a session needs at least one remote VIP");
  EXPECT_EQ(ok(session(R"("10.1.0.0/16")")).peers[0].sessions[0].remote_vips.size(), 65536u);
}

TEST(Config, MissingValues) {
  EXPECT_EQ(
      error(R"({"peers": [{"remote-grpc-address": "a", "sessions": [{"remote-vips": ["10.0.1.1"]}]}]})", {}),
      "c.json: peers[0].sessions[0].local-vip: missing, and the unsecured port has no IPv4 address to "
      "default to");
  EXPECT_EQ(error(R"({"peers": [{"sessions": []}]})"), "c.json: peers[0].remote-grpc-address: missing");
  EXPECT_EQ(error(R"({"peers": [{"remote-grpc-address": "a", "sessions": []}]})"),
            "c.json: peers[0].sessions: a peer needs at least one session");
  EXPECT_EQ(error(R"({"config": {"local-grpc-address": "gw.example:3000"}})"),
            "c.json: config.local-grpc-address: 'gw.example:3000' is not ip[:port] (IPv6: [ip]:port)");
}

TEST(Config, HostPortRules) {
  const std::string peers =
      R"("peers": [{"remote-grpc-address": "a", "sessions": [{"local-vip": "10.0.0.1", "remote-vips": ["10.0.1.1"]}]}])";
  EXPECT_EQ(error("{" + peers + R"(, "x-sw": {"host-ports": [{"name": "p0", "local-vips": ["10.0.0.9"]}]}})"),
            "c.json: peers[0].sessions[0].local-vip: 10.0.0.1 is on no x-sw.host-ports entry");
  EXPECT_EQ(
      error("{" + peers + R"(, "x-sw": {"host-ports": [{"name": "p0", "local-vips": ["10.0.0.1"]},
                                                            {"name": "p1", "local-vips": ["10.0.0.1"]}]}})"),
      "c.json: x-sw.host-ports[1].local-vips[0]: 10.0.0.1 is already on x-sw.host-ports[0].local-vips[0]");
  EXPECT_EQ(error(R"({"x-sw": {"host-ports": [{"name": "a-very-long-interface"}]}})"),
            "c.json: x-sw.host-ports[0].name: 'a-very-long-interface' is not an interface name (1..15 "
            "characters, no "
            "'/' or space)");
  EXPECT_EQ(error(R"({"x-sw": {"host-ports": [{"name": "p", "mtu": 100}]}})"),
            "c.json: x-sw.host-ports[0].mtu: 100 is outside 576..65535");
  EXPECT_EQ(error(R"({"x-sw": {"uplink-mtu": 70000}})"),
            "c.json: x-sw.uplink-mtu: 70000 is outside 576..65535");
  EXPECT_EQ(error(R"({"x-sw": {"local-mac": "02:00"}})"),
            "c.json: x-sw.local-mac: '02:00' is not a MAC address (XX:XX:XX:XX:XX:XX)");
  EXPECT_EQ(error(R"({"x-sw": {"virt-cookie": "0xg1"}})"),
            "c.json: x-sw.virt-cookie: '0xg1' is not a 64-bit hex number");
}

TEST(Config, MalformedJsonAndDuplicateKeys) {
  EXPECT_NE(error(R"({"config": )").find("c.json: not valid JSON: "), std::string::npos);
  EXPECT_EQ(error(R"({"peers": [], "peers": []})"), "c.json: key \"peers\" appears twice in one object");
}

TEST(Config, LoadFromFile) {
  const std::string path = ::testing::TempDir() + "/pspgw_config_test.json";
  {
    std::ofstream out(path);
    out << R"({"config": {"local-grpc-address": "127.0.0.1:3999"}})";
  }
  auto c = load_config(path, {});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->local_grpc_address.port, 3999);
  EXPECT_EQ(c->source, path);
  std::remove(path.c_str());
  auto missing = load_config(path, {});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, path + ": cannot open");
  // Unreadable: a directory opens but does not read; the error names the path, not the JSON.
  auto dir = load_config(::testing::TempDir(), {});
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.error().message, ::testing::TempDir() + ": cannot read: is a directory");
  // Empty and invalid files are JSON errors that name the file.
  for (const char* text : {"", "{\"config\": ", "[1, 2]"}) {
    std::ofstream(path) << text;
    auto bad = load_config(path, {});
    ASSERT_FALSE(bad.ok()) << text;
    EXPECT_EQ(bad.error().message.rfind(path, 0), 0u) << bad.error().message;
  }
  std::remove(path.c_str());
}

TEST(Config, FleetEtcd) {
  auto c = parse_config(R"({"x-sw": {"etcd": {"endpoints": ["http://127.0.0.1:2379"], "prefix": "/f/",
                            "host": "h1", "cert": "c.pem", "key": "k.pem", "ca": "ca.pem"}}})",
                        "c.json", {});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->sw.etcd.endpoints, std::vector<std::string>{"http://127.0.0.1:2379"});
  EXPECT_EQ(c->sw.etcd.prefix, "/f/");
  EXPECT_EQ(c->sw.etcd.host, "h1");
  EXPECT_EQ(c->sw.etcd.ca, "ca.pem");
  EXPECT_EQ(error(R"({"x-sw": {"etcd": {"endpoints": ["127.0.0.1:2379"]}}})"),
            "c.json: x-sw.etcd.endpoints[0]: '127.0.0.1:2379' is not http://HOST:PORT or https://HOST:PORT");
  EXPECT_EQ(error(R"({"x-sw": {"etcd": {"cert": "c.pem"}}})"), "c.json: x-sw.etcd: cert and key go together");
  EXPECT_EQ(error(R"({"x-sw": {"etcd": {"endpoint": []}}})").rfind("c.json: x-sw.etcd.endpoint", 0), 0u);
}

}  // namespace
}  // namespace pspgw::gateway
