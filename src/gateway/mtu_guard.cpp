#include "gateway/mtu_guard.hpp"

#include <algorithm>

#include "base/byteorder.hpp"
#include "net/headers.hpp"
#include "net/icmp_too_big.hpp"
#include "net/ipv4_fragment.hpp"
#include "net/parse.hpp"

namespace pspgw::gateway {
namespace {

// An IP frame as the check sees it: where the IP header starts, the packet's (or each segment's) length.
struct IpFrame {
  uint32_t l3 = 0;
  uint32_t len = 0;
  bool v6 = false;
  bool df = false;
};

// The L4 header of a super-packet: each segment is [IP][L4 header][gso_size bytes] (the segmenter's rule).
uint32_t segment_length(const net::Packet& p, uint32_t l3) {
  auto f = net::parse_frame(p.bytes());
  if (!f || f->ip.family == net::IpFamily::kNone) return 0;
  const uint32_t l4 = f->ip.l4_offset;
  uint32_t l4_hdr = sizeof(net::UdpHdr);
  if (f->ip.l4_proto == net::kIpProtoTcp) {
    if (p.size() < l4 + sizeof(net::TcpHdr)) return 0;
    l4_hdr = static_cast<uint32_t>(p.data()[l4 + 12] >> 4) * 4;
  }
  return l4 - l3 + l4_hdr + p.meta.gso_size;
}

// False for anything but a frame holding an IPv4/IPv6 header (the pipeline judges those).
bool read_ip(const net::Packet& p, IpFrame& out) {
  const uint8_t* d = p.data();
  const uint32_t n = p.size();
  if (n < sizeof(net::EthHdr)) return false;
  uint16_t type = load_be16(d + 12);
  out.l3 = sizeof(net::EthHdr);
  if (type == net::kEtherTypeVlan) {
    if (n < sizeof(net::EthHdr) + sizeof(net::VlanTag)) return false;
    type = load_be16(d + 16);
    out.l3 += sizeof(net::VlanTag);
  }
  if (type == net::kEtherTypeIpv4 && n >= out.l3 + sizeof(net::Ipv4Hdr)) {
    out.v6 = false;
    out.len = load_be16(d + out.l3 + 2);
    out.df = (load_be16(d + out.l3 + 6) & net::kIpv4FlagDf) != 0;
  } else if (type == net::kEtherTypeIpv6 && n >= out.l3 + sizeof(net::Ipv6Hdr)) {
    out.v6 = true;
    out.len = sizeof(net::Ipv6Hdr) + load_be16(d + out.l3 + 4);
  } else {
    return false;
  }
  if (p.meta.gso_size != 0) out.len = segment_length(p, out.l3);
  return true;
}

}  // namespace

bool MtuGuard::fits(const net::Packet& p) const {
  IpFrame ip;
  return !read_ip(p, ip) || ip.len <= payload_mtu_;
}

bool MtuGuard::take(net::Packet& p, net::PacketPool& pool, net::PacketBatch& replies, net::PacketBatch& frags,
                    bool may_defer) {
  IpFrame ip;
  (void)read_ip(p, ip);  // fits() said it is IP
  if (!ip.v6 && !ip.df && p.meta.gso_size == 0) {
    switch (net::fragment_ipv4(p, ip.l3, payload_mtu_, pool, frags)) {
      case net::FragmentResult::kDone:
        ++counters_.fragmented;
        pool.free(&p);
        return true;
      case net::FragmentResult::kNoRoom:
        if (may_defer) return false;
        break;  // more fragments than a batch (or buffers) holds: the ICMP, the sender may lower its size
      case net::FragmentResult::kMalformed:
        ++counters_.dropped;
        pool.free(&p);
        return true;
      case net::FragmentResult::kMtuTooSmall:
        break;
    }
  }
  reply(p, ip.l3, ip.v6, pool, replies);
  return true;
}

void MtuGuard::reply(net::Packet& p, uint32_t l3, bool v6, net::PacketPool& pool, net::PacketBatch& replies) {
  const net::TooBigResult r =
      v6 ? net::make_packet_too_big(p, l3, payload_mtu_)
         : net::make_frag_needed(p, l3, static_cast<uint16_t>(std::min<uint32_t>(payload_mtu_, 0xffff)));
  if (r != net::TooBigResult::kBuilt) {
    ++counters_.dropped;
    pool.free(&p);
    return;
  }
  if (!allow_icmp()) {
    ++counters_.rate_limited;
    pool.free(&p);
    return;
  }
  p.meta.gso_size = 0;  // the error is a plain frame
  replies.push(&p);     // at most one per frame of the batch: never full
  ++counters_.icmp_sent;
}

bool MtuGuard::allow_icmp() {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - last_refill_).count();
  last_refill_ = now;
  tokens_ = std::min<double>(kIcmpBurst, tokens_ + elapsed * kIcmpPerSecond);
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

}  // namespace pspgw::gateway
