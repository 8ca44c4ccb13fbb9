// Hex text <-> bytes, for configs, test vectors and --debug-keys output.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pspgw {

// Parses an even-length hex string (no separators, either case). nullopt on any other character.
std::optional<std::vector<uint8_t>> parse_hex(std::string_view text);
// Lower-case hex, no separators.
std::string to_hex(std::span<const uint8_t> bytes);

}  // namespace pspgw
