#include "gateway/segment_seal.hpp"

#include "net/checksum.hpp"
#include "psp/header.hpp"

namespace pspgw::gateway {

Result<SegmentSeal, psp::DropReason> SegmentSeal::start(const net::Packet& sp, const psp::EncapTemplate& t,
                                                        const crypto::AeadKey& key, uint32_t buffer_size) {
  const uint32_t hdr = t.psp_header_size();
  if (sp.size() < hdr) return Err{psp::DropReason::kTooShort};
  if (!psp::detail::header_of(sp.data(), t)) return Err{psp::DropReason::kBadHeader};
  if (t.alg() != key.alg()) return Err{psp::DropReason::kBadVersion};
  auto seg = ports::GsoSegmenter::start_at(sp.bytes(), static_cast<uint16_t>(hdr), sp.meta.gso_size);
  if (!seg) return Err{psp::DropReason::kBadInnerPacket};
  if (std::size_t{net::kDefaultHeadroom} + seg->header_len() + seg->gso_size() + psp::kPspIcvSize >
      buffer_size) {
    return Err{psp::DropReason::kNoRoom};
  }
  return SegmentSeal(*seg, sp, t, key);
}

std::size_t SegmentSeal::next(net::PacketPool& pool, net::PacketBatch& out, const crypto::AeadBackend& aead,
                              IvCounter& iv, AeadOps& ops) {
  // The VC (if any) and the segment's inner headers follow the 16-byte PSP header in place.
  const uint32_t head = seg_.header_len() - static_cast<uint32_t>(psp::kPspHeaderSize);
  std::size_t n = 0;
  while (!done() && !out.full()) {
    net::Packet* p = pool.alloc();
    if (p == nullptr) break;
    const std::span<const uint8_t> payload = seg_.payload(index_);
    seg_.write_headers(p->data(), index_, net::csum_partial(payload));
    p->set_size(static_cast<uint32_t>(seg_.header_len() + payload.size() + psp::kPspIcvSize));  // checked
    ++index_;
    if (psp::prepare_split_seal(p->data(), head, payload, *t_, *key_, iv.next(), ops.fill(n)) !=
        psp::DropReason::kNone) {
      pool.free(p);  // only kBadCryptOffset is left once start() passed: a short last segment
      ++dropped_;
      continue;
    }
    p->meta = sp_->meta;
    p->meta.gso_size = 0;
    p->meta.gso_encapped = false;
    out.push(p);
    ++n;
  }
  aead.seal({ops.data(), n});
  return n;
}

}  // namespace pspgw::gateway
