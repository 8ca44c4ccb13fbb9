// Coalescing of TAP writes (coalesce.hpp). Stages per batch:
//   head:    parse a frame's headers; can it start a GSO frame (TCP/UDP, IP lengths exact, valid IPv4 sum)?
//   join:    does the next frame continue the run (same headers but the fields segmentation changes)?
//   finish:  patch the run's header copy (lengths, IPv4 sum, TCP PSH, pseudo-header sum) and virtio header
#include "ports/coalesce.hpp"

#include <cstring>

#include "base/byteorder.hpp"
#include "net/checksum.hpp"
#include "net/headers.hpp"
#include "ports/header_fields.hpp"

namespace pspgw::ports {
namespace {

using namespace fields;  // NOLINT(google-build-using-namespace): the shared offsets, read like locals

constexpr std::size_t kMaxSegments = 64;  // UDP_MAX_SEGMENTS; TCP runs are bounded by a batch anyway
constexpr uint32_t kMaxIpBytes = 0xffff;  // IPv4 total length; IPv6 payload length is kept as low

// The first frame of a run, parsed.
struct Head {
  const uint8_t* bytes = nullptr;
  uint16_t l3 = 0;
  uint16_t l4 = 0;
  uint16_t hdr_len = 0;  // L2 + L3 + L4 headers
  uint8_t proto = 0;
  bool v4 = false;
  uint32_t gso_size = 0;  // the first frame's L4 payload
};

// IP header of a frame that may take part in a run: its length, protocol and family; 0 if it may not.
uint32_t ip_header(const uint8_t* ip, std::size_t avail, uint16_t ethertype, uint8_t& proto, bool& v4) {
  if (ethertype == net::kEtherTypeIpv4) {
    if (avail < sizeof(net::Ipv4Hdr) || (ip[0] >> 4) != 4) return 0;
    const uint32_t len = static_cast<uint32_t>(ip[0] & 0x0f) * 4;
    if (len < sizeof(net::Ipv4Hdr) || len > avail || load_be16(ip + kIpv4TotalLen) != avail) return 0;
    if ((load_be16(ip + offsetof(net::Ipv4Hdr, frag_off)) & (net::kIpv4FlagMf | net::kIpv4FragOffsetMask)) !=
        0)
      return 0;
    if (!net::ipv4_checksum_ok(ip)) return 0;
    proto = ip[offsetof(net::Ipv4Hdr, protocol)];
    v4 = true;
    return len;
  }
  if (ethertype == net::kEtherTypeIpv6) {
    if (avail < sizeof(net::Ipv6Hdr) || (ip[0] >> 4) != 6) return 0;
    if (sizeof(net::Ipv6Hdr) + load_be16(ip + kIpv6PayloadLen) != avail) return 0;
    proto = ip[offsetof(net::Ipv6Hdr, next_header)];  // an extension header: not TCP/UDP, written alone
    v4 = false;
    return sizeof(net::Ipv6Hdr);
  }
  return 0;
}

// L4 header length of a frame that may take part in a run; 0 if it may not.
uint32_t l4_header(const uint8_t* l4, std::size_t avail, uint8_t proto, const CoalesceOptions& opt) {
  if (proto == net::kIpProtoTcp && opt.tcp && avail >= sizeof(net::TcpHdr)) {
    const uint32_t len = static_cast<uint32_t>(l4[12] >> 4) * 4;
    if (len < sizeof(net::TcpHdr) || (l4[kTcpFlags] & (kTcpFin | kTcpSyn | kTcpRst | kTcpUrg)) != 0) return 0;
    return len;
  }
  if (proto == net::kIpProtoUdp && opt.udp && avail >= sizeof(net::UdpHdr)) {
    // Checksum 0 (IPv4: none) would come back computed from segmentation: not the same bytes.
    if (load_be16(l4 + kUdpLen) != avail || load_be16(l4 + kUdpCsum) == 0) return 0;
    return sizeof(net::UdpHdr);
  }
  return 0;
}

bool parse_head(std::span<const uint8_t> f, const CoalesceOptions& opt, Head& h) {
  if (f.size() < sizeof(net::EthHdr)) return false;
  uint16_t type = load_be16(&f[12]);
  uint16_t l3 = sizeof(net::EthHdr);
  if (type == net::kEtherTypeVlan) {
    if (f.size() < sizeof(net::EthHdr) + sizeof(net::VlanTag)) return false;
    type = load_be16(&f[16]);
    l3 = sizeof(net::EthHdr) + sizeof(net::VlanTag);
  }
  const std::size_t avail = f.size() - l3;
  const uint32_t ip_len = ip_header(f.data() + l3, avail, type, h.proto, h.v4);
  if (ip_len == 0) return false;
  const uint32_t l4_len = l4_header(f.data() + l3 + ip_len, avail - ip_len, h.proto, opt);
  if (l4_len == 0 || ip_len + l4_len >= avail) return false;  // no payload: nothing to merge
  h.bytes = f.data();
  h.l3 = l3;
  h.l4 = static_cast<uint16_t>(l3 + ip_len);
  h.hdr_len = static_cast<uint16_t>(l3 + ip_len + l4_len);
  h.gso_size = static_cast<uint32_t>(f.size() - h.hdr_len);
  return true;
}

void copy_field(uint8_t* to, const uint8_t* from, std::size_t off, std::size_t len) {
  std::memcpy(to + off, from + off, len);
}

// Does frame `f`, the k-th of the run (k >= 1), continue it? Its payload offset in the run is `offset`.
bool joins(const Head& h, std::span<const uint8_t> f, std::size_t k, uint32_t offset) {
  if (f.size() <= h.hdr_len || f.size() - h.hdr_len > h.gso_size) return false;
  // Its header with the fields segmentation rewrites taken from the head must be the head's header.
  std::array<uint8_t, kMaxCoalescedHeader> hdr;
  std::memcpy(hdr.data(), f.data(), h.hdr_len);
  uint8_t* ip = hdr.data() + h.l3;
  uint8_t* l4 = hdr.data() + h.l4;
  const uint8_t* hip = h.bytes + h.l3;
  const uint8_t* hl4 = h.bytes + h.l4;
  const uint32_t l3_len = static_cast<uint32_t>(f.size() - h.l3);
  if (h.v4) {
    if (load_be16(ip + kIpv4TotalLen) != l3_len || !net::ipv4_checksum_ok(f.data() + h.l3) ||
        load_be16(ip + kIpv4Id) != static_cast<uint16_t>(load_be16(hip + kIpv4Id) + k))
      return false;
    copy_field(ip, hip, kIpv4TotalLen, 2);
    copy_field(ip, hip, kIpv4Id, 2);
    copy_field(ip, hip, kIpv4Csum, 2);
  } else {
    if (sizeof(net::Ipv6Hdr) + load_be16(ip + kIpv6PayloadLen) != l3_len) return false;
    copy_field(ip, hip, kIpv6PayloadLen, 2);
  }
  if (h.proto == net::kIpProtoTcp) {
    if (load_be32(l4 + kTcpSeq) != load_be32(hl4 + kTcpSeq) + offset ||
        (l4[kTcpFlags] & ~kTcpPsh) != (hl4[kTcpFlags] & ~kTcpCwr))
      return false;
    copy_field(l4, hl4, kTcpSeq, 4);
    copy_field(l4, hl4, kTcpFlags, 1);
    copy_field(l4, hl4, kTcpCsum, 2);
  } else {
    if (load_be16(l4 + kUdpLen) != f.size() - h.l4 || load_be16(l4 + kUdpCsum) == 0) return false;
    copy_field(l4, hl4, kUdpLen, 2);
    copy_field(l4, hl4, kUdpCsum, 2);
  }
  return std::memcmp(hdr.data(), h.bytes, h.hdr_len) == 0;
}

// True when the frame ends a run: shorter than gso_size, or TCP PSH.
bool closes(const Head& h, std::span<const uint8_t> f) {
  return f.size() - h.hdr_len < h.gso_size ||
         (h.proto == net::kIpProtoTcp && (f[h.l4 + kTcpFlags] & kTcpPsh) != 0);
}

// The run's header: the head's, with the lengths of the whole run, the last frame's PSH, the IPv4 header
// sum, and the pseudo-header sum in the L4 checksum field (NEEDS_CSUM); then the virtio header.
void finish(const Head& h, std::span<const uint8_t> last, uint32_t payload, CoalescedWrite& w) {
  uint8_t* hdr = w.hdr.data();
  std::memcpy(hdr, h.bytes, h.hdr_len);
  uint8_t* ip = hdr + h.l3;
  uint8_t* l4 = hdr + h.l4;
  const uint32_t l4_len = h.hdr_len - h.l4 + payload;
  uint32_t sum = 0;
  if (h.v4) {
    store_be16(ip + kIpv4TotalLen, static_cast<uint16_t>(h.l4 - h.l3 + l4_len));
    net::ipv4_set_checksum(ip);
    sum = net::csum_partial({ip + offsetof(net::Ipv4Hdr, src), 8});
  } else {
    store_be16(ip + kIpv6PayloadLen, static_cast<uint16_t>(l4_len));
    sum = net::csum_partial({ip + offsetof(net::Ipv6Hdr, src), 32});
  }
  sum += h.proto + l4_len;  // the pseudo-header's protocol and L4 length (fits 16 bits each here)
  const auto pseudo = static_cast<uint16_t>(~net::csum_fold(sum));  // folded, not inverted
  w.vnet.flags = kVnetFlagNeedsCsum;
  w.vnet.hdr_len = h.hdr_len;
  w.vnet.gso_size = static_cast<uint16_t>(h.gso_size);
  w.vnet.csum_start = h.l4;
  if (h.proto == net::kIpProtoTcp) {
    l4[kTcpFlags] = static_cast<uint8_t>(l4[kTcpFlags] | (last[h.l4 + kTcpFlags] & kTcpPsh));
    store_be16(l4 + kTcpCsum, pseudo);
    w.vnet.gso_type = h.v4 ? kVnetGsoTcpV4 : kVnetGsoTcpV6;
    if ((l4[kTcpFlags] & kTcpCwr) != 0) w.vnet.gso_type |= kVnetGsoEcn;  // as Linux GRO: SKB_GSO_TCP_ECN
    w.vnet.csum_offset = kTcpCsum;
  } else {
    store_be16(l4 + kUdpLen, static_cast<uint16_t>(l4_len));
    store_be16(l4 + kUdpCsum, pseudo);
    w.vnet.gso_type = kVnetGsoUdpL4;
    w.vnet.csum_offset = kUdpCsum;
  }
  w.hdr_len = h.hdr_len;
}

}  // namespace

std::size_t plan_coalesced_writes(std::span<const std::span<const uint8_t>> frames,
                                  const CoalesceOptions& opt, std::span<CoalescedWrite> out) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < frames.size() && n < out.size(); ++n) {
    CoalescedWrite& w = out[n];
    w.vnet = VirtioNetHdr{};
    w.first = static_cast<uint16_t>(i);
    w.count = 1;
    w.hdr_len = 0;
    Head h;
    if (!parse_head(frames[i], opt, h) || closes(h, frames[i])) {
      ++i;
      continue;
    }
    uint32_t payload = h.gso_size;
    std::size_t j = i + 1;
    while (j < frames.size() && j - i < kMaxSegments && joins(h, frames[j], j - i, payload) &&
           h.hdr_len - h.l3 + payload + (frames[j].size() - h.hdr_len) <= kMaxIpBytes) {
      payload += static_cast<uint32_t>(frames[j].size() - h.hdr_len);
      if (closes(h, frames[j++])) break;
    }
    w.count = static_cast<uint16_t>(j - i);
    if (w.count > 1) finish(h, frames[j - 1], payload, w);
    i = j;
  }
  return n;
}

std::size_t flatten_write(const CoalescedWrite& w, std::span<const std::span<const uint8_t>> frames,
                          std::span<uint8_t> out) {
  if (w.count == 0 || std::size_t{w.first} + w.count > frames.size()) return 0;
  if (w.count == 1) {
    const auto f = frames[w.first];
    if (f.size() > out.size()) return 0;
    std::memcpy(out.data(), f.data(), f.size());
    return f.size();
  }
  std::size_t len = w.hdr_len;
  for (std::size_t k = 0; k < w.count; ++k) len += frames[w.first + k].size() - w.hdr_len;
  if (len > out.size()) return 0;
  std::memcpy(out.data(), w.hdr.data(), w.hdr_len);
  std::size_t at = w.hdr_len;
  for (std::size_t k = 0; k < w.count; ++k) {
    const auto f = frames[w.first + k].subspan(w.hdr_len);
    std::memcpy(out.data() + at, f.data(), f.size());
    at += f.size();
  }
  return len;
}

}  // namespace pspgw::ports
