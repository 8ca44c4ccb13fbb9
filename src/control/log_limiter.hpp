// LogLimiter: a token bucket for log lines a remote party can trigger (a refused request, a rate-limited
// rotation), so a flood of them costs a few lines, not a full disk (style rule 15). Not thread-safe:
// callers hold their own lock.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>

namespace pspgw::control {

class LogLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  // At most `burst` lines, refilled one per `period`.
  explicit LogLimiter(uint32_t burst = 10, Clock::duration period = std::chrono::seconds(1))
      : burst_(burst), period_(period), tokens_(burst) {}

  // Whether to write this line now. When it says yes after some were held back, suffix() says how many.
  bool allow(Clock::time_point now) {
    if (tokens_ < burst_ && now >= refill_at_) {
      const auto n = static_cast<uint64_t>((now - refill_at_) / period_) + 1;
      tokens_ = static_cast<uint32_t>(std::min<uint64_t>(burst_, tokens_ + n));
      refill_at_ = now + period_;
    }
    if (tokens_ == 0) {
      ++suppressed_;
      return false;
    }
    if (tokens_-- == burst_) refill_at_ = now + period_;
    return true;
  }
  // " (N similar lines suppressed)" once after lines were held back, else "".
  std::string suffix() {
    if (suppressed_ == 0) return {};
    std::string s = " (" + std::to_string(suppressed_) + " similar lines suppressed)";
    suppressed_ = 0;
    return s;
  }

 private:
  uint32_t burst_;
  Clock::duration period_;
  uint32_t tokens_;
  Clock::time_point refill_at_{};
  uint64_t suppressed_ = 0;
};

}  // namespace pspgw::control
