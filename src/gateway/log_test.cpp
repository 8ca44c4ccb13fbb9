// Logger: level filtering, the stable line format, timestamps on/off, and rate limiting of lines a remote
// party can trigger.
#include "gateway/log.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace pspgw::gateway {
namespace {

struct Captured {
  std::vector<std::string> lines;
  LoggerOptions options(LogLevel level, bool timestamps = false) {
    LoggerOptions o;
    o.level = level;
    o.timestamps = timestamps;
    o.sink = [this](std::string_view l) { lines.emplace_back(l); };
    return o;
  }
};

TEST(LogLevel, ParsesTheFourNamesAndNothingElse) {
  EXPECT_EQ(parse_log_level("error"), LogLevel::kError);
  EXPECT_EQ(parse_log_level("warn"), LogLevel::kWarn);
  EXPECT_EQ(parse_log_level("info"), LogLevel::kInfo);
  EXPECT_EQ(parse_log_level("debug"), LogLevel::kDebug);
  EXPECT_FALSE(parse_log_level("warning"));
  EXPECT_FALSE(parse_log_level(""));
}

TEST(Logger, WritesOnlyLinesAtOrAboveItsLevel) {
  Captured c;
  Logger log(c.options(LogLevel::kWarn));
  log.log(LogLevel::kDebug, "d");
  log.log(LogLevel::kInfo, "i");
  log.log(LogLevel::kWarn, "w");
  log.log(LogLevel::kError, "e");
  EXPECT_EQ(c.lines, (std::vector<std::string>{"psp-gateway: warn: w\n", "psp-gateway: error: e\n"}));
  EXPECT_FALSE(log.enabled(LogLevel::kInfo));

  Captured all;
  Logger debug(all.options(LogLevel::kDebug));
  debug.log(LogLevel::kDebug, "d");
  EXPECT_EQ(all.lines, std::vector<std::string>{"psp-gateway: debug: d\n"});
}

TEST(Logger, TimestampsPrecedeThePrefixWhenOn) {
  Logger on(LoggerOptions{LogLevel::kInfo, true});
  Logger off(LoggerOptions{LogLevel::kInfo, false});
  const auto t = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'700'000'000'123));
  EXPECT_EQ(on.format(LogLevel::kInfo, "started: x", t),
            "2023-11-14T22:13:20.123Z psp-gateway: info: started: x\n");
  EXPECT_EQ(off.format(LogLevel::kInfo, "started: x", t), "psp-gateway: info: started: x\n");
}

TEST(Logger, TimestampsAreOffWhenJournaldReadsTheStream) {
  ::setenv("JOURNAL_STREAM", "8:12345", 1);
  EXPECT_FALSE(default_timestamps());
  ::unsetenv("JOURNAL_STREAM");
  EXPECT_TRUE(default_timestamps());
}

TEST(Logger, LimitedLinesStopAfterTheBurstAndSayHowManyWereHeldBack) {
  Captured c;
  LoggerOptions o = c.options(LogLevel::kInfo);
  o.limited_burst = 3;
  o.limited_period = std::chrono::milliseconds(50);
  Logger log(o);
  for (int i = 0; i < 100; ++i) log.limited(LogLevel::kInfo, "bad packet");
  EXPECT_EQ(c.lines.size(), 3u);  // a flood of 100 costs the burst
  // Once the bucket refills, the next line carries the count of those held back.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (c.lines.size() < 4 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    log.limited(LogLevel::kInfo, "bad packet");
  }
  ASSERT_EQ(c.lines.size(), 4u);
  EXPECT_NE(c.lines[3].find("similar lines suppressed"), std::string::npos) << c.lines[3];
  // Filtered by level before the bucket: debug lines at info cost no token.
  Captured d;
  LoggerOptions od = d.options(LogLevel::kInfo);
  od.limited_burst = 1;
  Logger quiet(od);
  for (int i = 0; i < 10; ++i) quiet.limited(LogLevel::kDebug, "x");
  quiet.limited(LogLevel::kInfo, "y");
  EXPECT_EQ(d.lines, std::vector<std::string>{"psp-gateway: info: y\n"});
}

}  // namespace
}  // namespace pspgw::gateway
