// PSP seal/open of [header][payload][ICV] in place (shared/spec/psp-protocol.md §2, §3). The per-packet
// steps the batch loops use are inline in seal.hpp.
#include "psp/seal.hpp"

namespace pspgw::psp {

Status<DropReason> prepare_seal(std::span<uint8_t> pkt, const PspHeaderFields& hdr,
                                const crypto::AeadKey& key, crypto::AeadOp& op) {
  const auto alg = aead_alg(hdr.version);
  if (!alg || *alg != key.alg()) return Err{DropReason::kBadVersion};
  if (hdr.crypt_offset > kPspMaxCryptOffset) return Err{DropReason::kBadCryptOffset};
  if (pkt.size() < hdr.size() + kPspIcvSize) return Err{DropReason::kTooShort};
  const auto body = static_cast<uint32_t>(pkt.size() - kPspHeaderSize - kPspIcvSize);  // VC + payload
  if (hdr.crypt_offset * detail::kCryptOffsetUnit > body) return Err{DropReason::kBadCryptOffset};
  detail::write_seal(pkt, hdr, key, op);
  return {};
}

Result<PspLayout, DropReason> parse_open(std::span<const uint8_t> pkt) {
  PspLayout l;
  if (const DropReason r = parse_open(pkt, l); r != DropReason::kNone) return Err{r};
  return l;
}

Status<DropReason> seal_packet(std::span<uint8_t> pkt, const PspHeaderFields& hdr, const crypto::AeadKey& key,
                               const crypto::AeadBackend& aead) {
  crypto::AeadOp op;
  if (auto s = prepare_seal(pkt, hdr, key, op); !s) return s;
  aead.seal({&op, 1});
  return {};
}

Result<PspHeaderFields, DropReason> open_packet(std::span<uint8_t> pkt, KeyResolver& keys,
                                                const crypto::AeadBackend& aead) {
  crypto::AeadOp op;
  PspLayout layout;
  if (const DropReason r = prepare_open(pkt, keys, op, layout); r != DropReason::kNone) return Err{r};
  aead.open({&op, 1});
  if (const DropReason r = finish_open(op); r != DropReason::kNone) return Err{r};
  read_decrypted_vc(pkt, layout);
  return layout.header;
}

}  // namespace pspgw::psp
