// Secret<N>: key material. Move-only, zeroed on destruction and when moved from, never printed: there is
// no operator<< and no implicit access; code that must show a key (--debug-keys) calls reveal() by name.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace pspgw {

// Zeroes memory in a way the optimiser may not remove.
void secure_zero(void* p, std::size_t n);

template <std::size_t N>
class Secret {
 public:
  static constexpr std::size_t kSize = N;
  Secret() { bytes_.fill(0); }
  explicit Secret(std::span<const uint8_t, N> src) {
    for (std::size_t i = 0; i < N; ++i) bytes_[i] = src[i];
  }
  ~Secret() { secure_zero(bytes_.data(), N); }
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  Secret(Secret&& o) noexcept : bytes_(o.bytes_) { secure_zero(o.bytes_.data(), N); }
  Secret& operator=(Secret&& o) noexcept {
    if (this != &o) {
      bytes_ = o.bytes_;
      secure_zero(o.bytes_.data(), N);
    }
    return *this;
  }
  // Explicit copy, for the rare place that must hold two (a key cache filling from a ring).
  Secret clone() const { return Secret(std::span<const uint8_t, N>(bytes_)); }

  std::span<const uint8_t, N> reveal() const { return bytes_; }
  std::span<uint8_t, N> mutable_bytes() { return bytes_; }
  static constexpr std::size_t size() { return N; }

  friend bool operator==(const Secret& a, const Secret& b) {
    uint8_t diff = 0;  // constant time
    for (std::size_t i = 0; i < N; ++i) diff |= static_cast<uint8_t>(a.bytes_[i] ^ b.bytes_[i]);
    return diff == 0;
  }

 private:
  std::array<uint8_t, N> bytes_;
};

}  // namespace pspgw
