// PSP key derivation (PSP Architecture Specification, "Key derivation"; shared/spec/psp-protocol.md §4):
// NIST SP 800-108 counter-mode KDF with PRF = AES-256-CMAC keyed by a 256-bit master key.
//   v0 key = CMAC(mk, 00000001 | "Pv0\0" | SPI | 00000080)
//   v1 key = CMAC(mk, 00000001 | "Pv1\0" | SPI | 00000100) || CMAC(mk, 00000002 | "Pv1\0" | SPI | 00000100)
#pragma once

#include <cstdint>

#include "base/secret.hpp"

namespace pspgw::crypto {

using MasterKey = Secret<32>;

// One AES-256-CMAC over a single 16-byte block.
Secret<16> cmac_aes256_block(const MasterKey& key, const std::array<uint8_t, 16>& block);

Secret<16> derive_psp_key_v0(const MasterKey& master, uint32_t spi);
Secret<32> derive_psp_key_v1(const MasterKey& master, uint32_t spi);

}  // namespace pspgw::crypto
