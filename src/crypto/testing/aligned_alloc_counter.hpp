// Counts posix_memalign, which intel-ipsec-mb's alloc_mb_mgr calls (libIPSec_MB.so resolves it to this
// definition in the executable): a test can tell whether a derivation allocated a manager. Not under a
// sanitizer, whose runtime has its own posix_memalign. Include it in ONE translation unit of a test binary
// (it defines the function and the counter).
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

namespace {
std::atomic<uint64_t> g_aligned_allocations{0};
}  // namespace
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define PSPGW_COUNTS_ALIGNED_ALLOCATIONS 1
extern "C" int posix_memalign(void** out, std::size_t align, std::size_t n) {
  g_aligned_allocations.fetch_add(1, std::memory_order_relaxed);
  void* p = std::aligned_alloc(align, (n + align - 1) / align * align);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
#endif
