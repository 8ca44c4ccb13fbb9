// The outer Ethernet/IP/UDP headers of PSP packets that cross the kernel's UDP socket.
//
// The kernel strips them on receive and builds them on send, but the pipeline works on whole frames, as
// DOCA's does on the wire (ROOT matches UDP port 1000; PSP_DECRYPT and INGR_ACL address the PSP header
// and the inner packet through the outer headers; sampled packets look like wire packets). So received
// datagrams get their outer headers written back into the headroom (from the addresses recvmmsg reported),
// and frames leaving toward the UDP port are reduced to the UDP payload with the destination taken from
// their outer headers. Both are a few stores per packet; neither moves payload bytes.
#pragma once

#include <cstdint>

#include "net/addr.hpp"
#include "net/packet.hpp"

namespace pspgw::gateway {

struct OuterEndpoint {
  net::IpAddr local;       // our outer address (config.local-pip)
  uint16_t port = 1000;    // our UDP port
  net::MacAddr local_mac;  // our side of the wire, as written into synthesized Ethernet headers
};

// Per packet of `batch` (UDP payloads from recvmmsg, meta.peer/peer_port = source): prepends
// Ethernet + IPv4/IPv6 + UDP headers addressed peer -> local. Returns how many packets were wrapped; a
// packet without headroom (never with pool defaults) or with a peer of another family is left unwrapped and
// gets meta.drop_reason = drop_reason.
std::size_t wrap_received(net::PacketBatch& batch, const OuterEndpoint& local, uint8_t drop_reason);

// The reverse for one frame about to be sent: meta.peer/peer_port := outer IP destination / UDP
// destination port; the frame is reduced to the UDP payload. False (frame untouched) if it is not
// Ethernet + IPv4/IPv6 + UDP.
bool unwrap_for_send(net::Packet& frame);

// Samples of a super-packet (segment_seal.hpp): the segments of an encapsulated super-packet are cut with
// its outer headers and PSP header in front (ports::GsoSegmenter::start_at), where its inner IP packet
// begins (0: not Ethernet + IPv4/IPv6 + UDP + a PSP header) ...
uint32_t encapped_inner_offset(std::span<const uint8_t> frame);
// ... and each segment then gets ICV room and outer lengths of its own (the super-packet's stated its
// first segment's). False (frame untouched) when it is not Ethernet + IPv4/IPv6 + UDP or has no tailroom.
bool finish_encapped_segment(net::Packet& frame);

}  // namespace pspgw::gateway
