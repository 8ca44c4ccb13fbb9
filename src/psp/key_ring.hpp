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
#pragma once

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
  kBadVersion,    // only 0 and 1 derive keys
};
std::string_view to_string(KeyError e);

// A derived key: 16 bytes (v0) or 32 bytes (v1). Zeroed on destruction.
struct DerivedKey {
  PspVersion version = PspVersion::kAesGcm128;
  Secret<32> bytes;  // the first size() bytes are the key
  std::size_t size() const { return version == PspVersion::kAesGcm128 ? 16 : 32; }
  std::span<const uint8_t> view() const { return bytes.reveal().first(size()); }
};

inline constexpr uint32_t kSpiSlotBit = 0x80000000u;
inline int spi_slot(uint32_t spi) {
  return (spi & kSpiSlotBit) != 0 ? 1 : 0;
}

// The two master keys at one instant, immutable: what the data plane derives receive keys from.
class MasterKeySnapshot {
 public:
  MasterKeySnapshot(std::optional<crypto::MasterKey> slot0, std::optional<crypto::MasterKey> slot1,
                    uint64_t generation);
  Result<DerivedKey, KeyError> derive(uint32_t spi, PspVersion version) const;
  uint64_t generation() const { return generation_; }  // bumps on every rotation

 private:
  std::optional<crypto::MasterKey> slots_[2];
  uint64_t generation_;
};

class KeyRing {
 public:
  // Slot 0 active with `initial`; slot 1 empty.
  explicit KeyRing(crypto::MasterKey initial);
  // Slot 0 active with a key from the system CSPRNG.
  static KeyRing with_random_key();

  int active_slot() const { return active_; }
  uint64_t generation() const { return generation_; }
  // A fresh SPI under the active slot (MSB = active slot).
  Result<uint32_t, KeyError> allocate_spi();
  // Sets the active slot's counter (the low 31 bits of its next SPI; 1..2^31-1, anything else means
  // exhausted). For tests of exhaustion, and for restoring a counter persisted with the master key.
  void set_spi_counter(uint32_t next_low31);
  Result<DerivedKey, KeyError> derive(uint32_t spi, PspVersion version) const;
  // True if the SPI's slot currently holds a key (active or previous).
  bool is_live(uint32_t spi) const;
  // New master key into the other slot, which becomes active; its SPI counter restarts.
  void rotate(crypto::MasterKey next);
  void rotate_random();
  std::shared_ptr<const MasterKeySnapshot> snapshot() const;

 private:
  std::optional<crypto::MasterKey> slots_[2];
  uint32_t next_spi_[2] = {1, 1};  // low 31 bits of the next SPI per slot
  int active_ = 0;
  uint64_t generation_ = 0;
};

}  // namespace pspgw::psp
