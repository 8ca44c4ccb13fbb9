// The seal of a super-packet, segment by segment, as it leaves (issue 9: segmentation fused with the
// seal, as a NIC's TSO does with its crypto offload).
//
// A TAP with TSO/USO hands the gateway TCP/UDP super-packets of up to 64 KiB. They cross the pipeline
// whole (one match per super-packet, not per segment: TapConfig::segment_on_rx = false), encap() puts the
// SA's template in front (psp::encap_tunnel_gso) and encrypt() checks the SA; the segments are made here,
// as the frame leaves for the network port. Per segment, into a fresh pool packet in the form the UDP
// socket sends (no outer headers: the kernel writes them):
//
//   [PSP header: the super-packet's, this segment's IV][inner IP + L4 headers, fixed for the segment]
//   [payload: copied from the super-packet, then sealed in place][ICV]
//
// The headers are ports::GsoSegmenter's (Linux's segmentation rules). The payload is copied next to the
// headers and summed for its L4 checksum in one pass (GsoSegmenter::write_segment, net::csum_copy), then
// sealed in place with the segment's bytes in one piece (psp::prepare_segment_seal): the copy costs less
// than sealing a text in two pieces did (the headers in place and the payload read from the super-packet,
// ipsec-mb's init/update/update/finalize: ~200 instructions a 1448-byte segment more, and GMAC's pieces
// copied again; bench/super_seal).
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/result.hpp"
#include "crypto/aead.hpp"
#include "gateway/sa_table.hpp"
#include "net/packet.hpp"
#include "ports/gso.hpp"
#include "psp/batch.hpp"
#include "psp/drop_reason.hpp"
#include "psp/encap_template.hpp"

namespace pspgw::gateway {

using AeadOps = psp::detail::BatchSlots<crypto::AeadOp, net::kMaxBatch>;

class SegmentSeal {
 public:
  // `sp`: a super-packet encap_tunnel_gso() encapsulated with `t`, reduced to what the socket sends
  // (unwrap_for_send: [PSP header][inner IP][L4][payload], meta.peer/peer_port its destination;
  // meta.gso_size its segments' payload size). `key`: the worker's key of t's SA. `sp` must stay
  // unchanged until done(). kBadHeader: a header t does not write (a re-key changed the SA's shape);
  // kBadVersion: key and t disagree; kBadInnerPacket: not a TCP/UDP super-packet; kNoRoom: a segment
  // would not fit `buffer_size` (the pool's).
  static Result<SegmentSeal, psp::DropReason> start(const net::Packet& sp, const psp::EncapTemplate& t,
                                                    const crypto::AeadKey& key, uint32_t buffer_size);

  // Seals the next segments into packets of `pool` appended to `out` (until out is full, the pool is
  // empty or every segment is out), each with the super-packet's metadata (gso cleared) and the next IV
  // of `iv`; one AEAD call for them, with `ops` as scratch. Returns how many were appended. A segment the
  // crypt offset does not fit (its clear bytes pass its end) is not sent: dropped() counts it.
  std::size_t next(net::PacketPool& pool, net::PacketBatch& out, const crypto::AeadBackend& aead,
                   IvCounter& iv, AeadOps& ops);

  bool done() const { return index_ >= seg_.segment_count(); }
  std::size_t segment_count() const { return seg_.segment_count(); }
  std::size_t dropped() const { return dropped_; }

 private:
  SegmentSeal(const ports::GsoSegmenter& seg, const net::Packet& sp, const psp::EncapTemplate& t,
              const crypto::AeadKey& key)
      : seg_(seg), sp_(&sp), t_(&t), key_(&key) {}

  ports::GsoSegmenter seg_;
  const net::Packet* sp_;
  const psp::EncapTemplate* t_;
  const crypto::AeadKey* key_;
  std::size_t index_ = 0;
  std::size_t dropped_ = 0;
};

}  // namespace pspgw::gateway
