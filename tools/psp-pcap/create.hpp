// Test frames exactly as the google/psp reference create_pcap writes them (shared/spec/psp-protocol.md §6):
// Ethernet II 00:22:33:44:55:00 -> 00:88:99:aa:bb:00, IPv4 10.0.0.1 -> 10.0.0.2 (ID 0, DF, TTL 64) or
// IPv6 a00::1 -> a00::2 (hop limit 64), UDP 11111 -> 22222 with a valid checksum. Frames are 1434 bytes:
// a 1514-byte Ethernet frame less the worst-case PSP overhead (IPv6 tunnel: 40 + 8 + 16 + 16), so the
// encrypted frame still fits a standard MTU. Payload byte i of packet n (0-based) is (n + i) & 0xff.
// "Empty" frames carry a UDP header and no payload.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "net/addr.hpp"

namespace pspgw::psp_pcap {

inline constexpr uint32_t kCreateFrameSize = 1434;  // also the snaplen create_pcap writes, empty or not

struct CreateSpec {
  net::IpFamily family = net::IpFamily::kV4;
  bool empty = false;
};

// Size of every frame of this spec: 1434, or 42 (IPv4) / 62 (IPv6) when empty.
std::size_t test_frame_size(const CreateSpec& spec);

// Writes test frame n into out (out.size() >= test_frame_size(spec)); returns its size.
std::size_t build_test_frame(const CreateSpec& spec, uint32_t n, std::span<uint8_t> out);

}  // namespace pspgw::psp_pcap
