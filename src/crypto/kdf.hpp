// PSP key derivation (PSP Architecture Specification, "Key derivation"; shared/spec/psp-protocol.md §4):
// NIST SP 800-108 counter-mode KDF with PRF = AES-256-CMAC keyed by a 256-bit master key.
//   v0 key = CMAC(mk, 00000001 | "Pv0\0" | SPI | 00000080)
//   v1 key = CMAC(mk, 00000001 | "Pv1\0" | SPI | 00000100) || CMAC(mk, 00000002 | "Pv1\0" | SPI | 00000100)
//
// Every KDF input is exactly one 16-byte block, and the CMAC of one complete block M is AES_K(M ^ K1)
// (SP 800-38B §6.2 with n = 1; K1 the first CMAC subkey). KdfKey computes the AES-256 round keys and K1 once
// per master key, so a derivation is one (v0) or two (v1) AES block encryptions: no allocation, no context,
// nothing mutable, so one KdfKey serves every worker thread at once. This is what makes a packet with an
// unknown SPI cheap (docs/architecture.md, "Hostile packets").
#pragma once

#include <array>
#include <cstdint>

#include "base/secret.hpp"

namespace pspgw::crypto {

using MasterKey = Secret<32>;

class KdfKey {
 public:
  explicit KdfKey(const MasterKey& master);
  ~KdfKey();  // zeroes the round keys and K1
  KdfKey(const KdfKey&) = delete;
  KdfKey& operator=(const KdfKey&) = delete;

  // AES-256-CMAC of one 16-byte block.
  Secret<16> cmac_block(const std::array<uint8_t, 16>& block) const;
  Secret<16> derive_v0(uint32_t spi) const;
  Secret<32> derive_v1(uint32_t spi) const;

 private:
  void encrypt_block(const uint8_t* in, uint8_t* out) const;

  alignas(16) std::array<uint8_t, 15 * 16> round_keys_;  // AES-256: 14 rounds + the initial whitening key
  alignas(16) std::array<uint8_t, 16> k1_;
};

// The reference AES-256-CMAC over a single 16-byte block, through OpenSSL's EVP_MAC (allocates a context
// per call: for tests that check KdfKey against it, never on a packet path).
Secret<16> cmac_aes256_block(const MasterKey& key, const std::array<uint8_t, 16>& block);

// One-off derivations (prepare the master key, derive, wipe). Anything that derives more than once per
// master key holds a KdfKey instead.
Secret<16> derive_psp_key_v0(const MasterKey& master, uint32_t spi);
Secret<32> derive_psp_key_v1(const MasterKey& master, uint32_t spi);

}  // namespace pspgw::crypto
