// The gateway's JSON config (-c FILE): DOCA's schema (shared/spec/doca-psp-gateway.md §3) plus one
// clearly named extension object for what only a software gateway needs.
//
// clang-format off
//   {
//     "config": {
//       "local-grpc-address": "ip[:port]",   // default 0.0.0.0:3000; ":3000" when no port; IPv6 as [ip]:port
//       "local-pip": "ip"                    // DOCA 3.4: our outer address (PSP/UDP bind, TunnelParameters.ip_addr)
//     },
//     "peers": [ {
//       "remote-grpc-address": "host[:port]",  // ":3000" when no port
//       "sessions": [ {
//         "local-vip": "ip",                    // default: the unsecured port's IPv4 (an input of the parser)
//         "remote-vips": ["ip", "a.b.c.d/len"]  // IPv4 prefixes /16../32 expand to every address; IPv6 plain only
//       } ]
//     } ],
//     "x-sw": {                              // software-gateway extension (a DOCA gateway rejects it)
//       "host-ports": [ {                    // TAP devices; default: one, named by -d/--vf-name, every local VIP
//         "name": "psp0",                    //   interface name (<= 15 characters)
//         "mtu": 1422,                       //   576..65535; default: uplink MTU - PSP overhead (README)
//         "local-vips": ["10.0.0.1"],        //   the VIPs behind this port (each on exactly one port)
//         "mac": "02:00:00:00:00:01"         //   optional: the gateway's MAC on this port (proxy ARP/NA, DHCP)
//       } ],
//       "uplink-mtu": 1500,                  // the path MTU between the hosts, 576..65535; default: the
//                                            //   MTU of the interface holding config.local-pip
//       "local-mac": "02:00:00:00:00:01",    // MAC sent to peers in TunnelParameters.mac_addr
//       "virt-cookie": "0x778899aabbccddee", // VC we ask peers to send (hex string or number); DOCA's constant
//       "rpc-deadline-ms": 2000,             // deadline of every key-exchange RPC, 50..60000
//       "grpc-tls": {                        // mutual TLS of the key exchange (flags --grpc-tls-* win)
//         "cert": "FILE",                    //   our certificate, PEM (paths as given: relative to the cwd)
//         "key": "FILE",                     //   its private key, PEM, unencrypted
//         "ca": "FILE"                       //   the CA every peer's certificate must chain to
//       },
//       "peer-pips": {                       // optional: a peer's data-plane address (its local-pip),
//         "host[:port]": "ip"                //   keyed by its remote-grpc-address; unset: pinned at the
//       },                                   //   first exchange (README: Security)
//       "tunnels-per-request": 4096,         // most tunnels we put in one request (a peer's limit), 1..4096
//       "metrics-address": "127.0.0.1:9469", // Prometheus /metrics on ip:port (--metrics-address wins); unset: off
//       "etcd": {                            // fleet mode (README "Fleet mode"; --etcd-* flags win)
//         "endpoints": ["http://ip:2379"],   //   etcd client URLs (https:// with the TLS files)
//         "prefix": "/psp-gateway/",         //   key prefix of the fleet's records
//         "host": "host1",                   //   our record's name (default: the machine's host name)
//         "cert": "FILE", "key": "FILE",     //   optional client certificate (its CN is our etcd user)
//         "ca": "FILE"                       //   CA of the etcd servers' certificates
//       },
//       "sfc": {                             // service chains (issue 8; README "Service chaining")
//         "pairs": [ {"name": "fw1", "in": "fw1-in", "out": "fw1-out"} ],          // vnf host ports
//         "chains": [ {"name": "pc1", "groups": [                                  // hops in order
//           {"name": "pg1", "fail-mode": "close", "pairs": ["fw1"]} ] } ],         // fail-mode: close | open
//         "classifiers": [ {"name": "c1", "chain": "pc1", "port": "vm2",          // a workload host port
//           "direction": "entry-lport", "bi-directional": true, "match": "tcp" } ], // exit-lport; MATCH
//         "health": {"interval-ms": 1000, "misses": 3, "timeout-ms": 500}           // probes per port pair
//       }
//     }
//   }
// clang-format on
//
// Every error names the file and the key path ("peers[1].sessions[0].remote-vips[2]"): unknown keys,
// duplicate JSON keys, wrong types (with the expected type) and duplicate (local VIP, remote VIP) pairs
// (naming both places) are errors, never ignored.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "net/addr.hpp"

namespace pspgw::gateway {

inline constexpr uint16_t kDefaultGrpcPort = 3000;
inline constexpr uint64_t kDocaVirtCookie = 0x778899aabbccddeeULL;

struct ConfigError {
  std::string message;  // "FILE: KEY.PATH: what is wrong"
};

// "host:port" for gRPC. host is an IP literal or (remote side only) a DNS name.
struct GrpcAddress {
  std::string host;
  uint16_t port = kDefaultGrpcPort;
  std::string to_string() const;  // IPv6 hosts in brackets
  friend bool operator==(const GrpcAddress&, const GrpcAddress&) = default;
};
// Parses "host[:port]", "[v6]:port" or a bare IPv6 address. require_ip: the host must be an IP literal.
std::optional<GrpcAddress> parse_grpc_address(std::string_view text, bool require_ip);
// A listening address for /metrics: "ip:port" or "[v6]:port", the port required; port 0 = any free port.
std::optional<GrpcAddress> parse_listen_address(std::string_view text);

struct SessionConfig {
  net::IpAddr local_vip;
  std::vector<net::IpAddr> remote_vips;  // prefixes expanded, config order
};

struct PeerConfig {
  GrpcAddress remote_grpc_address;
  std::vector<SessionConfig> sessions;
  std::optional<net::IpAddr> pip;  // x-sw.peer-pips
};

// x-sw.grpc-tls: files for mutual TLS on gRPC ("" = not given).
struct GrpcTlsConfig {
  std::string cert;
  std::string key;
  std::string ca;
};

// workload: a VM's port (local VIPs, ARP/DHCP answers, its MAC learned). vnf: one side of a service-chain
// VNF (issue 8): no VIPs, no MAC learning; traffic reaches it only through chains.
enum class HostPortRole : uint8_t { kWorkload, kVnf };

struct HostPortConfig {
  std::string name;
  HostPortRole role = HostPortRole::kWorkload;  // x-sw.host-ports[].role: "workload" (default) | "vnf"
  // The TAP's MTU; 0 (unset): the largest inner packet the tunnel carries without fragmenting, i.e. the
  // uplink's MTU less the PSP overhead of the mode, outer family and VC (gateway/path_mtu.hpp).
  uint32_t mtu = 0;
  std::vector<net::IpAddr> local_vips;
  std::optional<net::MacAddr> mac;
};

// x-sw.sfc: the service chains as the `pspctl sfc` verbs that build them (sfc/verbs.hpp) — pairs, each
// chain with its groups and their pairs, classifiers — checked against a registry when parsed, so a config
// that parses replays without error.
struct SfcConfig {
  std::vector<std::vector<std::string>> verbs;
  std::vector<std::string> origins;  // the key path each verb came from
  uint32_t interval_ms = 1000;       // health probes, per port pair
  uint32_t misses = 3;
  uint32_t timeout_ms = 500;
};

// x-sw.etcd: fleet mode's store ("" / empty = not given).
struct EtcdConfig {
  std::vector<std::string> endpoints;
  std::string prefix;
  std::string host;
  std::string cert;
  std::string key;
  std::string ca;
  friend bool operator==(const EtcdConfig&, const EtcdConfig&) = default;
};

struct SwExtensions {
  std::vector<HostPortConfig> host_ports;  // empty: one port named by -d, carrying every local VIP
  std::optional<net::MacAddr> local_mac;   // unset: the gateway picks one (e.g. of the secured interface)
  std::optional<uint32_t> uplink_mtu;      // unset: the MTU of the interface holding config.local-pip
  uint64_t virt_cookie = kDocaVirtCookie;
  std::chrono::milliseconds rpc_deadline{2000};
  GrpcTlsConfig grpc_tls;
  uint32_t tunnels_per_request = 4096;         // larger sets are split (our server accepts 4096)
  std::optional<GrpcAddress> metrics_address;  // Prometheus /metrics; unset: off
  SfcConfig sfc;
  EtcdConfig etcd;
};

struct GatewayConfig {
  std::string source;  // the file it came from, for messages
  GrpcAddress local_grpc_address{"0.0.0.0", kDefaultGrpcPort};
  std::optional<net::IpAddr> local_pip;
  std::vector<PeerConfig> peers;
  SwExtensions sw;

  // Every distinct local VIP of every session, in config order.
  std::vector<net::IpAddr> local_vips() const;
};

// Facts the parser needs from outside the file.
struct ConfigInputs {
  std::optional<net::IpAddr> default_local_vip;  // the unsecured port's IPv4 (DOCA's default local-vip)
};

Result<GatewayConfig, ConfigError> parse_config(std::string_view json_text, std::string_view source,
                                                const ConfigInputs& inputs);
Result<GatewayConfig, ConfigError> load_config(const std::string& path, const ConfigInputs& inputs);

}  // namespace pspgw::gateway
