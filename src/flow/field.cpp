#include "flow/field.hpp"

#include <cstring>

namespace pspgw::flow {
namespace {}  // namespace

FieldBytes field_bytes(Field f, uint64_t v) {
  FieldBytes b{};
  const unsigned w = field_info(f).width;
  for (unsigned i = 0; i < w && i < 8; ++i) b[w - 1 - i] = static_cast<uint8_t>(v >> (8 * i));
  return b;
}

FieldBytes field_bytes(const net::IpAddr& a) {
  FieldBytes b{};
  std::memcpy(b.data(), a.bytes.data(), a.size());
  return b;
}

FieldBytes full_mask(Field f) {
  return prefix_mask(f, 8U * field_info(f).width);
}

FieldBytes prefix_mask(Field f, unsigned bits) {
  FieldBytes b{};
  const unsigned w = field_info(f).width;
  for (unsigned i = 0; i < w; ++i) {
    const unsigned take = bits >= 8 ? 8 : bits;
    b[i] = static_cast<uint8_t>(0xff00U >> take);
    bits -= take;
  }
  return b;
}

FieldMatch prefix(Field f, const net::IpAddr& a, unsigned bits) {
  FieldMatch m{f, field_bytes(a), prefix_mask(f, bits), true};
  for (std::size_t i = 0; i < m.value.size(); ++i) m.value[i] &= m.mask[i];
  return m;
}

}  // namespace pspgw::flow
