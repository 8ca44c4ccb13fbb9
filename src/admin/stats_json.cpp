#include "admin/stats_json.hpp"

namespace pspgw::admin {

using nlohmann::json;

namespace {

json pipe_json(const PipeSnapshot& p) {
  json j = {{"name", p.name},
            {"entries", p.entries},
            {"hits", p.hits},
            {"misses", p.misses},
            {"mirrored", p.mirrored}};
  uint64_t drops = 0;
  json reasons = json::object();
  for (const auto& d : p.drops) {
    drops += d.value;
    reasons[d.name] = d.value;
  }
  j["drops"] = drops;
  if (!reasons.empty()) j["drop_reasons"] = reasons;
  if (!p.syndromes.empty()) {
    json synd = json::object();
    for (const auto& s : p.syndromes) synd[s.name] = s.value;
    j["syndromes"] = synd;
  }
  return j;
}

json named_json(const std::vector<NamedCount>& counts) {
  json j = json::object();
  for (const auto& c : counts) j[c.name] = c.value;
  return j;
}

}  // namespace

json sfc_json(const SfcSnapshot& s) {
  json classifiers = json::array();
  for (const auto& c : s.classifiers) {
    classifiers.push_back({{"name", c.name},
                           {"chain", c.chain},
                           {"port", c.port},
                           {"direction", c.direction},
                           {"symmetric", c.symmetric},
                           {"packets", c.packets},
                           {"return_packets", c.return_packets}});
  }
  json hops = json::array();
  for (const auto& h : s.hops)
    hops.push_back({{"chain", h.chain}, {"hop", h.hop}, {"group", h.group}, {"packets", h.packets}});
  json instances = json::array();
  for (const auto& i : s.instances) {
    instances.push_back({{"pair", i.pair},
                         {"group", i.group},
                         {"in", i.in},
                         {"out", i.out},
                         {"live", i.live},
                         {"in_tx", i.in_tx},
                         {"out_rx", i.out_rx},
                         {"out_tx", i.out_tx},
                         {"in_rx", i.in_rx},
                         {"probes_sent", i.probes_sent},
                         {"probes_returned", i.probes_returned}});
  }
  return {{"classifiers", classifiers}, {"hops", hops}, {"instances", instances}};
}

json counters_json(const StatsSnapshot& s) {
  json pipes = json::array();
  for (const auto& p : s.pipes) pipes.push_back(pipe_json(p));
  json ports = json::array();
  for (const auto& p : s.ports) {
    ports.push_back({{"name", p.name},
                     {"rx_packets", p.rx_packets},
                     {"rx_bytes", p.rx_bytes},
                     {"tx_packets", p.tx_packets},
                     {"tx_bytes", p.tx_bytes},
                     {"drops", p.drops}});
  }
  json psp = named_json(s.psp);
  for (const auto& d : s.psp_drops) {
    if (d.value != 0) psp["drop_" + d.name] = d.value;  // only reasons that occurred, as before
  }
  json tunnels = json::array();
  for (const auto& t : s.tunnels) {
    tunnels.push_back({{"local_vip", t.local_vip},
                       {"remote_vip", t.remote_vip},
                       {"tx_spi", t.tx_spi},
                       {"tx_packets", t.tx_packets},
                       {"rx_packets", t.rx_packets}});
  }
  return {{"pipes", pipes},     {"ports", ports},        {"psp", psp}, {"slow_path", named_json(s.slow_path)},
          {"tunnels", tunnels}, {"sfc", sfc_json(s.sfc)}};
}

json peers_json(const StatsSnapshot& s) {
  json list = json::array();
  for (const auto& p : s.peers) {
    list.push_back({{"name", p.name},
                    {"state", p.state},
                    {"tunnels", p.tunnels},
                    {"pending", p.pending},
                    {"rpcs_sent", named_json(p.rpcs_sent)},
                    {"rpcs_received", named_json(p.rpcs_received)},
                    {"rpcs_ok", p.rpcs_ok},
                    {"rpcs_refused", p.rpcs_refused},
                    {"rpcs_failed", p.rpcs_failed}});
    if (!p.last_error.empty()) list.back()["last_error"] = p.last_error;
    if (p.pip) list.back()["pip"] = *p.pip;  // README: PIP binding
  }
  return {{"peers", list}, {"rpcs_unattributed", s.rpcs_unattributed}};
}

}  // namespace pspgw::admin
