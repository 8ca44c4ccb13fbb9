// pspctl's human output: pure functions from a command's JSON result (tools/pspctl/README.md) to text.
// Missing keys print "-", unknown keys are ignored (--json shows everything), so an older pspctl still
// renders a newer gateway's result.
#pragma once

#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>

namespace pspgw::pspctl {

enum class Cell : uint8_t {
  kText,   // strings as they are, numbers in decimal, arrays joined with ','; left-aligned
  kCount,  // integers in decimal; right-aligned
  kSpi,    // integers (or arrays of them) as 0x%08x; left-aligned
};

struct Column {
  std::string_view header;
  std::string_view key;
  Cell cell = Cell::kText;
};

// One cell's text; null or absent -> "-".
std::string format_cell(const nlohmann::json& value, Cell cell);
// Header line plus one line per row (rows: an array of objects), columns two spaces apart, trailing
// blanks trimmed. No rows: the header and "(none)".
std::string render_table(std::span<const Column> columns, const nlohmann::json& rows);
// "key  value" lines, keys aligned; nested objects flattened as "a.b". For status and rotate-keys.
std::string render_fields(const nlohmann::json& object);

std::string render_tunnels(const nlohmann::json& result);   // {"tunnels": [...]}
std::string render_peers(const nlohmann::json& result);     // {"peers": [...]}
std::string render_counters(const nlohmann::json& result);  // {"pipes", "ports", "psp", "tunnels"}
// Service chains: the SFC sections of counters; `sfc show` (registry + counters), or a change verb's result.
void append_sfc_counters(std::string& out, const nlohmann::json& sfc);
std::string render_sfc(const nlohmann::json& result);
// counters --watch: the per-second change of every counter between two results `seconds` apart, in the
// shape of a counters result (render_counters renders it). List rows are matched by their name (pipes,
// ports) or VIP pair (tunnels); a row new in `now` counts from zero; a counter that went down (a tunnel
// re-made) shows 0. Names and other non-counters are kept from `now`.
nlohmann::json counter_rates(const nlohmann::json& now, const nlohmann::json& before, double seconds);
// Mermaid: the text as it is (a trailing newline ensured); a JSON dump: pretty JSON.
std::string render_pipeline(const nlohmann::json& result);

}  // namespace pspgw::pspctl
