// PSP seal/open of [header][payload][ICV] in place (shared/spec/psp-protocol.md §2, §3).
#include "psp/seal.hpp"

#include "base/byteorder.hpp"

#include <algorithm>

namespace pspgw::psp {
namespace {

constexpr uint32_t kCryptOffsetUnit = 4;

// Points `op` at the packet: nonce = SPI || IV as on the wire, AAD = [0, aad_len), text after it, ICV last.
// The nonce is built from the values, not reloaded from the header bytes just stored (a load spanning two
// recent stores cannot be store-forwarded and stalls).
void point_op(std::span<uint8_t> pkt, uint32_t spi, uint64_t iv, uint32_t aad_len, uint32_t text_len,
              const crypto::AeadKey& key, crypto::AeadOp& op) {
  op.key = &key;
  store_be32(op.nonce.data(), spi);
  store_be64(op.nonce.data() + 4, iv);
  op.aad = pkt.first(aad_len);
  op.in = pkt.data() + aad_len;
  op.out = pkt.data() + aad_len;
  op.len = text_len;
  op.tag = pkt.data() + aad_len + text_len;
  op.ok = false;
}

}  // namespace

std::optional<crypto::AeadAlg> aead_alg(uint8_t version) {
  switch (version) {
    case static_cast<uint8_t>(PspVersion::kAesGcm128):
      return crypto::AeadAlg::kAesGcm128;
    case static_cast<uint8_t>(PspVersion::kAesGcm256):
      return crypto::AeadAlg::kAesGcm256;
    default:
      return std::nullopt;  // 2/3 GMAC: refused (see seal.hpp); 4..15 undefined
  }
}

PspHeaderFields seal_header(const SealParams& p, uint8_t next_header) {
  PspHeaderFields h;
  h.next_header = next_header;
  h.crypt_offset = p.crypt_offset;
  h.sample = p.sample;
  h.version = static_cast<uint8_t>(p.version);
  h.has_vc = p.has_vc;
  h.spi = p.spi;
  h.iv = p.iv;
  h.vc = p.vc;
  return h;
}

Status<DropReason> prepare_seal(std::span<uint8_t> pkt, const PspHeaderFields& hdr,
                                const crypto::AeadKey& key, crypto::AeadOp& op) {
  const auto alg = aead_alg(hdr.version);
  if (!alg || *alg != key.alg()) return Err{DropReason::kBadVersion};
  if (hdr.crypt_offset > kPspMaxCryptOffset) return Err{DropReason::kBadCryptOffset};
  if (pkt.size() < hdr.size() + kPspIcvSize) return Err{DropReason::kTooShort};
  const auto body = static_cast<uint32_t>(pkt.size() - kPspHeaderSize - kPspIcvSize);  // VC + payload
  const uint32_t clear = hdr.crypt_offset * kCryptOffsetUnit;
  if (clear > body) return Err{DropReason::kBadCryptOffset};
  encode_header(hdr, pkt);
  point_op(pkt, hdr.spi, hdr.iv, static_cast<uint32_t>(kPspHeaderSize) + clear, body - clear, key, op);
  return {};
}

Result<PspLayout, DropReason> parse_open(std::span<const uint8_t> pkt) {
  auto hdr = decode_header(pkt);
  if (!hdr) return Err{hdr.error()};
  if (!aead_alg(hdr->version)) return Err{DropReason::kBadVersion};
  if (pkt.size() < hdr->size() + kPspIcvSize) return Err{DropReason::kTooShort};
  const auto body = static_cast<uint32_t>(pkt.size() - kPspHeaderSize - kPspIcvSize);
  const uint32_t clear = hdr->crypt_offset * kCryptOffsetUnit;
  // The reference psp_decrypt accepts any offset; past the payload there is nothing to decrypt (§6).
  if (clear > body) return Err{DropReason::kBadCryptOffset};
  PspLayout l;
  l.header = *hdr;
  l.aad_len = static_cast<uint32_t>(kPspHeaderSize) + clear;
  l.text_len = body - clear;
  return l;
}

Status<DropReason> fill_open_op(std::span<uint8_t> pkt, const PspLayout& l, const crypto::AeadKey* key,
                                crypto::AeadOp& op) {
  if (key == nullptr || key->alg() != aead_alg(l.header.version)) return Err{DropReason::kUnknownKey};
  point_op(pkt.first(l.icv_offset() + kPspIcvSize), l.header.spi, l.header.iv, l.aad_len, l.text_len, *key,
           op);
  return {};
}

DropReason finish_open(const crypto::AeadOp& op) {
  if (op.ok) return DropReason::kNone;
  std::fill_n(op.out, op.len, uint8_t{0});
  return DropReason::kAuthFailed;
}

void read_decrypted_vc(std::span<const uint8_t> pkt, PspLayout& l) {
  if (l.header.has_vc) l.header.vc = load_be64(&pkt[kPspHeaderSize]);
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
  auto layout = prepare_open(pkt, keys, op);
  if (!layout) return Err{layout.error()};
  aead.open({&op, 1});
  if (const DropReason r = finish_open(op); r != DropReason::kNone) return Err{r};
  read_decrypted_vc(pkt, *layout);
  return layout->header;
}

}  // namespace pspgw::psp
