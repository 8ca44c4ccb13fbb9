// IP and MAC addresses as values: parsed from and formatted to text, compared, hashed.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "net/headers.hpp"

namespace pspgw::net {

enum class IpFamily : uint8_t { kNone = 0, kV4 = 4, kV6 = 6 };

// An IPv4 or IPv6 address. IPv4 lives in bytes[0..3], the rest zero.
struct IpAddr {
  IpFamily family = IpFamily::kNone;
  std::array<uint8_t, 16> bytes{};

  // Inline: the per-packet parsers build two of these per header (out of line, each came back through
  // memory, read wide right after the callee's narrow stores: a store-forwarding stall per address).
  static IpAddr v4(std::span<const uint8_t, 4> b) {
    IpAddr a;
    a.family = IpFamily::kV4;
    std::memcpy(a.bytes.data(), b.data(), 4);
    return a;
  }
  static IpAddr v6(std::span<const uint8_t, 16> b) {
    IpAddr a;
    a.family = IpFamily::kV6;
    std::memcpy(a.bytes.data(), b.data(), 16);
    return a;
  }
  static std::optional<IpAddr> parse(std::string_view text);  // dotted quad or RFC 4291 text
  std::string to_string() const;
  std::size_t size() const { return family == IpFamily::kV4 ? 4 : family == IpFamily::kV6 ? 16 : 0; }
  std::span<const uint8_t> span() const { return {bytes.data(), size()}; }
  bool is_v4() const { return family == IpFamily::kV4; }
  bool is_v6() const { return family == IpFamily::kV6; }
  friend auto operator<=>(const IpAddr&, const IpAddr&) = default;
};

struct MacAddr {
  MacBytes bytes{};
  static std::optional<MacAddr> parse(std::string_view text);  // "XX:XX:XX:XX:XX:XX"
  std::string to_string() const;  // upper-case hex, colon-separated (DOCA's text form)
  bool is_broadcast() const;
  bool is_multicast() const { return (bytes[0] & 1) != 0; }
  friend auto operator<=>(const MacAddr&, const MacAddr&) = default;
};

}  // namespace pspgw::net

template <>
struct std::hash<pspgw::net::IpAddr> {
  std::size_t operator()(const pspgw::net::IpAddr& a) const noexcept {
    std::size_t h = static_cast<std::size_t>(a.family);
    for (uint8_t b : a.bytes) h = h * 1099511628211ULL ^ b;
    return h;
  }
};
