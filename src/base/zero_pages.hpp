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
