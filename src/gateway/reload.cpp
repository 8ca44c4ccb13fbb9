#include "gateway/reload.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <string_view>
#include <unordered_map>

namespace pspgw::gateway {
namespace {

std::string text(const std::optional<net::MacAddr>& m) {
  return m ? m->to_string() : "unset";
}
std::string text(const std::optional<GrpcAddress>& a) {
  return a ? a->to_string() : "unset";
}
std::string text(const std::optional<net::IpAddr>& a) {
  return a ? a->to_string() : "unset";
}

template <class T>
void fixed(std::string_view key, const T& was, const T& now, ConfigDiff& diff) {
  if (was == now) return;
  diff.restart.push_back(std::string(key) + ": " + text(was) + " -> " + text(now));
}

// The (local VIP, remote VIP) pairs of a peer's sessions.
std::set<std::pair<net::IpAddr, net::IpAddr>> pairs_of(const PeerConfig& p) {
  std::set<std::pair<net::IpAddr, net::IpAddr>> out;
  for (const auto& s : p.sessions) {
    for (const auto& r : s.remote_vips) out.emplace(s.local_vip, r);
  }
  return out;
}

std::string role_text(HostPortRole r) {
  return r == HostPortRole::kVnf ? "vnf" : "workload";
}

}  // namespace

std::vector<HostPortConfig> effective_host_ports(const GatewayConfig& config, const std::string& vf_name) {
  if (!config.sw.host_ports.empty()) return config.sw.host_ports;
  HostPortConfig hp;
  hp.name = vf_name;
  hp.local_vips = config.local_vips();
  return {hp};
}

bool ConfigDiff::empty() const {
  return restart.empty() && peers.added.empty() && peers.removed.empty() && peers.changed.empty() &&
         vips.added.empty() && vips.removed.empty() && vips.moved.empty() && ports.added.empty() &&
         ports.removed.empty() && !tls;
}

std::string ConfigDiff::summary() const {
  std::string s = "peers +" + std::to_string(peers.added.size()) + " -" +
                  std::to_string(peers.removed.size()) + " ~" + std::to_string(peers.changed.size()) +
                  ", VIP pairs +" + std::to_string(peers.pairs_added) + " -" +
                  std::to_string(peers.pairs_removed) + ", local VIPs +" + std::to_string(vips.added.size()) +
                  " -" + std::to_string(vips.removed.size()) + " moved " + std::to_string(vips.moved.size());
  if (!ports.added.empty() || !ports.removed.empty())
    s += ", host ports +" + std::to_string(ports.added.size()) + " -" + std::to_string(ports.removed.size());
  if (tls) s += ", TLS material";
  return s;
}

void diff_fixed(const GatewayConfig& running, const GatewayConfig& next, const GatewayFlags& flags,
                ConfigDiff& diff) {
  if (!(running.local_grpc_address == next.local_grpc_address)) {
    diff.restart.push_back("config.local-grpc-address: " + running.local_grpc_address.to_string() + " -> " +
                           next.local_grpc_address.to_string());
  }
  fixed("config.local-pip", running.local_pip, next.local_pip, diff);
  fixed("x-sw.local-mac", running.sw.local_mac, next.sw.local_mac, diff);
  if (running.sw.virt_cookie != next.sw.virt_cookie) diff.restart.push_back("x-sw.virt-cookie changed");
  if (running.sw.rpc_deadline != next.sw.rpc_deadline) {
    diff.restart.push_back("x-sw.rpc-deadline-ms: " + std::to_string(running.sw.rpc_deadline.count()) +
                           " -> " + std::to_string(next.sw.rpc_deadline.count()));
  }
  if (running.sw.tunnels_per_request != next.sw.tunnels_per_request) {
    diff.restart.push_back("x-sw.tunnels-per-request: " + std::to_string(running.sw.tunnels_per_request) +
                           " -> " + std::to_string(next.sw.tunnels_per_request));
  }
  if (flags.metrics_address.empty())
    fixed("x-sw.metrics-address", running.sw.metrics_address, next.sw.metrics_address, diff);
  if (running.sw.uplink_mtu != next.sw.uplink_mtu) {  // sizes every host port's TAP at start
    diff.restart.push_back("x-sw.uplink-mtu changed");
  }
  // The store's client, our record's name and lease are made once, at start.
  if (!(running.sw.etcd == next.sw.etcd)) diff.restart.push_back("x-sw.etcd changed");
}

void diff_peers(const GatewayConfig& running, const GatewayConfig& next, ConfigDiff& diff) {
  std::map<std::string, const PeerConfig*> was;
  for (const auto& p : running.peers) was.emplace(p.remote_grpc_address.to_string(), &p);
  std::set<std::string> seen;
  for (const auto& p : next.peers) {
    const std::string name = p.remote_grpc_address.to_string();
    seen.insert(name);
    const auto now_pairs = pairs_of(p);
    auto it = was.find(name);
    if (it == was.end()) {
      diff.peers.added.push_back(name);
      diff.peers.pairs_added += now_pairs.size();
      continue;
    }
    const auto old_pairs = pairs_of(*it->second);
    std::size_t added = 0;
    for (const auto& pr : now_pairs) added += old_pairs.contains(pr) ? 0 : 1;
    const std::size_t removed = old_pairs.size() - (now_pairs.size() - added);
    diff.peers.pairs_added += added;
    diff.peers.pairs_removed += removed;
    if (added > 0 || removed > 0 || it->second->pip != p.pip) diff.peers.changed.push_back(name);
  }
  for (const auto& p : running.peers) {
    const std::string name = p.remote_grpc_address.to_string();
    if (seen.contains(name)) continue;
    diff.peers.removed.push_back(name);
    diff.peers.pairs_removed += pairs_of(p).size();
  }
}

void diff_host_ports(const std::vector<HostPortConfig>& running, const std::vector<HostPortConfig>& next,
                     ConfigDiff& diff) {
  std::map<std::string, const HostPortConfig*> was, now;
  for (const auto& p : running) was.emplace(p.name, &p);
  for (const auto& p : next) now.emplace(p.name, &p);
  for (const auto& p : next) {
    auto it = was.find(p.name);
    if (it == was.end()) {
      diff.ports.added.push_back(p.name);
      continue;
    }
    const HostPortConfig& old = *it->second;
    const std::string key = "x-sw.host-ports '" + p.name + "'";
    const std::string how = " (remove the port in one reload and add it back in the next, or restart)";
    // "KEY: WHAT FROM -> TO (how)"
    const auto change = [&](std::string_view what, const std::string& from, const std::string& to) {
      std::string line = key;
      line += ": ";
      line += what;
      line += ' ';
      line += from;
      line += " -> ";
      line += to;
      line += how;
      diff.restart.push_back(std::move(line));
    };
    if (old.role != p.role) change("role", role_text(old.role), role_text(p.role));
    if (old.mtu != p.mtu) {
      const auto mtu = [](uint32_t m) { return m == 0 ? std::string("auto") : std::to_string(m); };
      change("mtu", mtu(old.mtu), mtu(p.mtu));
    }
    if (old.mac != p.mac) change("mac", text(old.mac), text(p.mac));
  }
  for (const auto& p : running) {
    if (!now.contains(p.name)) diff.ports.removed.push_back(p.name);
  }
  std::unordered_map<net::IpAddr, std::string> was_vips, now_vips;
  for (const auto& p : running) {
    for (const auto& v : p.local_vips) was_vips.emplace(v, p.name);
  }
  for (const auto& p : next) {
    for (const auto& v : p.local_vips) now_vips.emplace(v, p.name);
  }
  for (const auto& [vip, port] : now_vips) {
    auto it = was_vips.find(vip);
    if (it == was_vips.end()) {
      diff.vips.added.push_back(vip);
    } else if (it->second != port) {
      diff.vips.moved.push_back(vip);
    }
  }
  for (const auto& [vip, port] : was_vips) {
    if (!now_vips.contains(vip)) diff.vips.removed.push_back(vip);
  }
  for (auto* v : {&diff.vips.added, &diff.vips.removed, &diff.vips.moved}) std::sort(v->begin(), v->end());
}

void diff_tls(const GatewayConfig& running, const GatewayConfig& next, const GatewayFlags& flags,
              ConfigDiff& diff) {
  auto pick = [](const std::string& flag, const std::string& key) { return flag.empty() ? key : flag; };
  const GrpcTlsConfig& a = running.sw.grpc_tls;
  const GrpcTlsConfig& b = next.sw.grpc_tls;
  diff.tls = pick(flags.grpc_tls_cert, a.cert) != pick(flags.grpc_tls_cert, b.cert) ||
             pick(flags.grpc_tls_key, a.key) != pick(flags.grpc_tls_key, b.key) ||
             pick(flags.grpc_tls_ca, a.ca) != pick(flags.grpc_tls_ca, b.ca);
}

void diff_sfc(const GatewayConfig& running, const GatewayConfig& next, ConfigDiff& diff) {
  const SfcConfig& a = running.sw.sfc;
  const SfcConfig& b = next.sw.sfc;
  if (a.verbs != b.verbs || a.interval_ms != b.interval_ms || a.misses != b.misses ||
      a.timeout_ms != b.timeout_ms) {
    diff.restart.push_back(
        "x-sw.sfc changed: change service chains at run time with `pspctl sfc` (the running chains may "
        "differ from the file), or restart");
  }
}

ConfigDiff diff_config(const GatewayConfig& running, const GatewayConfig& next, const GatewayFlags& flags) {
  ConfigDiff diff;
  diff_fixed(running, next, flags, diff);
  diff_peers(running, next, diff);
  diff_host_ports(effective_host_ports(running, flags.vf_name), effective_host_ports(next, flags.vf_name),
                  diff);
  diff_tls(running, next, flags, diff);
  diff_sfc(running, next, diff);
  return diff;
}

}  // namespace pspgw::gateway
