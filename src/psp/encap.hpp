// PSP encap/decap of whole Ethernet frames, transport and tunnel mode (spec page §1, §6).
//
// CONTRACT (fixed: tools/psp-pcap and later the gateway code against these signatures; implementations
// may add overloads and batch variants but not change these).
#pragma once

#include <cstdint>

#include "base/result.hpp"
#include "crypto/aead.hpp"
#include "net/packet.hpp"
#include "psp/drop_reason.hpp"
#include "psp/header.hpp"

namespace pspgw::psp {

enum class Mode : uint8_t { kTransport, kTunnel };

struct SealParams {
  Mode mode = Mode::kTunnel;
  PspVersion version = PspVersion::kAesGcm128;  // only 0/1 are sealed; 2/3 -> kBadVersion
  uint32_t spi = 0;
  uint64_t iv = 0;
  uint8_t crypt_offset = 0;  // 4-octet units, 0..63; counts the VC (offset 0 encrypts the VC too)
  bool has_vc = false;
  uint64_t vc = 0;
  bool sample = false;  // S bit
};

// Resolves the receive key for an SPI + version (the stateless derivation, or a cache in front of it).
// nullptr = unknown key (counted as kUnknownKey).
class KeyResolver {
 public:
  virtual ~KeyResolver() = default;
  virtual const crypto::AeadKey* key_for(uint32_t spi, PspVersion version) = 0;
  // key_for, and on nullptr the reason to count: kUnknownKey unless the resolver knows better (KeyCache:
  // kUnissuedSpi for an SPI the key ring never handed out). What the open steps call.
  virtual const crypto::AeadKey* resolve(uint32_t spi, PspVersion version, DropReason& why) {
    why = DropReason::kUnknownKey;
    return key_for(spi, version);
  }
};

struct OpenInfo {
  PspHeaderFields header;
  Mode mode = Mode::kTunnel;  // tunnel iff Next Header is 4 or 41
};

// Encapsulates the Ethernet II frame in `pkt` in place, the way the google/psp reference psp_encrypt does:
// transport: UDP + PSP inserted after the IP header, IP protocol := 17, lengths/IPv4 checksum fixed;
// tunnel: outer IP = copy of the inner IP header (IPv4: IHL 5, options dropped, proto 17, new length and
// checksum; IPv6: next header 17, new payload length). UDP sport = inner sport ^ dport for TCP/UDP inner
// packets, else 1000; UDP checksum 0. Needs headroom for UDP+PSP(+VC) and the outer IP, tailroom 16.
Status<DropReason> encap_frame(net::Packet& pkt, const SealParams& params, const crypto::AeadKey& key,
                               const crypto::AeadBackend& aead);

// Decapsulates a PSP Ethernet frame in place: validates outer headers, UDP dport 1000, the PSP header,
// version, crypt offset and lengths before touching bytes; resolves the key; ALWAYS verifies the ICV (also
// for an empty ciphertext); restores the original frame (transport: original IP protocol and lengths;
// tunnel: Ethernet header + inner packet). On failure the packet contents are unspecified and must not be
// delivered.
Result<OpenInfo, DropReason> decap_frame(net::Packet& pkt, KeyResolver& keys,
                                         const crypto::AeadBackend& aead);

}  // namespace pspgw::psp
