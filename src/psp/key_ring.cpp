// Master-key ring, stateless derivation and SPI allocation (shared/spec/psp-protocol.md §4, §5).
#include "psp/key_ring.hpp"

#include <sys/random.h>

#include <cerrno>
#include <cstdlib>

namespace pspgw::psp {
namespace {

crypto::MasterKey random_master_key() {
  crypto::MasterKey key;
  auto out = key.mutable_bytes();
  std::size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = getrandom(out.data() + got, out.size() - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) std::abort();  // no CSPRNG: continuing would hand out predictable keys
    got += static_cast<std::size_t>(n);
  }
  return key;
}

std::shared_ptr<const SlotKey> offline_slot(const std::optional<crypto::MasterKey>& k) {
  if (!k) return nullptr;
  return std::make_shared<const SlotKey>(*k, kSpiLowMask);
}

// The derivation shared by the ring and its snapshots: validate, pick the slot by the MSB, run the KDF.
template <class SlotPtr>
Result<DerivedKey, KeyError> derive_from(const SlotPtr (&slots)[2], uint32_t spi, PspVersion version,
                                         crypto::KdfContext* ctx) {
  if (static_cast<uint8_t>(version) > kPspMaxVersion) return Err{KeyError::kBadVersion};
  if ((spi & kSpiLowMask) == 0) return Err{KeyError::kInvalidSpi};
  const auto& master = slots[spi_slot(spi)];
  if (!master) return Err{KeyError::kDeadSlot};
  DerivedKey k;
  k.version = version;
  // The KDF depends on the key size only (§4): versions 2/3 derive as 0/1 (label "Pv0" / "Pv1").
  if (key_size(version) == 16) {
    const Secret<16> v0 = ctx != nullptr ? master->kdf.derive_v0(spi, *ctx) : master->kdf.derive_v0(spi);
    std::copy(v0.reveal().begin(), v0.reveal().end(), k.bytes.mutable_bytes().begin());
  } else {
    k.bytes = ctx != nullptr ? master->kdf.derive_v1(spi, *ctx) : master->kdf.derive_v1(spi);
  }
  return k;
}

}  // namespace

std::string_view to_string(KeyError e) {
  switch (e) {
    case KeyError::kSpiExhausted:
      return "spi-exhausted";
    case KeyError::kInvalidSpi:
      return "invalid-spi";
    case KeyError::kDeadSlot:
      return "dead-slot";
    case KeyError::kBadVersion:
      return "bad-version";
  }
  return "unknown";
}

MasterKeySnapshot::MasterKeySnapshot(std::optional<crypto::MasterKey> slot0,
                                     std::optional<crypto::MasterKey> slot1, uint64_t generation)
    : slots_{offline_slot(slot0), offline_slot(slot1)}, generation_(generation) {}

MasterKeySnapshot::MasterKeySnapshot(std::shared_ptr<const SlotKey> slot0,
                                     std::shared_ptr<const SlotKey> slot1, uint64_t generation)
    : slots_{std::move(slot0), std::move(slot1)}, generation_(generation) {}

Result<DerivedKey, KeyError> MasterKeySnapshot::derive(uint32_t spi, PspVersion version,
                                                       crypto::KdfContext* ctx) const {
  return derive_from(slots_, spi, version, ctx);
}

bool MasterKeySnapshot::issued(uint32_t spi) const {
  const SlotKey* slot = slots_[spi_slot(spi)].get();
  const uint32_t low = spi & kSpiLowMask;
  // Pairs with the release in KeyRing::allocate_spi: an SPI that has left the ring is below the mark.
  return slot != nullptr && low != 0 && low <= slot->issued.load(std::memory_order_acquire);
}

KeyRing::KeyRing(crypto::MasterKey initial) : kdf_ctx_(std::make_unique<crypto::KdfContext>()) {
  slots_[0] = std::make_shared<SlotKey>(initial, 0, kdf_ctx_.get());
}

KeyRing KeyRing::with_random_key() {
  return KeyRing(random_master_key());
}

Result<uint32_t, KeyError> KeyRing::allocate_spi() {
  uint32_t& next = next_spi_[active_];
  // Counting up from 1 never yields low bits 0 and never repeats under this slot's key (§5).
  if (next == 0 || next > kSpiLowMask) return Err{KeyError::kSpiExhausted};
  const uint32_t spi = (active_ == 1 ? kSpiSlotBit : 0u) | next;
  raise_high_water(next);  // before the SPI leaves: a worker must never see it above the mark
  ++next;
  return spi;
}

void KeyRing::set_spi_counter(uint32_t next_low31) {
  next_spi_[active_] = next_low31;
  raise_high_water(next_low31 == 0 || next_low31 > kSpiLowMask ? kSpiLowMask : next_low31 - 1);
}

void KeyRing::raise_high_water(uint32_t issued_low31) {
  std::atomic<uint32_t>& mark = slots_[active_]->issued;
  if (issued_low31 > mark.load(std::memory_order_relaxed))
    mark.store(issued_low31, std::memory_order_release);
}

Result<DerivedKey, KeyError> KeyRing::derive(uint32_t spi, PspVersion version) const {
  return derive_from(slots_, spi, version, kdf_ctx_.get());
}

bool KeyRing::is_live(uint32_t spi) const {
  return (spi & kSpiLowMask) != 0 && slots_[spi_slot(spi)] != nullptr;
}

void KeyRing::rotate(crypto::MasterKey next) {
  const int other = 1 - active_;
  // The key two rotations old is destroyed (zeroed) here, or with the last snapshot that still holds it.
  slots_[other] = std::make_shared<SlotKey>(next, 0, kdf_ctx_.get());
  next_spi_[other] = 1;
  active_ = other;
  ++generation_;
}

void KeyRing::rotate_random() {
  rotate(random_master_key());
}

std::shared_ptr<const MasterKeySnapshot> KeyRing::snapshot() const {
  return std::make_shared<const MasterKeySnapshot>(std::shared_ptr<const SlotKey>(slots_[0]),
                                                   std::shared_ptr<const SlotKey>(slots_[1]), generation_);
}

}  // namespace pspgw::psp
