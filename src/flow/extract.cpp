#include "flow/extract.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include "base/byteorder.hpp"
#include "flow/table.hpp"
#include "net/headers.hpp"
#include "net/parse.hpp"

namespace pspgw::flow {
namespace {

void to_view(const net::IpInfo& ip, L3View& v) {
  v.family = static_cast<uint8_t>(ip.family);
  v.proto = ip.l4_proto;
  v.l3 = ip.l3_offset;
  v.end = static_cast<uint16_t>(ip.l3_offset + ip.l3_total_len);
  // parse_ip has checked the TCP/UDP header against the IP length for non-fragments.
  v.ports = !ip.fragment && (ip.l4_proto == net::kIpProtoTcp || ip.l4_proto == net::kIpProtoUdp);
  v.sport = ip.src_port;
  v.dport = ip.dst_port;
  v.udp_payload = v.ports && ip.l4_proto == net::kIpProtoUdp
                      ? static_cast<uint16_t>(ip.l4_offset + sizeof(net::UdpHdr))
                      : uint16_t{0};
}

// The common frame, Ethernet + option-less unfragmented IPv4 + a whole TCP/UDP header, checked inline
// with the same rules as net::parse_frame; everything else goes through parse_frame. False: not that case.
bool parse_plain_ipv4(const net::Packet& p, L3View& v) {
  const uint8_t* b = p.data();
  const uint32_t size = p.size();
  constexpr uint32_t kL3 = sizeof(net::EthHdr);
  if (size < kL3 + sizeof(net::Ipv4Hdr) || load_be16(b + 12) != net::kEtherTypeIpv4 || b[kL3] != 0x45)
    return false;
  const uint16_t total = load_be16(b + kL3 + 2);
  const uint8_t proto = b[kL3 + 9];
  const bool frag = (load_be16(b + kL3 + 6) & (net::kIpv4FlagMf | net::kIpv4FragOffsetMask)) != 0;
  const uint32_t l4 = kL3 + sizeof(net::Ipv4Hdr);
  if (frag || total < sizeof(net::Ipv4Hdr) || kL3 + total > size) return false;
  if (proto == net::kIpProtoUdp) {
    if (l4 + sizeof(net::UdpHdr) > kL3 + total) return false;
  } else if (proto == net::kIpProtoTcp) {
    if (l4 + sizeof(net::TcpHdr) > kL3 + total) return false;
    const uint32_t doff = (b[l4 + 12] >> 4) * 4U;
    if (doff < sizeof(net::TcpHdr) || l4 + doff > kL3 + total) return false;
  } else {
    return false;
  }
  v.family = 4;
  v.proto = proto;
  v.l3 = kL3;
  v.end = static_cast<uint16_t>(kL3 + total);
  v.ports = true;
  v.sport = load_be16(b + l4);
  v.dport = load_be16(b + l4 + 2);
  v.udp_payload = proto == net::kIpProtoUdp ? static_cast<uint16_t>(l4 + sizeof(net::UdpHdr)) : uint16_t{0};
  return true;
}

}  // namespace

void parse_outer(const net::Packet& p, Parsed& ps) {
  ps.have = Parsed::kOuter;
  ps.outer = L3View{};
  ps.inner = L3View{};
  ps.has_l2 = p.size() >= sizeof(net::EthHdr);
  ps.ethertype = ps.has_l2 ? load_be16(p.data() + 12) : 0;
  if (parse_plain_ipv4(p, ps.outer)) return;
  net::FrameInfo f;
  if (!net::parse_frame(p.bytes(), f)) return;  // malformed IP: the Ethernet type still matches, no IP fields
  ps.ethertype = f.ethertype;
  if (f.ip.family != net::IpFamily::kNone) to_view(f.ip, ps.outer);
}

void parse_inner(const net::Packet& p, uint16_t inner_l3, Parsed& ps) {
  ps.have |= Parsed::kInner;
  ps.inner = L3View{};
  if (inner_l3 == 0) return;
  net::IpInfo ip;
  if (net::parse_ip(p.bytes(), inner_l3, ip)) to_view(ip, ps.inner);
}

bool writable_field(Field f) {
  return f == Field::kUdpPayload0 || f == Field::kUdpPayload4;
}

bool write_field_bits(Field f, net::Packet& p, const Parsed& ps, uint32_t mask, uint32_t value) {
  if (!writable_field(f)) return false;
  const uint16_t at = detail::udp_word(ps.outer, f == Field::kUdpPayload0 ? 0 : 4);
  if (at == 0) return false;
  uint8_t* w = p.data() + at;
  store_be32(w, (load_be32(w) & ~mask) | (value & mask));
  return true;
}

uint32_t symmetric_flow_hash(const net::Packet& p, const L3View& v) {
  if (v.family != 4 && v.family != 6) return 0;
  const unsigned len = v.family == 4 ? 4 : 16;
  const uint8_t* src = p.data() + v.l3 + (v.family == 4 ? 12 : 8);
  const uint8_t* dst = src + len;
  const bool swap = std::memcmp(src, dst, len) > 0;
  // Words: [lo addr][hi addr][lo port | hi port | proto], zero-padded.
  std::array<uint64_t, 5> w{};
  auto* b = reinterpret_cast<uint8_t*>(w.data());
  std::memcpy(b, swap ? dst : src, len);
  std::memcpy(b + 16, swap ? src : dst, len);
  const uint16_t sp = v.ports ? v.sport : 0, dp = v.ports ? v.dport : 0;
  w[4] = (static_cast<uint64_t>(std::min(sp, dp)) << 32) | (static_cast<uint64_t>(std::max(sp, dp)) << 16) |
         v.proto;
  const uint32_t h = hash_key(w.data(), 5);
  return h ^ (h >> 16);  // the slot index uses the low bits: fold the high ones in
}

}  // namespace pspgw::flow
