#include "ports/gso.hpp"

#include <cstring>

#include "base/byteorder.hpp"
#include "net/checksum.hpp"
#include "net/headers.hpp"
#include "net/parse.hpp"
#include "ports/header_fields.hpp"

namespace pspgw::ports {
namespace {

using namespace fields;  // NOLINT(google-build-using-namespace): the shared offsets, read like locals

// L4 header length of a TCP/UDP segment at `l4` with `avail` bytes behind it; 0 if malformed.
uint16_t l4_header_len(uint8_t proto, const uint8_t* l4, std::size_t avail) {
  if (proto == net::kIpProtoUdp) return avail >= sizeof(net::UdpHdr) ? sizeof(net::UdpHdr) : 0;
  if (proto != net::kIpProtoTcp || avail < sizeof(net::TcpHdr)) return 0;
  const uint16_t len = static_cast<uint16_t>((l4[12] >> 4) * 4);
  return len >= sizeof(net::TcpHdr) && len <= avail ? len : 0;
}

}  // namespace

std::string_view to_string(GsoError e) {
  switch (e) {
    case GsoError::kBadHeaders:
      return "bad_headers";
    case GsoError::kBadGsoSize:
      return "bad_gso_size";
    case GsoError::kSegmentTooBig:
      return "segment_too_big";
  }
  return "unknown";
}

bool complete_checksum(std::span<uint8_t> frame, uint16_t csum_start, uint16_t csum_offset) {
  const std::size_t field = std::size_t{csum_start} + csum_offset;
  if (field + 2 > frame.size()) return false;
  const uint16_t c = net::csum_fold(net::csum_partial(frame.subspan(csum_start)));
  store_be16(frame.data() + field, c == 0 ? 0xffff : c);  // like skb_checksum_help (CSUM_MANGLED_0)
  return true;
}

Result<GsoSegmenter, GsoError> GsoSegmenter::start(std::span<const uint8_t> frame, uint16_t gso_size) {
  if (gso_size == 0) return Err{GsoError::kBadGsoSize};
  auto parsed = net::parse_frame(frame);
  if (!parsed || parsed->ip.family == net::IpFamily::kNone) return Err{GsoError::kBadHeaders};
  return from(frame, parsed->ip, gso_size);
}

Result<GsoSegmenter, GsoError> GsoSegmenter::start_at(std::span<const uint8_t> frame, uint16_t l3_offset,
                                                      uint16_t gso_size) {
  if (gso_size == 0) return Err{GsoError::kBadGsoSize};
  auto ip = net::parse_ip(frame, l3_offset);
  if (!ip) return Err{GsoError::kBadHeaders};
  return from(frame, *ip, gso_size);
}

Result<GsoSegmenter, GsoError> GsoSegmenter::from(std::span<const uint8_t> frame, const net::IpInfo& ip,
                                                  uint16_t gso_size) {
  if (ip.family == net::IpFamily::kNone || ip.fragment) return Err{GsoError::kBadHeaders};
  const std::size_t l3_end = std::size_t{ip.l3_offset} + ip.l3_total_len;
  if (ip.l4_offset >= l3_end) return Err{GsoError::kBadHeaders};
  const uint16_t l4_len = l4_header_len(ip.l4_proto, frame.data() + ip.l4_offset, l3_end - ip.l4_offset);
  if (l4_len == 0) return Err{GsoError::kBadHeaders};

  GsoSegmenter s;
  s.frame_ = frame.data();
  s.gso_size_ = gso_size;
  s.l3_off_ = ip.l3_offset;
  s.l4_off_ = ip.l4_offset;
  s.hdr_len_ = static_cast<uint16_t>(ip.l4_offset + l4_len);
  s.payload_len_ = static_cast<uint32_t>(l3_end - s.hdr_len_);
  s.l4_proto_ = ip.l4_proto;
  s.v4_ = ip.family == net::IpFamily::kV4;
  return s;
}

Result<std::size_t, GsoError> GsoSegmenter::next(net::PacketPool& pool, net::PacketBatch& out,
                                                 const net::Metadata& meta) {
  if (pool.buffer_size() < net::kDefaultHeadroom + hdr_len_ + uint32_t{gso_size_}) {
    return Err{GsoError::kSegmentTooBig};
  }
  std::size_t n = 0;
  while (!done() && !out.full()) {
    net::Packet* p = pool.alloc();
    if (p == nullptr) break;
    const uint32_t len = payload_len_ - emitted_ < gso_size_ ? payload_len_ - emitted_ : gso_size_;
    p->set_size(hdr_len_ + len);  // fits: checked against the buffer size above
    write_at(p->data(), emitted_, len, emitted_ / gso_size_);
    p->meta = meta;
    p->meta.gso_size = 0;
    out.push(p);
    emitted_ += len;
    ++n;
  }
  return n;
}

// The payload is copied and summed in one pass (net::csum_copy); the L4 checksum then adds only the
// pseudo-header and the L4 header.
void GsoSegmenter::write_at(uint8_t* seg, uint32_t payload_off, uint32_t len, std::size_t index) const {
  std::memcpy(seg, frame_, hdr_len_);
  const uint32_t payload_sum = net::csum_copy(seg + hdr_len_, {frame_ + hdr_len_ + payload_off, len});
  fix_ip(seg, len, index);
  fix_l4(seg, payload_off, len, payload_sum);
}

uint32_t GsoSegmenter::write_segment(uint8_t* seg, std::size_t index) const {
  const auto len = static_cast<uint32_t>(payload(index).size());
  write_at(seg, static_cast<uint32_t>(index) * gso_size_, len, index);
  return len;
}

void GsoSegmenter::fix_ip(uint8_t* seg, uint32_t len, std::size_t index) const {
  uint8_t* ip = seg + l3_off_;
  const uint32_t l3_len = hdr_len_ - l3_off_ + len;
  if (v4_) {
    store_be16(ip + kIpv4TotalLen, static_cast<uint16_t>(l3_len));
    store_be16(ip + kIpv4Id, static_cast<uint16_t>(load_be16(frame_ + l3_off_ + kIpv4Id) + index));
    net::ipv4_set_checksum(ip);
  } else {
    store_be16(ip + kIpv6PayloadLen, static_cast<uint16_t>(l3_len - sizeof(net::Ipv6Hdr)));
  }
}

void GsoSegmenter::fix_l4(uint8_t* seg, uint32_t payload_off, uint32_t len, uint32_t payload_sum) const {
  uint8_t* l4 = seg + l4_off_;
  const uint32_t l4_len = hdr_len_ - l4_off_ + len;
  std::size_t csum = kUdpCsum;
  if (l4_proto_ == net::kIpProtoTcp) {
    store_be32(l4 + kTcpSeq, load_be32(frame_ + l4_off_ + kTcpSeq) + payload_off);
    const bool first = payload_off == 0;
    const bool last = payload_off + len == payload_len_;
    uint8_t flags = l4[kTcpFlags];
    if (!last) flags = static_cast<uint8_t>(flags & ~(kTcpFin | kTcpPsh));
    if (!first) flags = static_cast<uint8_t>(flags & ~kTcpCwr);
    l4[kTcpFlags] = flags;
    csum = kTcpCsum;
  } else {
    store_be16(l4 + kUdpLen, static_cast<uint16_t>(l4_len));
  }
  store_be16(l4 + csum, 0);
  // The L4 header is 8 bytes (UDP) or a multiple of 4 (TCP): the payload's words line up with the sum's.
  const uint32_t l4_hdr = hdr_len_ - l4_off_;
  const uint16_t c = net::l4_checksum(seg + l3_off_, l4_proto_, {l4, l4_hdr}, l4_len, payload_sum);
  store_be16(l4 + csum, c);
}

}  // namespace pspgw::ports
