// The virtio-net header that a TAP opened with IFF_VNET_HDR puts in front of every frame (virtio spec 1.x
// §5.1.6 "struct virtio_net_hdr", legacy layout without num_buffers: 10 bytes, TUN's default size).
// It carries the offload state: which GSO type a super-packet is, its segment size, and where a partial
// checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM) must be finished.
#pragma once

#include <bit>
#include <cstdint>

namespace pspgw::ports {

// Fields are in the device's byte order, which for TUN is little-endian on a little-endian host (and
// only there without TUNSETVNETLE); the gateway targets x86-64 and arm64 little-endian.
static_assert(std::endian::native == std::endian::little, "virtio header fields are read in host order");

struct VirtioNetHdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;      // bytes of headers (L2..L4) in front of the payload of a GSO frame
  uint16_t gso_size;     // L4 payload bytes per segment
  uint16_t csum_start;   // offset where checksumming starts (the L4 header)
  uint16_t csum_offset;  // offset of the checksum field from csum_start
};
static_assert(sizeof(VirtioNetHdr) == 10);

inline constexpr uint8_t kVnetFlagNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
inline constexpr uint8_t kVnetFlagDataValid = 2;  // VIRTIO_NET_HDR_F_DATA_VALID

inline constexpr uint8_t kVnetGsoNone = 0;    // VIRTIO_NET_HDR_GSO_NONE
inline constexpr uint8_t kVnetGsoTcpV4 = 1;   // VIRTIO_NET_HDR_GSO_TCPV4
inline constexpr uint8_t kVnetGsoTcpV6 = 4;   // VIRTIO_NET_HDR_GSO_TCPV6
inline constexpr uint8_t kVnetGsoUdpL4 = 5;   // VIRTIO_NET_HDR_GSO_UDP_L4 (USO; not in Debian 12 headers)
inline constexpr uint8_t kVnetGsoEcn = 0x80;  // VIRTIO_NET_HDR_GSO_ECN: the TCP flow uses ECN

}  // namespace pspgw::ports
