// PSP key derivation (PSP Architecture Specification, "Key derivation"; shared/spec/psp-protocol.md §4):
// NIST SP 800-108 counter-mode KDF with PRF = AES-256-CMAC keyed by a 256-bit master key.
//   v0 key = CMAC(mk, 00000001 | "Pv0\0" | SPI | 00000080)
//   v1 key = CMAC(mk, 00000001 | "Pv1\0" | SPI | 00000100) || CMAC(mk, 00000002 | "Pv1\0" | SPI | 00000100)
//
// Every KDF input is exactly one 16-byte block, so each output block is one AES-256-CMAC of one block. KdfKey
// prepares the master key once through intel-ipsec-mb (IMB_AES_KEYEXP_256: the round keys;
// IMB_AES_CMAC_SUBKEY_GEN_256: K1, K2), and a derivation is one (v0) or two (v1) IMB_AUTH_AES_CMAC_256 jobs:
// no allocation and nothing mutable in the KdfKey, so one KdfKey serves every worker thread at once. This is
// what makes a packet with an unknown SPI cheap (docs/architecture.md, "Hostile packets").
//
// The job API needs an IMB_MGR that no other thread uses at the same time. A caller that derives on a
// latency path owns a KdfContext (one manager, allocated and touched when constructed) and passes it: the
// key ring (under the control plane's lock) and each worker's key cache do. Without one, each thread gets
// its own manager on its first use, wiped and freed when the thread exits: that first use allocates and
// faults in ~200 KiB (0.5-1 ms on a VM), which on a gRPC handler thread or a worker would land on the first
// packet of a new tunnel, so only tests and one-off tools derive that way.
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "base/secret.hpp"

struct IMB_MGR;

namespace pspgw::crypto {

using MasterKey = Secret<32>;

// An intel-ipsec-mb manager for derivations, ready when constructed. Not thread-safe: one thread at a time.
class KdfContext {
 public:
  KdfContext();
  ~KdfContext();
  KdfContext(const KdfContext&) = delete;
  KdfContext& operator=(const KdfContext&) = delete;

  struct Free {  // wipes and frees a manager (the per-thread ones too)
    void operator()(IMB_MGR* mgr) const;
  };

 private:
  friend class KdfKey;
  std::unique_ptr<IMB_MGR, Free> mgr_;
};

class KdfKey {
 public:
  // `ctx`: the manager to prepare the key with (nullptr: the calling thread's own).
  explicit KdfKey(const MasterKey& master, KdfContext* ctx = nullptr);
  ~KdfKey();  // zeroes the round keys and both CMAC subkeys
  KdfKey(const KdfKey&) = delete;
  KdfKey& operator=(const KdfKey&) = delete;

  // AES-256-CMAC of one 16-byte block.
  Secret<16> cmac_block(const std::array<uint8_t, 16>& block) const;
  // The SP 800-108 output blocks; thread-safe (see above for the per-thread manager).
  Secret<16> derive_v0(uint32_t spi) const;
  Secret<32> derive_v1(uint32_t spi) const;
  // The same through the caller's manager.
  Secret<16> derive_v0(uint32_t spi, KdfContext& ctx) const;
  Secret<32> derive_v1(uint32_t spi, KdfContext& ctx) const;

 private:
  class Jobs;  // the CMAC jobs of one derivation, on one manager
  Secret<32> derive_v1_with(IMB_MGR* mgr, uint32_t spi) const;

  // ipsec-mb reads these through 16-byte-aligned pointers (IMB_JOB's CMAC fields).
  alignas(16) std::array<uint8_t, 15 * 16> round_keys_;  // AES-256: 14 rounds + the initial whitening key
  alignas(16) std::array<uint8_t, 16> k1_;               // CMAC subkeys (SP 800-38B §6.1)
  alignas(16) std::array<uint8_t, 16> k2_;  // never used (a KDF block is complete): ipsec-mb wants it
};

// The reference AES-256-CMAC over a single 16-byte block, through OpenSSL's EVP_MAC (allocates a context
// per call: for tests that check KdfKey against it, never on a packet path).
Secret<16> cmac_aes256_block(const MasterKey& key, const std::array<uint8_t, 16>& block);

// One-off derivations (prepare the master key, derive, wipe). Anything that derives more than once per
// master key holds a KdfKey instead.
Secret<16> derive_psp_key_v0(const MasterKey& master, uint32_t spi);
Secret<32> derive_psp_key_v1(const MasterKey& master, uint32_t spi);

}  // namespace pspgw::crypto
