// Exception traffic from a host port that the gateway answers itself (the seeds' "RSS -> generate_reply()"):
// ARP requests, IPv6 Neighbor Solicitations and DHCPv4 DISCOVER/REQUEST. Slow path only: these run on the
// control thread, never on a packet worker.
//
// Unlike the DOCA sample (which answers ARP for every address), we answer only for the addresses the
// configuration routes through a tunnel (and the port's configured gateway address): anything else is not
// ours to claim.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "net/addr.hpp"

namespace pspgw::gateway {

// What the responder may claim on one host port.
struct ResponderPolicy {
  net::MacAddr gateway_mac;               // the MAC we answer with (the gateway's side of the TAP)
  std::vector<net::IpAddr> proxied;       // remote VIPs reachable through tunnels (sorted, unique)
  std::optional<net::IpAddr> gateway_ip;  // the workload's default router, if configured
  // DHCP: the address offered on this port (the port's local VIP), its prefix and lease.
  std::optional<net::IpAddr> dhcp_address;
  uint8_t dhcp_prefix_len = 24;
  uint32_t dhcp_lease_s = 86400;
  uint16_t mtu = 0;  // DHCP option 26 when non-zero

  bool claims(const net::IpAddr& a) const;
};

enum class ExceptionKind : uint8_t { kArp, kNeighborSolicit, kDhcp, kOther };
ExceptionKind classify_exception(std::span<const uint8_t> frame);
std::string_view to_string(ExceptionKind k);

// Each builder returns the reply frame, or nullopt when the request is malformed or not ours to answer.
std::optional<std::vector<uint8_t>> arp_reply(std::span<const uint8_t> request,
                                              const ResponderPolicy& policy);
std::optional<std::vector<uint8_t>> neighbor_advert(std::span<const uint8_t> solicit,
                                                    const ResponderPolicy& policy);
std::optional<std::vector<uint8_t>> dhcp_reply(std::span<const uint8_t> request,
                                               const ResponderPolicy& policy);

// Dispatches on the frame's kind.
std::optional<std::vector<uint8_t>> exception_reply(std::span<const uint8_t> frame,
                                                    const ResponderPolicy& policy);

}  // namespace pspgw::gateway
