// The gateway's PSP encap and seal of Ethernet frames from a per-SA template (encap_template.hpp). Stages:
//   make:    SA + outer addresses -> template bytes, IPv4 header sum           (once per SA)
//   encap:   find the payload -> trim/room checks -> copy template, patch       (per packet)
//   seal:    header check, SPI of the sealing SA -> one AEAD op in place        (per packet)
#include "psp/encap_template.hpp"

#include <cstring>

#include "net/headers.hpp"
#include "net/parse.hpp"
#include "psp/batch.hpp"

namespace pspgw::psp {
namespace {

constexpr uint32_t kEth = sizeof(net::EthHdr);
constexpr uint32_t kUdp = sizeof(net::UdpHdr);
constexpr uint32_t kMaxIpLength = 0xffff;

// The IPv4 header sum without the two fields encap patches (total length, checksum: zero here).
uint32_t ipv4_partial_sum(const uint8_t* ip) {
  uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2) sum += load_be16(ip + i);
  return sum;
}

void write_outer_ip(uint8_t* ip, const OuterHeaders& o) {
  if (o.local.is_v4()) {
    ip[0] = 0x45;
    store_be16(ip + offsetof(net::Ipv4Hdr, frag_off), net::kIpv4FlagDf);
    ip[offsetof(net::Ipv4Hdr, ttl)] = o.ttl;
    ip[offsetof(net::Ipv4Hdr, protocol)] = net::kIpProtoUdp;
    std::memcpy(ip + 12, o.local.bytes.data(), 4);
    std::memcpy(ip + 16, o.peer.bytes.data(), 4);
  } else {
    store_be32(ip, 0x60000000u);
    ip[offsetof(net::Ipv6Hdr, next_header)] = net::kIpProtoUdp;
    ip[offsetof(net::Ipv6Hdr, hop_limit)] = o.ttl;
    std::memcpy(ip + 8, o.local.bytes.data(), 16);
    std::memcpy(ip + 24, o.peer.bytes.data(), 16);
  }
}

// Transport: the L4 segment behind the IP header and any IPv6 extension headers (Next Header = its
// protocol).
EncapError transport_payload(std::span<const uint8_t> frame, Payload& out) {
  auto f = net::parse_frame(frame);
  if (!f || f->ip.family == net::IpFamily::kNone) return EncapError::kBadFrame;
  if (f->ip.fragment) return EncapError::kFragment;
  const net::IpInfo& ip = f->ip;
  out = {ip.l4_offset, static_cast<uint32_t>(ip.l3_offset + ip.l3_total_len - ip.l4_offset), ip.l4_proto};
  return EncapError::kNone;
}

}  // namespace

Result<EncapTemplate, DropReason> EncapTemplate::make(const SealParams& sa, const OuterHeaders& o) {
  const auto alg = aead_alg(static_cast<uint8_t>(sa.version));
  if (!alg) return Err{DropReason::kBadVersion};
  if (sa.crypt_offset > kPspMaxCryptOffset) return Err{DropReason::kBadCryptOffset};
  if (o.local.family != o.peer.family || o.local.family == net::IpFamily::kNone)
    return Err{DropReason::kBadOuterPacket};
  EncapTemplate t;
  const bool v4 = o.local.is_v4();
  const uint32_t ip_len = v4 ? sizeof(net::Ipv4Hdr) : sizeof(net::Ipv6Hdr);
  t.shape_ = v4 ? (sa.has_vc ? Shape::kV4Vc : Shape::kV4) : (sa.has_vc ? Shape::kV6Vc : Shape::kV6);
  t.hdr_len_ = static_cast<uint8_t>(kPspHeaderSize + (sa.has_vc ? kPspVcSize : 0));
  t.size_ = static_cast<uint8_t>(kEth + ip_len + kUdp + t.hdr_len_);
  t.spi_ = sa.spi;
  t.version_ = static_cast<uint8_t>(sa.version);
  t.alg_ = *alg;
  t.crypt_offset_ = sa.crypt_offset;
  uint8_t* p = t.bytes_.data();
  store_be16(p + 12, v4 ? net::kEtherTypeIpv4 : net::kEtherTypeIpv6);
  write_outer_ip(p + kEth, o);
  if (v4) t.ip_sum_ = ipv4_partial_sum(p + kEth);
  uint8_t* udp = p + kEth + ip_len;
  store_be16(udp + offsetof(net::UdpHdr, dst_port), kPspUdpPort);  // checksum 0 (§1)
  PspHeaderFields h = seal_header(sa, 0);
  h.sample = false;  // EGR_SAMP's to set, per packet
  h.iv = 0;
  encode_header(h, {udp + kUdp, t.hdr_len_});
  t.psp_offset_ = static_cast<uint8_t>(t.size_ - t.hdr_len_);
  std::memcpy(&t.head_word_, udp + kUdp, sizeof(t.head_word_));
  t.head_word_ &= kHeadMask;
  return t;
}

EncapError encap_tunnel_gso(net::Packet& pkt, const EncapTemplate& t, const EthAddrs& eth, uint64_t iv,
                            uint32_t hash, uint32_t first_segment_len) {
  Payload pl;
  if (!tunnel_payload(pkt.bytes(), pl) || first_segment_len > pl.len) return EncapError::kBadFrame;
  return detail::encap_payload(pkt, t, eth, pl, iv, hash, first_segment_len, false);
}

EncapError encap_transport(net::Packet& pkt, const EncapTemplate& t, const EthAddrs& eth, uint64_t iv,
                           uint32_t hash) {
  Payload pl;
  if (const EncapError e = transport_payload(pkt.bytes(), pl); e != EncapError::kNone) return e;
  return detail::encap_payload(pkt, t, eth, pl, iv, hash, pl.len, true);
}

}  // namespace pspgw::psp
