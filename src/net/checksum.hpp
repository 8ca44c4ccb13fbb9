// Internet checksum (RFC 1071) and the IPv4/IPv6 pseudo-header sums for UDP/TCP.
#pragma once

#include <cstdint>
#include <span>

namespace pspgw::net {

// One's-complement sum of 16-bit big-endian words, not folded or inverted. Odd length pads with a zero.
uint32_t csum_partial(std::span<const uint8_t> bytes, uint32_t sum = 0);
// Copies `src` to `dst` and returns csum_partial(src, sum) from the same loads: one pass over the bytes
// where a copy followed by a sum makes two (Linux's csum_partial_copy).
uint32_t csum_copy(uint8_t* dst, std::span<const uint8_t> src, uint32_t sum = 0);
// Folds to 16 bits and inverts: the value to store in a checksum field (host order).
uint16_t csum_fold(uint32_t sum);
// Recomputes and stores the IPv4 header checksum (header of ihl bytes at p).
void ipv4_set_checksum(uint8_t* ipv4_header);
bool ipv4_checksum_ok(const uint8_t* ipv4_header);
// L4 (UDP/TCP/ICMPv6) checksum over pseudo-header + segment, for an IPv4 or IPv6 header at ip.
// The checksum field inside the segment must be zero (or the result is the residual).
uint16_t l4_checksum(const uint8_t* ip_header, uint8_t proto, std::span<const uint8_t> segment);
// The same for a segment of `l4_len` bytes given as its first bytes `head` (an even count) and the
// csum_partial of the rest, e.g. from csum_copy.
uint16_t l4_checksum(const uint8_t* ip_header, uint8_t proto, std::span<const uint8_t> head,
                     std::size_t l4_len, uint32_t rest_sum);
// True if the segment's stored checksum is right (pseudo-header + segment sums to all ones).
bool l4_checksum_ok(const uint8_t* ip_header, uint8_t proto, std::span<const uint8_t> segment);

}  // namespace pspgw::net
