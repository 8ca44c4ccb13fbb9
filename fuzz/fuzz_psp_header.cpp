// decode_header on arbitrary bytes: never reads past the span; whatever decodes re-encodes to the same bytes.
#include <array>
#include <cstring>
#include <span>

#include "fuzz/fuzz_target.hpp"
#include "psp/header.hpp"

PSPGW_FUZZ_TARGET(psp_header) {
  using namespace pspgw::psp;
  auto h = decode_header(std::span<const uint8_t>(data, size));
  if (!h) return 0;
  PSPGW_FUZZ_CHECK(h->size() <= size);
  std::array<uint8_t, 24> again{};
  encode_header(*h, again);
  PSPGW_FUZZ_CHECK(std::memcmp(again.data(), data, h->size()) == 0);
  return 0;
}
