#include "flow/range.hpp"

namespace pspgw::flow {

std::vector<Prefix> range_to_prefixes(uint64_t lo, uint64_t hi, unsigned bits, unsigned stride) {
  std::vector<Prefix> out;
  if (bits == 0 || bits > 64 || stride == 0 || lo > hi) return out;
  if (bits < 64 && hi >> bits != 0) return out;
  uint64_t x = lo;
  while (true) {
    // Largest allowed block size 2^k (k = bits - len, len a multiple of stride or len = bits) with x
    // aligned to it and x + 2^k - 1 <= hi.
    unsigned best = 0;
    for (unsigned len = 0; len < bits; len += stride) {
      const unsigned k = bits - len;
      const uint64_t size_m1 = k == 64 ? ~0ULL : (1ULL << k) - 1;
      if ((x & size_m1) == 0 && hi - x >= size_m1) {
        best = k;
        break;
      }
    }
    out.push_back({x, bits - best});
    const uint64_t size_m1 = best == 64 ? ~0ULL : (1ULL << best) - 1;
    if (hi - x == size_m1) break;  // covered up to hi (also avoids overflow at 2^bits - 1)
    x += size_m1 + 1;
  }
  return out;
}

std::vector<FieldMatch> range_matches(Field f, uint64_t lo, uint64_t hi, unsigned stride) {
  const unsigned bits = field_info(f).width * 8U;
  std::vector<FieldMatch> out;
  for (const Prefix& p : range_to_prefixes(lo, hi, bits, stride)) {
    const unsigned low = bits - p.len;
    const uint64_t all = bits == 64 ? ~0ULL : (1ULL << bits) - 1;
    const uint64_t mask = all & ~(low == 64 ? ~0ULL : (1ULL << low) - 1);
    out.push_back(masked(f, p.value, mask));
  }
  return out;
}

}  // namespace pspgw::flow
