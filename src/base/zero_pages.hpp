// ZeroPages<T>: room for n T's in an anonymous mapping, zero pages that become resident only where written.
// For tables and rings sized for their worst case and mostly unused (flow tables sized for -x, a worker's
// frame rings): heap memory of that size may come back from an earlier use already resident, however
// little of it the owner writes (and calloc writes zeroes over memory it recycles). T is an integer, a
// pointer-free struct of integers or bytes, or an atomic the owner constructs in place before use
// (std::construct_at).
#pragma once

#include <cstddef>
#include <type_traits>

namespace pspgw {

class MappedZeroes {
 public:
  explicit MappedZeroes(std::size_t bytes);  // throws std::bad_alloc when the mapping fails
  ~MappedZeroes();
  MappedZeroes(const MappedZeroes&) = delete;
  MappedZeroes& operator=(const MappedZeroes&) = delete;
  void* get() const { return p_; }  // page-aligned; nullptr for 0 bytes
  std::size_t size() const { return bytes_; }
  // Asks the kernel to back the mapping with transparent huge pages (MADV_HUGEPAGE; Debian's default THP
  // mode, "madvise", honours it): for memory read at random, where 4 KiB pages would make each read a TLB
  // miss too. A hint: without THP the pages stay 4 KiB.
  void advise_huge_pages() const;

 private:
  void* p_ = nullptr;
  std::size_t bytes_;
};

template <class T>
class ZeroPages {
  static_assert(std::is_trivially_destructible_v<T>);

 public:
  explicit ZeroPages(std::size_t n) : m_(n * sizeof(T)), p_(static_cast<T*>(m_.get())) {}
  T* get() const { return p_; }
  T& operator[](std::size_t i) const { return p_[i]; }

 private:
  MappedZeroes m_;
  T* p_;
};

}  // namespace pspgw
