// StatsSnapshot -> Prometheus text exposition format (version 0.0.4), every name prefixed psp_gateway_,
// units in names (_total, _bytes_total, _seconds). Labels: pipe, port, reason, peer, and per tunnel
// local_vip/remote_vip.
//
// Cardinality: pipes, ports, reasons and peers are fixed by the config; tunnels are not, so per-tunnel
// series stop at `max_tunnels` (--metrics-max-tunnels) and psp_gateway_tunnels_unexported says how many
// were left out (their packets still count in the port and PSP totals).
#pragma once

#include <cstddef>
#include <string>

#include "admin/stats.hpp"

namespace pspgw::admin {

inline constexpr std::size_t kDefaultMetricsMaxTunnels = 1000;

std::string render_metrics(const StatsSnapshot& s, std::size_t max_tunnels = kDefaultMetricsMaxTunnels);

}  // namespace pspgw::admin
