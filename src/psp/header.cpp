// PSP header codec (shared/spec/psp-protocol.md §2).
#include "psp/header.hpp"

namespace pspgw::psp {
namespace {

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

}  // namespace

void encode_header(const PspHeaderFields& f, std::span<uint8_t> out) {
  uint8_t* p = out.first(f.size()).data();
  p[0] = f.next_header;
  p[1] = f.has_vc ? kExtLenVc : kExtLenNoVc;
  p[2] = static_cast<uint8_t>(((f.reserved & 0x3) << kReservedShift) | (f.crypt_offset & kCryptOffsetMask));
  p[3] = static_cast<uint8_t>((f.sample ? kFlagSample : 0) | (f.drop ? kFlagDrop : 0) |
                              ((f.version & kVersionMask) << kVersionShift) | (f.has_vc ? kFlagVc : 0) |
                              kAlwaysOne);
  store_be32(p + 4, f.spi);
  store_be64(p + 8, f.iv);
  if (f.has_vc) store_be64(p + kPspHeaderSize, f.vc);
}

Result<PspHeaderFields, DropReason> decode_header(std::span<const uint8_t> b) {
  if (b.size() < kPspHeaderSize) return Err{DropReason::kTooShort};
  if ((b[3] & kAlwaysOne) == 0) return Err{DropReason::kBadHeader};
  PspHeaderFields f;
  f.has_vc = (b[3] & kFlagVc) != 0;
  if (b[1] != (f.has_vc ? kExtLenVc : kExtLenNoVc)) return Err{DropReason::kBadHeader};
  if (b.size() < f.size()) return Err{DropReason::kTooShort};
  f.next_header = b[0];
  f.crypt_offset = b[2] & kCryptOffsetMask;
  f.reserved = static_cast<uint8_t>(b[2] >> kReservedShift);
  f.sample = (b[3] & kFlagSample) != 0;
  f.drop = (b[3] & kFlagDrop) != 0;
  f.version = (b[3] >> kVersionShift) & kVersionMask;
  f.spi = load_be32(&b[4]);
  f.iv = load_be64(&b[8]);
  if (f.has_vc) f.vc = load_be64(&b[kPspHeaderSize]);
  return f;
}

std::string_view to_string(PspVersion v) {
  switch (v) {
    case PspVersion::kAesGcm128:
      return "aes-gcm-128";
    case PspVersion::kAesGcm256:
      return "aes-gcm-256";
    case PspVersion::kAesGmac128:
      return "aes-gmac-128";
    case PspVersion::kAesGmac256:
      return "aes-gmac-256";
  }
  return "unknown";
}

void set_sample_bit(uint8_t* header, bool on) {
  header[3] = static_cast<uint8_t>(on ? (header[3] | kFlagSample) : (header[3] & ~kFlagSample));
}

}  // namespace pspgw::psp
