// The gateway's service chaining (issue 8): the registry the `pspctl sfc` verbs and x-sw.sfc change, its
// program on the chain pipes (sfc/program.hpp) and the port pairs' health (sfc/health.hpp), behind one
// mutex. Callers: the admin thread (verbs, show, counters), the control thread (health ticks and probes
// back). Every change is transactional: the verb runs on a copy of the registry, the copy is programmed,
// and only then does it replace the registry; a program that fails is rolled back to the previous one.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "admin/handler.hpp"
#include "admin/stats.hpp"
#include "gateway/config.hpp"
#include "gateway/topology.hpp"
#include "sfc/chains.hpp"
#include "sfc/health.hpp"
#include "sfc/program.hpp"

namespace pspgw::gateway {

class ServiceChaining {
 public:
  // ports: every host port by index (PortId = index + 1; an empty name is a free slot).
  // log: health changes (an instance out or back: rare, control thread).
  ServiceChaining(Topology& topo, const std::vector<HostPortConfig>& ports, const SfcConfig& config,
                  std::function<void(std::string_view)> log = {});

  // Replays x-sw.sfc (the parser checked it; an error here names the key all the same).
  Status<std::string> load(const SfcConfig& config);
  // pspctl sfc: {"argv": ["VERB", ...]}; show returns the registry with its counters.
  admin::AdminResult handle(const nlohmann::json& args, const std::vector<admin::PortSnapshot>& ports);

  // Control thread, every ~100 ms: ages probes, sends the due ones through `send`, reprograms on a change.
  using Send = std::function<bool(PortId, std::span<const uint8_t>)>;
  void tick(std::chrono::steady_clock::time_point now, const Send& send);
  // Control thread: a probe frame back from a VNF port.
  void on_probe(std::span<const uint8_t> frame, PortId port);

  // ports: the port snapshots in PortId order (network first).
  admin::SfcSnapshot snapshot(const std::vector<admin::PortSnapshot>& ports) const;

  // A reload: what still refers to host port `name` (a pair, a classifier), empty if nothing does.
  std::string port_users(const std::string& name) const;
  // A reload changed the host ports (by index; an empty name is a free slot) or their VIPs: the verbs
  // know the new ports, and the program follows the VIPs.
  void set_ports(const std::vector<HostPortConfig>& ports);

 private:
  Status<sfc::SfcError> change(const std::vector<std::string>& argv);
  void sync_health();
  void apply_health();  // under mu_: log the changes, reprogram if any
  sfc::ServiceChains::PortLookup lookup() const;
  PortId port_id(const std::string& name) const;  // PortId 0: no such host port

  std::vector<HostPortConfig> ports_;
  std::function<void(std::string_view)> log_;
  mutable std::mutex mu_;
  sfc::ServiceChains chains_;
  sfc::ChainProgram program_;
  sfc::HealthMonitor health_;
  uint64_t changes_ = 0;
  // Probe frames per port (by PortId): sent out of it, and back from it (every frame of the probe
  // ethertype, late or stray ones too). The ports' own counters include them; snapshot() takes them out
  // so that an instance's traffic counters count data only.
  std::map<PortId, uint64_t> probe_tx_, probe_rx_;
};

}  // namespace pspgw::gateway
