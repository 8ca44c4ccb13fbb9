// IPv4 fragmentation of one packet (RFC 791 §3.2 "An Example Fragmentation Procedure", RFC 815), for a
// sender that allowed it (DF clear) and a path that needs it. Used BEFORE encapsulation (the inner packet
// is fragmented, never the outer one: RFC 4459 §3 "inner fragmentation"), so the tunnel's receiver only
// decapsulates and the destination host reassembles, as it would behind any router.
//
// Every fragment is a complete Ethernet frame in a fresh pool packet: the original L2 header, the IP header
// (the first fragment with all options, later ones with only the options whose copy bit is set), and a
// slice of the payload; total length, MF, fragment offset and header checksum rewritten. A packet that is
// already a fragment is cut further (its offset and MF carry over). The original packet is left as is.
#pragma once

#include <cstdint>

#include "net/packet.hpp"

namespace pspgw::net {

enum class FragmentResult : uint8_t {
  kDone,        // every fragment appended to `out`
  kNoRoom,      // `out` has too little room for all of them, or the pool ran dry; `out` unchanged
  kMalformed,   // not Ethernet + IPv4 at l3_offset with consistent lengths; `out` unchanged
  kMtuTooSmall  // the MTU cannot hold the IP header and 8 payload bytes
};

// Appends the fragments of `frame` (IPv4 at l3_offset) to `out`, each at most `mtu` bytes of IP, with a
// copy of frame.meta. All or nothing.
FragmentResult fragment_ipv4(const Packet& frame, uint32_t l3_offset, uint32_t mtu, PacketPool& pool,
                             PacketBatch& out);

}  // namespace pspgw::net
