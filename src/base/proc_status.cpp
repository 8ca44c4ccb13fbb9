#include "base/proc_status.hpp"

#include <cstdlib>
#include <fstream>
#include <string>

namespace pspgw {

long proc_status_kib(std::string_view field) {
  std::ifstream in("/proc/self/status");
  const std::string want = std::string(field) + ":";
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(want, 0) == 0) return std::strtol(line.c_str() + want.size(), nullptr, 10);
  }
  return -1;
}

}  // namespace pspgw
