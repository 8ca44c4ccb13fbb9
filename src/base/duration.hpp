// Durations on the command line: "0" (off), or one or more <integer><unit> terms with the units ms, s, m,
// h, d, as in "500ms", "90s", "10m", "24h", "1h30m". One parser for every flag that takes a duration
// (--key-rotation-interval, --tunnel-idle-timeout, ...), so they all read the same way.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace pspgw {

// The error says what is wrong with the text, for a usage message.
Result<std::chrono::milliseconds, std::string> parse_duration(std::string_view text);

// The shortest text parse_duration reads back as `d` ("0", "1h30m", "250ms").
std::string format_duration(std::chrono::milliseconds d);

}  // namespace pspgw
