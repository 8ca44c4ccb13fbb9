#include "base/duration.hpp"

#include <array>
#include <cstdint>
#include <limits>

namespace pspgw {
namespace {

struct Unit {
  std::string_view name;
  int64_t ms;
};
// Longest names first where one is a prefix of another ("ms" before "m").
constexpr std::array<Unit, 5> kUnits{
    {{"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}}};
// Far beyond any sensible timer, far below overflow of steady_clock arithmetic.
constexpr int64_t kMaxMs = int64_t{100} * 365 * 86'400'000;

}  // namespace

Result<std::chrono::milliseconds, std::string> parse_duration(std::string_view text) {
  if (text == "0") return std::chrono::milliseconds(0);
  if (text.empty()) return Err{std::string("empty duration")};
  const std::string quoted = "\"" + std::string(text) + "\"";
  int64_t total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    int64_t n = 0;
    const std::size_t digits = i;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      n = n * 10 + (text[i] - '0');
      if (n > kMaxMs) return Err{"duration " + quoted + " is too long"};
    }
    if (i == digits)
      return Err{"duration " + quoted + ": expected a number at \"" + std::string(text.substr(i)) + "\""};
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits) {
      if (text.substr(i, u.name.size()) == u.name) {
        unit = &u;
        break;
      }
    }
    if (unit == nullptr)
      return Err{"duration " + quoted + ": a number needs a unit (ms, s, m, h or d), e.g. 90s, 10m, 24h"};
    i += unit->name.size();
    if (n > (kMaxMs - total) / unit->ms) return Err{"duration " + quoted + " is too long"};
    total += n * unit->ms;
  }
  return std::chrono::milliseconds(total);
}

std::string format_duration(std::chrono::milliseconds d) {
  int64_t left = d.count();
  if (left <= 0) return "0";
  std::string out;
  for (auto it = kUnits.rbegin(); it != kUnits.rend(); ++it) {
    if (left >= it->ms) {
      out += std::to_string(left / it->ms) + std::string(it->name);
      left %= it->ms;
    }
  }
  return out;
}

}  // namespace pspgw
