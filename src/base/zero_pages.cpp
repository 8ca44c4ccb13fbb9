#include "base/zero_pages.hpp"

#include <sys/mman.h>

#include <new>

namespace pspgw {

MappedZeroes::MappedZeroes(std::size_t bytes) : bytes_(bytes) {
  if (bytes == 0) return;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  p_ = p;
}

MappedZeroes::~MappedZeroes() {
  if (p_ != nullptr) ::munmap(p_, bytes_);
}

void MappedZeroes::advise_huge_pages() const {
  if (p_ != nullptr) (void)::madvise(p_, bytes_, MADV_HUGEPAGE);
}

}  // namespace pspgw
