// The gateway's PSP encap and seal of Ethernet frames (shared/spec/psp-protocol.md §1-§3): what the daemon's
// encap() and encrypt() actions run and what bench/psp_seal times. Decap is encap.hpp's (plan_decap,
// prepare_open, finish_decap), shared with psp-pcap; psp-pcap's encap differs only in how it frames the
// outer headers (a copy of the inner header, as the google/psp reference tools do: encap.hpp).
//
// Everything fixed per SA is laid out once, when the SA is installed, as a template of the frame's
// first bytes: [Eth][outer IPv4/IPv6][UDP 1000][PSP header (+VC)]. Per packet, encap copies the template
// with one fixed-size copy (four shapes: IPv4/IPv6 x VC) and patches only what varies: the outer lengths
// and IPv4 checksum (an incremental sum over the template's precomputed one), the UDP source port and
// IPv6 flow label (the inner flow's hash, §1), the Next Header and the IV. The payload never moves.
//
// The outer Ethernet addresses are the sender's and come with each call (two fixed-size stores).
//
//   tunnel:    [Eth][inner IP ...]            -> [Eth][outer IP][UDP][PSP, NH 4/41][inner IP ...][ICV room]
//   transport: [Eth][IP][ext hdrs][L4 ...]    -> [Eth][outer IP][UDP][PSP, NH = L4 proto][L4 ...][ICV room]
//              (the kernel-socket gateway rebuilds the IP header from the outer one: psp_actions.hpp)
//
// Seal (prepare_frame_seal) is a separate step because the pipeline samples between the two (EGR_SAMP
// sets the S bit in the written header); it points one AEAD op at the packet in place: nonce = SPI || IV,
// AAD = header + clear bytes, text = the rest, tag into the ICV room.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

#include "base/byteorder.hpp"
#include "base/result.hpp"
#include "crypto/aead.hpp"
#include "net/addr.hpp"
#include "net/headers.hpp"
#include "net/packet.hpp"
#include "psp/batch.hpp"
#include "psp/drop_reason.hpp"
#include "psp/encap.hpp"
#include "psp/header.hpp"
#include "psp/seal.hpp"

namespace pspgw::psp {

// The outer IP addresses of one SA (same family).
struct OuterHeaders {
  net::IpAddr local;
  net::IpAddr peer;
  uint8_t ttl = 64;
};

// The outer Ethernet addresses, destination then source as on the wire: the sender's, not the SA's.
using EthAddrs = std::array<uint8_t, 12>;
inline EthAddrs eth_addrs(const net::MacAddr& dst, const net::MacAddr& src) {
  EthAddrs a;
  std::memcpy(a.data(), dst.bytes.data(), 6);
  std::memcpy(a.data() + 6, src.bytes.data(), 6);
  return a;
}

// Why encap refused a frame (the pipeline maps these onto its drop codes).
enum class EncapError : uint8_t {
  kNone,
  kBadFrame,  // not Ethernet + a well-formed IPv4/IPv6 packet
  kFragment,  // transport: an IP fragment (the L4 segment PSP carries is not in one packet)
  kTooBig,    // no headroom/tailroom, or the outer IP length would pass 64 KiB
};

class EncapTemplate {
 public:
  static constexpr std::size_t kMaxSize = 14 + 40 + 8 + kPspHeaderSize + kPspVcSize;  // 86

  // Refuses what no packet could be sealed with: a version other than 0..3 (kBadVersion), a crypt
  // offset above 63 (kBadCryptOffset), addresses of two families or none (kBadOuterPacket).
  static Result<EncapTemplate, DropReason> make(const SealParams& sa, const OuterHeaders& outer);

  uint32_t size() const { return size_; }              // bytes encap puts before the payload
  uint32_t psp_offset() const { return psp_offset_; }  // of the PSP header in an encapsulated frame
  uint32_t psp_header_size() const { return hdr_len_; }
  uint32_t spi() const { return spi_; }
  uint8_t version() const { return version_; }
  crypto::AeadAlg alg() const { return alg_; }  // of the version
  uint8_t crypt_offset() const { return crypt_offset_; }
  // The PSP header bytes this template writes (Next Header and IV zero).
  std::span<const uint8_t> psp_header() const { return {bytes_.data() + psp_offset(), hdr_len_}; }
  // The header's first four bytes as a native load of them reads, with the Next Header and the S bit masked
  // out (kHeadMask): what detail::header_of compares in one go.
  static constexpr uint32_t kHeadMask =
      std::endian::native == std::endian::little ? 0x7fffff00u : 0x00ffff7fu;
  uint32_t head_word() const { return head_word_; }

  // Writes the outer headers and the PSP header of a payload of `payload_len` bytes in front of `payload`
  // (which must have size() bytes of headroom): `at` = payload - size().
  inline void write(uint8_t* at, const EthAddrs& eth, uint32_t payload_len, uint8_t next_header, uint64_t iv,
                    uint32_t hash) const;

 private:
  enum class Shape : uint8_t { kV4, kV4Vc, kV6, kV6Vc };
  template <std::size_t N>
  static void copy(uint8_t* to, const uint8_t* from) {
    std::memcpy(to, from, N);
  }

  alignas(16) std::array<uint8_t, kMaxSize> bytes_{};
  uint32_t ip_sum_ = 0;  // IPv4: one's complement sum of the outer header with length and checksum 0
  uint32_t spi_ = 0;
  uint32_t head_word_ = 0;
  uint8_t size_ = 0;
  uint8_t psp_offset_ = 0;  // size_ - hdr_len_
  uint8_t hdr_len_ = 0;
  uint8_t version_ = 0;
  uint8_t crypt_offset_ = 0;
  Shape shape_ = Shape::kV4;
  crypto::AeadAlg alg_ = crypto::AeadAlg::kAesGcm128;
};

// encap(): frame -> [Eth][outer][UDP][PSP header][payload][ICV room] with the template's SA, Ethernet
// addresses `eth`, IV `iv`, the flow hash `hash` (UDP source port, IPv6 flow label). A refused frame is to
// be dropped (it may have been trimmed of Ethernet padding). Tunnel: the payload is the inner IP packet;
// transport: its L4 segment.
// Inline (below): the daemon's encap() loop calls it per packet, and a call was a fifth of its cost at 64 B.
inline EncapError encap_tunnel(net::Packet& pkt, const EncapTemplate& t, const EthAddrs& eth, uint64_t iv,
                               uint32_t hash);
EncapError encap_transport(net::Packet& pkt, const EncapTemplate& t, const EthAddrs& eth, uint64_t iv,
                           uint32_t hash);
// encap() of a super-packet (a TAP TSO/USO frame, cut into segments only when sealed:
// gateway/segment_seal.hpp): the template goes in front of the inner IP packet as for encap_tunnel, but
// the outer lengths state the first segment's (`first_segment_len`: its inner IP packet's length), so
// the frame reads as that segment to everything before the seal (EGR_SAMP's S bit, a sample's headers);
// no ICV room. kBadFrame also when first_segment_len passes the inner packet.
EncapError encap_tunnel_gso(net::Packet& pkt, const EncapTemplate& t, const EthAddrs& eth, uint64_t iv,
                            uint32_t hash, uint32_t first_segment_len);

// encrypt(): points `op` at a frame encap_* made, to seal it in place with `key`, the key of `t`'s SA.
// The header must be what `t` writes, up to the S bit and the SPI: a re-key may have replaced the SA
// between encap and encrypt, and then the packet names the SPI of the key that seals it (t's; the peer
// has both open, make before break). kTooShort: not a frame of this shape; kBadHeader: written by an SA
// with another version, VC or crypt offset; kBadCryptOffset: the clear bytes pass the payload.
inline DropReason prepare_frame_seal(net::Packet& pkt, const EncapTemplate& t, const crypto::AeadKey& key,
                                     crypto::AeadOp& op);

// The seal of one segment of a super-packet (gateway/segment_seal.hpp): `psp` is the segment's PSP header,
// already written (copied from the encapsulated super-packet's, so the S bit and VC are the packet's),
// followed by `body` bytes in place (the VC, if any, the segment's inner IP and L4 headers, its payload).
// Checks the header as prepare_frame_seal does, writes t's SPI and `iv`, and points `op` at the body
// sealed in place, the ICV right after it (the caller sized the segment for it).
inline DropReason prepare_segment_seal(uint8_t* psp, uint32_t body, const EncapTemplate& t,
                                       const crypto::AeadKey& key, uint64_t iv, crypto::AeadOp& op);

// ---- inline: the per-packet copy and patch -----------------------------------------------------------

namespace detail {

inline uint16_t fold_checksum(uint32_t sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// UDP source port (§1: entropy for ECMP/RSS): the inner flow's hash in the dynamic port range.
inline uint16_t entropy_port(uint32_t hash) {
  return static_cast<uint16_t>(0xc000 | (hash & 0x3fff));
}

}  // namespace detail

inline void EncapTemplate::write(uint8_t* at, const EthAddrs& eth, uint32_t payload_len, uint8_t next_header,
                                 uint64_t iv, uint32_t hash) const {
  constexpr uint32_t kEth = 14, kV4 = 20, kV6 = 40, kUdp = 8;
  const uint32_t udp_len = kUdp + hdr_len_ + payload_len + static_cast<uint32_t>(kPspIcvSize);
  uint8_t* ip = at + kEth;
  uint8_t* udp;
  switch (shape_) {
    case Shape::kV4:
      copy<kEth + kV4 + kUdp + kPspHeaderSize>(at, bytes_.data());
      break;
    case Shape::kV4Vc:
      copy<kEth + kV4 + kUdp + kPspHeaderSize + kPspVcSize>(at, bytes_.data());
      break;
    case Shape::kV6:
      copy<kEth + kV6 + kUdp + kPspHeaderSize>(at, bytes_.data());
      break;
    case Shape::kV6Vc:
      copy<kEth + kV6 + kUdp + kPspHeaderSize + kPspVcSize>(at, bytes_.data());
      break;
  }
  std::memcpy(at, eth.data(), eth.size());
  if (shape_ == Shape::kV4 || shape_ == Shape::kV4Vc) {
    const uint32_t total = kV4 + udp_len;
    store_be16(ip + 2, static_cast<uint16_t>(total));
    store_be16(ip + 10, detail::fold_checksum(ip_sum_ + total));
    udp = ip + kV4;
  } else {
    store_be32(ip, 0x60000000u | (hash & 0xfffff));  // flow label: the inner flow's entropy (RFC 6438)
    store_be16(ip + 4, static_cast<uint16_t>(udp_len));
    udp = ip + kV6;
  }
  store_be16(udp, detail::entropy_port(hash));
  store_be16(udp + 4, static_cast<uint16_t>(udp_len));
  uint8_t* psp = udp + kUdp;
  psp[0] = next_header;
  store_be64(psp + 8, iv);
}

// Where the PSP payload of a frame lies and what its Next Header is.
struct Payload {
  uint32_t offset = 0;
  uint32_t len = 0;
  uint8_t next_header = 0;
};

// Tunnel mode's payload: the whole IP packet after Ethernet (+ one VLAN tag), its length as its header
// states (within the frame); the ethertype must name its family. encap_tunnel's parse, which the gateway's
// flow hash also uses to find the inner packet.
inline bool tunnel_payload(std::span<const uint8_t> f, Payload& out) {
  constexpr uint32_t kEth = sizeof(net::EthHdr);
  if (f.size() < kEth) return false;
  uint16_t type = load_be16(&f[12]);
  uint32_t l2 = kEth;
  if (type == net::kEtherTypeVlan) {
    if (f.size() < kEth + 4) return false;
    type = load_be16(&f[16]);
    l2 = kEth + 4;
  }
  const steps::InnerIp ip = steps::check_inner_ip(f.subspan(l2));
  const uint16_t want = ip.next_header == net::kIpProtoIpv4 ? net::kEtherTypeIpv4 : net::kEtherTypeIpv6;
  if (ip.next_header == 0 || type != want) return false;
  out = {l2, ip.length, ip.next_header};
  return true;
}

namespace detail {

// The template in front of the payload `pl` (encap_tunnel, encap_tunnel_gso, encap_transport). `wire_len`:
// the payload length the outer headers state: pl.len, or for a super-packet its first segment's
// (encap_tunnel_gso), which also gets no ICV room (its segments get their own).
inline EncapError encap_payload(net::Packet& pkt, const EncapTemplate& t, const EthAddrs& eth,
                                const Payload& pl, uint64_t iv, uint32_t hash, uint32_t wire_len,
                                bool icv_room) {
  constexpr uint32_t kEth = sizeof(net::EthHdr), kUdp = sizeof(net::UdpHdr), kMaxIpLength = 0xffff;
  const uint32_t udp_len = kUdp + t.psp_header_size() + wire_len + static_cast<uint32_t>(kPspIcvSize);
  const uint32_t outer_ip = t.psp_offset() - kEth - kUdp;
  // IPv4 counts its own header in the total length; IPv6's payload length is the UDP length.
  if (udp_len + (outer_ip == sizeof(net::Ipv4Hdr) ? outer_ip : 0) > kMaxIpLength) return EncapError::kTooBig;
  // [template][payload][ICV room] in place of [L2][payload][Ethernet padding]: the padding is not part of
  // the packet.
  const uint32_t icv = icv_room ? static_cast<uint32_t>(kPspIcvSize) : 0;
  if (!pkt.reframe(static_cast<int32_t>(pl.offset) - static_cast<int32_t>(t.size()), t.size() + pl.len + icv))
    return EncapError::kTooBig;
  t.write(pkt.data(), eth, wire_len, pl.next_header, iv, hash);
  return EncapError::kNone;
}

// The PSP header at `psp` is one `t` writes, up to the S bit, the Next Header, the SPI and the IV: bytes
// 1-3 compared as one masked word (byte by byte they were a dozen instructions a packet), then the VC.
inline bool header_of(const uint8_t* psp, const EncapTemplate& t) {
  uint32_t head = 0;
  std::memcpy(&head, psp, sizeof(head));
  return (head & EncapTemplate::kHeadMask) == t.head_word() &&
         (t.psp_header_size() == kPspHeaderSize ||
          std::memcmp(psp + kPspHeaderSize, t.psp_header().data() + kPspHeaderSize, kPspVcSize) == 0);
}

}  // namespace detail

inline EncapError encap_tunnel(net::Packet& pkt, const EncapTemplate& t, const EthAddrs& eth, uint64_t iv,
                               uint32_t hash) {
  Payload pl;
  if (!tunnel_payload(pkt.bytes(), pl)) return EncapError::kBadFrame;
  return detail::encap_payload(pkt, t, eth, pl, iv, hash, pl.len, true);
}

namespace detail {

// The seal checks and the op of the PSP packet at `psp` (its header t's, `body` bytes after the 16-byte
// header: VC + payload, then room for the ICV), sealed in place under `iv`; writes t's SPI.
inline DropReason point_seal(uint8_t* psp, uint32_t body, const EncapTemplate& t, const crypto::AeadKey& key,
                             uint64_t iv, crypto::AeadOp& op) {
  if (!header_of(psp, t)) return DropReason::kBadHeader;
  if (t.alg() != key.alg()) return DropReason::kBadVersion;
  const uint32_t clear = t.crypt_offset() * kCryptOffsetUnit;
  if (clear > body) return DropReason::kBadCryptOffset;
  store_be32(psp + 4, t.spi());
  point_op(psp, t.spi(), iv, static_cast<uint32_t>(kPspHeaderSize) + clear, body - clear, key, op);
  return DropReason::kNone;
}

}  // namespace detail

inline DropReason prepare_frame_seal(net::Packet& pkt, const EncapTemplate& t, const crypto::AeadKey& key,
                                     crypto::AeadOp& op) {
  const uint32_t off = t.psp_offset();
  if (pkt.size() < off + t.psp_header_size() + kPspIcvSize) return DropReason::kTooShort;
  uint8_t* psp = pkt.data() + off;
  const auto body = static_cast<uint32_t>(pkt.size() - off - kPspHeaderSize - kPspIcvSize);  // VC + payload
  return detail::point_seal(psp, body, t, key, load_be64(psp + 8), op);
}

inline DropReason prepare_segment_seal(uint8_t* psp, uint32_t body, const EncapTemplate& t,
                                       const crypto::AeadKey& key, uint64_t iv, crypto::AeadOp& op) {
  store_be64(psp + 8, iv);
  return detail::point_seal(psp, body, t, key, iv, op);
}

}  // namespace pspgw::psp
