// The TAP receive path after readv() (ports/tap_port.cpp accept_frame): a 10-byte virtio-net header, then
// the frame. Without GSO, a partial checksum is finished (ports::complete_checksum); with a TCP/UDP GSO type
// the super-packet is cut by ports::GsoSegmenter, a batch at a time, as TapPort does.
//
// Invariants: complete_checksum refuses offsets outside the frame and then leaves it untouched; otherwise it
// changes only the checksum field, and (field word-aligned from csum_start) the stored value completes the
// pseudo-header sum the field held. A segmenter that starts emits exactly segment_count() segments, each
// no longer than the headers + gso_size, each a frame that parses back with the right IP lengths, a valid
// IPv4 header checksum and L4 checksum, TCP sequence numbers advancing by the payload before it; their
// payloads put together are the super-packet's payload; a pool whose buffers are too small is refused.
#include <algorithm>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "base/byteorder.hpp"
#include "fuzz/fuzz_target.hpp"
#include "net/checksum.hpp"
#include "net/parse.hpp"
#include "ports/gso.hpp"
#include "ports/vnet_hdr.hpp"

namespace {

using namespace pspgw;

void check_complete_checksum(std::vector<uint8_t> frame, const ports::VirtioNetHdr& hdr) {
  const std::vector<uint8_t> before = frame;
  const std::size_t field = std::size_t{hdr.csum_start} + hdr.csum_offset;
  if (!ports::complete_checksum(frame, hdr.csum_start, hdr.csum_offset)) {
    PSPGW_FUZZ_CHECK(field + 2 > frame.size() && frame == before);
    return;
  }
  PSPGW_FUZZ_CHECK(field + 2 <= frame.size());
  for (std::size_t i = 0; i < frame.size(); ++i)
    PSPGW_FUZZ_CHECK(i == field || i == field + 1 || frame[i] == before[i]);
  if (hdr.csum_offset % 2 == 0) {
    // The bytes now sum, with the pseudo-header sum the field held before, to all ones.
    const uint32_t sum = net::csum_partial(std::span<const uint8_t>(frame).subspan(hdr.csum_start),
                                           load_be16(before.data() + field));
    PSPGW_FUZZ_CHECK(net::csum_fold(sum) == 0);
  }
}

void check_segment(const std::vector<uint8_t>& super, const ports::GsoSegmenter& seg, uint16_t gso_size,
                   const net::Packet& p, std::size_t index, std::vector<uint8_t>& payload) {
  const std::span<const uint8_t> f(p.data(), p.size());
  PSPGW_FUZZ_CHECK(f.size() > seg.header_len() && f.size() <= seg.header_len() + std::size_t{gso_size});
  PSPGW_FUZZ_CHECK(p.meta.gso_size == 0);
  auto info = net::parse_frame(f);
  PSPGW_FUZZ_CHECK(info.ok() && !info->ip.fragment && info->ip.l4_proto == seg.l4_proto());
  const net::IpInfo& ip = info->ip;
  PSPGW_FUZZ_CHECK(std::size_t{ip.l3_offset} + ip.l3_total_len == f.size());
  const uint8_t* iph = f.data() + ip.l3_offset;
  if (seg.ipv4()) PSPGW_FUZZ_CHECK(net::ipv4_checksum_ok(iph));
  PSPGW_FUZZ_CHECK(net::l4_checksum_ok(iph, ip.l4_proto, f.subspan(ip.l4_offset)));
  if (seg.l4_proto() == net::kIpProtoTcp) {
    const uint32_t want = load_be32(super.data() + ip.l4_offset + 4) + static_cast<uint32_t>(payload.size());
    PSPGW_FUZZ_CHECK(load_be32(f.data() + ip.l4_offset + 4) == want);
  }
  (void)index;
  payload.insert(payload.end(), f.begin() + seg.header_len(), f.end());
}

void check_segmenter(const std::vector<uint8_t>& super, uint16_t gso_size, uint32_t buffer_size) {
  auto seg = ports::GsoSegmenter::start(super, gso_size);
  if (!seg) {
    PSPGW_FUZZ_CHECK(gso_size != 0 || seg.error() == ports::GsoError::kBadGsoSize);
    return;
  }
  net::PacketPool pool(8, buffer_size);  // fewer packets than a batch: next() stops on an empty pool too
  net::Metadata meta;
  meta.gso_size = gso_size;
  meta.flow_hash = 0x5a5a;
  std::vector<uint8_t> payload;
  std::size_t segments = 0;
  const std::size_t want = seg->segment_count();
  while (!seg->done()) {
    net::PacketBatch out;
    auto n = seg->next(pool, out, meta);
    if (!n) {
      PSPGW_FUZZ_CHECK(n.error() == ports::GsoError::kSegmentTooBig && segments == 0);
      PSPGW_FUZZ_CHECK(net::kDefaultHeadroom + seg->header_len() + uint32_t{gso_size} > buffer_size);
      return;
    }
    PSPGW_FUZZ_CHECK(*n == out.size() && *n > 0);  // a free pool always yields progress
    for (std::size_t i = 0; i < out.size(); ++i) {
      PSPGW_FUZZ_CHECK(out[i]->meta.flow_hash == 0x5a5a);
      check_segment(super, *seg, gso_size, *out[i], segments++, payload);
      pool.free(out[i]);
    }
    PSPGW_FUZZ_CHECK(segments <= want);
  }
  PSPGW_FUZZ_CHECK(segments == want);
  const std::size_t hdr = seg->header_len();
  PSPGW_FUZZ_CHECK(hdr + payload.size() <= super.size());
  PSPGW_FUZZ_CHECK(
      std::equal(payload.begin(), payload.end(), super.begin() + static_cast<std::ptrdiff_t>(hdr)));
}

}  // namespace

PSPGW_FUZZ_TARGET(tap_gso) {
  ports::VirtioNetHdr hdr{};
  if (size < sizeof(hdr) + 1) return 0;
  std::memcpy(&hdr, data, sizeof(hdr));
  // One byte picks the pool's buffer size (small ones exercise kSegmentTooBig), the rest is the frame.
  const uint32_t buffer_size = data[sizeof(hdr)] % 2 == 0 ? net::kDefaultBufferSize : 512;
  std::vector<uint8_t> frame(data + sizeof(hdr) + 1, data + size);

  const uint8_t gso = static_cast<uint8_t>(hdr.gso_type & ~ports::kVnetGsoEcn);
  if (gso == ports::kVnetGsoNone) {
    if ((hdr.flags & ports::kVnetFlagNeedsCsum) != 0) check_complete_checksum(std::move(frame), hdr);
    return 0;
  }
  if (gso == ports::kVnetGsoTcpV4 || gso == ports::kVnetGsoTcpV6 || gso == ports::kVnetGsoUdpL4) {
    check_segmenter(frame, hdr.gso_size, buffer_size);
  }
  return 0;
}
