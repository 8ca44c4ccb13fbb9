// Match fields: everything a pipe can look at, their widths and where they come from.
//
// Header fields describe "the packet as it is now" (DOCA's semantics): after a decap action the former
// inner packet is the packet. Before decap, a pipe reaches the tunnelled packet through the kInner*
// fields, which the pipeline's InnerLocator finds. The engine knows no PSP: PSP's next header / flags /
// SPI are the generic first UDP payload words (kUdpPayload0/4) under masks that src/psp names
// (psp::flow_fields), and PSP's tunnel layout is an InnerLocator it supplies.
//
// All values and masks are big-endian byte strings of the field's width — also for metadata — so a key is
// a plain byte string and one masking/hashing path serves every field.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "net/addr.hpp"

namespace pspgw::flow {

enum class Field : uint8_t {
  // net::Metadata.
  kInPort,
  kPktMeta,
  kReg0,
  kReg1,
  kReg2,
  kReg3,
  kRandom,
  kSyndrome,
  // The packet as it is now: Ethernet type (after one VLAN tag), the first IP header, its L4 header.
  kEtherType,
  kIpv4Src,
  kIpv4Dst,
  kIpv6Src,
  kIpv6Dst,
  kIpProto,
  kL4Src,  // TCP/UDP ports; absent for other protocols and for fragments
  kL4Dst,
  // The first 8 bytes of a UDP payload as two 32-bit words (a tunnel header: PSP NH/flags, SPI).
  kUdpPayload0,
  kUdpPayload4,
  // The tunnelled packet, found by the InnerLocator.
  kInnerIpVersion,  // 4 or 6
  kInnerIpv4Src,
  kInnerIpv4Dst,
  kInnerIpv6Src,
  kInnerIpv6Dst,
  kInnerIpProto,
  kInnerL4Src,
  kInnerL4Dst,
  kCount,
};
inline constexpr std::size_t kFieldCount = static_cast<std::size_t>(Field::kCount);
inline constexpr std::size_t kMaxFieldWidth = 16;

enum class FieldSource : uint8_t { kMeta, kOuter, kInner };

struct FieldInfo {
  std::string_view name;  // as the dump prints it: "port", "ipv4.dst", "inner.ipv6.src", ...
  uint8_t width;          // bytes
  FieldSource source;
};

inline constexpr std::array<FieldInfo, kFieldCount> kFieldInfo = {{
    {"port", 2, FieldSource::kMeta},
    {"pkt_meta", 4, FieldSource::kMeta},
    {"reg0", 4, FieldSource::kMeta},
    {"reg1", 4, FieldSource::kMeta},
    {"reg2", 4, FieldSource::kMeta},
    {"reg3", 4, FieldSource::kMeta},
    {"rand()", 4, FieldSource::kMeta},
    {"synd", 1, FieldSource::kMeta},
    {"eth.type", 2, FieldSource::kOuter},
    {"ipv4.src", 4, FieldSource::kOuter},
    {"ipv4.dst", 4, FieldSource::kOuter},
    {"ipv6.src", 16, FieldSource::kOuter},
    {"ipv6.dst", 16, FieldSource::kOuter},
    {"ip.proto", 1, FieldSource::kOuter},
    {"l4.src", 2, FieldSource::kOuter},
    {"l4.dst", 2, FieldSource::kOuter},
    {"udp.payload[0:4]", 4, FieldSource::kOuter},
    {"udp.payload[4:8]", 4, FieldSource::kOuter},
    {"inner.ip.version", 1, FieldSource::kInner},
    {"inner.ipv4.src", 4, FieldSource::kInner},
    {"inner.ipv4.dst", 4, FieldSource::kInner},
    {"inner.ipv6.src", 16, FieldSource::kInner},
    {"inner.ipv6.dst", 16, FieldSource::kInner},
    {"inner.ip.proto", 1, FieldSource::kInner},
    {"inner.l4.src", 2, FieldSource::kInner},
    {"inner.l4.dst", 2, FieldSource::kInner},
}};
inline const FieldInfo& field_info(Field f) {
  return kFieldInfo[static_cast<std::size_t>(f)];
}

// A field value or mask: the first `width` bytes are used, big-endian.
using FieldBytes = std::array<uint8_t, kMaxFieldWidth>;

// An integer as the field's big-endian bytes (the low `width` bytes of v).
FieldBytes field_bytes(Field f, uint64_t v);
// An address as bytes (IPv4 fields take 4, IPv6 fields 16).
FieldBytes field_bytes(const net::IpAddr& a);
// The all-ones mask of a field, and a prefix mask of `bits` leading ones.
FieldBytes full_mask(Field f);
FieldBytes prefix_mask(Field f, unsigned bits);

// One element of a pipe's match template.
struct FieldMask {
  Field field;
  FieldBytes mask;
};
inline FieldMask match(Field f) {
  return {f, full_mask(f)};
}
inline FieldMask match(Field f, uint64_t mask) {
  return {f, field_bytes(f, mask)};
}

// One element of an entry's match: a value, and for ternary pipes optionally its own mask
// (has_mask = false: the template's mask).
struct FieldMatch {
  Field field;
  FieldBytes value{};
  FieldBytes mask{};
  bool has_mask = false;
};
inline FieldMatch eq(Field f, uint64_t v) {
  return {f, field_bytes(f, v)};
}
inline FieldMatch eq(Field f, const net::IpAddr& a) {
  return {f, field_bytes(a)};
}
inline FieldMatch masked(Field f, uint64_t v, uint64_t m) {
  return {f, field_bytes(f, v), field_bytes(f, m), true};
}
FieldMatch prefix(Field f, const net::IpAddr& a, unsigned bits);

}  // namespace pspgw::flow
