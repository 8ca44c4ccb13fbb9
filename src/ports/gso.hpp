// Software segmentation of GSO super-packets (what a NIC does for TSO/USO), in user space.
//
// A TAP with TSO/USO offloads hands us TCP and UDP super-packets of up to 64 KiB; the network side needs
// MTU-sized packets, each sealed on its own. GsoSegmenter cuts a super-packet into frames of at most
// gso_size L4 payload bytes, written into fresh pool packets. It is resumable, so the gateway can
// segment one batch, encrypt and send it, and go on with the rest ("segment while encrypting", as
// wireguard-go does), and no super-packet ever needs more than a batch of room at once.
//
// Per segment (Linux tcp_gso_segment / __udp_gso_segment / inet_gso_segment):
//   IPv4: total length, ID (+1 per segment), header checksum;  IPv6: payload length;
//   TCP: sequence number (+ bytes before it), FIN and PSH only on the last, CWR only on the first, checksum;
//   UDP (USO): each segment is its own datagram: length and checksum.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "base/result.hpp"
#include "net/packet.hpp"
#include "net/parse.hpp"

namespace pspgw::ports {

enum class GsoError : uint8_t {
  kBadHeaders,     // not Ethernet + IPv4/IPv6 + TCP/UDP, an IPv4 fragment, or lengths that do not add up
  kBadGsoSize,     // gso_size is 0
  kSegmentTooBig,  // headers + gso_size do not fit a pool buffer
};
std::string_view to_string(GsoError e);

// Finishes a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM): the field at csum_start + csum_offset holds
// the pseudo-header sum; adds the bytes from csum_start to the end of the frame and stores the result.
// False (frame untouched) if the offsets are out of bounds.
bool complete_checksum(std::span<uint8_t> frame, uint16_t csum_start, uint16_t csum_offset);

class GsoSegmenter {
 public:
  // Validates an Ethernet frame holding a TCP or UDP super-packet (IPv4 or IPv6, with at most one VLAN
  // tag). The frame's bytes must stay valid and unchanged until done().
  static Result<GsoSegmenter, GsoError> start(std::span<const uint8_t> frame, uint16_t gso_size);
  // The same for an IP packet at `l3_offset` of `frame` behind anything but Ethernet (an encapsulated
  // super-packet: [outer headers][PSP header][inner IP ...]); the bytes in front are copied as they are.
  static Result<GsoSegmenter, GsoError> start_at(std::span<const uint8_t> frame, uint16_t l3_offset,
                                                 uint16_t gso_size);

  // Appends the next segments to `out`, each with a copy of `meta` (gso_size cleared). Stops when every
  // segment is out, `out` is full or `pool` is empty. Returns how many were appended.
  Result<std::size_t, GsoError> next(net::PacketPool& pool, net::PacketBatch& out, const net::Metadata& meta);

  // One segment, for a caller that places it itself (the gateway's segment seal: gateway/segment_seal.hpp):
  // writes segment `index` to `seg`, the header_len() bytes in front (the frame's leading bytes, then its IP
  // and L4 headers fixed for this segment) and its payload copied and summed in one pass. Returns the
  // payload's length (payload(index).size()).
  uint32_t write_segment(uint8_t* seg, std::size_t index) const;
  std::span<const uint8_t> payload(std::size_t index) const {
    const uint32_t off = static_cast<uint32_t>(index) * gso_size_;
    return {frame_ + hdr_len_ + off, payload_len_ - off < gso_size_ ? payload_len_ - off : gso_size_};
  }

  bool done() const { return emitted_ >= payload_len_; }
  // Number of segments in all: ceil(payload / gso_size).
  std::size_t segment_count() const { return (payload_len_ + gso_size_ - 1) / gso_size_; }
  uint32_t header_len() const { return hdr_len_; }  // leading bytes + IP + L4 headers
  uint16_t l3_offset() const { return l3_off_; }
  uint16_t l4_offset() const { return l4_off_; }
  uint16_t gso_size() const { return gso_size_; }
  uint8_t l4_proto() const { return l4_proto_; }  // net::kIpProtoTcp or net::kIpProtoUdp
  bool ipv4() const { return v4_; }

 private:
  GsoSegmenter() = default;
  static Result<GsoSegmenter, GsoError> from(std::span<const uint8_t> frame, const net::IpInfo& ip,
                                             uint16_t gso_size);
  void write_at(uint8_t* seg, uint32_t payload_off, uint32_t len, std::size_t index) const;
  void fix_ip(uint8_t* seg, uint32_t len, std::size_t index) const;
  void fix_l4(uint8_t* seg, uint32_t payload_off, uint32_t len, uint32_t payload_sum) const;

  const uint8_t* frame_ = nullptr;
  uint32_t payload_len_ = 0;  // L4 payload bytes of the super-packet
  uint32_t emitted_ = 0;      // payload bytes already written into segments
  uint16_t gso_size_ = 0;
  uint16_t l3_off_ = 0;
  uint16_t l4_off_ = 0;
  uint16_t hdr_len_ = 0;  // L2 + L3 + L4 headers, copied in front of every segment
  uint8_t l4_proto_ = 0;
  bool v4_ = false;
};

}  // namespace pspgw::ports
