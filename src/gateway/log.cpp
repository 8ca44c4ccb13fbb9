#include "gateway/log.hpp"

#include <unistd.h>

#include <cstdlib>
#include <ctime>

namespace pspgw::gateway {

std::optional<LogLevel> parse_log_level(std::string_view text) {
  if (text == "error") return LogLevel::kError;
  if (text == "warn") return LogLevel::kWarn;
  if (text == "info") return LogLevel::kInfo;
  if (text == "debug") return LogLevel::kDebug;
  return std::nullopt;
}

std::string_view to_string(LogLevel level) {
  switch (level) {
    case LogLevel::kError:
      return "error";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kDebug:
      return "debug";
  }
  return "info";
}

bool default_timestamps() {
  const char* js = std::getenv("JOURNAL_STREAM");  // NOLINT(concurrency-mt-unsafe): read at start only
  return js == nullptr || *js == '\0';
}

Logger::Logger(LoggerOptions opts)
    : opts_(std::move(opts)), limiter_(opts_.limited_burst, opts_.limited_period) {}

std::string Logger::format(LogLevel level, std::string_view message,
                           std::chrono::system_clock::time_point now) const {
  std::string line;
  line.reserve(message.size() + 48);
  if (opts_.timestamps) {
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[40];
    const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    line.append(buf, n);
    char frac[8];
    std::snprintf(frac, sizeof frac, ".%03dZ ", static_cast<int>(ms));
    line += frac;
  }
  line += "psp-gateway: ";
  line += to_string(level);
  line += ": ";
  line += message;
  line += '\n';
  return line;
}

void Logger::log(LogLevel level, std::string_view message) const {
  if (!enabled(level)) return;
  const std::string line = format(level, message, std::chrono::system_clock::now());
  if (opts_.sink) {
    opts_.sink(line);
    return;
  }
  // One write per line: lines of concurrent threads never interleave.
  (void)!::write(STDERR_FILENO, line.data(), line.size());
}

void Logger::limited(LogLevel level, std::string_view message) {
  if (!enabled(level)) return;
  std::string suffix;
  {
    std::lock_guard lock(mu_);
    if (!limiter_.allow(control::LogLimiter::Clock::now())) return;
    suffix = limiter_.suffix();
  }
  log(level, suffix.empty() ? message : std::string(message) + suffix);
}

}  // namespace pspgw::gateway
