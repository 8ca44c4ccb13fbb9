// How big an inner packet the tunnel carries without fragmenting (issue 9 step 4: no fragmentation by
// default, as wg-quick sets a WireGuard interface's MTU from the route's less its overhead).
//
// PSP overhead per packet (shared/spec/psp-protocol.md §1-§2):
//   tunnel     outer IPv4 20 / IPv6 40 + UDP 8 + PSP header 16 (+ 8 with the VC) + ICV 16
//              -> IPv4 60 (68 with VC), IPv6 80 (88): the inner IP packet rides whole behind the PSP header
//   transport  UDP 8 + PSP header 16 (+ 8) + ICV 16 = 40 (48): the packet's own IP header becomes the outer
//              one (the kernel socket writes it; inner family == outer family), so only PSP's part is added
// The same for every PSP version: GCM and GMAC both carry a 16-byte ICV.
//
// The uplink is the interface that holds config.local-pip (x-sw.uplink-mtu overrides: a path with a
// smaller MTU than the first link, or an address the gateway does not find on an interface).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "net/addr.hpp"
#include "psp/encap.hpp"

namespace pspgw::gateway {

inline constexpr uint32_t kDefaultUplinkMtu = 1500;

// Bytes PSP adds to an inner IP packet of the given mode, outer family and VC setting.
uint32_t psp_overhead(psp::Mode mode, net::IpFamily outer, bool vc);

// The MTU of the interface that holds `local`, or nullopt if no interface of this namespace holds it
// (the unspecified address included).
std::optional<uint32_t> interface_mtu_of(const net::IpAddr& local);

// The largest inner IP packet of the tunnel: uplink MTU - overhead (0 if the overhead does not fit).
inline uint32_t tunnel_payload_mtu(uint32_t uplink_mtu, psp::Mode mode, net::IpFamily outer, bool vc) {
  const uint32_t o = psp_overhead(mode, outer, vc);
  return uplink_mtu > o ? uplink_mtu - o : 0;
}

}  // namespace pspgw::gateway
