#include "net/icmp_too_big.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include "base/byteorder.hpp"
#include "net/checksum.hpp"
#include "net/headers.hpp"

namespace pspgw::net {
namespace {

constexpr uint8_t kErrorTtl = 64;
constexpr uint8_t kTosInternetControl = 0xc0;  // IPTOS_PREC_INTERNETCONTROL, as Linux's icmp_send
constexpr uint32_t kMaxL2 = sizeof(EthHdr) + sizeof(VlanTag);

// RFC 792 / RFC 1122 §3.2.2: the ICMPv4 types that are errors (never answered with another error).
bool icmpv4_error_type(uint8_t type) {
  return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}

bool v4_unicast(const uint8_t* a) {
  const bool zero = a[0] == 0;
  const bool loopback = a[0] == 127;
  const bool class_d_e = a[0] >= 224;  // multicast, reserved and the limited broadcast
  return !zero && !loopback && !class_d_e;
}

bool v6_unicast(const uint8_t* a) {
  static constexpr std::array<uint8_t, 16> kZero{};
  return a[0] != 0xff && std::memcmp(a, kZero.data(), kZero.size()) != 0;
}

// The new frame: [L2 with MACs swapped][`hdr_len` bytes of new headers][quote of `quote` bytes], the quote
// being the original IP packet where it already lies. Returns where the new IP header goes.
uint8_t* open_in_front(Packet& frame, uint32_t l3_offset, uint32_t hdr_len, uint32_t quote) {
  std::array<uint8_t, kMaxL2> l2{};
  std::memcpy(l2.data(), frame.data(), l3_offset);
  if (frame.push_front(hdr_len) == nullptr) return nullptr;
  uint8_t* d = frame.data();
  std::memcpy(d, l2.data() + 6, 6);  // to the sender's MAC
  std::memcpy(d + 6, l2.data(), 6);  // from the MAC it sent to
  std::memcpy(d + 12, l2.data() + 12, l3_offset - 12);
  frame.trim_back(frame.size() - (l3_offset + hdr_len + quote));
  return d + l3_offset;
}

bool l2_unicast(const Packet& frame) {
  return (frame.data()[0] & 1) == 0;  // group bit of the destination MAC
}

}  // namespace

TooBigResult make_frag_needed(Packet& frame, uint32_t l3_offset, uint16_t next_hop_mtu) {
  if (l3_offset < sizeof(EthHdr) || l3_offset > kMaxL2 || frame.size() < l3_offset + sizeof(Ipv4Hdr))
    return TooBigResult::kMalformed;
  const uint8_t* ip = frame.data() + l3_offset;
  const uint32_t ihl = static_cast<uint32_t>(ip[0] & 0x0f) * 4;
  const uint32_t present = frame.size() - l3_offset;
  const uint32_t total = load_be16(ip + 2);
  if ((ip[0] >> 4) != 4 || ihl < sizeof(Ipv4Hdr) || total < ihl || total > present)
    return TooBigResult::kMalformed;
  if ((load_be16(ip + 6) & kIpv4FragOffsetMask) != 0) return TooBigResult::kNotEligible;
  if (!v4_unicast(ip + 12) || !v4_unicast(ip + 16) || !l2_unicast(frame)) return TooBigResult::kNotEligible;
  if (ip[9] == kIpProtoIcmp && (total < ihl + 1 || icmpv4_error_type(ip[ihl])))
    return TooBigResult::kNotEligible;
  if (frame.headroom() < kIcmpV4ErrorHeaders) return TooBigResult::kNoRoom;

  std::array<uint8_t, 4> src{};
  std::array<uint8_t, 4> dst{};
  std::memcpy(src.data(), ip + 12, 4);
  std::memcpy(dst.data(), ip + 16, 4);
  const uint32_t quote = std::min(total, kIcmpV4QuoteLimit - kIcmpV4ErrorHeaders);
  uint8_t* nip = open_in_front(frame, l3_offset, kIcmpV4ErrorHeaders, quote);
  std::memset(nip, 0, kIcmpV4ErrorHeaders);
  nip[0] = 0x45;
  nip[1] = kTosInternetControl;
  store_be16(nip + 2, static_cast<uint16_t>(kIcmpV4ErrorHeaders + quote));
  nip[8] = kErrorTtl;
  nip[9] = kIpProtoIcmp;
  std::memcpy(nip + 12, dst.data(), 4);  // from the address the sender was talking to
  std::memcpy(nip + 16, src.data(), 4);
  ipv4_set_checksum(nip);
  uint8_t* icmp = nip + sizeof(Ipv4Hdr);
  icmp[0] = kIcmpDestUnreachable;
  icmp[1] = kIcmpCodeFragNeeded;
  store_be16(icmp + 6, next_hop_mtu);  // RFC 1191 §4: bytes 4..5 unused (zero), 6..7 the MTU
  store_be16(icmp + 2, csum_fold(csum_partial({icmp, 8 + quote})));
  return TooBigResult::kBuilt;
}

TooBigResult make_packet_too_big(Packet& frame, uint32_t l3_offset, uint32_t mtu) {
  if (l3_offset < sizeof(EthHdr) || l3_offset > kMaxL2 || frame.size() < l3_offset + sizeof(Ipv6Hdr))
    return TooBigResult::kMalformed;
  const uint8_t* ip = frame.data() + l3_offset;
  const uint32_t total = sizeof(Ipv6Hdr) + load_be16(ip + 4);
  if ((ip[0] >> 4) != 6 || total > frame.size() - l3_offset) return TooBigResult::kMalformed;
  // RFC 4443 §2.4 (e.3) allows a Packet Too Big for a multicast destination, but we would have to send it
  // from that address: not answered, like the other non-unicast cases.
  if (!v6_unicast(ip + 8) || !v6_unicast(ip + 24)) return TooBigResult::kNotEligible;
  // An ICMPv6 error (types 0..127) right behind the header is never answered; one behind extension
  // headers is not recognised (the rule's purpose, no error storms between two routers, is still served:
  // we answer only our own workloads, rate-limited).
  if (ip[6] == kIpProtoIcmpv6 && (total < sizeof(Ipv6Hdr) + 1 || ip[sizeof(Ipv6Hdr)] < 128))
    return TooBigResult::kNotEligible;
  if (frame.headroom() < kIcmpV6ErrorHeaders) return TooBigResult::kNoRoom;

  std::array<uint8_t, 16> src{};
  std::array<uint8_t, 16> dst{};
  std::memcpy(src.data(), ip + 8, 16);
  std::memcpy(dst.data(), ip + 24, 16);
  const uint32_t quote = std::min(total, kIcmpV6QuoteLimit - kIcmpV6ErrorHeaders);
  uint8_t* nip = open_in_front(frame, l3_offset, kIcmpV6ErrorHeaders, quote);
  std::memset(nip, 0, kIcmpV6ErrorHeaders);
  store_be32(nip, 0x60000000u);
  store_be16(nip + 4, static_cast<uint16_t>(8 + quote));
  nip[6] = kIpProtoIcmpv6;
  nip[7] = kErrorTtl;
  std::memcpy(nip + 8, dst.data(), 16);
  std::memcpy(nip + 24, src.data(), 16);
  uint8_t* icmp = nip + sizeof(Ipv6Hdr);
  icmp[0] = kIcmpv6PacketTooBig;
  store_be32(icmp + 4, mtu);
  store_be16(icmp + 2, l4_checksum(nip, kIpProtoIcmpv6, {icmp, 8 + quote}));
  return TooBigResult::kBuilt;
}

}  // namespace pspgw::net
