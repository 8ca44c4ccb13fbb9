#include "gateway/config.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "base/byteorder.hpp"
#include "sfc/verbs.hpp"

namespace pspgw::gateway {

namespace {

using json = nlohmann::json;

constexpr int kMinPrefix = 16;  // DOCA expands IPv4 prefixes /16../32 (spec §3)
// Bound on the VIP pairs of one config after prefix expansion: 16 /16 prefixes, a few hundred bytes of JSON,
// would otherwise ask for a million pairs (and minutes and gigabytes to build them).
constexpr std::size_t kMaxVipPairs = std::size_t{1} << 18;
constexpr uint32_t kMinMtu = 576;
constexpr uint32_t kMaxMtu = 65535;
constexpr std::size_t kMaxIfName = 15;  // IFNAMSIZ - 1
constexpr uint64_t kMinDeadlineMs = 50;
constexpr uint64_t kMaxDeadlineMs = 60000;
constexpr uint64_t kMaxTunnelsPerRequest = 4096;  // our own server's limit per request

// Thrown inside the parser only; parse_config turns it into a ConfigError naming the file.
struct Failure {
  std::string path;
  std::string what;
};

[[noreturn]] void bad(const std::string& path, std::string what) {
  throw Failure{path, std::move(what)};
}

std::string key_path(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}
std::string index_path(const std::string& parent, std::size_t i) {
  return parent + "[" + std::to_string(i) + "]";
}

std::string type_of(const json& j) {
  if (j.is_number_unsigned() || j.is_number_integer()) return "integer";
  return j.type_name();
}

const json& expect_object(const json& j, const std::string& path) {
  if (!j.is_object()) bad(path, "expected an object, got " + type_of(j));
  return j;
}
const json& expect_array(const json& j, const std::string& path) {
  if (!j.is_array()) bad(path, "expected an array, got " + type_of(j));
  return j;
}
std::string expect_string(const json& j, const std::string& path) {
  if (!j.is_string()) bad(path, "expected a string, got " + type_of(j));
  return j.get<std::string>();
}
uint64_t expect_uint(const json& j, const std::string& path, uint64_t lo, uint64_t hi) {
  if (!j.is_number_unsigned()) bad(path, "expected a non-negative integer, got " + type_of(j));
  const auto v = j.get<uint64_t>();
  if (v < lo || v > hi)
    bad(path, std::to_string(v) + " is outside " + std::to_string(lo) + ".." + std::to_string(hi));
  return v;
}

void check_keys(const json& obj, const std::string& path, std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : obj.items()) {
    bool known = false;
    for (std::string_view a : allowed) known = known || key == a;
    if (known) continue;
    std::string list;
    for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    bad(key_path(path, key), "unknown key (expected one of: " + list + ")");
  }
}

net::IpAddr expect_ip(const json& j, const std::string& path) {
  const std::string text = expect_string(j, path);
  auto ip = net::IpAddr::parse(text);
  if (!ip) bad(path, "'" + text + "' is not an IP address");
  return *ip;
}

net::MacAddr expect_mac(const json& j, const std::string& path) {
  const std::string text = expect_string(j, path);
  auto mac = net::MacAddr::parse(text);
  if (!mac) bad(path, "'" + text + "' is not a MAC address (XX:XX:XX:XX:XX:XX)");
  return *mac;
}

std::optional<uint32_t> parse_decimal(std::string_view text) {
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

// "ip" or "a.b.c.d/len" with len 16..32: every address of the prefix (spec §3).
std::vector<net::IpAddr> expand_remote_vip(const std::string& text, const std::string& path) {
  const auto slash = text.find('/');
  auto ip = net::IpAddr::parse(std::string_view(text).substr(0, slash));
  if (!ip) bad(path, "'" + text + "' is not an IP address or IPv4 prefix");
  if (slash == std::string::npos) return {*ip};
  if (ip->is_v6()) bad(path, "'" + text + "': IPv6 prefixes are not supported, list the addresses");
  auto len = parse_decimal(std::string_view(text).substr(slash + 1));
  if (!len || *len < kMinPrefix || *len > 32) {
    bad(path, "'" + text + "': prefix length must be " + std::to_string(kMinPrefix) + "..32");
  }
  const uint32_t base = load_be32(ip->bytes.data());
  const uint32_t host_mask = *len == 32 ? 0 : (0xffffffffu >> *len);
  if ((base & host_mask) != 0) bad(path, "'" + text + "' has host bits set");
  std::vector<net::IpAddr> out;
  out.reserve(static_cast<std::size_t>(host_mask) + 1);
  for (uint64_t i = 0; i <= host_mask; ++i) {
    std::array<uint8_t, 4> b{};
    store_be32(b.data(), base + static_cast<uint32_t>(i));
    out.push_back(net::IpAddr::v4(b));
  }
  return out;
}

struct PairKeyHash {
  std::size_t operator()(const std::pair<net::IpAddr, net::IpAddr>& p) const noexcept {
    std::hash<net::IpAddr> h;
    return h(p.first) * 31 ^ h(p.second);
  }
};

// Walks the document; one instance per parse.
class Parser {
 public:
  explicit Parser(const ConfigInputs& inputs) : inputs_(inputs) {}

  GatewayConfig parse(const json& root) {
    expect_object(root, "(top level)");
    check_keys(root, "", {"config", "peers", "x-sw"});
    GatewayConfig cfg;
    if (root.contains("config")) parse_local(root.at("config"), cfg);
    if (root.contains("peers")) {
      const json& peers = expect_array(root.at("peers"), "peers");
      for (std::size_t i = 0; i < peers.size(); ++i)
        cfg.peers.push_back(parse_peer(peers[i], index_path("peers", i)));
    }
    if (root.contains("x-sw")) {
      cfg.sw = parse_sw(root.at("x-sw"));
      if (root.at("x-sw").contains("peer-pips")) parse_peer_pips(root.at("x-sw").at("peer-pips"), cfg);
    }
    check_host_ports(cfg);
    return cfg;
  }

 private:
  static void parse_local(const json& j, GatewayConfig& cfg) {
    expect_object(j, "config");
    check_keys(j, "config", {"local-grpc-address", "local-pip"});
    if (j.contains("local-grpc-address")) {
      const std::string path = "config.local-grpc-address";
      const std::string text = expect_string(j.at("local-grpc-address"), path);
      auto addr = parse_grpc_address(text, true);
      if (!addr) bad(path, "'" + text + "' is not ip[:port] (IPv6: [ip]:port)");
      cfg.local_grpc_address = *addr;
    }
    if (j.contains("local-pip")) cfg.local_pip = expect_ip(j.at("local-pip"), "config.local-pip");
  }

  PeerConfig parse_peer(const json& j, const std::string& path) {
    expect_object(j, path);
    check_keys(j, path, {"remote-grpc-address", "sessions"});
    PeerConfig peer;
    const std::string addr_path = key_path(path, "remote-grpc-address");
    if (!j.contains("remote-grpc-address")) bad(addr_path, "missing");
    const std::string text = expect_string(j.at("remote-grpc-address"), addr_path);
    auto addr = parse_grpc_address(text, false);
    if (!addr) bad(addr_path, "'" + text + "' is not host[:port] (IPv6: [ip]:port)");
    peer.remote_grpc_address = *addr;
    const std::string sessions_path = key_path(path, "sessions");
    if (!j.contains("sessions")) bad(sessions_path, "missing");
    const json& sessions = expect_array(j.at("sessions"), sessions_path);
    if (sessions.empty()) bad(sessions_path, "a peer needs at least one session");
    for (std::size_t i = 0; i < sessions.size(); ++i) {
      peer.sessions.push_back(parse_session(sessions[i], index_path(sessions_path, i)));
    }
    return peer;
  }

  SessionConfig parse_session(const json& j, const std::string& path) {
    expect_object(j, path);
    check_keys(j, path, {"local-vip", "remote-vips"});
    SessionConfig s;
    const std::string local_path = key_path(path, "local-vip");
    if (j.contains("local-vip")) {
      s.local_vip = expect_ip(j.at("local-vip"), local_path);
    } else if (inputs_.default_local_vip) {
      s.local_vip = *inputs_.default_local_vip;
    } else {
      bad(local_path, "missing, and the unsecured port has no IPv4 address to default to");
    }
    const std::string remotes_path = key_path(path, "remote-vips");
    if (!j.contains("remote-vips")) bad(remotes_path, "missing");
    const json& remotes = expect_array(j.at("remote-vips"), remotes_path);
    if (remotes.empty()) bad(remotes_path, "a session needs at least one remote VIP");
    for (std::size_t i = 0; i < remotes.size(); ++i) add_remotes(s, remotes[i], index_path(remotes_path, i));
    return s;
  }

  void add_remotes(SessionConfig& s, const json& j, const std::string& path) {
    const std::string text = expect_string(j, path);
    const std::string origin = path + " (" + text + ")";
    const std::vector<net::IpAddr> expanded = expand_remote_vip(text, path);
    if (pairs_.size() + expanded.size() > kMaxVipPairs) {
      bad(path, "'" + text + "' takes the config past " + std::to_string(kMaxVipPairs) +
                    " (local, remote) VIP pairs; list fewer or narrower prefixes");
    }
    for (const net::IpAddr& remote : expanded) {
      if (remote.family != s.local_vip.family) {
        bad(path,
            "'" + text + "' and local-vip " + s.local_vip.to_string() + " are of different IP families");
      }
      if (remote == s.local_vip) bad(path, "'" + text + "' includes the session's own local-vip");
      auto [it, fresh] = pairs_.emplace(std::pair{s.local_vip, remote}, origins_.size());
      if (!fresh) {
        bad(path, "'" + text + "' repeats the pair (local " + s.local_vip.to_string() + ", remote " +
                      remote.to_string() + ") of " + origins_[it->second]);
      }
      s.remote_vips.push_back(remote);
    }
    origins_.push_back(origin);
  }

  static SwExtensions parse_sw(const json& j) {
    expect_object(j, "x-sw");
    check_keys(j, "x-sw",
               {"host-ports", "local-mac", "virt-cookie", "rpc-deadline-ms", "grpc-tls", "peer-pips",
                "tunnels-per-request", "metrics-address", "uplink-mtu", "sfc", "etcd"});
    SwExtensions sw;
    if (j.contains("host-ports")) {
      const json& ports = expect_array(j.at("host-ports"), "x-sw.host-ports");
      for (std::size_t i = 0; i < ports.size(); ++i) {
        sw.host_ports.push_back(parse_host_port(ports[i], index_path("x-sw.host-ports", i)));
      }
    }
    if (j.contains("local-mac")) sw.local_mac = expect_mac(j.at("local-mac"), "x-sw.local-mac");
    if (j.contains("uplink-mtu")) {
      sw.uplink_mtu =
          static_cast<uint32_t>(expect_uint(j.at("uplink-mtu"), "x-sw.uplink-mtu", kMinMtu, kMaxMtu));
    }
    if (j.contains("virt-cookie")) sw.virt_cookie = parse_cookie(j.at("virt-cookie"), "x-sw.virt-cookie");
    if (j.contains("tunnels-per-request")) {
      sw.tunnels_per_request = static_cast<uint32_t>(
          expect_uint(j.at("tunnels-per-request"), "x-sw.tunnels-per-request", 1, kMaxTunnelsPerRequest));
    }
    if (j.contains("rpc-deadline-ms")) {
      sw.rpc_deadline = std::chrono::milliseconds(
          expect_uint(j.at("rpc-deadline-ms"), "x-sw.rpc-deadline-ms", kMinDeadlineMs, kMaxDeadlineMs));
    }
    if (j.contains("grpc-tls")) sw.grpc_tls = parse_grpc_tls(j.at("grpc-tls"));
    if (j.contains("metrics-address")) {
      const std::string path = "x-sw.metrics-address";
      const std::string text = expect_string(j.at("metrics-address"), path);
      sw.metrics_address = parse_listen_address(text);
      if (!sw.metrics_address) bad(path, "'" + text + "' is not ip:port (IPv6: [ip]:port)");
    }
    if (j.contains("sfc")) sw.sfc = parse_sfc(j.at("sfc"), sw.host_ports);
    if (j.contains("etcd")) sw.etcd = parse_etcd(j.at("etcd"));
    return sw;
  }

  // x-sw.sfc -> verbs, replayed on a registry that knows the host ports' roles: every error names the key.
  static SfcConfig parse_sfc(const json& j, const std::vector<HostPortConfig>& ports) {
    const std::string path = "x-sw.sfc";
    expect_object(j, path);
    check_keys(j, path, {"pairs", "chains", "classifiers", "health"});
    SfcConfig c;
    const auto str = [](const json& o, const std::string& p, std::string_view key) {
      if (!o.contains(key)) bad(key_path(p, key), "missing");
      return expect_string(o.at(key), key_path(p, key));
    };
    const auto list = [&](std::string_view key, const auto& each) {
      if (!j.contains(key)) return;
      const json& a = expect_array(j.at(key), key_path(path, key));
      for (std::size_t i = 0; i < a.size(); ++i) {
        const std::string p = index_path(key_path(path, key), i);
        expect_object(a[i], p);
        each(a[i], p);
      }
    };
    list("pairs", [&](const json& o, const std::string& p) {
      check_keys(o, p, {"name", "in", "out"});
      c.verbs.push_back({"pair-add", str(o, p, "in"), str(o, p, "out"), str(o, p, "name")});
      c.origins.push_back(p);
    });
    list("chains", [&](const json& o, const std::string& p) { parse_sfc_chain(o, p, c, str); });
    list("classifiers", [&](const json& o, const std::string& p) {
      check_keys(o, p, {"name", "chain", "port", "direction", "bi-directional", "match"});
      const std::string bp = key_path(p, "bi-directional");
      if (!o.contains("bi-directional")) bad(bp, "missing (true or false)");
      if (!o.at("bi-directional").is_boolean())
        bad(bp, "expected a boolean, got " + type_of(o.at("bi-directional")));
      std::vector<std::string> v = {"classifier-add",
                                    str(o, p, "chain"),
                                    str(o, p, "port"),
                                    str(o, p, "direction"),
                                    o.at("bi-directional").get<bool>() ? "bi-directional" : "uni-directional",
                                    str(o, p, "name")};
      if (o.contains("match")) v.push_back(expect_string(o.at("match"), key_path(p, "match")));
      c.verbs.push_back(std::move(v));
      c.origins.push_back(p);
    });
    if (j.contains("health")) parse_sfc_health(j.at("health"), key_path(path, "health"), c);
    check_sfc(c, ports);
    return c;
  }

  template <class Str>
  static void parse_sfc_chain(const json& o, const std::string& p, SfcConfig& c, const Str& str) {
    check_keys(o, p, {"name", "groups"});
    const std::string chain = str(o, p, "name");
    c.verbs.push_back({"chain-add", chain});
    c.origins.push_back(p);
    if (!o.contains("groups")) return;
    const json& groups = expect_array(o.at("groups"), key_path(p, "groups"));
    for (std::size_t g = 0; g < groups.size(); ++g) {
      const std::string gp = index_path(key_path(p, "groups"), g);
      expect_object(groups[g], gp);
      check_keys(groups[g], gp, {"name", "fail-mode", "pairs"});
      const std::string group = str(groups[g], gp, "name");
      std::vector<std::string> v = {"group-add", chain, group};
      if (groups[g].contains("fail-mode")) {
        v.push_back("--fail-mode");
        v.push_back(str(groups[g], gp, "fail-mode"));
      }
      c.verbs.push_back(std::move(v));
      c.origins.push_back(gp);
      if (!groups[g].contains("pairs")) continue;
      const json& pairs = expect_array(groups[g].at("pairs"), key_path(gp, "pairs"));
      for (std::size_t i = 0; i < pairs.size(); ++i) {
        const std::string pp = index_path(key_path(gp, "pairs"), i);
        c.verbs.push_back({"group-pair-add", group, expect_string(pairs[i], pp)});
        c.origins.push_back(pp);
      }
    }
  }

  static void parse_sfc_health(const json& j, const std::string& path, SfcConfig& c) {
    expect_object(j, path);
    check_keys(j, path, {"interval-ms", "misses", "timeout-ms"});
    if (j.contains("interval-ms"))
      c.interval_ms = static_cast<uint32_t>(
          expect_uint(j.at("interval-ms"), key_path(path, "interval-ms"), 100, 3600000));
    if (j.contains("misses"))
      c.misses = static_cast<uint32_t>(expect_uint(j.at("misses"), key_path(path, "misses"), 1, 100));
    if (j.contains("timeout-ms"))
      c.timeout_ms =
          static_cast<uint32_t>(expect_uint(j.at("timeout-ms"), key_path(path, "timeout-ms"), 10, 3600000));
  }

  // The verbs on a registry that knows the host ports: what the gateway will replay at start.
  static void check_sfc(const SfcConfig& c, const std::vector<HostPortConfig>& ports) {
    sfc::ServiceChains reg([&ports](std::string_view name) -> std::optional<sfc::PortRole> {
      for (const auto& p : ports)
        if (p.name == name)
          return p.role == HostPortRole::kVnf ? sfc::PortRole::kVnf : sfc::PortRole::kWorkload;
      return std::nullopt;
    });
    for (std::size_t i = 0; i < c.verbs.size(); ++i) {
      if (auto s = sfc::run_verb(reg, c.verbs[i]); !s) bad(c.origins[i], s.error().message);
    }
  }

  static EtcdConfig parse_etcd(const json& j) {
    const std::string path = "x-sw.etcd";
    expect_object(j, path);
    check_keys(j, path, {"endpoints", "prefix", "host", "cert", "key", "ca"});
    EtcdConfig c;
    if (j.contains("endpoints")) {
      const json& a = expect_array(j.at("endpoints"), key_path(path, "endpoints"));
      for (std::size_t i = 0; i < a.size(); ++i) {
        const std::string p = index_path(key_path(path, "endpoints"), i);
        std::string url = expect_string(a[i], p);
        if (!url.starts_with("http://") && !url.starts_with("https://"))
          bad(p, "'" + url + "' is not http://HOST:PORT or https://HOST:PORT");
        c.endpoints.push_back(std::move(url));
      }
    }
    for (auto [key, out] : {std::pair{"prefix", &c.prefix}, std::pair{"host", &c.host},
                            std::pair{"cert", &c.cert}, std::pair{"key", &c.key}, std::pair{"ca", &c.ca}}) {
      if (j.contains(key)) *out = expect_string(j.at(key), key_path(path, key));
    }
    if (c.cert.empty() != c.key.empty()) bad(path, "cert and key go together");
    return c;
  }

  static GrpcTlsConfig parse_grpc_tls(const json& j) {
    const std::string path = "x-sw.grpc-tls";
    expect_object(j, path);
    check_keys(j, path, {"cert", "key", "ca"});
    GrpcTlsConfig tls;
    for (auto [key, out] :
         {std::pair{"cert", &tls.cert}, std::pair{"key", &tls.key}, std::pair{"ca", &tls.ca}}) {
      if (!j.contains(key)) bad(key_path(path, key), "missing (cert, key and ca go together)");
      *out = expect_string(j.at(key), key_path(path, key));
      if (out->empty()) bad(key_path(path, key), "empty file name");
    }
    return tls;
  }

  // {"remote-grpc-address": "pip"}: each key must name a configured peer.
  static void parse_peer_pips(const json& j, GatewayConfig& cfg) {
    expect_object(j, "x-sw.peer-pips");
    for (const auto& [key, value] : j.items()) {
      const std::string path = key_path("x-sw.peer-pips", key);
      const auto addr = parse_grpc_address(key, false);
      auto peer = std::find_if(cfg.peers.begin(), cfg.peers.end(),
                               [&](const PeerConfig& p) { return addr && p.remote_grpc_address == *addr; });
      if (peer == cfg.peers.end()) bad(path, "names no peers[].remote-grpc-address");
      peer->pip = expect_ip(value, path);
    }
  }

  static HostPortConfig parse_host_port(const json& j, const std::string& path) {
    expect_object(j, path);
    check_keys(j, path, {"name", "role", "mtu", "local-vips", "mac"});
    HostPortConfig port;
    if (!j.contains("name")) bad(key_path(path, "name"), "missing");
    port.name = expect_string(j.at("name"), key_path(path, "name"));
    if (port.name.empty() || port.name.size() > kMaxIfName ||
        port.name.find_first_of("/ \t") != std::string::npos) {
      bad(key_path(path, "name"),
          "'" + port.name + "' is not an interface name (1..15 characters, no '/' or space)");
    }
    if (j.contains("mtu"))
      port.mtu = static_cast<uint32_t>(expect_uint(j.at("mtu"), key_path(path, "mtu"), kMinMtu, kMaxMtu));
    if (j.contains("mac")) port.mac = expect_mac(j.at("mac"), key_path(path, "mac"));
    if (j.contains("local-vips")) {
      const std::string vips_path = key_path(path, "local-vips");
      const json& vips = expect_array(j.at("local-vips"), vips_path);
      for (std::size_t i = 0; i < vips.size(); ++i)
        port.local_vips.push_back(expect_ip(vips[i], index_path(vips_path, i)));
    }
    if (j.contains("role")) {
      const std::string role = expect_string(j.at("role"), key_path(path, "role"));
      if (role != "workload" && role != "vnf")
        bad(key_path(path, "role"), "'" + role + "' is not a port role (workload, vnf)");
      port.role = role == "vnf" ? HostPortRole::kVnf : HostPortRole::kWorkload;
      if (port.role == HostPortRole::kVnf && !port.local_vips.empty())
        bad(key_path(path, "local-vips"), "a vnf port carries no VIPs");
    }
    return port;
  }

  static uint64_t parse_cookie(const json& j, const std::string& path) {
    if (j.is_number_unsigned()) return j.get<uint64_t>();
    if (!j.is_string())
      bad(path, "expected a hex string (\"0x...\") or a non-negative integer, got " + type_of(j));
    std::string_view text = j.get_ref<const std::string&>();
    if (text.starts_with("0x") || text.starts_with("0X")) text.remove_prefix(2);
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, 16);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
      bad(path, "'" + j.get<std::string>() + "' is not a 64-bit hex number");
    }
    return v;
  }

  // Each VIP on at most one host port; with explicit ports, every session's local VIP on one of them.
  static void check_host_ports(const GatewayConfig& cfg) {
    if (cfg.sw.host_ports.empty()) return;
    std::unordered_map<net::IpAddr, std::string> owner;
    for (std::size_t p = 0; p < cfg.sw.host_ports.size(); ++p) {
      const HostPortConfig& port = cfg.sw.host_ports[p];
      for (std::size_t i = 0; i < port.local_vips.size(); ++i) {
        const std::string path = index_path(index_path("x-sw.host-ports", p) + ".local-vips", i);
        auto [it, fresh] = owner.emplace(port.local_vips[i], path);
        if (!fresh) bad(path, port.local_vips[i].to_string() + " is already on " + it->second);
      }
      for (std::size_t q = 0; q < p; ++q) {
        if (cfg.sw.host_ports[q].name == port.name) {
          bad(index_path("x-sw.host-ports", p) + ".name",
              "'" + port.name + "' is already x-sw.host-ports[" + std::to_string(q) + "]");
        }
      }
    }
    for (std::size_t p = 0; p < cfg.peers.size(); ++p) {
      for (std::size_t s = 0; s < cfg.peers[p].sessions.size(); ++s) {
        const net::IpAddr& vip = cfg.peers[p].sessions[s].local_vip;
        if (!owner.contains(vip)) {
          bad(index_path(index_path("peers", p) + ".sessions", s) + ".local-vip",
              vip.to_string() + " is on no x-sw.host-ports entry");
        }
      }
    }
  }

  const ConfigInputs& inputs_;
  std::unordered_map<std::pair<net::IpAddr, net::IpAddr>, std::size_t, PairKeyHash> pairs_;
  std::vector<std::string> origins_;  // "peers[0].sessions[1].remote-vips[2] (10.0.1.0/24)"
};

// nlohmann keeps the last of duplicate keys silently; a config with two "remote-vips" is a mistake.
// A separate SAX pass over the text records the first key repeated within one object. (Not a parse
// callback: nlohmann's callback parser rescans the enclosing container at every object's end, quadratic
// in a 100,000-session array.)
class DuplicateKeyFinder final : public nlohmann::json_sax<json> {
 public:
  bool null() override { return true; }
  bool boolean(bool /*v*/) override { return true; }
  bool number_integer(number_integer_t /*v*/) override { return true; }
  bool number_unsigned(number_unsigned_t /*v*/) override { return true; }
  bool number_float(number_float_t /*v*/, const string_t& /*s*/) override { return true; }
  bool string(string_t& /*s*/) override { return true; }
  bool binary(binary_t& /*b*/) override { return true; }
  bool start_object(std::size_t /*n*/) override {
    open_.emplace_back();
    return true;
  }
  bool key(string_t& k) override {
    if (!open_.empty() && !open_.back().insert(k).second && !duplicate_) duplicate_ = k;
    return true;
  }
  bool end_object() override {
    if (!open_.empty()) open_.pop_back();
    return true;
  }
  bool start_array(std::size_t /*n*/) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t /*pos*/, const std::string& /*token*/,
                   const nlohmann::detail::exception& /*e*/) override {
    return false;  // json::parse reports it
  }
  const std::optional<std::string>& duplicate() const { return duplicate_; }

 private:
  std::vector<std::set<std::string>> open_;
  std::optional<std::string> duplicate_;
};

}  // namespace

std::string GrpcAddress::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::optional<GrpcAddress> parse_grpc_address(std::string_view text, bool require_ip) {
  std::string_view host = text;
  std::optional<std::string_view> port_text;
  if (text.starts_with('[')) {  // [v6] or [v6]:port
    const auto close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (!rest.starts_with(':')) return std::nullopt;
      port_text = rest.substr(1);
    }
    auto ip = net::IpAddr::parse(host);
    if (!ip || !ip->is_v6()) return std::nullopt;
  } else if (std::count(text.begin(), text.end(), ':') == 1) {  // host:port
    const auto colon = text.find(':');
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  } else if (text.find(':') != std::string_view::npos) {  // a bare IPv6 address, no port
    auto ip = net::IpAddr::parse(text);
    if (!ip || !ip->is_v6()) return std::nullopt;
  }
  if (host.empty()) return std::nullopt;
  auto ip = net::IpAddr::parse(host);
  if (!ip) {
    if (require_ip) return std::nullopt;
    for (char c : host) {  // a DNS name
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') return std::nullopt;
    }
  }
  GrpcAddress out{ip ? ip->to_string() : std::string(host), kDefaultGrpcPort};
  if (port_text) {
    auto port = parse_decimal(*port_text);
    if (!port || *port == 0 || *port > 65535) return std::nullopt;
    out.port = static_cast<uint16_t>(*port);
  }
  return out;
}

std::optional<GrpcAddress> parse_listen_address(std::string_view text) {
  const auto colon = text.rfind(':');
  const bool bracketed = text.starts_with('[');
  // The port is required: "ip:port" has one colon, "[v6]:port" a colon right after the bracket.
  if (colon == std::string_view::npos || (bracketed ? text[colon - 1] != ']' : text.find(':') != colon)) {
    return std::nullopt;
  }
  if (text.substr(colon + 1) == "0") {  // any free port: parse the host alone
    auto host = parse_grpc_address(text.substr(0, colon), true);
    if (host) host->port = 0;
    return host;
  }
  return parse_grpc_address(text, true);
}

std::vector<net::IpAddr> GatewayConfig::local_vips() const {
  std::vector<net::IpAddr> out;
  std::unordered_set<net::IpAddr> seen;  // 100k sessions: no quadratic search
  for (const PeerConfig& p : peers) {
    for (const SessionConfig& s : p.sessions) {
      if (seen.insert(s.local_vip).second) out.push_back(s.local_vip);
    }
  }
  return out;
}

Result<GatewayConfig, ConfigError> parse_config(std::string_view json_text, std::string_view source,
                                                const ConfigInputs& inputs) {
  const std::string file(source);
  json root;
  DuplicateKeyFinder duplicates;
  try {
    root = json::parse(json_text);
    (void)json::sax_parse(json_text, &duplicates);
  } catch (const json::exception& e) {  // parse_error, and out_of_range 406 for a number like 1e400
    return Err{ConfigError{file + ": not valid JSON: " + e.what()}};
  }
  if (duplicates.duplicate()) {
    return Err{ConfigError{file + ": key \"" + *duplicates.duplicate() + "\" appears twice in one object"}};
  }
  try {
    GatewayConfig cfg = Parser(inputs).parse(root);
    cfg.source = file;
    return cfg;
  } catch (const Failure& f) {
    return Err{ConfigError{file + ": " + (f.path.empty() ? "" : f.path + ": ") + f.what}};
  }
}

Result<GatewayConfig, ConfigError> load_config(const std::string& path, const ConfigInputs& inputs) {
  std::ifstream in(path);
  if (!in) return Err{ConfigError{path + ": cannot open"}};
  // A directory opens but does not read: say so, rather than parse the empty text and blame the JSON.
  if (std::filesystem::is_directory(path)) return Err{ConfigError{path + ": cannot read: is a directory"}};
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Err{ConfigError{path + ": cannot read"}};
  return parse_config(text.str(), path, inputs);
}

}  // namespace pspgw::gateway
