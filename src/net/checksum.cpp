#include "net/checksum.hpp"

#include <bit>
#include <cstring>

#include "base/byteorder.hpp"
#include "net/headers.hpp"

namespace pspgw::net {

namespace {

// One's-complement addition of 64-bit words (end-around carry).
inline uint64_t add_carry(uint64_t acc, uint64_t v) {
  acc += v;
  return acc + (acc < v ? 1 : 0);
}

// The one's-complement sum of `n` bytes at `p` as little-endian 64-bit words (before folding), copying
// them to `dst` on the way with kCopy.
template <bool kCopy>
[[gnu::always_inline]] inline uint64_t sum_words(const uint8_t* p, std::size_t n, uint8_t* dst) {
  uint64_t a = 0;
  uint64_t b = 0;  // two chains: the adds of one do not wait on the other's carries
  for (; n >= 16; n -= 16, p += 16) {
    uint64_t w[2];
    std::memcpy(w, p, sizeof(w));
    if constexpr (kCopy) {
      std::memcpy(dst, w, sizeof(w));
      dst += 16;
    }
    a = add_carry(a, w[0]);
    b = add_carry(b, w[1]);
  }
  if (n > 0) {
    uint64_t w[2] = {0, 0};  // an odd last byte is the high byte of its big-endian word: the low byte here
    std::memcpy(w, p, n);
    if constexpr (kCopy) std::memcpy(dst, w, n);
    a = add_carry(a, w[0]);
    b = add_carry(b, w[1]);
  }
  return add_carry(a, b);
}

// Folds a little-endian word sum to 16 bits, swaps it to network order and adds it to `sum`.
uint32_t finish_sum(uint64_t a, uint32_t sum) {
  a = (a & 0xffffffff) + (a >> 32);
  a = (a & 0xffffffff) + (a >> 32);
  a = (a & 0xffff) + (a >> 16);
  a = (a & 0xffff) + (a >> 16);
  uint64_t s = uint64_t{sum} + static_cast<uint16_t>((a >> 8) | (a << 8));
  while ((s >> 32) != 0) s = (s & 0xffffffff) + (s >> 32);
  return static_cast<uint32_t>(s);
}

}  // namespace

// RFC 1071 §2(B): the one's-complement sum does not depend on byte order, so the bytes are summed as
// native (little-endian) 64-bit words, folded to 16 bits and swapped once at the end: 8 bytes an add
// instead of 2 (this sum runs over every segment the gateway cuts from a TAP super-packet).
uint32_t csum_partial(std::span<const uint8_t> bytes, uint32_t sum) {
  static_assert(std::endian::native == std::endian::little);
  return finish_sum(sum_words<false>(bytes.data(), bytes.size(), nullptr), sum);
}

uint32_t csum_copy(uint8_t* dst, std::span<const uint8_t> src, uint32_t sum) {
  return finish_sum(sum_words<true>(src.data(), src.size(), dst), sum);
}

uint16_t csum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xffff);
}

void ipv4_set_checksum(uint8_t* h) {
  const std::size_t ihl = static_cast<std::size_t>(h[0] & 0x0f) * 4;
  h[10] = 0;
  h[11] = 0;
  store_be16(h + 10, csum_fold(csum_partial({h, ihl})));
}

bool ipv4_checksum_ok(const uint8_t* h) {
  const std::size_t ihl = static_cast<std::size_t>(h[0] & 0x0f) * 4;
  return csum_fold(csum_partial({h, ihl})) == 0;
}

namespace {

uint32_t pseudo_header_sum(const uint8_t* ip, uint8_t proto, std::size_t length) {
  uint32_t sum = 0;
  if ((ip[0] >> 4) == 4) {
    sum = csum_partial({ip + 12, 8});  // src + dst
  } else {
    sum = csum_partial({ip + 8, 32});
  }
  const uint32_t len = static_cast<uint32_t>(length);
  sum += proto;
  sum += len & 0xffff;
  sum += len >> 16;
  return sum;
}

}  // namespace

uint16_t l4_checksum(const uint8_t* ip, uint8_t proto, std::span<const uint8_t> segment) {
  const uint32_t sum = csum_partial(segment, pseudo_header_sum(ip, proto, segment.size()));
  uint16_t c = csum_fold(sum);
  if (proto == kIpProtoUdp && c == 0) c = 0xffff;  // RFC 768: a computed 0 is sent as all ones
  return c;
}

uint16_t l4_checksum(const uint8_t* ip, uint8_t proto, std::span<const uint8_t> head, std::size_t l4_len,
                     uint32_t rest_sum) {
  uint64_t sum = uint64_t{pseudo_header_sum(ip, proto, l4_len)} + rest_sum;
  sum = (sum & 0xffffffff) + (sum >> 32);
  uint16_t c = csum_fold(csum_partial(head, static_cast<uint32_t>(sum)));
  if (proto == kIpProtoUdp && c == 0) c = 0xffff;  // RFC 768: a computed 0 is sent as all ones
  return c;
}

bool l4_checksum_ok(const uint8_t* ip, uint8_t proto, std::span<const uint8_t> segment) {
  return csum_fold(csum_partial(segment, pseudo_header_sum(ip, proto, segment.size()))) == 0;
}

}  // namespace pspgw::net
