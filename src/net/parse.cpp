#include "net/parse.hpp"

#include "base/byteorder.hpp"
#include "net/headers.hpp"

namespace pspgw::net {
namespace {

// Bound on IPv6 extension headers walked; more is treated as malformed (RFC 8200 allows few in practice).
constexpr int kMaxExtHeaders = 8;

Status<ParseError> parse_ports(std::span<const uint8_t> b, IpInfo& ip) {
  if (ip.fragment && !(ip.l4_proto == kIpProtoTcp || ip.l4_proto == kIpProtoUdp)) return {};
  const std::size_t end = ip.l3_offset + ip.l3_total_len;
  if (ip.l4_proto == kIpProtoUdp) {
    if (ip.l4_offset + sizeof(UdpHdr) > end)
      return ip.fragment ? Status<ParseError>{} : Err{ParseError::kBadL4Header};
  } else if (ip.l4_proto == kIpProtoTcp) {
    if (ip.l4_offset + sizeof(TcpHdr) > end)
      return ip.fragment ? Status<ParseError>{} : Err{ParseError::kBadL4Header};
    const uint8_t doff = static_cast<uint8_t>((b[ip.l4_offset + 12] >> 4) * 4);
    if (doff < sizeof(TcpHdr) || ip.l4_offset + doff > end) return Err{ParseError::kBadL4Header};
  } else {
    return {};
  }
  ip.src_port = load_be16(&b[ip.l4_offset]);
  ip.dst_port = load_be16(&b[ip.l4_offset + 2]);
  return {};
}

// The parsers fill the caller's IpInfo: returned through Result, the 52-byte struct was copied twice per
// call with `rep movs` (GCC's block copy for it), which was most of parse_ip's time on the receive path.
Status<ParseError> parse_ipv4(std::span<const uint8_t> b, uint16_t off, IpInfo& ip) {
  if (b.size() < static_cast<std::size_t>(off) + sizeof(Ipv4Hdr)) return Err{ParseError::kTooShort};
  const uint8_t* h = &b[off];
  const uint16_t ihl = static_cast<uint16_t>((h[0] & 0x0f) * 4);
  if (ihl < sizeof(Ipv4Hdr)) return Err{ParseError::kBadIpHeader};
  const uint16_t total = load_be16(h + 2);
  if (total < ihl || off + static_cast<std::size_t>(total) > b.size()) return Err{ParseError::kBadIpLength};
  ip.family = IpFamily::kV4;
  ip.l3_offset = off;
  ip.l3_header_len = ihl;
  ip.l3_total_len = total;
  ip.l4_proto = h[9];
  ip.l4_offset = static_cast<uint16_t>(off + ihl);
  const uint16_t frag = load_be16(h + 6);
  ip.fragment = (frag & (kIpv4FlagMf | kIpv4FragOffsetMask)) != 0;
  ip.src_port = ip.dst_port = 0;
  ip.src = IpAddr::v4(std::span<const uint8_t, 4>(h + 12, 4));
  ip.dst = IpAddr::v4(std::span<const uint8_t, 4>(h + 16, 4));
  if ((frag & kIpv4FragOffsetMask) != 0) return {};  // non-first fragment: no L4 header here
  return parse_ports(b, ip);
}

Status<ParseError> parse_ipv6(std::span<const uint8_t> b, uint16_t off, IpInfo& ip) {
  if (b.size() < static_cast<std::size_t>(off) + sizeof(Ipv6Hdr)) return Err{ParseError::kTooShort};
  const uint8_t* h = &b[off];
  const uint16_t payload = load_be16(h + 4);
  const std::size_t total = sizeof(Ipv6Hdr) + payload;
  if (off + total > b.size()) return Err{ParseError::kBadIpLength};
  ip.family = IpFamily::kV6;
  ip.l3_offset = off;
  ip.l3_total_len = static_cast<uint16_t>(total);
  ip.fragment = false;
  ip.src_port = ip.dst_port = 0;
  ip.src = IpAddr::v6(std::span<const uint8_t, 16>(h + 8, 16));
  ip.dst = IpAddr::v6(std::span<const uint8_t, 16>(h + 24, 16));
  uint8_t nh = h[6];
  std::size_t pos = off + sizeof(Ipv6Hdr);
  const std::size_t end = off + total;
  bool later_fragment = false;
  for (int i = 0;; ++i) {
    if (nh != kIpProtoHopOpts && nh != kIpProtoRouting && nh != kIpProtoDstOpts && nh != kIpProtoFragment)
      break;
    if (i == kMaxExtHeaders || pos + 8 > end) return Err{ParseError::kBadExtHeader};
    std::size_t len = 8;
    if (nh == kIpProtoFragment) {
      ip.fragment = true;
      const uint16_t fo = load_be16(&b[pos + 2]);
      later_fragment = (fo & 0xfff8) != 0;
    } else {
      len = (static_cast<std::size_t>(b[pos + 1]) + 1) * 8;
    }
    if (pos + len > end) return Err{ParseError::kBadExtHeader};
    nh = b[pos];
    pos += len;
  }
  ip.l4_proto = nh;
  ip.l4_offset = static_cast<uint16_t>(pos);
  ip.l3_header_len = static_cast<uint16_t>(pos - off);
  if (later_fragment) return {};
  return parse_ports(b, ip);
}

}  // namespace

std::string_view to_string(ParseError e) {
  switch (e) {
    case ParseError::kTooShort:
      return "too-short";
    case ParseError::kNotIp:
      return "not-ip";
    case ParseError::kBadIpHeader:
      return "bad-ip-header";
    case ParseError::kBadIpLength:
      return "bad-ip-length";
    case ParseError::kBadExtHeader:
      return "bad-ipv6-ext-header";
    case ParseError::kBadL4Header:
      return "bad-l4-header";
  }
  return "unknown";
}

Status<ParseError> parse_ip(std::span<const uint8_t> bytes, uint16_t offset, IpInfo& ip) {
  if (bytes.size() <= offset) return Err{ParseError::kTooShort};
  switch (bytes[offset] >> 4) {
    case 4:
      return parse_ipv4(bytes, offset, ip);
    case 6:
      return parse_ipv6(bytes, offset, ip);
    default:
      return Err{ParseError::kNotIp};
  }
}

Result<IpInfo, ParseError> parse_ip(std::span<const uint8_t> bytes, uint16_t offset) {
  IpInfo ip;
  if (auto s = parse_ip(bytes, offset, ip); !s) return Err{s.error()};
  return ip;
}

Status<ParseError> parse_frame(std::span<const uint8_t> frame, FrameInfo& f) {
  if (frame.size() < sizeof(EthHdr)) return Err{ParseError::kTooShort};
  f.ip.family = IpFamily::kNone;
  f.ethertype = load_be16(&frame[12]);
  f.l2_len = sizeof(EthHdr);
  if (f.ethertype == kEtherTypeVlan) {
    if (frame.size() < sizeof(EthHdr) + sizeof(VlanTag)) return Err{ParseError::kTooShort};
    f.ethertype = load_be16(&frame[16]);
    f.l2_len = sizeof(EthHdr) + sizeof(VlanTag);
  }
  if (f.ethertype != kEtherTypeIpv4 && f.ethertype != kEtherTypeIpv6) return {};
  if (auto s = parse_ip(frame, f.l2_len, f.ip); !s) {
    f.ip.family = IpFamily::kNone;
    return s;
  }
  const uint8_t want = f.ethertype == kEtherTypeIpv4 ? 4 : 6;
  if (static_cast<uint8_t>(f.ip.family) != want) {
    f.ip.family = IpFamily::kNone;
    return Err{ParseError::kBadIpHeader};
  }
  return {};
}

Result<FrameInfo, ParseError> parse_frame(std::span<const uint8_t> frame) {
  FrameInfo f;
  if (auto s = parse_frame(frame, f); !s) return Err{s.error()};
  return f;
}

}  // namespace pspgw::net
