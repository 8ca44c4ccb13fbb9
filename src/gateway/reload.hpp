// Live reload (SIGHUP, pspctl reload): what a new config changes against the running one, one function
// per config section, so that a new section (x-sw.sfc, ...) plugs in as one more diff_* function and one
// more field of ConfigDiff. Gateway::reload (gateway.cpp) validates the new config as at start, refuses
// it as a whole if any section says "restart", and otherwise applies the sections in make-before-break
// order.
//
// Live: peers (added, removed), their sessions (VIP pairs) and x-sw.peer-pips, host ports (added: TAPs
// created; removed: their tunnels closed, TAPs removed; matched by name, so their order does not
// matter), the local VIPs behind each host port (added, removed, moved to another port), and the gRPC
// TLS material (x-sw.grpc-tls paths, or the same files with new contents).
// Restart: config.local-grpc-address (the gRPC listener), config.local-pip (the PSP socket's bind address,
// the uplink), a kept host port's role, MTU or MAC (remove it in one reload and add it back in the
// next), x-sw.local-mac and x-sw.virt-cookie (sent to peers in every TunnelParameters they hold),
// x-sw.rpc-deadline-ms and x-sw.tunnels-per-request (fixed in the gRPC client and the tunnel manager),
// x-sw.metrics-address (the HTTP listener), x-sw.uplink-mtu (sizes the TAPs), x-sw.sfc (changed live with
// `pspctl sfc` instead), and every command-line flag (the flags are not re-read).
#pragma once

#include <string>
#include <vector>

#include "gateway/config.hpp"
#include "gateway/flags.hpp"
#include "net/addr.hpp"

namespace pspgw::gateway {

// The host ports a config yields: x-sw.host-ports, or (none given) one port named by -d carrying every
// local VIP.
std::vector<HostPortConfig> effective_host_ports(const GatewayConfig& config, const std::string& vf_name);

struct PeerChanges {
  std::vector<std::string> added;    // remote-grpc-address of peers new in the config
  std::vector<std::string> removed;  // ... of peers gone from it
  std::vector<std::string> changed;  // ... of peers whose VIP pairs or x-sw.peer-pips changed
  std::size_t pairs_added = 0;       // VIP pairs (local, remote) new in the config
  std::size_t pairs_removed = 0;
};

struct VipChanges {
  std::vector<net::IpAddr> added;    // local VIPs new behind some host port
  std::vector<net::IpAddr> removed;  // local VIPs no longer behind any host port
  std::vector<net::IpAddr> moved;    // local VIPs now behind another host port: their tunnels close
};

struct PortChanges {
  std::vector<std::string> added;    // host ports (names) new in the config
  std::vector<std::string> removed;  // ... gone from it
};

struct ConfigDiff {
  std::vector<std::string> restart;  // "KEY: what changed", one per key that needs a restart
  PeerChanges peers;
  PortChanges ports;
  VipChanges vips;
  bool tls = false;  // the TLS files named changed (Gateway::reload also compares their contents)

  bool empty() const;
  // "peers +1 -0 ~1, VIP pairs +2 -0, local VIPs +1 -0 moved 0, host ports +1 -0, TLS"
  std::string summary() const;
};

// ---- one function per section ----
// config.local-grpc-address, config.local-pip, x-sw.local-mac, x-sw.virt-cookie, x-sw.rpc-deadline-ms,
// x-sw.tunnels-per-request, x-sw.metrics-address (unless --metrics-address overrides it).
void diff_fixed(const GatewayConfig& running, const GatewayConfig& next, const GatewayFlags& flags,
                ConfigDiff& diff);
// peers[]: by remote-grpc-address.
void diff_peers(const GatewayConfig& running, const GatewayConfig& next, ConfigDiff& diff);
// x-sw.host-ports (or the default port), by name: ports added or removed; a kept port's role, MTU and MAC
// must stay; local VIPs may change (moved: now behind a port of another name).
void diff_host_ports(const std::vector<HostPortConfig>& running, const std::vector<HostPortConfig>& next,
                     ConfigDiff& diff);
// x-sw.grpc-tls, unless the --grpc-tls-* flags override it.
void diff_tls(const GatewayConfig& running, const GatewayConfig& next, const GatewayFlags& flags,
              ConfigDiff& diff);

// x-sw.sfc: the chains the file declares are applied at start; at run time they are changed with the
// `pspctl sfc` verbs (which do not write the file), so a changed section is refused rather than guessed at.
void diff_sfc(const GatewayConfig& running, const GatewayConfig& next, ConfigDiff& diff);

// Every section.
ConfigDiff diff_config(const GatewayConfig& running, const GatewayConfig& next, const GatewayFlags& flags);

}  // namespace pspgw::gateway
