// Why a PSP packet was not delivered. Every drop on the PSP path carries one of these and is counted.
// The values double as the decrypt "syndrome" in net::Metadata (0 = not decrypted, kNone = ok).
#pragma once

#include <cstdint>
#include <string_view>

namespace pspgw::psp {

enum class DropReason : uint8_t {
  kNone = 1,        // decrypted and authenticated (syndrome OK)
  kTooShort,        // fewer bytes than outer headers + PSP header (+VC) + crypt offset + ICV
  kBadHeader,       // Hdr Ext Len / V bit / always-1 bit inconsistent, or not PSP (UDP port, next header)
  kBadVersion,      // version not supported (4..15 undefined), or not the key's
  kBadCryptOffset,  // crypt offset points past the end of the payload
  kUnknownKey,      // no key for this SPI (no master keys yet, key of the wrong algorithm)
  kAuthFailed,      // ICV mismatch
  kBadInnerPacket,  // decrypted inner packet malformed (tunnel: not IPv4/IPv6, lengths wrong)
  kNoRoom,          // buffer lacks headroom/tailroom for the encap (sender side)
  kBadOuterPacket,  // outer Ethernet/IP/UDP malformed
  kUnissuedSpi,     // an SPI our key ring never handed out (above its slot's high-water mark, empty slot,
                    // low 31 bits zero): dropped before any key derivation (a random-SPI flood, a peer
                    // still using our previous incarnation's SPIs)
  kCount,
};
std::string_view to_string(DropReason r);

}  // namespace pspgw::psp
