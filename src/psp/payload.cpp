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

// Tunnel: the next header names the inner family; bytes past the inner IP length are not part of it.
Result<uint8_t, DropReason> tunnel_next_header(net::Packet& pkt) {
  const steps::InnerIp ip = steps::check_inner_ip(pkt.bytes());
  if (ip.next_header == 0) return Err{DropReason::kBadInnerPacket};
  pkt.trim_back(pkt.size() - ip.length);
  return ip.next_header;
}

}  // namespace

namespace steps {

InnerIp check_inner_ip(std::span<const uint8_t> b) {
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
  // Refusals first, so that a refused packet is left as it was.
  const auto alg = aead_alg(hdr.version);
  if (!alg || *alg != job.key->alg()) return Err{DropReason::kBadVersion};
  if (hdr.crypt_offset > kPspMaxCryptOffset || hdr.crypt_offset * 4u > body)
    return Err{DropReason::kBadCryptOffset};
  if (pkt.headroom() < hdr.size() || pkt.tailroom() < kPspIcvSize) return Err{DropReason::kNoRoom};
  pkt.push_front(static_cast<uint32_t>(hdr.size()));
  pkt.push_back(kPspIcvSize);
  return prepare_seal(pkt.bytes(), hdr, *job.key, op);
}

Result<OpenInfo, DropReason> finish_payload_open(net::Packet& pkt, const PspLayout& decrypted) {
  PspLayout l = decrypted;
  read_decrypted_vc(pkt.bytes(), l);
  const auto hdr_len = static_cast<uint32_t>(l.header.size());
  const std::span<const uint8_t> inner = pkt.bytes().subspan(hdr_len, l.icv_offset() - hdr_len);
  const bool tunnel = is_tunnel(l.header.next_header);
  if (tunnel) {
    if (check_inner_ip(inner).next_header != l.header.next_header) return Err{DropReason::kBadInnerPacket};
  }
  pkt.pull_front(hdr_len);
  pkt.trim_back(kPspIcvSize);
  return OpenInfo{l.header, tunnel ? Mode::kTunnel : Mode::kTransport};
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
  auto layout = prepare_open(pkt.bytes(), keys, op);
  if (!layout) return Err{layout.error()};
  aead.open({&op, 1});
  if (const DropReason r = finish_open(op); r != DropReason::kNone) return Err{r};
  return steps::finish_payload_open(pkt, *layout);
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
