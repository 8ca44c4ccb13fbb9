// Internal: header parsing for the match fields, cached per packet for one batch, and field extraction /
// write-back. Every offset comes from net::parse_frame / net::parse_ip, which validate lengths first;
// field reads are then within the IP packet's stated length.
#pragma once

#include <cstdint>
#include <cstring>

#include "base/byteorder.hpp"
#include "net/headers.hpp"

#include "flow/field.hpp"
#include "net/packet.hpp"

namespace pspgw::flow {

// One IP layer as the fields need it. family 0 = none (not IP, or malformed).
struct L3View {
  uint8_t family = 0;
  uint8_t proto = 0;
  bool ports = false;  // TCP/UDP header present and not a fragment
  uint16_t l3 = 0;
  uint16_t end = 0;  // l3 + the IP packet's length
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint16_t udp_payload = 0;  // 0 = none
};

struct Parsed {
  static constexpr uint8_t kOuter = 1;
  static constexpr uint8_t kInner = 2;
  uint8_t have = 0;
  bool has_l2 = false;
  uint16_t ethertype = 0;
  L3View outer;
  L3View inner;
};

void parse_outer(const net::Packet& p, Parsed& ps);
void parse_inner(const net::Packet& p, uint16_t inner_l3, Parsed& ps);

namespace detail {
inline void put16(uint8_t* out, uint16_t v) {
  store_be16(out, v);
}
inline void put32(uint8_t* out, uint32_t v) {
  store_be32(out, v);
}

inline bool addr(const net::Packet& p, const L3View& v, uint8_t family, unsigned v4_off, unsigned v6_off,
                 uint8_t* out) {
  if (v.family != family) return false;
  if (family == 4) {
    std::memcpy(out, p.data() + v.l3 + v4_off, 4);
  } else {
    std::memcpy(out, p.data() + v.l3 + v6_off, 16);
  }
  return true;
}

// Offset of a 32-bit UDP payload word in the packet, or 0 when the IP packet is too short for it.
inline uint16_t udp_word(const L3View& v, uint16_t at) {
  if (v.udp_payload == 0 || v.udp_payload + at + 4 > v.end) return 0;
  return static_cast<uint16_t>(v.udp_payload + at);
}

inline bool meta_field(Field f, const net::Metadata& m, uint8_t* out) {
  switch (f) {
    case Field::kInPort:
      put16(out, m.in_port.value());
      return true;
    case Field::kPktMeta:
      put32(out, m.pkt_meta);
      return true;
    case Field::kReg0:
    case Field::kReg1:
    case Field::kReg2:
    case Field::kReg3:
      put32(out, m.regs[static_cast<std::size_t>(f) - static_cast<std::size_t>(Field::kReg0)]);
      return true;
    case Field::kRandom:
      put32(out, m.random);
      return true;
    case Field::kSyndrome:
      out[0] = m.syndrome;
      return true;
    default:
      return false;
  }
}

inline bool l3_field(Field f, const net::Packet& p, const L3View& v, uint8_t* out) {
  switch (f) {
    case Field::kIpv4Src:
    case Field::kInnerIpv4Src:
      return addr(p, v, 4, 12, 0, out);
    case Field::kIpv4Dst:
    case Field::kInnerIpv4Dst:
      return addr(p, v, 4, 16, 0, out);
    case Field::kIpv6Src:
    case Field::kInnerIpv6Src:
      return addr(p, v, 6, 0, 8, out);
    case Field::kIpv6Dst:
    case Field::kInnerIpv6Dst:
      return addr(p, v, 6, 0, 24, out);
    case Field::kIpProto:
    case Field::kInnerIpProto:
      out[0] = v.proto;
      return v.family != 0;
    case Field::kInnerIpVersion:
      out[0] = v.family;
      return v.family != 0;
    case Field::kL4Src:
    case Field::kInnerL4Src:
      put16(out, v.sport);
      return v.ports;
    case Field::kL4Dst:
    case Field::kInnerL4Dst:
      put16(out, v.dport);
      return v.ports;
    case Field::kUdpPayload0:
    case Field::kUdpPayload4: {
      const uint16_t at = udp_word(v, f == Field::kUdpPayload0 ? 0 : 4);
      if (at == 0) return false;
      std::memcpy(out, p.data() + at, 4);
      return true;
    }
    default:
      return false;
  }
}

}  // namespace detail

// Writes field f (big-endian, its width) to out; false (out untouched) when the packet lacks it.
// Inline: called per packet and field from the key builder.
inline bool extract_field(Field f, const net::Packet& p, const Parsed& ps, uint8_t* out) {
  switch (field_info(f).source) {
    case FieldSource::kMeta:
      return detail::meta_field(f, p.meta, out);
    case FieldSource::kOuter:
      if (f == Field::kEtherType) {
        detail::put16(out, ps.ethertype);
        return ps.has_l2;
      }
      return detail::l3_field(f, p, ps.outer, out);
    case FieldSource::kInner:
      return detail::l3_field(f, p, ps.inner, out);
  }
  return false;
}

// bits under mask of a 32-bit packet field := value. False when the packet lacks the field.
bool write_field_bits(Field f, net::Packet& p, const Parsed& ps, uint32_t mask, uint32_t value);
bool writable_field(Field f);

// A hash of the packet's (addresses, ports, protocol) that both directions of a flow share: each pair is
// put in order before hashing. Select groups use it (group.hpp); meta.flow_hash stays direction-aware.
// Not IP: 0.
uint32_t symmetric_flow_hash(const net::Packet& p, const L3View& v);

}  // namespace pspgw::flow
