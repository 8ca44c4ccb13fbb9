// PSP encap/decap of Ethernet frames, transport and tunnel, as the google/psp reference tools frame them
// (shared/spec/psp-protocol.md §1, §6). Stages:
//   encap: parse the frame -> check params and room -> move L2 (+ IP) forward -> outer IP/UDP -> prepare_seal
//   decap: plan_decap (Eth/IP/UDP/lengths) -> prepare_open -> AEAD -> finish_open -> restore the frame
#include <cstring>

#include "net/checksum.hpp"
#include "net/headers.hpp"
#include "net/parse.hpp"
#include "psp/batch.hpp"

namespace pspgw::psp {
namespace {

using net::Ipv4Hdr;
using net::Ipv6Hdr;
using net::UdpHdr;

constexpr uint32_t kMaxIpLength = 0xffff;
constexpr uint32_t kUdpSize = sizeof(UdpHdr);
constexpr uint32_t kIpv4Size = sizeof(Ipv4Hdr);
constexpr uint32_t kIpv6Size = sizeof(Ipv6Hdr);

DropReason outer_error(net::ParseError e) {
  // A length beyond the bytes present is a truncated packet; anything else is malformed.
  return e == net::ParseError::kTooShort || e == net::ParseError::kBadIpLength ? DropReason::kTooShort
                                                                               : DropReason::kBadOuterPacket;
}

// The UDP source port of the reference tools (§6): inner L4 sport ^ dport for TCP/UDP, else 1000. Like the
// reference, the L4 header is taken right after the IPv4 header (IHL) or the fixed IPv6 header.
uint16_t reference_sport(const uint8_t* ip, uint32_t ip_len, uint32_t ip_hdr_len, uint8_t proto) {
  if ((proto != net::kIpProtoTcp && proto != net::kIpProtoUdp) || ip_hdr_len + 4 > ip_len) return kPspUdpPort;
  return static_cast<uint16_t>(load_be16(ip + ip_hdr_len) ^ load_be16(ip + ip_hdr_len + 2));
}

void write_udp(uint8_t* p, uint16_t sport, uint32_t udp_len) {
  store_be16(p + offsetof(UdpHdr, src_port), sport);
  store_be16(p + offsetof(UdpHdr, dst_port), kPspUdpPort);
  store_be16(p + offsetof(UdpHdr, length), static_cast<uint16_t>(udp_len));
  store_be16(p + offsetof(UdpHdr, checksum), 0);  // §1: 0 on transmit
}

// Everything that can refuse a seal, checked before the frame is changed. body = bytes after the IV.
Status<DropReason> check_seal(const SealParams& p, const crypto::AeadKey& key, uint32_t payload_len) {
  const auto alg = aead_alg(static_cast<uint8_t>(p.version));
  if (!alg || *alg != key.alg()) return Err{DropReason::kBadVersion};
  const uint32_t body = (p.has_vc ? kPspVcSize : 0) + payload_len;
  if (p.crypt_offset > kPspMaxCryptOffset || p.crypt_offset * 4u > body)
    return Err{DropReason::kBadCryptOffset};
  return {};
}

struct Room {
  uint32_t front;  // bytes inserted before the payload
  uint32_t grown;  // growth of the IP length fields
};
Status<DropReason> check_room(const net::Packet& pkt, Room r, uint32_t old_ip_len) {
  if (pkt.headroom() < r.front || pkt.tailroom() < kPspIcvSize || old_ip_len + r.grown > kMaxIpLength)
    return Err{DropReason::kNoRoom};
  return {};
}

// Tunnel (§6): outer IP = copy of the inner header (IPv4: IHL 5, proto 17, new length and checksum;
// IPv6: next header 17, new payload length).
Status<DropReason> tunnel_encap(net::Packet& pkt, const net::FrameInfo& f, const SealParams& p,
                                const crypto::AeadKey& key, crypto::AeadOp& op) {
  const bool v4 = f.ip.family == net::IpFamily::kV4;
  const uint32_t inner_len = f.ip.l3_total_len;
  const uint32_t hdr_len = kPspHeaderSize + (p.has_vc ? kPspVcSize : 0);
  const uint32_t outer_ip = v4 ? kIpv4Size : kIpv6Size;
  const uint32_t udp_len = kUdpSize + hdr_len + inner_len + kPspIcvSize;
  const Room room{outer_ip + kUdpSize + hdr_len, outer_ip + udp_len - inner_len};
  if (auto s = check_seal(p, key, inner_len); !s) return s;
  if (auto s = check_room(pkt, room, v4 ? inner_len : inner_len - outer_ip); !s) return s;

  const uint8_t* in_ip = pkt.data() + f.l2_len;
  const uint8_t proto = v4 ? in_ip[offsetof(Ipv4Hdr, protocol)] : in_ip[offsetof(Ipv6Hdr, next_header)];
  const uint16_t sport = reference_sport(in_ip, inner_len, v4 ? f.ip.l3_header_len : kIpv6Size, proto);
  uint8_t* d = pkt.push_front(room.front);
  std::memmove(d, d + room.front, f.l2_len);
  uint8_t* outer = d + f.l2_len;
  std::memcpy(outer, outer + room.front, outer_ip);
  if (v4) {
    outer[0] = 0x45;
    store_be16(outer + offsetof(Ipv4Hdr, total_length), static_cast<uint16_t>(outer_ip + udp_len));
    outer[offsetof(Ipv4Hdr, protocol)] = net::kIpProtoUdp;
    net::ipv4_set_checksum(outer);
  } else {
    store_be16(outer + offsetof(Ipv6Hdr, payload_length), static_cast<uint16_t>(udp_len));
    outer[offsetof(Ipv6Hdr, next_header)] = net::kIpProtoUdp;
  }
  write_udp(outer + outer_ip, sport, udp_len);
  pkt.push_back(kPspIcvSize);
  const uint8_t nh = v4 ? net::kIpProtoIpv4 : net::kIpProtoIpv6;
  // check_seal made prepare_seal's checks, and the room holds header + ICV.
  detail::write_seal({outer + outer_ip + kUdpSize, udp_len - kUdpSize}, seal_header(p, nh), key, op);
  return {};
}

// Transport (§6): UDP + PSP inserted after the IPv4 header (IHL) or the fixed IPv6 header; the IP protocol
// moves into the PSP Next Header.
Status<DropReason> transport_encap(net::Packet& pkt, const net::FrameInfo& f, const SealParams& p,
                                   const crypto::AeadKey& key, crypto::AeadOp& op) {
  const bool v4 = f.ip.family == net::IpFamily::kV4;
  const uint32_t ip_hdr = v4 ? f.ip.l3_header_len : kIpv6Size;
  const uint32_t payload_len = f.ip.l3_total_len - ip_hdr;
  const uint32_t hdr_len = kPspHeaderSize + (p.has_vc ? kPspVcSize : 0);
  const uint32_t udp_len = kUdpSize + hdr_len + payload_len + kPspIcvSize;
  const Room room{kUdpSize + hdr_len, udp_len - payload_len};
  if (auto s = check_seal(p, key, payload_len); !s) return s;
  if (auto s = check_room(pkt, room, v4 ? f.ip.l3_total_len : f.ip.l3_total_len - kIpv6Size); !s) return s;

  uint8_t* d = pkt.push_front(room.front);
  std::memmove(d, d + room.front, f.l2_len + ip_hdr);
  uint8_t* ip = d + f.l2_len;
  uint8_t* proto = ip + (v4 ? offsetof(Ipv4Hdr, protocol) : offsetof(Ipv6Hdr, next_header));
  const uint8_t nh = *proto;
  *proto = net::kIpProtoUdp;
  if (v4) {
    store_be16(ip + offsetof(Ipv4Hdr, total_length), static_cast<uint16_t>(ip_hdr + udp_len));
    net::ipv4_set_checksum(ip);
  } else {
    store_be16(ip + offsetof(Ipv6Hdr, payload_length), static_cast<uint16_t>(udp_len));
  }
  uint8_t* udp = ip + ip_hdr;
  const uint8_t* l4 = udp + room.front;
  const uint16_t sport = (nh == net::kIpProtoTcp || nh == net::kIpProtoUdp) && payload_len >= 4
                             ? static_cast<uint16_t>(load_be16(l4) ^ load_be16(l4 + 2))
                             : kPspUdpPort;
  write_udp(udp, sport, udp_len);
  pkt.push_back(kPspIcvSize);
  // check_seal made prepare_seal's checks, and the room holds header + ICV.
  detail::write_seal({udp + kUdpSize, udp_len - kUdpSize}, seal_header(p, nh), key, op);
  return {};
}

// The offset of the byte holding the protocol of what follows the IPv6 header chain (already validated
// by parse_ip): the fixed header's next header, or the last extension header's first byte.
uint16_t ipv6_proto_offset(std::span<const uint8_t> b, const net::IpInfo& ip) {
  uint16_t proto_at = static_cast<uint16_t>(ip.l3_offset + offsetof(Ipv6Hdr, next_header));
  uint16_t pos = static_cast<uint16_t>(ip.l3_offset + kIpv6Size);
  while (pos < ip.l4_offset) {
    const bool frag = b[proto_at] == net::kIpProtoFragment;
    proto_at = pos;
    pos = static_cast<uint16_t>(pos + (frag ? 8 : (b[pos + 1] + 1) * 8));
  }
  return proto_at;
}

}  // namespace

namespace steps {

Status<DropReason> prepare_encap(net::Packet& pkt, const SealParams& params, const crypto::AeadKey& key,
                                 crypto::AeadOp& op) {
  auto f = net::parse_frame(pkt.bytes());
  if (!f || f->ip.family == net::IpFamily::kNone) return Err{DropReason::kBadInnerPacket};
  pkt.trim_back(pkt.size() - (f->l2_len + f->ip.l3_total_len));  // Ethernet padding is not part of the packet
  return params.mode == Mode::kTunnel ? tunnel_encap(pkt, *f, params, key, op)
                                      : transport_encap(pkt, *f, params, key, op);
}

DropReason plan_decap_general(std::span<const uint8_t> frame, DecapPlan& p) {
  auto f = net::parse_frame(frame);
  if (!f) return outer_error(f.error());
  const net::IpInfo& ip = f->ip;
  if (ip.family == net::IpFamily::kNone || ip.fragment) return DropReason::kBadOuterPacket;
  if (ip.l4_proto != net::kIpProtoUdp || ip.dst_port != kPspUdpPort) return DropReason::kBadHeader;
  // parse_ip guarantees the UDP header lies inside the IP packet. The UDP length must cover it exactly.
  const uint32_t udp_len = load_be16(&frame[ip.l4_offset + offsetof(UdpHdr, length)]);
  if (udp_len != static_cast<uint32_t>(ip.l3_offset + ip.l3_total_len - ip.l4_offset))
    return DropReason::kBadOuterPacket;
  p.l2_len = f->l2_len;
  p.l3_offset = ip.l3_offset;
  p.udp_offset = ip.l4_offset;
  p.outer_v4 = ip.family == net::IpFamily::kV4;
  p.proto_offset = p.outer_v4 ? static_cast<uint16_t>(ip.l3_offset + offsetof(Ipv4Hdr, protocol))
                              : ipv6_proto_offset(frame, ip);
  p.psp_offset = static_cast<uint16_t>(ip.l4_offset + kUdpSize);
  p.psp_len = static_cast<uint16_t>(udp_len - kUdpSize);
  return DropReason::kNone;
}

Result<DecapPlan, DropReason> plan_decap(std::span<const uint8_t> frame) {
  DecapPlan p;
  if (const DropReason r = plan_decap(frame, p); r != DropReason::kNone) return Err{r};
  return p;
}

void restore_transport(net::Packet& pkt, const DecapPlan& plan, uint8_t nh, uint32_t hdr_size) {
  const uint32_t removed = kUdpSize + hdr_size;
  const uint32_t shrink = removed + kPspIcvSize;
  const uint32_t payload_len = plan.psp_len - hdr_size - kPspIcvSize;
  uint8_t* d = pkt.data();
  uint8_t* ip = d + plan.l3_offset;
  d[plan.proto_offset] = nh;
  if (plan.outer_v4) {
    store_be16(ip + offsetof(Ipv4Hdr, total_length),
               static_cast<uint16_t>(load_be16(ip + offsetof(Ipv4Hdr, total_length)) - shrink));
    net::ipv4_set_checksum(ip);
  } else {
    store_be16(ip + offsetof(Ipv6Hdr, payload_length),
               static_cast<uint16_t>(load_be16(ip + offsetof(Ipv6Hdr, payload_length)) - shrink));
  }
  std::memmove(d + removed, d, plan.udp_offset);
  pkt.pull_front(removed);
  pkt.trim_back(pkt.size() - (plan.udp_offset + payload_len));
}

// The header is read in place, not copied first: parse_open has just written it field by field, and a
// whole-struct reload of those stores stalled (store forwarding; perf annotate on bench/psp_seal).
DropReason finish_decap(net::Packet& pkt, const DecapPlan& plan, const PspLayout& layout, OpenInfo& info) {
  const PspHeaderFields& h = layout.header;
  // As decrypted, and before the restore moves the L2 header over it.
  const uint64_t vc = h.has_vc ? load_be64(pkt.data() + plan.psp_offset + kPspHeaderSize) : 0;
  const bool tunnel = h.next_header == net::kIpProtoIpv4 || h.next_header == net::kIpProtoIpv6;
  const auto hdr_size = static_cast<uint32_t>(h.size());
  if (tunnel) {
    if (const DropReason r = restore_tunnel(pkt, plan, h.next_header, hdr_size); r != DropReason::kNone)
      return r;
  } else {
    restore_transport(pkt, plan, h.next_header, hdr_size);
  }
  info.header = h;
  info.header.vc = vc;
  info.mode = tunnel ? Mode::kTunnel : Mode::kTransport;
  return DropReason::kNone;
}

void finish_decap_batch(net::PacketBatch& pkts, detail::OpenScratch& s, std::span<const DecapPlan> plans,
                        std::size_t n, std::span<DropReason> results, std::span<OpenInfo> infos) {
  for (std::size_t j = 0; j < n; ++j) {
    const std::size_t i = s.pkt_index[j];
    DropReason r = finish_open(s.ops[j]);
    // The header's fields, read again: they are authenticated, so what prepare_open_op checked.
    PspLayout layout;
    if (r == DropReason::kNone)
      r = parse_open(pkts[i]->bytes().subspan(plans[i].psp_offset, plans[i].psp_len), layout);
    if (r == DropReason::kNone) r = finish_decap(*pkts[i], plans[i], layout, infos[i]);
    results[i] = r;
  }
}

Result<OpenInfo, DropReason> finish_decap(net::Packet& pkt, const DecapPlan& plan, const PspLayout& layout) {
  OpenInfo info;
  if (const DropReason r = finish_decap(pkt, plan, layout, info); r != DropReason::kNone) return Err{r};
  return info;
}

}  // namespace steps

Status<DropReason> encap_frame(net::Packet& pkt, const SealParams& params, const crypto::AeadKey& key,
                               const crypto::AeadBackend& aead) {
  crypto::AeadOp op;
  if (auto s = steps::prepare_encap(pkt, params, key, op); !s) return s;
  aead.seal({&op, 1});
  return {};
}

Result<OpenInfo, DropReason> decap_frame(net::Packet& pkt, KeyResolver& keys,
                                         const crypto::AeadBackend& aead) {
  DecapPlan plan;
  if (const DropReason r = steps::plan_decap(pkt.bytes(), plan); r != DropReason::kNone) return Err{r};
  crypto::AeadOp op;
  PspLayout layout;
  const std::span<uint8_t> psp_pkt = pkt.bytes().subspan(plan.psp_offset, plan.psp_len);
  if (const DropReason r = prepare_open(psp_pkt, keys, op, layout); r != DropReason::kNone) return Err{r};
  aead.open({&op, 1});
  if (const DropReason r = finish_open(op); r != DropReason::kNone) return Err{r};
  return steps::finish_decap(pkt, plan, layout);
}

void encap_batch(net::PacketBatch& pkts, std::span<const SealJob> jobs, const crypto::AeadBackend& aead,
                 std::span<DropReason> results) {
  detail::BatchSlots<crypto::AeadOp, net::kMaxBatch> ops;
  std::size_t n = 0;
  for (std::size_t i = 0; i < pkts.size(); ++i) {
    const SealJob& job = jobs[i];
    auto s = job.key != nullptr ? steps::prepare_encap(*pkts[i], job.params, *job.key, ops.fill(n))
                                : Status<DropReason>{Err{DropReason::kUnknownKey}};
    results[i] = s ? DropReason::kNone : s.error();
    if (s) ++n;
  }
  aead.seal({ops.data(), n});
}

}  // namespace pspgw::psp
