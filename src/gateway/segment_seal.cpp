#include "gateway/segment_seal.hpp"

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
  const uint32_t hdr = seg_.header_len();
  const uint32_t head = hdr - static_cast<uint32_t>(psp::kPspHeaderSize);  // VC (if any) + inner headers
  std::size_t n = 0;
  while (!done() && !out.full()) {
    net::Packet* p = pool.alloc();
    if (p == nullptr) break;
    uint8_t* d = p->data();
    const uint32_t len = seg_.write_segment(d, index_);
    p->set_size(static_cast<uint32_t>(hdr + len + psp::kPspIcvSize));  // checked by start()
    ++index_;
    if (psp::prepare_segment_seal(d, head + len, *t_, *key_, iv.next(), ops.fill(n)) !=
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
