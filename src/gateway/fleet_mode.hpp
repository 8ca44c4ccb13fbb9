// Fleet mode's side in the gateway (issue 11; README "Fleet mode"): what we register about ourselves, and
// the directory's remote hosts turned into peers exactly like a static config's, so the tunnel manager,
// the gRPC authorisation and proxy ARP treat them alike. A host may then request only pairs whose remote
// VIP it registered: each (local VIP, remote VIP) pair belongs to the host the directory says serves the
// remote VIP, and the gRPC server admits a caller for the pairs of the hosts its certificate (or, with
// --grpc-insecure, its address) names.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "fleet/fleet.hpp"
#include "gateway/config.hpp"
#include "gateway/flags.hpp"

namespace pspgw::gateway {

// --etcd-* flags over x-sw.etcd; nullopt when fleet mode is off (no endpoint anywhere).
struct FleetSettings {
  fleet::EtcdOptions etcd;
  std::string prefix;
  std::string host;  // our record's name
};
Result<std::optional<FleetSettings>, std::string> fleet_settings(const GatewayFlags& flags,
                                                                 const GatewayConfig& config);

// Our record: host ports and their VIPs, gRPC address (the local PIP when listening on any address).
fleet::HostRecord own_record(const std::string& host, const GatewayConfig& config,
                             const std::vector<HostPortConfig>& host_ports, const net::IpAddr& local_pip,
                             uint16_t grpc_port);

// The remote hosts as peers of `config`'s local VIPs: the policy applied, the outer family checked, and
// every pair or gRPC address the static config already has left to it (static peers win).
std::vector<PeerConfig> fleet_peers(const fleet::FleetView& view, const GatewayConfig& config,
                                    net::IpFamily outer);

// `config` with `peers` appended (the effective peer list in fleet mode).
GatewayConfig with_peers(const GatewayConfig& config, const std::vector<PeerConfig>& peers);

}  // namespace pspgw::gateway
