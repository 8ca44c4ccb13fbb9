// Receive-side coalescing for TAP writes (what Linux GRO does for a NIC, and wireguard-go's TUN offload for
// its TUN writes): consecutive frames of one TCP (or UDP) flow become one virtio-net GSO frame, so the
// kernel takes a whole train of segments in one write() and runs its stack once for it.
//
// A write of n > 1 frames is [virtio header][headers of the first frame, patched][L4 payload of frame 1]
// ... [L4 payload of frame n]: the payloads never move (one iovec each). The virtio header says GSO
// TCPV4/TCPV6 (or UDP_L4 when the TAP has USO), gso_size = the first payload's length, and
// VIRTIO_NET_HDR_F_NEEDS_CSUM with the L4 checksum field holding the pseudo-header sum: the kernel never
// needs the sum for local delivery, and computes it if it segments the frame again.
//
// Frames merge only when GsoSegmenter (gso.hpp: Linux's tcp_gso_segment rules) cuts the coalesced frame
// back into exactly the same bytes, so coalescing loses nothing but checksums the sender got wrong (the
// segments came out of PSP decap: the ICV authenticated every byte since the peer gateway). The rules:
//   same L2 header; IPv4 (no fragment) or IPv6 (no extension header) with every header byte equal except
//   the lengths, IPv4 ID (+1 per frame) and header checksum (valid); TCP with every header byte equal
//   except the sequence number (contiguous), the checksum and the flags: ACK/ECE alike, CWR only on the
//   first, PSH only on the last, never SYN/FIN/RST/URG; UDP with equal header but length and checksum
//   (non-zero); every payload as long as the first, the last one possibly shorter; at most 64 KiB of IP.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "ports/vnet_hdr.hpp"

namespace pspgw::ports {

// Ethernet + one VLAN tag + IPv4 with options (60) or IPv6 (40) + TCP with options (60).
inline constexpr std::size_t kMaxCoalescedHeader = 14 + 4 + 60 + 60;

// One TAP write planned by plan_coalesced_writes.
struct CoalescedWrite {
  VirtioNetHdr vnet{};   // all zero for a frame written as it is
  uint16_t first = 0;    // index of its first frame
  uint16_t count = 0;    // frames it carries; 1: the frame unchanged, hdr unused
  uint16_t hdr_len = 0;  // count > 1: bytes of `hdr`; each frame contributes its bytes from hdr_len on
  std::array<uint8_t, kMaxCoalescedHeader> hdr{};
};

struct CoalesceOptions {
  bool tcp = true;   // TSO frames (every kernel with IFF_VNET_HDR takes them)
  bool udp = false;  // USO frames (GSO_UDP_L4): only where the kernel took TUN_F_USO4/6
};

// Plans the writes of `frames` (complete Ethernet frames, in order): one per run of consecutive frames
// that merge under the rules above, in frame order. `out` needs room for frames.size() writes. Returns
// how many it planned. Reads only the headers; no allocation.
std::size_t plan_coalesced_writes(std::span<const std::span<const uint8_t>> frames,
                                  const CoalesceOptions& opt, std::span<CoalescedWrite> out);

// The frame bytes of `w` (without the virtio header) laid out contiguously in `out`, as the kernel reads
// them; returns the length, or 0 if `out` is too small. For tests and fuzzing: the TAP writes the same
// bytes from iovecs.
std::size_t flatten_write(const CoalescedWrite& w, std::span<const std::span<const uint8_t>> frames,
                          std::span<uint8_t> out);

}  // namespace pspgw::ports
