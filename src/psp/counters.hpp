// PSP-layer counters (shared/spec/psp-protocol.md §7). One plain struct per worker, written only by its
// worker; a query sums the workers' copies (operator+=). Drops are also kept per DropReason.
#pragma once

#include <array>
#include <cstdint>

#include "psp/drop_reason.hpp"

namespace pspgw::psp {

struct Counters {
  uint64_t rx_packets = 0;  // opened and authenticated
  uint64_t rx_bytes = 0;
  uint64_t tx_packets = 0;  // sealed
  uint64_t tx_bytes = 0;
  uint64_t auth_failures = 0;   // bad ICV
  uint64_t framing_errors = 0;  // too short, bad header, bad crypt offset, bad outer/inner packet
  uint64_t bad_version = 0;
  uint64_t unknown_key = 0;
  uint64_t unissued_spi = 0;   // SPI never handed out: dropped before key derivation
  uint64_t key_rotations = 0;  // counted by whoever applies a new snapshot
  uint64_t stale_keys = 0;     // cache entries found from an older snapshot generation
  std::array<uint64_t, static_cast<std::size_t>(DropReason::kCount)> drops{};  // by reason

  // One open result (r == kNone: delivered `bytes`).
  void count_rx(DropReason r, uint64_t bytes) {
    if (r == DropReason::kNone) {
      ++rx_packets;
      rx_bytes += bytes;
    } else {
      count_drop(r);
    }
  }
  void count_tx(DropReason r, uint64_t bytes) {
    if (r == DropReason::kNone) {
      ++tx_packets;
      tx_bytes += bytes;
    } else {
      count_drop(r);
    }
  }
  void count_drop(DropReason r) {
    ++drops[static_cast<std::size_t>(r) < drops.size() ? static_cast<std::size_t>(r) : 0];
    switch (r) {
      case DropReason::kAuthFailed:
        ++auth_failures;
        break;
      case DropReason::kBadVersion:
        ++bad_version;
        break;
      case DropReason::kUnknownKey:
        ++unknown_key;
        break;
      case DropReason::kUnissuedSpi:
        ++unissued_spi;
        break;
      case DropReason::kNone:
      case DropReason::kNoRoom:
      case DropReason::kCount:
        break;
      default:
        ++framing_errors;
        break;
    }
  }
  uint64_t drops_for(DropReason r) const { return drops[static_cast<std::size_t>(r)]; }

  Counters& operator+=(const Counters& o) {
    rx_packets += o.rx_packets;
    rx_bytes += o.rx_bytes;
    tx_packets += o.tx_packets;
    tx_bytes += o.tx_bytes;
    auth_failures += o.auth_failures;
    framing_errors += o.framing_errors;
    bad_version += o.bad_version;
    unknown_key += o.unknown_key;
    unissued_spi += o.unissued_spi;
    key_rotations += o.key_rotations;
    stale_keys += o.stale_keys;
    for (std::size_t i = 0; i < drops.size(); ++i) drops[i] += o.drops[i];
    return *this;
  }
};

}  // namespace pspgw::psp
