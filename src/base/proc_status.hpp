// This process's memory figures from /proc/self/status, for the tests and benchmarks that measure them.
#pragma once

#include <string_view>

namespace pspgw {

// The kB value of a /proc/self/status line such as "VmRSS" or "VmHWM"; -1 when the line is missing.
long proc_status_kib(std::string_view field);

}  // namespace pspgw
