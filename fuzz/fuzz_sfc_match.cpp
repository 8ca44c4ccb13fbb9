// The SFC MATCH parser (src/sfc/match.hpp) on arbitrary text: parse never crashes; an error names a column
// within the text (+1 for "at the end"); a successful parse re-serialises to text that parses to the same
// normalized form, and compiles (or reports the entry budget) without crashing; every conjunction overlaps
// its own match.
#include <string_view>

#include "fuzz/fuzz_target.hpp"
#include "sfc/compile.hpp"
#include "sfc/match.hpp"

PSPGW_FUZZ_TARGET(sfc_match) {
  using namespace pspgw::sfc;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto m = parse_match(text);
  if (!m) {
    PSPGW_FUZZ_CHECK(!m.error().message.empty() && m.error().column >= 1);
    PSPGW_FUZZ_CHECK(m.error().column <= std::max<std::size_t>(text.size(), kMaxMatchLength) + 1);
    return 0;
  }
  PSPGW_FUZZ_CHECK(!m->any_of.empty() && m->any_of.size() <= kMaxConjunctions);
  const std::string again = to_string(*m);
  auto back = parse_match(again);
  PSPGW_FUZZ_CHECK(back.ok() && *back == *m);
  PSPGW_FUZZ_CHECK(overlaps(*m, *m));
  (void)compile(*m);
  return 0;
}
