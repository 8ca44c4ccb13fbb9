#include "net/checksum.hpp"

#include <emmintrin.h>

#include <array>
#include <bit>
#include <cstring>

#include "base/byteorder.hpp"
#include "net/headers.hpp"

namespace pspgw::net {

namespace {

// The bulk of a sum, 64 bytes a step with SSE2 (x86-64's baseline): each 32-bit lane of a load is split
// into its low and high 16-bit halves, added into 32-bit lanes. No carries to chain: a lane overflows only
// after 65,537 halves, and in a run of at most 1 MiB each of the two accumulator pairs' lanes takes
// 32,768. The lanes sum the bytes as little-endian 16-bit words, which folds to the same sum as
// sum_words' 64-bit words (RFC 1071 §2(B)). With kCopy the loads are also stored to `dst`. Returns the
// sum of the bytes it took (a multiple of 64) and advances past them.
template <bool kCopy>
[[gnu::always_inline]] inline uint64_t sum_bulk(const uint8_t*& p, std::size_t& n, uint8_t*& dst) {
  constexpr std::size_t kStep = 64;
  constexpr std::size_t kMaxRun = std::size_t{1} << 20;
  const __m128i low16 = _mm_set1_epi32(0xffff);
  uint64_t total = 0;
  while (n >= kStep) {
    std::size_t run = n < kMaxRun ? n : kMaxRun;
    run -= run % kStep;
    // Two pairs of accumulators: the adds of one pair do not wait on the other's.
    __m128i lo0 = _mm_setzero_si128(), lo1 = lo0, hi0 = lo0, hi1 = lo0;
    const auto add = [&low16](__m128i& lo, __m128i& hi, __m128i v) {
      lo = _mm_add_epi32(lo, _mm_and_si128(v, low16));
      hi = _mm_add_epi32(hi, _mm_srli_epi32(v, 16));
    };
    for (std::size_t i = 0; i < run; i += kStep) {
      const uint8_t* q = p + i;
      const __m128i v0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
      const __m128i v1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16));
      const __m128i v2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 32));
      const __m128i v3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 48));
      if constexpr (kCopy) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), v0);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i + 16), v1);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i + 32), v2);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i + 48), v3);
      }
      add(lo0, hi0, v0);
      add(lo1, hi1, v1);
      add(lo0, hi0, v2);
      add(lo1, hi1, v3);
    }
    alignas(16) std::array<uint32_t, 4> l{}, h{};
    _mm_store_si128(reinterpret_cast<__m128i*>(l.data()), _mm_add_epi32(lo0, lo1));
    _mm_store_si128(reinterpret_cast<__m128i*>(h.data()), _mm_add_epi32(hi0, hi1));
    for (int i = 0; i < 4; ++i) total += uint64_t{l[i]} + (uint64_t{h[i]} << 16);
    p += run;
    n -= run;
    if constexpr (kCopy) dst += run;
  }
  return total;
}

// One's-complement addition of 64-bit words (end-around carry).
inline uint64_t add_carry(uint64_t acc, uint64_t v) {
  acc += v;
  return acc + (acc < v ? 1 : 0);
}

// The one's-complement sum of `n` bytes at `p` as little-endian 64-bit words (before folding), copying
// them to `dst` on the way with kCopy.
template <bool kCopy>
[[gnu::always_inline]] inline uint64_t sum_words(const uint8_t* p, std::size_t n, uint8_t* dst) {
  // The bulk's total (< 2^37 per 1 MiB run: no end-around carry until added below) starts chain a.
  uint64_t a = sum_bulk<kCopy>(p, n, dst);
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
