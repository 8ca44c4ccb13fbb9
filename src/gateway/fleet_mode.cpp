#include "gateway/fleet_mode.hpp"

#include <unistd.h>

#include <array>
#include <set>
#include <unordered_set>

namespace pspgw::gateway {

Result<std::optional<FleetSettings>, std::string> fleet_settings(const GatewayFlags& flags,
                                                                 const GatewayConfig& config) {
  const EtcdConfig& e = config.sw.etcd;
  FleetSettings s;
  s.etcd.endpoints = flags.etcd_endpoints.empty() ? e.endpoints : flags.etcd_endpoints;
  if (s.etcd.endpoints.empty()) {
    if (!flags.etcd_prefix.empty())
      return Err{std::string("--etcd-prefix needs --etcd-endpoints (or x-sw.etcd)")};
    return std::optional<FleetSettings>();
  }
  s.etcd.tls = {e.ca, e.cert, e.key};
  s.prefix = !flags.etcd_prefix.empty() ? flags.etcd_prefix
             : !e.prefix.empty()        ? e.prefix
                                        : std::string(fleet::kDefaultPrefix);
  if (!s.prefix.starts_with('/')) return Err{"etcd prefix '" + s.prefix + "' must start with /"};
  s.host = e.host;
  if (s.host.empty()) {
    std::array<char, 256> name{};
    if (::gethostname(name.data(), name.size() - 1) == 0) s.host = name.data();
  }
  if (!fleet::valid_host_name(s.host))
    return Err{"fleet host name '" + s.host + "' (x-sw.etcd.host): [A-Za-z0-9._-], 1..253 characters"};
  return std::optional<FleetSettings>(std::move(s));
}

fleet::HostRecord own_record(const std::string& host, const GatewayConfig& config,
                             const std::vector<HostPortConfig>& host_ports, const net::IpAddr& local_pip,
                             uint16_t grpc_port) {
  fleet::HostRecord r;
  r.host = host;
  r.pip = local_pip;
  const auto listen = net::IpAddr::parse(config.local_grpc_address.host);
  const bool any =
      !listen || listen->span().end() == std::find_if(listen->span().begin(), listen->span().end(),
                                                      [](uint8_t b) { return b != 0; });
  r.grpc_address =
      GrpcAddress{any ? local_pip.to_string() : config.local_grpc_address.host, grpc_port}.to_string();
  for (const auto& hp : host_ports) {
    if (hp.role != HostPortRole::kWorkload) continue;
    r.ports.push_back({hp.name, hp.local_vips});
  }
  return r;
}

std::vector<PeerConfig> fleet_peers(const fleet::FleetView& view, const GatewayConfig& config,
                                    net::IpFamily outer) {
  std::set<std::pair<net::IpAddr, net::IpAddr>> static_pairs;
  std::set<std::string> static_addresses;
  for (const auto& p : config.peers) {
    static_addresses.insert(p.remote_grpc_address.to_string());
    for (const auto& s : p.sessions)
      for (const auto& r : s.remote_vips) static_pairs.emplace(s.local_vip, r);
  }
  std::vector<net::IpAddr> locals;
  for (const auto& hp : config.sw.host_ports)
    locals.insert(locals.end(), hp.local_vips.begin(), hp.local_vips.end());
  if (config.sw.host_ports.empty()) locals = config.local_vips();
  const std::unordered_set<net::IpAddr> local_set(locals.begin(), locals.end());

  std::vector<PeerConfig> out;
  for (const auto& peer : view.peers) {
    auto addr = parse_grpc_address(peer.record.grpc_address, false);
    if (!addr || peer.record.pip.family != outer || static_addresses.contains(addr->to_string())) continue;
    PeerConfig pc{*addr, {}, peer.record.pip};
    for (const auto& local : locals) {
      SessionConfig s{local, {}};
      for (const auto& remote : peer.vips) {
        if (local_set.contains(remote) || static_pairs.contains({local, remote})) continue;
        if (view.policy && !view.policy->allows(local, remote)) continue;
        s.remote_vips.push_back(remote);
      }
      if (!s.remote_vips.empty()) pc.sessions.push_back(std::move(s));
    }
    if (!pc.sessions.empty()) out.push_back(std::move(pc));
  }
  return out;
}

GatewayConfig with_peers(const GatewayConfig& config, const std::vector<PeerConfig>& peers) {
  GatewayConfig c = config;
  c.peers.insert(c.peers.end(), peers.begin(), peers.end());
  return c;
}

}  // namespace pspgw::gateway
