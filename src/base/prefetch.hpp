// Cache prefetch hints that the compiler keeps.
//
// __builtin_prefetch has no side effect as far as GCC is concerned, so a loop whose body is only prefetches
// (over a length known at run time) is a loop without effects, and C++'s forward-progress rule lets -O2
// delete it whole (GCC 12 does). prefetch_lines issues each hint as a volatile asm on x86-64, which the
// compiler must keep; elsewhere it falls back to the builtin.
#pragma once

#include <cstddef>
#include <cstdint>

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

// Asks for every line that [p, p + len) touches (p need not be line-aligned).
inline void prefetch_lines(const void* p, std::size_t len) {
  if (len == 0) return;
  const auto begin = reinterpret_cast<std::uintptr_t>(p) & ~(kCacheLineSize - 1);
  const auto end = reinterpret_cast<std::uintptr_t>(p) + len;
  for (std::uintptr_t a = begin; a < end; a += kCacheLineSize)
    prefetch_line(reinterpret_cast<const void*>(a));
}

}  // namespace pspgw
