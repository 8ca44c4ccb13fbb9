// Cache prefetch hints that the compiler keeps.
//
// __builtin_prefetch has no side effect as far as GCC is concerned, so a loop whose body is only prefetches
// (over a length known at run time) is a loop without effects, and C++'s forward-progress rule lets -O2
// delete it whole (GCC 12 does). prefetch_lines issues each hint as a volatile asm on x86-64, which the
// compiler must keep; elsewhere it falls back to the builtin.
#pragma once

#include <cstddef>

namespace pspgw {

inline constexpr std::size_t kCacheLineSize = 64;

// Asks for the cache line holding p (for reading; into every cache level).
inline void prefetch_line(const void* p) {
#if defined(__x86_64__)
  asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p);
#endif
}

// Asks for every line of [p, p + len).
inline void prefetch_lines(const void* p, std::size_t len) {
  const auto* b = static_cast<const char*>(p);
  for (std::size_t off = 0; off < len; off += kCacheLineSize) prefetch_line(b + off);
}

}  // namespace pspgw
