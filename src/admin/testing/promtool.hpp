// promtool_check: runs `promtool check metrics` (Debian package prometheus, installed by scripts/deps.sh)
// on an exposition text and returns its verdict, so tests validate /metrics with Prometheus's own linter.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace pspgw::admin::testing {

struct PromtoolResult {
  bool available = false;  // promtool is on PATH
  int status = -1;         // its exit status: 0 = valid and lint-clean
  std::string output;      // what it said
};

inline bool promtool_available() {
  return std::system("command -v promtool >/dev/null 2>&1") == 0;  // NOLINT(concurrency-mt-unsafe)
}

inline PromtoolResult promtool_check(const std::string& text) {
  PromtoolResult r;
  r.available = promtool_available();
  if (!r.available) return r;
  const auto dir = std::filesystem::temp_directory_path();
  const std::string base = (dir / ("pspgw-metrics-" + std::to_string(::getpid()))).string();
  const std::string in = base + ".prom";
  const std::string out = base + ".out";
  std::ofstream(in) << text;
  const std::string cmd = "promtool check metrics < '" + in + "' > '" + out + "' 2>&1";
  const int rc = std::system(cmd.c_str());  // NOLINT(concurrency-mt-unsafe, cert-env33-c)
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  std::ostringstream said;
  said << std::ifstream(out).rdbuf();
  r.output = said.str();
  std::filesystem::remove(in);
  std::filesystem::remove(out);
  return r;
}

}  // namespace pspgw::admin::testing
