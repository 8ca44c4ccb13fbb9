// net::parse_frame on arbitrary bytes: never reads past the span; offsets it reports lie inside it.
#include <span>

#include "fuzz/fuzz_target.hpp"
#include "net/parse.hpp"

PSPGW_FUZZ_TARGET(net_parse) {
  auto f = pspgw::net::parse_frame(std::span<const uint8_t>(data, size));
  if (!f || f->ip.family == pspgw::net::IpFamily::kNone) return 0;
  PSPGW_FUZZ_CHECK(f->ip.l3_offset + static_cast<std::size_t>(f->ip.l3_total_len) <= size);
  PSPGW_FUZZ_CHECK(f->ip.l4_offset <= f->ip.l3_offset + f->ip.l3_total_len);
  return 0;
}
