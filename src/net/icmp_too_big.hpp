// "Your packet does not fit" errors, so path MTU discovery works through a tunnel whose payload is smaller
// than the link the sender sees:
//   IPv4  Destination Unreachable, code 4 "fragmentation needed and DF set", with the next-hop MTU in the
//         second word (RFC 792, RFC 1191 §4); quotes the offending IP packet up to 576 bytes in all
//         (RFC 1812 §4.3.2.3: as much as fits, the IP header and 8 bytes at least).
//   IPv6  Packet Too Big, type 2 code 0, with the MTU (RFC 4443 §3.2); quotes up to the minimum IPv6 MTU
//         of 1280 bytes in all (§2.4 (c)).
// Each is built IN PLACE over the offending Ethernet frame, as Linux's iptunnel_pmtud_build_icmp{,v6}
// does for bridged tunnels: the quote is the packet's own bytes where they lie, the new IP and ICMP headers
// go into the headroom in front of them and the Ethernet header (VLAN tag kept) comes back with its MACs
// swapped. The error is sent from the packet's destination to its source: the address the sender was
// talking to, and the only one it will match the quote against. No allocation, no copy of the quote.
//
// Not every packet may be answered (RFC 1122 §3.2.2, RFC 1812 §4.3.2.7, RFC 4443 §2.4 (e)): never an ICMP
// error about an ICMP error, a non-first IPv4 fragment, or a packet whose source is not a unicast address
// or whose destination is multicast/broadcast (we would have to answer from that address). Those return
// kNotEligible and leave the frame untouched.
#pragma once

#include <cstdint>

#include "net/packet.hpp"

namespace pspgw::net {

inline constexpr uint32_t kIcmpV4QuoteLimit = 576;   // the whole error datagram (RFC 1812 §4.3.2.3)
inline constexpr uint32_t kIcmpV6QuoteLimit = 1280;  // the whole error packet (RFC 4443 §2.4 (c))
inline constexpr uint8_t kIcmpDestUnreachable = 3;
inline constexpr uint8_t kIcmpCodeFragNeeded = 4;
inline constexpr uint8_t kIcmpv6PacketTooBig = 2;
// Room an error needs in front of the offending IP header: IPv4 + ICMP, IPv6 + ICMPv6.
inline constexpr uint32_t kIcmpV4ErrorHeaders = 20 + 8;
inline constexpr uint32_t kIcmpV6ErrorHeaders = 40 + 8;

enum class TooBigResult : uint8_t {
  kBuilt,        // the frame is now the ICMP error, ready to go back out of the port it came from
  kNotEligible,  // a packet the rules above say must not be answered; frame untouched
  kNoRoom,       // too little headroom for the new headers; frame untouched
  kMalformed,    // no well-formed IPv4/IPv6 header at l3_offset; frame untouched
};

// The frame holds Ethernet (l3_offset = 14, or 18 with one VLAN tag) + an IPv4 packet.
TooBigResult make_frag_needed(Packet& frame, uint32_t l3_offset, uint16_t next_hop_mtu);
// The frame holds Ethernet + an IPv6 packet.
TooBigResult make_packet_too_big(Packet& frame, uint32_t l3_offset, uint32_t mtu);

}  // namespace pspgw::net
