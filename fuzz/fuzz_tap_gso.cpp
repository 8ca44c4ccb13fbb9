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
//
// The gateway's fused seal of a super-packet (gateway/segment_seal.hpp) against the path it replaced:
// encap_tunnel_gso + unwrap_for_send + SegmentSeal must send bit for bit what GsoSegmenter's segments, each
// encap_tunnel'd, sealed and unwrapped, are; or both refuse. The pool byte's other bits pick the SA's PSP
// version (bits 1-2), VC (bit 3) and crypt offset (bits 4-7).
#include <algorithm>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "base/byteorder.hpp"
#include "fuzz/fuzz_target.hpp"
#include "gateway/outer.hpp"
#include "gateway/segment_seal.hpp"
#include "net/checksum.hpp"
#include "net/parse.hpp"
#include "ports/gso.hpp"
#include "ports/port.hpp"
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

using Frames = std::vector<std::vector<uint8_t>>;

// GsoSegmenter's segments, each encapsulated, sealed and reduced to the UDP payload (a segment the crypt
// offset does not fit is dropped), with IVs iv, iv + 1, ...; nullopt if encap refuses one.
std::optional<Frames> copy_then_seal(const std::vector<uint8_t>& super, uint16_t gso_size,
                                     const psp::EncapTemplate& t, const crypto::AeadKey& key,
                                     const crypto::AeadBackend& aead, uint64_t iv) {
  const psp::EthAddrs eth{};
  auto seg = ports::GsoSegmenter::start(super, gso_size);
  PSPGW_FUZZ_CHECK(seg.ok());
  net::PacketPool pool(4, ports::kGsoRxBufferSize);
  Frames out;
  while (!seg->done()) {
    net::PacketBatch b;
    PSPGW_FUZZ_CHECK(seg->next(pool, b, net::Metadata{}).ok());
    for (net::Packet* p : b) {
      const psp::EncapError e = psp::encap_tunnel(*p, t, eth, iv++, 0x77);
      crypto::AeadOp op;
      const psp::DropReason r =
          e == psp::EncapError::kNone ? psp::prepare_frame_seal(*p, t, key, op) : psp::DropReason::kNone;
      if (e == psp::EncapError::kNone && r == psp::DropReason::kNone) {
        aead.seal({&op, 1});
        PSPGW_FUZZ_CHECK(op.ok && gateway::unwrap_for_send(*p));
        out.emplace_back(p->bytes().begin(), p->bytes().end());
      }
      pool.free(p);
      if (e != psp::EncapError::kNone) return std::nullopt;
      PSPGW_FUZZ_CHECK(r == psp::DropReason::kNone || r == psp::DropReason::kBadCryptOffset);
    }
  }
  return out;
}

void check_fused_seal(const std::vector<uint8_t>& super, uint16_t gso_size, uint8_t knobs) {
  static const auto aead =
      crypto::make_backend("ipsec-mb") ? crypto::make_backend("ipsec-mb") : crypto::make_backend("openssl");
  auto seg = ports::GsoSegmenter::start(super, gso_size);
  if (!seg || seg->segment_count() == 0 || super.size() + net::kDefaultHeadroom > ports::kGsoRxBufferSize)
    return;
  // Segments larger than any pool buffer (gso_size near 64 KiB): both paths refuse (the segmenter's
  // kSegmentTooBig, SegmentSeal's kNoRoom); found by libFuzzer: corpus/tap_gso/gso-size-past-the-buffer.
  if (net::kDefaultHeadroom + seg->header_len() + gso_size + psp::kPspIcvSize > ports::kGsoRxBufferSize)
    return;
  psp::SealParams params;
  params.version = static_cast<psp::PspVersion>((knobs >> 1) & 3);
  params.spi = 0x80000031;
  params.has_vc = (knobs & 8) != 0;
  params.vc = 0x1122334455667788;
  params.crypt_offset = static_cast<uint8_t>(knobs >> 4);
  psp::OuterHeaders outer;
  outer.local = *net::IpAddr::parse("2001:db8::1");
  outer.peer = *net::IpAddr::parse("2001:db8::2");
  const psp::EncapTemplate t = psp::EncapTemplate::make(params, outer).value();
  const crypto::AeadAlg alg = *psp::aead_alg(static_cast<uint8_t>(params.version));
  const std::vector<uint8_t> key_bytes(crypto::key_size(alg), 0x42);
  const auto key = aead->make_key(alg, key_bytes);
  const std::optional<Frames> want =
      copy_then_seal(super, gso_size, t, *key, *aead, gateway::IvCounter(0).next());

  net::PacketPool pool(2 * net::kMaxBatch + 1, ports::kGsoRxBufferSize);
  net::Packet* sp = pool.alloc();
  PSPGW_FUZZ_CHECK(sp->assign(super));
  const auto first = static_cast<uint32_t>(seg->header_len() - seg->l3_offset() + seg->payload(0).size());
  const psp::EncapError e = psp::encap_tunnel_gso(*sp, t, psp::EthAddrs{}, 1, 0x77, first);
  PSPGW_FUZZ_CHECK((e == psp::EncapError::kNone) == want.has_value() || e == psp::EncapError::kTooBig);
  if (e != psp::EncapError::kNone || !want) return;
  sp->meta.gso_size = gso_size;
  PSPGW_FUZZ_CHECK(gateway::unwrap_for_send(*sp));
  auto seal = gateway::SegmentSeal::start(*sp, t, *key, pool.buffer_size());
  PSPGW_FUZZ_CHECK(seal.ok());
  gateway::IvCounter iv(0);  // the reference's IVs
  gateway::AeadOps ops;
  Frames got;
  while (!seal->done()) {
    net::PacketBatch b;
    seal->next(pool, b, *aead, iv, ops);
    for (net::Packet* p : b) {
      got.emplace_back(p->bytes().begin(), p->bytes().end());
      pool.free(p);
    }
  }
  PSPGW_FUZZ_CHECK(got == *want);
  PSPGW_FUZZ_CHECK(seal->dropped() + got.size() == seal->segment_count());
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
    check_fused_seal(frame, hdr.gso_size, data[sizeof(hdr)]);
  }
  return 0;
}
