// The configuration files of the google/psp reference tools (shared/spec/psp-protocol.md §6).
//
// encrypt: whitespace-separated items, in order
//   1 master key 0   32 hex bytes ("34 44 8a ..."; one 64-digit token is accepted too)
//   2 master key 1   same
//   3 SPI            hex, 1..8 digits, optional 0x; the MSB selects the master key
//   4 encap mode     transport | tunnel
//   5 algorithm      aes-gcm-128 | aes-gcm-256
//   6 transport crypt offset     decimal, 4-octet units, 0..63
//   7 IPv4-tunnel crypt offset   same
//   8 IPv6-tunnel crypt offset   same
//   9 VC             vc | no-vc
// decrypt: items 1 and 2 only (a full encrypt config is accepted too, and validated).
//
// Stricter than the reference's fscanf: crypt offset 64 is refused (the field has 6 bits; the
// reference accepts 64 and writes a reserved bit), as are SPIs whose low 31 bits are zero (spec §5),
// hex bytes of more than two digits and anything after the last item.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.hpp"
#include "crypto/kdf.hpp"
#include "psp/encap.hpp"

namespace pspgw::psp_pcap {

struct ConfigError {
  int item = 0;  // 1..9; 0 = the file itself, 10 = trailing text
  std::string message;
};

struct MasterKeys {
  crypto::MasterKey key0;
  crypto::MasterKey key1;
};

struct EncryptConfig {
  MasterKeys keys;
  uint32_t spi = 0;
  psp::Mode mode = psp::Mode::kTransport;
  psp::PspVersion version = psp::PspVersion::kAesGcm128;
  uint8_t transport_crypt_offset = 0;  // 4-octet units
  uint8_t ipv4_tunnel_crypt_offset = 0;
  uint8_t ipv6_tunnel_crypt_offset = 0;
  bool vc = false;
};

Result<EncryptConfig, ConfigError> parse_encrypt_config(std::string_view text);
Result<MasterKeys, ConfigError> parse_decrypt_config(std::string_view text);

// Reads and parses a file; messages are prefixed with the path. The file's text is zeroed after use.
Result<EncryptConfig, ConfigError> load_encrypt_config(const std::string& path);
Result<MasterKeys, ConfigError> load_decrypt_config(const std::string& path);

}  // namespace pspgw::psp_pcap
