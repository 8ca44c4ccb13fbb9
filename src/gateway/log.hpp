// Logger: the daemon's log lines. One line per event, one write(2) each, with a stable prefix:
//   [2026-01-02T03:04:05.678Z ]psp-gateway: LEVEL: message
// LEVEL is error, warn, info or debug (--log-level, default info; lines above it are not written).
// Timestamps are left out under systemd (JOURNAL_STREAM set: journald stamps every line itself) and written
// otherwise. Lines a remote party can trigger (a packet, a request) go through limited(): a token bucket
// (control::LogLimiter) so a flood costs a few lines and a count of those held back.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "control/log_limiter.hpp"

namespace pspgw::gateway {

enum class LogLevel : uint8_t { kError, kWarn, kInfo, kDebug };
std::optional<LogLevel> parse_log_level(std::string_view text);
std::string_view to_string(LogLevel level);

struct LoggerOptions {
  LogLevel level = LogLevel::kInfo;
  bool timestamps = true;  // default_timestamps(): off under systemd
  uint32_t limited_burst = 20;
  std::chrono::steady_clock::duration limited_period = std::chrono::seconds(1);
  std::function<void(std::string_view line)> sink;  // a whole line with its '\n'; null: stderr
};
// Whether to stamp lines: not when journald reads stderr (it sets JOURNAL_STREAM for the service).
bool default_timestamps();

class Logger {
 public:
  explicit Logger(LoggerOptions opts = {});
  bool enabled(LogLevel level) const { return level <= opts_.level; }
  void log(LogLevel level, std::string_view message) const;
  // For lines a remote party can trigger: at most limited_burst, refilled one per limited_period.
  void limited(LogLevel level, std::string_view message);
  // The line as written (without the sink), for tests.
  std::string format(LogLevel level, std::string_view message,
                     std::chrono::system_clock::time_point now) const;

 private:
  LoggerOptions opts_;
  std::mutex mu_;
  control::LogLimiter limiter_;
};

}  // namespace pspgw::gateway
