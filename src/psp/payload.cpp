// PSP seal/open of UDP payloads in place (payload.hpp).
#include "psp/payload.hpp"

#include "base/byteorder.hpp"
#include "net/headers.hpp"
#include "psp/batch.hpp"

namespace pspgw::psp {
namespace {

bool is_tunnel(uint8_t next_header) {
  return next_header == net::kIpProtoIpv4 || next_header == net::kIpProtoIpv6;
}

// check_inner_ip's body, inlined into the per-packet loops of this file.
[[gnu::always_inline]] inline steps::InnerIp inner_ip(std::span<const uint8_t> b) {
  if (b.empty()) return {};
  if (b[0] >> 4 == 4) {
    const uint32_t ihl = (b[0] & 0x0fu) * 4;
    if (b.size() < sizeof(net::Ipv4Hdr) || ihl < sizeof(net::Ipv4Hdr)) return {};
    const uint32_t total = load_be16(&b[offsetof(net::Ipv4Hdr, total_length)]);
    if (total < ihl || total > b.size()) return {};
    return {net::kIpProtoIpv4, total};
  }
  if (b[0] >> 4 == 6) {
    if (b.size() < sizeof(net::Ipv6Hdr)) return {};
    const uint32_t total = sizeof(net::Ipv6Hdr) + load_be16(&b[offsetof(net::Ipv6Hdr, payload_length)]);
    if (total > b.size()) return {};
    return {net::kIpProtoIpv6, total};
  }
  return {};
}

// Tunnel: the next header names the inner family; bytes past the inner IP length are not part of it.
Result<uint8_t, DropReason> tunnel_next_header(net::Packet& pkt) {
  const steps::InnerIp ip = inner_ip(pkt.bytes());
  if (ip.next_header == 0) return Err{DropReason::kBadInnerPacket};
  pkt.trim_back(pkt.size() - ip.length);
  return ip.next_header;
}

}  // namespace

namespace steps {

InnerIp check_inner_ip(std::span<const uint8_t> b) {
  return inner_ip(b);
}

Status<DropReason> prepare_payload_seal(net::Packet& pkt, const SealJob& job, crypto::AeadOp& op) {
  if (job.key == nullptr) return Err{DropReason::kUnknownKey};
  uint8_t nh = job.next_header;
  if (job.params.mode == Mode::kTunnel) {
    auto tunnel_nh = tunnel_next_header(pkt);
    if (!tunnel_nh) return Err{tunnel_nh.error()};
    nh = *tunnel_nh;
  }
  const PspHeaderFields hdr = seal_header(job.params, nh);
  const uint32_t body = static_cast<uint32_t>((hdr.has_vc ? kPspVcSize : 0) + pkt.size());
  // Refusals first, so that a refused packet is left as it was. These are prepare_seal's checks (its
  // length check holds once the room is taken), so the packet goes straight to write_seal.
  const auto alg = aead_alg(hdr.version);
  if (!alg || *alg != job.key->alg()) return Err{DropReason::kBadVersion};
  if (hdr.crypt_offset > kPspMaxCryptOffset || hdr.crypt_offset * detail::kCryptOffsetUnit > body)
    return Err{DropReason::kBadCryptOffset};
  if (pkt.headroom() < hdr.size() || pkt.tailroom() < kPspIcvSize) return Err{DropReason::kNoRoom};
  pkt.push_front(static_cast<uint32_t>(hdr.size()));
  pkt.push_back(kPspIcvSize);
  detail::write_seal(pkt.bytes(), hdr, *job.key, op);
  return {};
}

namespace {

// After a verified open, into `info`: kNone (info filled) or the reason (info and pkt untouched).
DropReason finish_payload_open(net::Packet& pkt, const PspLayout& l, OpenInfo& info) {
  const auto hdr_len = static_cast<uint32_t>(l.header.size());
  const bool tunnel = is_tunnel(l.header.next_header);
  if (tunnel) {
    const std::span<const uint8_t> inner = pkt.bytes().subspan(hdr_len, l.icv_offset() - hdr_len);
    if (inner_ip(inner).next_header != l.header.next_header) return DropReason::kBadInnerPacket;
  }
  info.header = l.header;
  if (l.header.has_vc) info.header.vc = load_be64(pkt.data() + kPspHeaderSize);  // as decrypted
  info.mode = tunnel ? Mode::kTunnel : Mode::kTransport;
  pkt.pull_front(hdr_len);
  pkt.trim_back(kPspIcvSize);
  return DropReason::kNone;
}

}  // namespace

void finish_payload_open_batch(net::PacketBatch& pkts, detail::OpenScratch& s, std::size_t n,
                               std::span<DropReason> results, std::span<OpenInfo> infos) {
  for (std::size_t j = 0; j < n; ++j) {
    const std::size_t i = s.pkt_index[j];
    DropReason r = finish_open(s.ops[j]);
    if (r == DropReason::kNone) r = finish_payload_open(*pkts[i], s.layouts[j], infos[i]);
    results[i] = r;
  }
}

Result<OpenInfo, DropReason> finish_payload_open(net::Packet& pkt, const PspLayout& layout) {
  OpenInfo info;
  if (const DropReason r = finish_payload_open(pkt, layout, info); r != DropReason::kNone) return Err{r};
  return info;
}

}  // namespace steps

Status<DropReason> seal_tunnel_payload(net::Packet& pkt, const SealParams& params, const crypto::AeadKey& key,
                                       const crypto::AeadBackend& aead) {
  SealJob job{params, &key, 0};
  job.params.mode = Mode::kTunnel;
  crypto::AeadOp op;
  if (auto s = steps::prepare_payload_seal(pkt, job, op); !s) return s;
  aead.seal({&op, 1});
  return {};
}

Status<DropReason> seal_transport_payload(net::Packet& pkt, uint8_t next_header, const SealParams& params,
                                          const crypto::AeadKey& key, const crypto::AeadBackend& aead) {
  SealJob job{params, &key, next_header};
  job.params.mode = Mode::kTransport;
  crypto::AeadOp op;
  if (auto s = steps::prepare_payload_seal(pkt, job, op); !s) return s;
  aead.seal({&op, 1});
  return {};
}

Result<OpenInfo, DropReason> open_payload(net::Packet& pkt, KeyResolver& keys,
                                          const crypto::AeadBackend& aead) {
  crypto::AeadOp op;
  PspLayout layout;
  if (const DropReason r = prepare_open(pkt.bytes(), keys, op, layout); r != DropReason::kNone) return Err{r};
  aead.open({&op, 1});
  if (const DropReason r = finish_open(op); r != DropReason::kNone) return Err{r};
  return steps::finish_payload_open(pkt, layout);
}

void seal_payload_batch(net::PacketBatch& pkts, std::span<const SealJob> jobs,
                        const crypto::AeadBackend& aead, std::span<DropReason> results) {
  detail::BatchSlots<crypto::AeadOp, net::kMaxBatch> ops;
  std::size_t n = 0;
  for (std::size_t i = 0; i < pkts.size(); ++i) {
    auto s = steps::prepare_payload_seal(*pkts[i], jobs[i], ops.make(n));
    results[i] = s ? DropReason::kNone : s.error();
    if (s) ++n;
  }
  aead.seal({ops.data(), n});
}

}  // namespace pspgw::psp
