#include "base/secret.hpp"

#include <cstring>

namespace pspgw {

void secure_zero(void* p, std::size_t n) {
  explicit_bzero(p, n);
}

}  // namespace pspgw
