// PSP header codec (shared/spec/psp-protocol.md §2).
#include "psp/header.hpp"

namespace pspgw::psp {

void encode_header(const PspHeaderFields& f, std::span<uint8_t> out) {
  using namespace header_bits;  // NOLINT(google-build-using-namespace): the bit layout of §2
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
  using header_bits::kFlagSample;
  header[3] = static_cast<uint8_t>(on ? (header[3] | kFlagSample) : (header[3] & ~kFlagSample));
}

}  // namespace pspgw::psp
