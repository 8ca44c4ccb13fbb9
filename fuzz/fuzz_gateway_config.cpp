// gateway::parse_config on arbitrary text: never throws or crashes; every error names the file; whatever
// parses satisfies the invariants the topology builder relies on (spec: doca-psp-gateway.md §3), and
// re-serialises: written back as a config file (below: every key but x-sw.sfc, whose verbs are checked by
// fuzz_sfc_match and sfc_test), it parses to the same config.
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

#include "fuzz/fuzz_target.hpp"
#include "gateway/config.hpp"

namespace {

using namespace pspgw;

void check_parsed(const gateway::GatewayConfig& c) {
  PSPGW_FUZZ_CHECK(c.source == "fuzz.json");
  PSPGW_FUZZ_CHECK(c.local_grpc_address.port != 0);
  for (const auto& peer : c.peers) {
    PSPGW_FUZZ_CHECK(!peer.remote_grpc_address.host.empty() && peer.remote_grpc_address.port != 0);
    PSPGW_FUZZ_CHECK(!peer.sessions.empty());
    for (const auto& s : peer.sessions) {
      PSPGW_FUZZ_CHECK(!s.remote_vips.empty());
      for (const auto& r : s.remote_vips)
        PSPGW_FUZZ_CHECK(r.family == s.local_vip.family && r != s.local_vip);
    }
  }
  for (const auto& port : c.sw.host_ports) {
    PSPGW_FUZZ_CHECK(!port.name.empty() && port.name.size() <= 15);
    // 0: not set, the gateway derives it from the uplink's MTU (gateway/path_mtu.hpp).
    PSPGW_FUZZ_CHECK(port.mtu == 0 || (port.mtu >= 576 && port.mtu <= 65535));
  }
  PSPGW_FUZZ_CHECK(c.sw.rpc_deadline.count() >= 50 && c.sw.rpc_deadline.count() <= 60000);
}

// The config as the file that says it: local VIPs explicit, remote prefixes expanded, defaults written out.
std::string serialise(const gateway::GatewayConfig& c) {
  using nlohmann::json;
  json config = {{"local-grpc-address", c.local_grpc_address.to_string()}};
  if (c.local_pip) config["local-pip"] = c.local_pip->to_string();
  json peers = json::array();
  json pips = json::object();
  for (const auto& peer : c.peers) {
    json sessions = json::array();
    for (const auto& s : peer.sessions) {
      json remotes = json::array();
      for (const auto& r : s.remote_vips) remotes.push_back(r.to_string());
      sessions.push_back({{"local-vip", s.local_vip.to_string()}, {"remote-vips", remotes}});
    }
    peers.push_back({{"remote-grpc-address", peer.remote_grpc_address.to_string()}, {"sessions", sessions}});
    if (peer.pip) pips[peer.remote_grpc_address.to_string()] = peer.pip->to_string();
  }
  json ports = json::array();
  for (const auto& p : c.sw.host_ports) {
    json port = {{"name", p.name}, {"role", p.role == gateway::HostPortRole::kVnf ? "vnf" : "workload"}};
    if (p.mtu != 0) port["mtu"] = p.mtu;
    if (p.mac) port["mac"] = p.mac->to_string();
    json vips = json::array();
    for (const auto& v : p.local_vips) vips.push_back(v.to_string());
    if (!vips.empty()) port["local-vips"] = vips;
    ports.push_back(port);
  }
  json sw = {{"host-ports", ports},
             {"virt-cookie", c.sw.virt_cookie},
             {"rpc-deadline-ms", c.sw.rpc_deadline.count()},
             {"tunnels-per-request", c.sw.tunnels_per_request},
             {"peer-pips", pips}};
  if (c.sw.local_mac) sw["local-mac"] = c.sw.local_mac->to_string();
  if (c.sw.uplink_mtu) sw["uplink-mtu"] = *c.sw.uplink_mtu;
  if (!c.sw.grpc_tls.cert.empty())
    sw["grpc-tls"] = {{"cert", c.sw.grpc_tls.cert}, {"key", c.sw.grpc_tls.key}, {"ca", c.sw.grpc_tls.ca}};
  if (c.sw.metrics_address) sw["metrics-address"] = c.sw.metrics_address->to_string();
  return json{{"config", config}, {"peers", peers}, {"x-sw", sw}}.dump();
}

bool same_ports(const std::vector<gateway::HostPortConfig>& a,
                const std::vector<gateway::HostPortConfig>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].role != b[i].role || a[i].mtu != b[i].mtu || a[i].mac != b[i].mac ||
        a[i].local_vips != b[i].local_vips)
      return false;
  }
  return true;
}

void check_reserialises(const gateway::GatewayConfig& c) {
  if (!c.sw.sfc.verbs.empty()) return;  // x-sw.sfc is not written back
  auto again = gateway::parse_config(serialise(c), "fuzz.json", {});
  PSPGW_FUZZ_CHECK(again.ok());
  const gateway::GatewayConfig& d = *again;
  PSPGW_FUZZ_CHECK(d.local_grpc_address == c.local_grpc_address && d.local_pip == c.local_pip);
  PSPGW_FUZZ_CHECK(d.peers.size() == c.peers.size());
  for (std::size_t i = 0; i < c.peers.size(); ++i) {
    PSPGW_FUZZ_CHECK(d.peers[i].remote_grpc_address == c.peers[i].remote_grpc_address);
    PSPGW_FUZZ_CHECK(d.peers[i].pip == c.peers[i].pip &&
                     d.peers[i].sessions.size() == c.peers[i].sessions.size());
    for (std::size_t s = 0; s < c.peers[i].sessions.size(); ++s) {
      PSPGW_FUZZ_CHECK(d.peers[i].sessions[s].local_vip == c.peers[i].sessions[s].local_vip);
      PSPGW_FUZZ_CHECK(d.peers[i].sessions[s].remote_vips == c.peers[i].sessions[s].remote_vips);
    }
  }
  PSPGW_FUZZ_CHECK(same_ports(d.sw.host_ports, c.sw.host_ports));
  PSPGW_FUZZ_CHECK(d.sw.local_mac == c.sw.local_mac && d.sw.uplink_mtu == c.sw.uplink_mtu);
  PSPGW_FUZZ_CHECK(d.sw.virt_cookie == c.sw.virt_cookie && d.sw.rpc_deadline == c.sw.rpc_deadline);
  PSPGW_FUZZ_CHECK(d.sw.grpc_tls.cert == c.sw.grpc_tls.cert && d.sw.grpc_tls.key == c.sw.grpc_tls.key &&
                   d.sw.grpc_tls.ca == c.sw.grpc_tls.ca);
  PSPGW_FUZZ_CHECK(d.sw.tunnels_per_request == c.sw.tunnels_per_request);
  PSPGW_FUZZ_CHECK(d.sw.metrics_address == c.sw.metrics_address);
}

void parse_one(std::string_view text, const gateway::ConfigInputs& inputs) {
  // No try/catch: an escaping exception is the bug this target looks for (libFuzzer reports the abort,
  // the replay test reports the exception).
  auto r = gateway::parse_config(text, "fuzz.json", inputs);
  if (r) {
    check_parsed(*r);
    check_reserialises(*r);
  } else {
    PSPGW_FUZZ_CHECK(r.error().message.starts_with("fuzz.json: "));
  }
}

}  // namespace

PSPGW_FUZZ_TARGET(gateway_config) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  parse_one(text, {});
  // With the unsecured port's address known, sessions without "local-vip" parse too.
  parse_one(text, {net::IpAddr::parse("192.168.1.1")});
  return 0;
}
