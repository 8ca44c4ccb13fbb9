// Master keys, stateless receive-key derivation, SPI allocation and rotation (spec page §4, §5).
//
// Two master-key slots; the SPI's MSB names the slot. rotate() puts a new master key into the other slot
// and makes it active: SPIs of the previously active slot keep working until the next rotation, older
// ones die (their slot now holds a different key). An SPI is never handed out twice under one master key,
// and SPIs whose low 31 bits are zero are never handed out.
//
// CONTRACT (fixed: src/control and the gateway code against it).
// Threading: KeyRing is owned by the control plane and is not thread-safe. The data plane reads an
// immutable MasterKeySnapshot published by the control plane (see docs/architecture.md).
//
// High-water marks: each master key carries the highest SPI the ring has handed out under it, an atomic
// shared by the ring and every snapshot holding that key. allocate_spi() raises it (release) before the SPI
// leaves the ring; a worker reads it (acquire) on a key-cache miss only, and drops an SPI above it (or of an
// empty slot) as kUnissuedSpi before deriving anything: a packet with an SPI we never issued costs one
// load, no derivation, no cache eviction (issue 7 §6; docs/architecture.md, "Hostile packets").
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "base/result.hpp"
#include "base/secret.hpp"
#include "crypto/kdf.hpp"
#include "psp/header.hpp"

namespace pspgw::psp {

enum class KeyError : uint8_t {
  kSpiExhausted,  // the active slot has handed out all 2^31 - 1 SPIs
  kInvalidSpi,    // low 31 bits zero
  kDeadSlot,      // the SPI's slot holds no key (never set, or rotated away)
  kBadVersion,    // only 0..3 derive keys
};
std::string_view to_string(KeyError e);

// A derived key: 16 bytes (v0, v2) or 32 bytes (v1, v3). Zeroed on destruction.
struct DerivedKey {
  PspVersion version = PspVersion::kAesGcm128;
  Secret<32> bytes;  // the first size() bytes are the key
  std::size_t size() const { return key_size(version); }
  std::span<const uint8_t> view() const { return bytes.reveal().first(size()); }
};

inline constexpr uint32_t kSpiSlotBit = 0x80000000u;
inline int spi_slot(uint32_t spi) {
  return (spi & kSpiSlotBit) != 0 ? 1 : 0;
}

inline constexpr uint32_t kSpiLowMask = 0x7fffffffu;

// One master key in a slot: prepared for derivation, and the high-water mark of the SPIs handed out under
// it (low 31 bits of the highest; 0 = none yet). The key is immutable; only the ring raises `issued`.
struct SlotKey {
  SlotKey(const crypto::MasterKey& master, uint32_t issued_low31, crypto::KdfContext* ctx = nullptr)
      : kdf(master, ctx), issued(issued_low31) {}
  crypto::KdfKey kdf;
  std::atomic<uint32_t> issued;
};

// The two master keys at one instant, immutable: what the data plane derives receive keys from.
class MasterKeySnapshot {
 public:
  // A snapshot of keys from elsewhere (a capture's key file): no record of what was issued, so every SPI of
  // a present slot counts as issued.
  MasterKeySnapshot(std::optional<crypto::MasterKey> slot0, std::optional<crypto::MasterKey> slot1,
                    uint64_t generation);
  // A KeyRing's snapshot: shares the ring's keys and their high-water marks.
  MasterKeySnapshot(std::shared_ptr<const SlotKey> slot0, std::shared_ptr<const SlotKey> slot1,
                    uint64_t generation);
  // `ctx`: the caller's manager (a worker's key cache); nullptr: the calling thread's (kdf.hpp).
  Result<DerivedKey, KeyError> derive(uint32_t spi, PspVersion version,
                                      crypto::KdfContext* ctx = nullptr) const;
  // Whether the ring can have handed `spi` out: its slot holds a key, its low 31 bits are not zero and not
  // above the slot's high-water mark. One acquire load; the data plane asks before deriving.
  bool issued(uint32_t spi) const;
  uint64_t generation() const { return generation_; }  // bumps on every rotation

 private:
  std::shared_ptr<const SlotKey> slots_[2];
  uint64_t generation_;
};

class KeyRing {
 public:
  // Slot 0 active with `initial`; slot 1 empty.
  explicit KeyRing(crypto::MasterKey initial);
  KeyRing(KeyRing&&) = default;
  KeyRing& operator=(KeyRing&&) = default;
  KeyRing(const KeyRing&) = delete;
  KeyRing& operator=(const KeyRing&) = delete;
  // Slot 0 active with a key from the system CSPRNG.
  static KeyRing with_random_key();

  int active_slot() const { return active_; }
  uint64_t generation() const { return generation_; }
  // A fresh SPI under the active slot (MSB = active slot).
  Result<uint32_t, KeyError> allocate_spi();
  // Sets the active slot's counter (the low 31 bits of its next SPI; 1..2^31-1, anything else means
  // exhausted). For tests of exhaustion, and for restoring a counter persisted with the master key. The
  // SPIs below it count as handed out (the high-water mark rises to next_low31 - 1; it never falls).
  void set_spi_counter(uint32_t next_low31);
  // Through the ring's own KdfContext: costs the same from the first call on, on whichever thread.
  Result<DerivedKey, KeyError> derive(uint32_t spi, PspVersion version) const;
  // True if the SPI's slot currently holds a key (active or previous).
  bool is_live(uint32_t spi) const;
  // New master key into the other slot, which becomes active; its SPI counter restarts.
  void rotate(crypto::MasterKey next);
  void rotate_random();
  std::shared_ptr<const MasterKeySnapshot> snapshot() const;

 private:
  void raise_high_water(uint32_t issued_low31);

  // Shared with the snapshots (for the high-water marks): a KeyRing is moved, never copied.
  std::shared_ptr<SlotKey> slots_[2];
  // Derivations and rotations run on the control plane's threads (gRPC handlers among them, created as
  // gRPC sees fit): one manager, made with the ring, rather than one per thread on its first exchange.
  std::unique_ptr<crypto::KdfContext> kdf_ctx_;
  uint32_t next_spi_[2] = {1, 1};  // low 31 bits of the next SPI per slot
  int active_ = 0;
  uint64_t generation_ = 0;
};

}  // namespace pspgw::psp
