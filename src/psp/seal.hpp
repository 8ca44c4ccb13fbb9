// The PSP layer proper: seal and open of a PSP packet [PSP header 16/24][payload][ICV 16] in place
// (shared/spec/psp-protocol.md §2, §3). This is the UDP payload on the wire; encap.hpp and payload.hpp add
// the framing around it.
//
// Batched in steps so that one AEAD call serves a whole batch (no virtual call per packet):
//   seal: prepare_seal per packet (writes the header, fills an AeadOp)  ->  aead.seal(ops)
//   open: parse_open per packet (header, version, lengths)  ->  key lookup  ->  fill_open_op
//         ->  aead.open(ops)  ->  finish_open per packet (tag verdict; wipes the text on failure)
// seal_packet/open_packet are the same steps for a single packet.
//
// Crypto (§3): nonce = SPI || IV as on the wire (header bytes 4..15); AAD = header bytes 0..15 plus the clear
// bytes up to the crypt offset, which counts from the end of the IV and so includes the VC; ciphertext =
// the rest up to the ICV, possibly empty; the tag is always verified.
// Versions 2/3 (GMAC) are refused with kBadVersion: the key derivation (spec §4) and crypto::AeadAlg define
// keys for versions 0/1 only, and the contracts (SealParams, KeyError::kBadVersion) say so.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "base/result.hpp"
#include "crypto/aead.hpp"
#include "psp/drop_reason.hpp"
#include "psp/encap.hpp"
#include "psp/header.hpp"

namespace pspgw::psp {

// The AEAD algorithm of a raw 4-bit PSP version; nullopt for versions we neither seal nor open.
std::optional<crypto::AeadAlg> aead_alg(uint8_t version);

// Where the parts of a structurally valid PSP packet lie.
struct PspLayout {
  PspHeaderFields header;
  uint32_t aad_len = 0;   // 16 + crypt offset bytes
  uint32_t text_len = 0;  // bytes from the crypt offset to the ICV (0 is legal)
  uint32_t icv_offset() const { return aad_len + text_len; }
};

// The header a sender writes for `params` carrying `next_header`.
PspHeaderFields seal_header(const SealParams& params, uint8_t next_header);

// psp_packet: [room for hdr.size() header bytes][payload][16 bytes of room for the ICV]. Writes the header
// and fills `op` (in place). Fails with kBadVersion (not 0/1, or the key's algorithm differs),
// kBadCryptOffset (offset past the payload) or kTooShort (no room for header + ICV).
Status<DropReason> prepare_seal(std::span<uint8_t> psp_packet, const PspHeaderFields& hdr,
                                const crypto::AeadKey& key, crypto::AeadOp& op);

// Validates a received PSP packet before any key or payload byte is touched: header structure (kTooShort,
// kBadHeader), version (kBadVersion), header + ICV present (kTooShort), crypt offset within the packet
// (kBadCryptOffset).
Result<PspLayout, DropReason> parse_open(std::span<const uint8_t> psp_packet);
// Fills `op` to open `psp_packet` in place with `key` (nullptr -> kUnknownKey; wrong algorithm ->
// kUnknownKey).
Status<DropReason> fill_open_op(std::span<uint8_t> psp_packet, const PspLayout& layout,
                                const crypto::AeadKey* key, crypto::AeadOp& op);
// After aead.open: kNone if the tag verified, else kAuthFailed and the would-be plaintext is wiped so that no
// unauthenticated byte can be delivered by mistake.
DropReason finish_open(const crypto::AeadOp& op);
// After a verified open: the VC as decrypted (with a crypt offset below 2 the VC is encrypted, so the value
// parse_open read was ciphertext).
void read_decrypted_vc(std::span<const uint8_t> psp_packet, PspLayout& layout);

// parse_open + key lookup + fill_open_op.
template <class Resolver>
Result<PspLayout, DropReason> prepare_open(std::span<uint8_t> psp_packet, Resolver& keys,
                                           crypto::AeadOp& op) {
  auto layout = parse_open(psp_packet);
  if (!layout) return layout;
  const crypto::AeadKey* key =
      keys.key_for(layout->header.spi, static_cast<PspVersion>(layout->header.version));
  if (auto s = fill_open_op(psp_packet, *layout, key, op); !s) return Err{s.error()};
  return layout;
}

// One packet, one AEAD call. Prefer the batch steps on the data path.
Status<DropReason> seal_packet(std::span<uint8_t> psp_packet, const PspHeaderFields& hdr,
                               const crypto::AeadKey& key, const crypto::AeadBackend& aead);
Result<PspHeaderFields, DropReason> open_packet(std::span<uint8_t> psp_packet, KeyResolver& keys,
                                                const crypto::AeadBackend& aead);

}  // namespace pspgw::psp
