// The admin commands the gateway answers, named once for the daemon, pspctl and tests.
// tools/pspctl/README.md documents each one's args and the JSON shape of its result.
#pragma once

#include <string_view>

namespace pspgw::admin::cmd {

inline constexpr std::string_view kStatus = "status";           // -> {instance, version, pid, uptime_s, ...}
inline constexpr std::string_view kTunnels = "tunnels";         // -> {tunnels: [...]}
inline constexpr std::string_view kCounters = "counters";       // -> {pipes, ports, psp, tunnels}
inline constexpr std::string_view kPipeline = "pipeline";       // {format} -> mermaid text | JSON dump
inline constexpr std::string_view kRotateKeys = "rotate-keys";  // {issue_new_keys} -> RotationReport
inline constexpr std::string_view kPeers = "peers";             // -> {peers: [...]}
inline constexpr std::string_view kSfc =
    "sfc";  // {argv: [VERB, ARGS...]} -> show: registry + counters; else ok
inline constexpr std::string_view kReload = "reload";  // -> {reloaded, summary} | failed: why
inline constexpr std::string_view kSample = "sample";  // {on, rate?} -> {sampling, rate}

}  // namespace pspgw::admin::cmd
