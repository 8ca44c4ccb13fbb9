#include "gateway/exception.hpp"

#include <algorithm>
#include <cstring>

#include "base/byteorder.hpp"
#include "net/checksum.hpp"
#include "net/headers.hpp"
#include "net/parse.hpp"

namespace pspgw::gateway {
namespace {

using net::EthHdr;

// ICMPv6 (RFC 4861) and DHCP (RFC 2131/2132) constants.
constexpr uint8_t kIcmpv6NeighborSolicit = 135;
constexpr uint8_t kIcmpv6NeighborAdvert = 136;
constexpr uint8_t kNdOptSourceLinkAddr = 1;
constexpr uint8_t kNdOptTargetLinkAddr = 2;
constexpr uint8_t kNaFlagRouter = 0x80;
constexpr uint8_t kNaFlagSolicited = 0x40;
constexpr uint8_t kNaFlagOverride = 0x20;
constexpr uint16_t kDhcpServerPort = 67;
constexpr uint16_t kDhcpClientPort = 68;
constexpr std::size_t kBootpFixedSize = 236;  // op .. file, before the magic cookie
constexpr uint32_t kDhcpMagic = 0x63825363;
constexpr uint8_t kDhcpOptPad = 0;
constexpr uint8_t kDhcpOptSubnetMask = 1;
constexpr uint8_t kDhcpOptRouter = 3;
constexpr uint8_t kDhcpOptMtu = 26;
constexpr uint8_t kDhcpOptRequestedIp = 50;
constexpr uint8_t kDhcpOptLeaseTime = 51;
constexpr uint8_t kDhcpOptMessageType = 53;
constexpr uint8_t kDhcpOptServerId = 54;
constexpr uint8_t kDhcpOptEnd = 255;
constexpr uint8_t kDhcpDiscover = 1;
constexpr uint8_t kDhcpOffer = 2;
constexpr uint8_t kDhcpRequest = 3;
constexpr uint8_t kDhcpAck = 5;
constexpr uint8_t kDhcpNak = 6;
constexpr std::size_t kMinFrame = 60;  // Ethernet minimum without FCS

void put_eth(std::vector<uint8_t>& f, const net::MacBytes& dst, const net::MacBytes& src, uint16_t type) {
  f.insert(f.end(), dst.begin(), dst.end());
  f.insert(f.end(), src.begin(), src.end());
  f.push_back(static_cast<uint8_t>(type >> 8));
  f.push_back(static_cast<uint8_t>(type));
}

void pad_min(std::vector<uint8_t>& f) {
  if (f.size() < kMinFrame) f.resize(kMinFrame, 0);
}

net::MacBytes eth_src(std::span<const uint8_t> frame) {
  net::MacBytes m;
  std::memcpy(m.data(), frame.data() + 6, 6);
  return m;
}

}  // namespace

bool ResponderPolicy::claims(const net::IpAddr& a) const {
  if (gateway_ip && *gateway_ip == a) return true;
  return std::binary_search(proxied.begin(), proxied.end(), a);
}

ExceptionKind classify_exception(std::span<const uint8_t> frame) {
  auto f = net::parse_frame(frame);
  if (!f) return ExceptionKind::kOther;
  if (f->ethertype == net::kEtherTypeArp) return ExceptionKind::kArp;
  const net::IpInfo& ip = f->ip;
  if (ip.family == net::IpFamily::kV6 && ip.l4_proto == net::kIpProtoIcmpv6 && ip.l4_offset < frame.size() &&
      frame[ip.l4_offset] == kIcmpv6NeighborSolicit) {
    return ExceptionKind::kNeighborSolicit;
  }
  if (ip.family == net::IpFamily::kV4 && ip.l4_proto == net::kIpProtoUdp && ip.dst_port == kDhcpServerPort &&
      ip.src_port == kDhcpClientPort) {
    return ExceptionKind::kDhcp;
  }
  return ExceptionKind::kOther;
}

std::string_view to_string(ExceptionKind k) {
  switch (k) {
    case ExceptionKind::kArp:
      return "arp";
    case ExceptionKind::kNeighborSolicit:
      return "neighbor-solicit";
    case ExceptionKind::kDhcp:
      return "dhcp";
    case ExceptionKind::kOther:
      return "other";
  }
  return "other";
}

std::optional<std::vector<uint8_t>> arp_reply(std::span<const uint8_t> req, const ResponderPolicy& policy) {
  if (req.size() < sizeof(EthHdr) + sizeof(net::ArpEthIpv4)) return std::nullopt;
  if (load_be16(&req[12]) != net::kEtherTypeArp) return std::nullopt;
  net::ArpEthIpv4 arp;
  std::memcpy(&arp, &req[sizeof(EthHdr)], sizeof(arp));
  if (arp.htype.host() != 1 || arp.ptype.host() != net::kEtherTypeIpv4 || arp.hlen != 6 || arp.plen != 4 ||
      arp.oper.host() != net::kArpRequest) {
    return std::nullopt;
  }
  if (arp.spa == arp.tpa) return std::nullopt;  // gratuitous ARP / probe for itself: nothing to answer
  if (!policy.claims(net::IpAddr::v4(arp.tpa))) return std::nullopt;

  net::ArpEthIpv4 rep = arp;
  rep.oper = Be16::from_host(net::kArpReply);
  rep.sha = policy.gateway_mac.bytes;
  rep.spa = arp.tpa;
  rep.tha = arp.sha;
  rep.tpa = arp.spa;
  std::vector<uint8_t> f;
  f.reserve(kMinFrame);
  put_eth(f, arp.sha, policy.gateway_mac.bytes, net::kEtherTypeArp);
  const auto* p = reinterpret_cast<const uint8_t*>(&rep);
  f.insert(f.end(), p, p + sizeof(rep));
  pad_min(f);
  return f;
}

std::optional<std::vector<uint8_t>> neighbor_advert(std::span<const uint8_t> ns,
                                                    const ResponderPolicy& policy) {
  auto fr = net::parse_frame(ns);
  if (!fr || fr->ip.family != net::IpFamily::kV6 || fr->ip.l4_proto != net::kIpProtoIcmpv6)
    return std::nullopt;
  const net::IpInfo& ip = fr->ip;
  const std::size_t icmp = ip.l4_offset;
  const std::size_t end = ip.l3_offset + ip.l3_total_len;
  // RFC 4861 §7.1.1: hop limit 255, code 0, ICMP length >= 24.
  if (end < icmp + 24 || ns[icmp] != kIcmpv6NeighborSolicit || ns[icmp + 1] != 0 ||
      ns[ip.l3_offset + 7] != 255) {
    return std::nullopt;
  }
  const std::span<const uint8_t> segment = ns.subspan(icmp, end - icmp);
  if (!net::l4_checksum_ok(&ns[ip.l3_offset], net::kIpProtoIcmpv6, segment)) return std::nullopt;
  net::IpAddr target = net::IpAddr::v6(std::span<const uint8_t, 16>(&ns[icmp + 8], 16));
  if (!policy.claims(target)) return std::nullopt;
  const bool unspecified_src =
      std::all_of(ip.src.bytes.begin(), ip.src.bytes.end(), [](uint8_t b) { return b == 0; });
  if (unspecified_src) return std::nullopt;  // DAD probe: the prober owns nothing yet; stay silent

  // Reply to the solicitor's link-layer address option if present, else the frame's source MAC.
  net::MacBytes dst_mac = eth_src(ns);
  for (std::size_t o = icmp + 24; o + 8 <= end;) {
    const std::size_t len = static_cast<std::size_t>(ns[o + 1]) * 8;
    if (len == 0 || o + len > end) return std::nullopt;  // RFC 4861 §4.6: zero-length option -> discard
    if (ns[o] == kNdOptSourceLinkAddr) std::memcpy(dst_mac.data(), &ns[o + 2], 6);
    o += len;
  }

  std::vector<uint8_t> f;
  f.reserve(14 + 40 + 32);
  put_eth(f, dst_mac, policy.gateway_mac.bytes, net::kEtherTypeIpv6);
  const std::size_t l3 = f.size();
  f.resize(l3 + sizeof(net::Ipv6Hdr) + 32, 0);
  uint8_t* h = &f[l3];
  store_be32(h, 0x60000000u);
  store_be16(h + 4, 32);
  h[6] = net::kIpProtoIcmpv6;
  h[7] = 255;
  std::memcpy(h + 8, target.bytes.data(), 16);
  std::memcpy(h + 24, ip.src.bytes.data(), 16);
  uint8_t* m = h + sizeof(net::Ipv6Hdr);
  m[0] = kIcmpv6NeighborAdvert;
  m[4] = kNaFlagSolicited | kNaFlagOverride;
  if (policy.gateway_ip && *policy.gateway_ip == target) m[4] |= kNaFlagRouter;
  std::memcpy(m + 8, target.bytes.data(), 16);
  m[24] = kNdOptTargetLinkAddr;
  m[25] = 1;
  std::memcpy(m + 26, policy.gateway_mac.bytes.data(), 6);
  store_be16(m + 2, net::l4_checksum(h, net::kIpProtoIcmpv6, {m, 32}));
  return f;
}

namespace {

struct DhcpRequest {
  uint8_t type = 0;
  std::optional<net::IpAddr> requested;
};

std::optional<DhcpRequest> parse_dhcp_options(std::span<const uint8_t> opts) {
  DhcpRequest r;
  for (std::size_t i = 0; i < opts.size();) {
    const uint8_t code = opts[i];
    if (code == kDhcpOptEnd) break;
    if (code == kDhcpOptPad) {
      ++i;
      continue;
    }
    if (i + 2 > opts.size() || i + 2 + opts[i + 1] > opts.size()) return std::nullopt;
    const uint8_t len = opts[i + 1];
    const uint8_t* v = &opts[i + 2];
    if (code == kDhcpOptMessageType && len == 1) r.type = v[0];
    if (code == kDhcpOptRequestedIp && len == 4)
      r.requested = net::IpAddr::v4(std::span<const uint8_t, 4>(v, 4));
    i += 2 + len;
  }
  if (r.type == 0) return std::nullopt;
  return r;
}

void put_opt(std::vector<uint8_t>& f, uint8_t code, std::span<const uint8_t> v) {
  f.push_back(code);
  f.push_back(static_cast<uint8_t>(v.size()));
  f.insert(f.end(), v.begin(), v.end());
}

void put_opt32(std::vector<uint8_t>& f, uint8_t code, uint32_t v) {
  uint8_t b[4];
  store_be32(b, v);
  put_opt(f, code, b);
}

// The server identifier: the configured gateway address, else a link-local one (RFC 3927 range).
std::array<uint8_t, 4> server_id(const ResponderPolicy& policy) {
  if (policy.gateway_ip && policy.gateway_ip->is_v4()) {
    return {policy.gateway_ip->bytes[0], policy.gateway_ip->bytes[1], policy.gateway_ip->bytes[2],
            policy.gateway_ip->bytes[3]};
  }
  return {169, 254, 0, 1};
}

std::vector<uint8_t> build_dhcp(std::span<const uint8_t> bootp, uint8_t msg_type,
                                const ResponderPolicy& policy) {
  std::vector<uint8_t> f;
  f.reserve(400);
  net::MacBytes chaddr;
  std::memcpy(chaddr.data(), &bootp[28], 6);
  put_eth(f, net::MacBytes{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, policy.gateway_mac.bytes,
          net::kEtherTypeIpv4);
  const std::size_t l3 = f.size();
  f.resize(l3 + 20 + 8 + kBootpFixedSize, 0);
  uint8_t* b = &f[l3 + 28];
  b[0] = 2;  // BOOTREPLY
  b[1] = 1;
  b[2] = 6;
  std::memcpy(b + 4, &bootp[4], 4);                                                     // xid
  std::memcpy(b + 10, &bootp[10], 2);                                                   // flags
  if (msg_type != kDhcpNak) std::memcpy(b + 16, policy.dhcp_address->bytes.data(), 4);  // yiaddr
  std::memcpy(b + 28, &bootp[28], 16);                                                  // chaddr
  uint8_t magic[4];
  store_be32(magic, kDhcpMagic);
  f.insert(f.end(), magic, magic + 4);
  const auto sid = server_id(policy);
  put_opt(f, kDhcpOptMessageType, std::array<uint8_t, 1>{msg_type});
  put_opt(f, kDhcpOptServerId, sid);
  if (msg_type != kDhcpNak) {
    put_opt32(f, kDhcpOptLeaseTime, policy.dhcp_lease_s);
    const unsigned len = std::min<unsigned>(policy.dhcp_prefix_len, 32);
    const uint32_t mask = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
    put_opt32(f, kDhcpOptSubnetMask, mask);
    if (policy.gateway_ip && policy.gateway_ip->is_v4()) put_opt(f, kDhcpOptRouter, sid);
    if (policy.mtu != 0) {
      uint8_t m[2];
      store_be16(m, policy.mtu);
      put_opt(f, kDhcpOptMtu, m);
    }
  }
  f.push_back(kDhcpOptEnd);
  if (f.size() < l3 + 28 + 300) f.resize(l3 + 28 + 300, 0);  // BOOTP minimum message size (RFC 1542)

  uint8_t* ip = &f[l3];
  const uint16_t total = static_cast<uint16_t>(f.size() - l3);
  ip[0] = 0x45;
  store_be16(ip + 2, total);
  ip[8] = 64;
  ip[9] = net::kIpProtoUdp;
  std::memcpy(ip + 12, sid.data(), 4);
  std::memset(ip + 16, 0xff, 4);
  net::ipv4_set_checksum(ip);
  uint8_t* udp = ip + 20;
  store_be16(udp, kDhcpServerPort);
  store_be16(udp + 2, kDhcpClientPort);
  store_be16(udp + 4, static_cast<uint16_t>(total - 20));
  store_be16(udp + 6, net::l4_checksum(ip, net::kIpProtoUdp, {udp, static_cast<std::size_t>(total - 20)}));
  return f;
}

}  // namespace

std::optional<std::vector<uint8_t>> dhcp_reply(std::span<const uint8_t> req, const ResponderPolicy& policy) {
  if (!policy.dhcp_address || !policy.dhcp_address->is_v4()) return std::nullopt;
  auto fr = net::parse_frame(req);
  if (!fr || fr->ip.family != net::IpFamily::kV4 || fr->ip.l4_proto != net::kIpProtoUdp ||
      fr->ip.dst_port != kDhcpServerPort || fr->ip.fragment) {
    return std::nullopt;
  }
  const std::size_t start = fr->ip.l4_offset + sizeof(net::UdpHdr);
  const std::size_t end = fr->ip.l3_offset + fr->ip.l3_total_len;
  if (end < start + kBootpFixedSize + 4) return std::nullopt;
  std::span<const uint8_t> bootp = req.subspan(start, end - start);
  if (bootp[0] != 1 || bootp[1] != 1 || bootp[2] != 6 || load_be32(&bootp[kBootpFixedSize]) != kDhcpMagic) {
    return std::nullopt;
  }
  auto opts = parse_dhcp_options(bootp.subspan(kBootpFixedSize + 4));
  if (!opts) return std::nullopt;
  if (opts->type == kDhcpDiscover) return build_dhcp(bootp, kDhcpOffer, policy);
  if (opts->type != kDhcpRequest) return std::nullopt;  // DECLINE/RELEASE/INFORM: nothing to send
  net::IpAddr asked = opts->requested.value_or(net::IpAddr::v4(std::span<const uint8_t, 4>(&bootp[12], 4)));
  return build_dhcp(bootp, asked == *policy.dhcp_address ? kDhcpAck : kDhcpNak, policy);
}

std::optional<std::vector<uint8_t>> exception_reply(std::span<const uint8_t> frame,
                                                    const ResponderPolicy& policy) {
  switch (classify_exception(frame)) {
    case ExceptionKind::kArp:
      return arp_reply(frame, policy);
    case ExceptionKind::kNeighborSolicit:
      return neighbor_advert(frame, policy);
    case ExceptionKind::kDhcp:
      return dhcp_reply(frame, policy);
    case ExceptionKind::kOther:
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace pspgw::gateway
