// Wire formats of the headers the gateway touches, each declared once with its size asserted.
// All fields are byte-order types; structs have alignment 1 and may overlay any byte offset.
#pragma once

#include <array>
#include <cstdint>

#include "base/byteorder.hpp"

namespace pspgw::net {

// Spec constants.
inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint16_t kEtherTypeVlan = 0x8100;
inline constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
inline constexpr uint8_t kIpProtoHopOpts = 0;
inline constexpr uint8_t kIpProtoIcmp = 1;
inline constexpr uint8_t kIpProtoIpv4 = 4;  // IP-in-IP; PSP Next Header for an inner IPv4 packet
inline constexpr uint8_t kIpProtoTcp = 6;
inline constexpr uint8_t kIpProtoUdp = 17;
inline constexpr uint8_t kIpProtoIpv6 = 41;
inline constexpr uint8_t kIpProtoRouting = 43;
inline constexpr uint8_t kIpProtoFragment = 44;
inline constexpr uint8_t kIpProtoIcmpv6 = 58;
inline constexpr uint8_t kIpProtoNone = 59;
inline constexpr uint8_t kIpProtoDstOpts = 60;

using MacBytes = std::array<uint8_t, 6>;

struct EthHdr {
  MacBytes dst;
  MacBytes src;
  Be16 ethertype;
};
static_assert(sizeof(EthHdr) == 14);

struct VlanTag {
  Be16 tci;
  Be16 ethertype;
};
static_assert(sizeof(VlanTag) == 4);

struct Ipv4Hdr {
  uint8_t version_ihl;  // version 4 in the high nibble, IHL (32-bit words) in the low
  uint8_t tos;
  Be16 total_length;
  Be16 id;
  Be16 frag_off;  // flags (3 bits: reserved, DF, MF) + fragment offset (13 bits)
  uint8_t ttl;
  uint8_t protocol;
  Be16 checksum;
  std::array<uint8_t, 4> src;
  std::array<uint8_t, 4> dst;

  uint8_t version() const { return version_ihl >> 4; }
  uint8_t ihl_bytes() const { return static_cast<uint8_t>((version_ihl & 0x0f) * 4); }
};
static_assert(sizeof(Ipv4Hdr) == 20);
inline constexpr uint16_t kIpv4FlagDf = 0x4000;
inline constexpr uint16_t kIpv4FlagMf = 0x2000;
inline constexpr uint16_t kIpv4FragOffsetMask = 0x1fff;

struct Ipv6Hdr {
  Be32 ver_tc_flow;  // version (4) | traffic class (8) | flow label (20)
  Be16 payload_length;
  uint8_t next_header;
  uint8_t hop_limit;
  std::array<uint8_t, 16> src;
  std::array<uint8_t, 16> dst;

  uint8_t version() const { return static_cast<uint8_t>(ver_tc_flow.host() >> 28); }
};
static_assert(sizeof(Ipv6Hdr) == 40);

// Generic IPv6 extension header prefix (hop-by-hop, routing, destination options).
struct Ipv6ExtHdr {
  uint8_t next_header;
  uint8_t hdr_ext_len;  // 8-octet units, not counting the first 8
};
static_assert(sizeof(Ipv6ExtHdr) == 2);

struct UdpHdr {
  Be16 src_port;
  Be16 dst_port;
  Be16 length;
  Be16 checksum;
};
static_assert(sizeof(UdpHdr) == 8);

struct TcpHdr {
  Be16 src_port;
  Be16 dst_port;
  Be32 seq;
  Be32 ack;
  uint8_t data_offset;  // high nibble: header length in 32-bit words
  uint8_t flags;
  Be16 window;
  Be16 checksum;
  Be16 urgent;

  uint8_t header_bytes() const { return static_cast<uint8_t>((data_offset >> 4) * 4); }
};
static_assert(sizeof(TcpHdr) == 20);

struct IcmpHdr {
  uint8_t type;
  uint8_t code;
  Be16 checksum;
};
static_assert(sizeof(IcmpHdr) == 4);

// ARP for Ethernet/IPv4 (RFC 826).
struct ArpEthIpv4 {
  Be16 htype;    // 1
  Be16 ptype;    // 0x0800
  uint8_t hlen;  // 6
  uint8_t plen;  // 4
  Be16 oper;     // 1 request, 2 reply
  MacBytes sha;
  std::array<uint8_t, 4> spa;
  MacBytes tha;
  std::array<uint8_t, 4> tpa;
};
static_assert(sizeof(ArpEthIpv4) == 28);
inline constexpr uint16_t kArpRequest = 1;
inline constexpr uint16_t kArpReply = 2;

}  // namespace pspgw::net
