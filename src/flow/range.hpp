// Ranges in ternary pipes, by prefix expansion onto a SHARED mask set.
//
// A ternary pipe searches one hash table per distinct entry mask (tuple space, at most kMaxTuples = 32).
// The classic minimal prefix cover of a 16-bit port range uses any of 17 prefix lengths, so a few ranges
// on two fields could need hundreds of masks. Here a range is covered only by prefixes whose length is a
// multiple of `stride` (kPortStride = 4: lengths 0, 4, 8, 12, 16 -- five masks per port field, whatever
// the ranges), at the cost of more entries: at most 2 * (2^stride - 1) per stride level, i.e. at most
// 2 * 15 * 4 = 120 for a 16-bit field (a stride of 1 is the classic cover, at most 30). Both directions:
// a pipe matching (proto, l4.src range, l4.dst range) uses at most 2 * 5 * 5 = 50 masks only if every
// combination occurs; a classifier should normally range over one port field (see src/sfc).
// The expansion of an entry over several ranged fields is the cross product of the fields' covers.
#pragma once

#include <cstdint>
#include <vector>

#include "flow/field.hpp"

namespace pspgw::flow {

inline constexpr unsigned kPortStride = 4;

// A prefix of a `bits`-wide unsigned field: the values whose top `len` bits equal value's.
struct Prefix {
  uint64_t value = 0;  // low (bits - len) bits zero
  unsigned len = 0;
  friend bool operator==(const Prefix&, const Prefix&) = default;
};

// The fewest prefixes, each of a length that is a multiple of `stride` (or `bits`), whose union is exactly
// [lo, hi]. Requires lo <= hi < 2^bits, 1 <= bits <= 64, 1 <= stride. Greedy from lo: the largest aligned
// block of an allowed size that fits is always part of a minimal cover.
std::vector<Prefix> range_to_prefixes(uint64_t lo, uint64_t hi, unsigned bits, unsigned stride = 1);

// The cover of [lo, hi] on an integer field (e.g. kL4Dst) as ternary field matches (a full-range prefix of
// length 0 is a wildcard: mask 0).
std::vector<FieldMatch> range_matches(Field f, uint64_t lo, uint64_t hi, unsigned stride = kPortStride);

}  // namespace pspgw::flow
