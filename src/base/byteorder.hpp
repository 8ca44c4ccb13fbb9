// Network byte-order integers as distinct types (BESS's be32_t): no implicit conversion to or from host
// order, so a missing swap is a compile error. Layout-compatible with the wire (packed, unaligned-safe).
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace pspgw {

// Packed: alignment 1, so wire structs built from these are byte-aligned and can overlay any buffer.
template <class T>
class [[gnu::packed]] BigEndian {
 public:
  constexpr BigEndian() = default;
  static constexpr BigEndian from_host(T v) {
    BigEndian b;
    b.raw_ = to_wire(v);
    return b;
  }
  static constexpr BigEndian from_raw(T raw) {
    BigEndian b;
    b.raw_ = raw;
    return b;
  }
  constexpr T host() const { return to_wire(raw_); }
  constexpr T raw() const { return raw_; }
  friend constexpr bool operator==(BigEndian a, BigEndian b) { return a.raw_ == b.raw_; }

 private:
  static constexpr T to_wire(T v) {
    if constexpr (std::endian::native == std::endian::big || sizeof(T) == 1) {
      return v;
    } else if constexpr (sizeof(T) == 2) {
      return __builtin_bswap16(v);
    } else if constexpr (sizeof(T) == 4) {
      return __builtin_bswap32(v);
    } else {
      return __builtin_bswap64(v);
    }
  }
  T raw_{};
};

using Be16 = BigEndian<uint16_t>;
using Be32 = BigEndian<uint32_t>;
using Be64 = BigEndian<uint64_t>;
static_assert(sizeof(Be16) == 2 && sizeof(Be32) == 4 && sizeof(Be64) == 8);
static_assert(alignof(Be32) == 1 && alignof(Be64) == 1);

// Unaligned big-endian loads/stores on raw bytes, for codecs that work on byte spans.
inline uint16_t load_be16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return Be16::from_raw(v).host();
}
inline uint32_t load_be32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return Be32::from_raw(v).host();
}
inline uint64_t load_be64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return Be64::from_raw(v).host();
}
inline void store_be16(uint8_t* p, uint16_t v) {
  const uint16_t raw = Be16::from_host(v).raw();
  std::memcpy(p, &raw, 2);
}
inline void store_be32(uint8_t* p, uint32_t v) {
  const uint32_t raw = Be32::from_host(v).raw();
  std::memcpy(p, &raw, 4);
}
inline void store_be64(uint8_t* p, uint64_t v) {
  const uint64_t raw = Be64::from_host(v).raw();
  std::memcpy(p, &raw, 8);
}

}  // namespace pspgw
