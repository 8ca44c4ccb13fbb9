// The PSP layer proper: seal and open of a PSP packet [PSP header 16/24][payload][ICV 16] in place
// (shared/spec/psp-protocol.md §2, §3). This is the UDP payload on the wire; encap.hpp and
// encap_template.hpp add the framing around it.
//
// Batched in steps so that one AEAD call serves a whole batch (no virtual call per packet):
//   seal: prepare_seal per packet (writes the header, fills an AeadOp)  ->  aead.seal(ops)
//   open: prepare_open_op per packet (check_open: header, version, lengths; key lookup; the op pointed)
//         ->  aead.open(ops)  ->  finish_open per packet (tag verdict; wipes the text on failure)
// seal_packet/open_packet are the same steps for a single packet.
//
// The per-packet steps the batch loops call are inline, and the batch forms fill caller-owned slots (the
// PspLayout in the batch scratch, the caller's OpenInfo) rather than returning Results: at 64 B the AEAD
// costs ~400 instructions a packet, so a few copies of a 48-byte layout and a call per step were a large
// share of the PSP layer's cost (bench/psp_seal.cpp). The Result forms remain for single packets.
//
// Crypto (§3): nonce = SPI || IV as on the wire (header bytes 4..15); AAD = header bytes 0..15 plus the clear
// bytes up to the crypt offset, which counts from the end of the IV and so includes the VC; ciphertext =
// the rest up to the ICV, possibly empty; the tag is always verified.
// Versions 2/3 (GMAC, integrity only): the op is pointed the same way and the GMAC key authenticates
// header || clear bytes || text with the text left clear (crypto/aead.hpp), which is the spec's "everything
// after the header is authenticated"; the crypt offset is carried but changes nothing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

#include "base/byteorder.hpp"
#include "base/result.hpp"
#include "crypto/aead.hpp"
#include "psp/drop_reason.hpp"
#include "psp/encap.hpp"
#include "psp/header.hpp"

namespace pspgw::psp {

// The AEAD algorithm of a raw 4-bit PSP version; nullopt for versions we neither seal nor open.
inline std::optional<crypto::AeadAlg> aead_alg(uint8_t version) {
  switch (version) {
    case static_cast<uint8_t>(PspVersion::kAesGcm128):
      return crypto::AeadAlg::kAesGcm128;
    case static_cast<uint8_t>(PspVersion::kAesGcm256):
      return crypto::AeadAlg::kAesGcm256;
    case static_cast<uint8_t>(PspVersion::kAesGmac128):
      return crypto::AeadAlg::kAesGmac128;
    case static_cast<uint8_t>(PspVersion::kAesGmac256):
      return crypto::AeadAlg::kAesGmac256;
    default:
      return std::nullopt;  // 4..15 undefined
  }
}

// Where the parts of a structurally valid PSP packet lie.
struct PspLayout {
  PspHeaderFields header;
  uint32_t aad_len = 0;   // 16 + crypt offset bytes
  uint32_t text_len = 0;  // bytes from the crypt offset to the ICV (0 is legal)
  uint32_t icv_offset() const { return aad_len + text_len; }
};

// The header a sender writes for `params` carrying `next_header`.
inline PspHeaderFields seal_header(const SealParams& p, uint8_t next_header) {
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

// psp_packet: [room for hdr.size() header bytes][payload][16 bytes of room for the ICV]. Writes the header
// and fills `op` (in place). Fails with kBadVersion (not 0..3, or the key's algorithm differs),
// kBadCryptOffset (offset past the payload) or kTooShort (no room for header + ICV).
Status<DropReason> prepare_seal(std::span<uint8_t> psp_packet, const PspHeaderFields& hdr,
                                const crypto::AeadKey& key, crypto::AeadOp& op);

// Validates a received PSP packet before any key or payload byte is touched: header structure (kTooShort,
// kBadHeader), version (kBadVersion), header + ICV present (kTooShort), crypt offset within the packet
// (kBadCryptOffset).
Result<PspLayout, DropReason> parse_open(std::span<const uint8_t> psp_packet);
// The same into `layout` (the batch form): kNone, or the reason (then `layout` is unspecified).
inline DropReason parse_open(std::span<const uint8_t> psp_packet, PspLayout& layout);
// After aead.open: kNone if the tag verified, else kAuthFailed and the would-be plaintext is wiped so that no
// unauthenticated byte can be delivered by mistake.
inline DropReason finish_open(const crypto::AeadOp& op);
// After a verified open: the VC as decrypted (with a crypt offset below 2 the VC is encrypted, so the value
// parse_open read was ciphertext).
inline void read_decrypted_vc(std::span<const uint8_t> psp_packet, PspLayout& layout);

namespace detail {

inline constexpr uint32_t kCryptOffsetUnit = 4;

// Points `op` at the packet: nonce = SPI || IV as on the wire, AAD = [0, aad_len), text after it, ICV last.
// Assigns every member of `op`, so `op` may be a slot never constructed (BatchSlots::fill).
// The nonce is built from the values, not reloaded from the header bytes (on seal they were just stored,
// and a load spanning two recent stores cannot be store-forwarded and stalls).
inline void point_op(uint8_t* pkt, uint32_t spi, uint64_t iv, uint32_t aad_len, uint32_t text_len,
                     const crypto::AeadKey& key, crypto::AeadOp& op) {
  op.key = &key;
  store_be32(op.nonce.data(), spi);
  store_be64(op.nonce.data() + 4, iv);
  op.aad = {pkt, aad_len};
  op.in = pkt + aad_len;
  op.out = pkt + aad_len;
  op.len = text_len;
  op.tag = pkt + aad_len + text_len;
  op.ok = false;
}

// prepare_seal after its checks passed (callers that made the same checks themselves use this directly).
inline void write_seal(std::span<uint8_t> psp_packet, const PspHeaderFields& hdr, const crypto::AeadKey& key,
                       crypto::AeadOp& op) {
  const uint32_t aad_len = static_cast<uint32_t>(kPspHeaderSize) + hdr.crypt_offset * kCryptOffsetUnit;
  const auto text_len = static_cast<uint32_t>(psp_packet.size() - kPspIcvSize - aad_len);
  point_op(psp_packet.data(), hdr.spi, hdr.iv, aad_len, text_len, key, op);
  encode_header(hdr, psp_packet);
}

// What the structural checks of a received PSP packet found (check_open).
struct OpenShape {
  uint8_t version = 0;    // 0..3
  uint32_t aad_len = 0;   // 16 + crypt offset bytes
  uint32_t text_len = 0;  // bytes from the crypt offset to the ICV
};

// The checks every open makes before a key or payload byte is touched, in this order: header structure
// (kTooShort: no 16 bytes, or no room for the VC the V bit announces; kBadHeader: the always-1 bit clear,
// Hdr Ext Len not matching V), version (kBadVersion: not 0..3), header + ICV present (kTooShort), crypt
// offset within the packet (kBadCryptOffset: the reference psp_decrypt accepts any offset; past the payload
// there is nothing to decrypt, §6). Read from the header's first four bytes, not from a decoded copy of
// all its fields: the open fast path (prepare_open_op) needs only these, and decoding every field into the
// batch slot was a third of its own instructions (callgrind, bench/psp_seal).
[[gnu::always_inline]] inline DropReason check_open(std::span<const uint8_t> pkt, OpenShape& o) {
  using namespace header_bits;  // NOLINT(google-build-using-namespace): the bit layout of §2
  const std::size_t size = pkt.size();
  if (size < kPspHeaderSize) return DropReason::kTooShort;
  const uint8_t* b = pkt.data();
  const uint8_t flags = b[3];
  if ((flags & kAlwaysOne) == 0) return DropReason::kBadHeader;
  const bool has_vc = (flags & kFlagVc) != 0;
  if (b[1] != (has_vc ? kExtLenVc : kExtLenNoVc)) return DropReason::kBadHeader;
  const std::size_t hdr = kPspHeaderSize + (has_vc ? kPspVcSize : 0);
  const auto version = static_cast<uint8_t>((flags >> kVersionShift) & kVersionMask);
  if (version > static_cast<uint8_t>(PspVersion::kAesGmac256))
    return size < hdr ? DropReason::kTooShort : DropReason::kBadVersion;
  if (size < hdr + kPspIcvSize) return DropReason::kTooShort;
  const auto body = static_cast<uint32_t>(size - kPspHeaderSize - kPspIcvSize);
  const uint32_t clear = (b[2] & kCryptOffsetMask) * kCryptOffsetUnit;
  if (clear > body) return DropReason::kBadCryptOffset;
  o.version = version;
  o.aad_len = static_cast<uint32_t>(kPspHeaderSize) + clear;
  o.text_len = body - clear;
  return DropReason::kNone;
}

// Versions 0..3 name the algorithms in AeadAlg's order: a version's algorithm is a cast, not a lookup.
static_assert(static_cast<uint8_t>(crypto::AeadAlg::kAesGcm128) == 0 &&
              static_cast<uint8_t>(crypto::AeadAlg::kAesGcm256) == 1 &&
              static_cast<uint8_t>(crypto::AeadAlg::kAesGmac128) == 2 &&
              static_cast<uint8_t>(crypto::AeadAlg::kAesGmac256) == 3);

}  // namespace detail

// Always inline: out of line it was a call and a reload of the layout per packet (perf, bench/psp_seal).
// The header is decoded straight into the layout (see decode_header's batch form).
[[gnu::always_inline]] inline DropReason parse_open(std::span<const uint8_t> pkt, PspLayout& l) {
  detail::OpenShape o;
  if (const DropReason r = detail::check_open(pkt, o); r != DropReason::kNone) return r;
  decode_header(pkt, l.header);  // cannot fail: check_open made its checks
  l.aad_len = o.aad_len;
  l.text_len = o.text_len;
  return DropReason::kNone;
}

// The receive key for an SPI through any resolver: KeyResolver::resolve where the type has it (the reason
// of a miss), else key_for (a miss is kUnknownKey). A template, so a final KeyCache costs no virtual call.
template <class Resolver>
const crypto::AeadKey* resolve_key(Resolver& keys, uint32_t spi, PspVersion version, DropReason& why) {
  if constexpr (requires { keys.resolve(spi, version, why); }) {
    return keys.resolve(spi, version, why);
  } else {
    why = DropReason::kUnknownKey;
    return keys.key_for(spi, version);
  }
}

inline DropReason finish_open(const crypto::AeadOp& op) {
  if (op.ok) [[likely]]
    return DropReason::kNone;
  std::fill_n(op.out, op.len, uint8_t{0});
  return DropReason::kAuthFailed;
}

inline void read_decrypted_vc(std::span<const uint8_t> pkt, PspLayout& l) {
  if (l.header.has_vc) l.header.vc = load_be64(&pkt[kPspHeaderSize]);
}

// The open of one packet up to its AEAD call, with no layout: check_open, the key of the packet's SPI and
// version (the resolver's reason when there is none; kUnknownKey when the key is of another algorithm),
// then `op` pointed at the packet in place (detail::point_op, which assigns every member: `op` may be a
// BatchSlots::fill slot). The open fast path (detail::prepare_open_batch) and every other open run this.
template <class Resolver>
[[gnu::always_inline]] inline DropReason prepare_open_op(std::span<uint8_t> pkt, Resolver& keys,
                                                         crypto::AeadOp& op) {
  detail::OpenShape o;
  if (const DropReason r = detail::check_open(pkt, o); r != DropReason::kNone) return r;
  uint8_t* b = pkt.data();
  const uint32_t spi = load_be32(b + 4);
  DropReason why = DropReason::kUnknownKey;
  const crypto::AeadKey* key = resolve_key(keys, spi, static_cast<PspVersion>(o.version), why);
  if (key == nullptr) return why;
  if (key->alg() != static_cast<crypto::AeadAlg>(o.version)) return DropReason::kUnknownKey;
  detail::point_op(b, spi, load_be64(b + 8), o.aad_len, o.text_len, *key, op);
  return DropReason::kNone;
}

// prepare_open_op, and the header's fields into `layout` (the batch form).
template <class Resolver>
DropReason prepare_open(std::span<uint8_t> psp_packet, Resolver& keys, crypto::AeadOp& op,
                        PspLayout& layout) {
  if (const DropReason r = prepare_open_op(psp_packet, keys, op); r != DropReason::kNone) return r;
  decode_header(psp_packet, layout.header);  // cannot fail: check_open passed
  layout.aad_len = static_cast<uint32_t>(op.aad.size());
  layout.text_len = static_cast<uint32_t>(op.len);
  return DropReason::kNone;
}

template <class Resolver>
Result<PspLayout, DropReason> prepare_open(std::span<uint8_t> psp_packet, Resolver& keys,
                                           crypto::AeadOp& op) {
  PspLayout layout;
  if (const DropReason r = prepare_open(psp_packet, keys, op, layout); r != DropReason::kNone) return Err{r};
  return layout;
}

// One packet, one AEAD call. Prefer the batch steps on the data path.
Status<DropReason> seal_packet(std::span<uint8_t> psp_packet, const PspHeaderFields& hdr,
                               const crypto::AeadKey& key, const crypto::AeadBackend& aead);
Result<PspHeaderFields, DropReason> open_packet(std::span<uint8_t> psp_packet, KeyResolver& keys,
                                                const crypto::AeadBackend& aead);

}  // namespace pspgw::psp
