// The PSP header (PSP Architecture Specification §"Packet formats"; shared/spec/psp-protocol.md §2).
//
//  byte 0: Next Header   byte 1: Hdr Ext Len   byte 2: R R | Crypt Offset(6)   byte 3: S D | Version(4) | V 1
//  bytes 4..7 SPI, 8..15 IV, [16..23 Virtualization Cookie iff V]
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "base/byteorder.hpp"
#include "base/result.hpp"
#include "psp/drop_reason.hpp"

namespace pspgw::psp {

// Spec constants.
inline constexpr uint16_t kPspUdpPort = 1000;
inline constexpr std::size_t kPspHeaderSize = 16;
inline constexpr std::size_t kPspVcSize = 8;
inline constexpr std::size_t kPspIcvSize = 16;
inline constexpr uint8_t kPspMaxCryptOffset = 63;  // 6 bits, 4-octet units

enum class PspVersion : uint8_t {
  kAesGcm128 = 0,
  kAesGcm256 = 1,
  kAesGmac128 = 2,  // integrity only (§3)
  kAesGmac256 = 3,  // integrity only (§3)
};
inline constexpr uint8_t kPspMaxVersion = 3;  // 4..15 are undefined: discarded
// "aes-gcm-128", "aes-gcm-256", "aes-gmac-128", "aes-gmac-256" (the reference tools' spelling).
std::string_view to_string(PspVersion v);
// The derived key's size (§4): 128-bit for versions 0/2, 256-bit for 1/3.
constexpr std::size_t key_size(PspVersion v) {
  return v == PspVersion::kAesGcm128 || v == PspVersion::kAesGmac128 ? 16 : 32;
}

struct PspHdr {
  uint8_t next_header;
  uint8_t hdr_ext_len;
  uint8_t crypt_off;  // R(7) R(6) | crypt offset (5..0)
  uint8_t flags;      // S(7) D(6) | version (5..2) | V(1) | 1(0)
  Be32 spi;
  Be64 iv;
};
static_assert(sizeof(PspHdr) == kPspHeaderSize);

// The decoded header. `reserved` keeps the R bits as received (they are authenticated).
struct PspHeaderFields {
  uint8_t next_header = 0;
  uint8_t crypt_offset = 0;  // 4-octet units, 0..63
  uint8_t reserved = 0;      // the two R bits, 0..3
  bool sample = false;       // S
  bool drop = false;         // D
  uint8_t version = 0;       // raw 4-bit version
  bool has_vc = false;       // V
  uint32_t spi = 0;
  uint64_t iv = 0;
  uint64_t vc = 0;  // valid iff has_vc

  std::size_t size() const { return kPspHeaderSize + (has_vc ? kPspVcSize : 0); }
};

// Writes the header (16 or 24 bytes) to out; out.size() must be >= fields.size().
void encode_header(const PspHeaderFields& fields, std::span<uint8_t> out);
// Decodes and validates structure (Hdr Ext Len matches V, the always-1 bit, enough bytes for the VC).
// Does not judge the version: callers decide what they support. Inline: every open runs it (twice on
// the daemon's path, decrypt() and decap()).
inline Result<PspHeaderFields, DropReason> decode_header(std::span<const uint8_t> bytes);
// The same into `f` (the batch form): kNone, or the reason (then `f` is unspecified). Decoded into a local
// and copied out, as through Result, the copy read the byte-wide stores back wide and stalled (store
// forwarding): the open path decodes straight into its batch slot.
inline DropReason decode_header(std::span<const uint8_t> bytes, PspHeaderFields& f);
// Sets or clears the S bit in an encoded header (EGR_SAMP's action).
void set_sample_bit(uint8_t* header, bool on);

namespace header_bits {

// Byte 1: Hdr Ext Len in 8-octet units beyond the first 8 bytes: 16-byte header -> 1, 24 bytes (VC) -> 2.
constexpr uint8_t kExtLenNoVc = 1;
constexpr uint8_t kExtLenVc = 2;
// Byte 2: R R | Crypt Offset(6).
constexpr uint8_t kCryptOffsetMask = 0x3f;
constexpr int kReservedShift = 6;
// Byte 3: S D | Version(4) | V | 1.
constexpr uint8_t kFlagSample = 0x80;
constexpr uint8_t kFlagDrop = 0x40;
constexpr int kVersionShift = 2;
constexpr uint8_t kVersionMask = 0x0f;
constexpr uint8_t kFlagVc = 0x02;
constexpr uint8_t kAlwaysOne = 0x01;

}  // namespace header_bits

inline DropReason decode_header(std::span<const uint8_t> b, PspHeaderFields& f) {
  using namespace header_bits;  // NOLINT(google-build-using-namespace): the bit layout of §2
  if (b.size() < kPspHeaderSize) return DropReason::kTooShort;
  const uint8_t flags = b[3];
  if ((flags & kAlwaysOne) == 0) return DropReason::kBadHeader;
  const bool has_vc = (flags & kFlagVc) != 0;
  if (b[1] != (has_vc ? kExtLenVc : kExtLenNoVc)) return DropReason::kBadHeader;
  if (b.size() < kPspHeaderSize + (has_vc ? kPspVcSize : 0)) return DropReason::kTooShort;
  f.has_vc = has_vc;
  f.next_header = b[0];
  f.crypt_offset = b[2] & kCryptOffsetMask;
  f.reserved = static_cast<uint8_t>(b[2] >> kReservedShift);
  f.sample = (flags & kFlagSample) != 0;
  f.drop = (flags & kFlagDrop) != 0;
  f.version = (flags >> kVersionShift) & kVersionMask;
  f.spi = load_be32(&b[4]);
  f.iv = load_be64(&b[8]);
  f.vc = has_vc ? load_be64(&b[kPspHeaderSize]) : 0;
  return DropReason::kNone;
}

inline Result<PspHeaderFields, DropReason> decode_header(std::span<const uint8_t> b) {
  PspHeaderFields f;
  if (const DropReason r = decode_header(b, f); r != DropReason::kNone) return Err{r};
  return f;
}

}  // namespace pspgw::psp
