// The TCP flags and the header field offsets that segmentation (gso.cpp) and its inverse, coalescing
// (coalesce.cpp), rewrite: one definition, so the two always agree on what they patch.
#pragma once

#include <cstddef>
#include <cstdint>

#include "net/headers.hpp"

namespace pspgw::ports::fields {

inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpPsh = 0x08;
inline constexpr uint8_t kTcpUrg = 0x20;
inline constexpr uint8_t kTcpCwr = 0x80;

// Byte offsets inside the IP and L4 headers (the structs in net/headers.hpp).
inline constexpr std::size_t kIpv4TotalLen = offsetof(net::Ipv4Hdr, total_length);
inline constexpr std::size_t kIpv4Id = offsetof(net::Ipv4Hdr, id);
inline constexpr std::size_t kIpv4Csum = offsetof(net::Ipv4Hdr, checksum);
inline constexpr std::size_t kIpv6PayloadLen = offsetof(net::Ipv6Hdr, payload_length);
inline constexpr std::size_t kTcpSeq = offsetof(net::TcpHdr, seq);
inline constexpr std::size_t kTcpFlags = offsetof(net::TcpHdr, flags);
inline constexpr std::size_t kTcpCsum = offsetof(net::TcpHdr, checksum);
inline constexpr std::size_t kUdpLen = offsetof(net::UdpHdr, length);
inline constexpr std::size_t kUdpCsum = offsetof(net::UdpHdr, checksum);

}  // namespace pspgw::ports::fields
