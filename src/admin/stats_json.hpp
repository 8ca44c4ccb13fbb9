// StatsSnapshot -> the admin channel's JSON (`counters`, `peers`): the shapes pspctl and the e2e scripts
// read (tools/pspctl/render.cpp), so the keys here are an interface: change them only with their readers.
#pragma once

#include <nlohmann/json.hpp>

#include "admin/stats.hpp"

namespace pspgw::admin {

nlohmann::json counters_json(const StatsSnapshot& s);
nlohmann::json peers_json(const StatsSnapshot& s);
// The service chains' counters (also in counters_json as "sfc"; `pspctl sfc show` adds them to the registry).
nlohmann::json sfc_json(const SfcSnapshot& s);

}  // namespace pspgw::admin
