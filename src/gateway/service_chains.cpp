#include "gateway/service_chains.hpp"

#include "admin/stats_json.hpp"
#include "sfc/verbs.hpp"

namespace pspgw::gateway {
namespace {

using nlohmann::json;

sfc::PortRole role_of(const HostPortConfig& p) {
  return p.role == HostPortRole::kVnf ? sfc::PortRole::kVnf : sfc::PortRole::kWorkload;
}

sfc::Placement placement(const Topology& topo) {
  const ChainPipes& c = topo.chain_pipes();
  return {c.entry,           c.exit,        c.hop,
          c.egr_acl,         c.group_after, static_cast<uint8_t>(PipeDrop::kSfcNoInstance),
          flow::Field::kReg3};
}

std::map<std::string, sfc::ProgramPort> program_ports(const std::vector<HostPortConfig>& ports) {
  std::map<std::string, sfc::ProgramPort> out;
  for (std::size_t i = 0; i < ports.size(); ++i) {
    if (ports[i].name.empty()) continue;  // a free slot (a port removed by a reload)
    out[ports[i].name] = {PortId{static_cast<uint16_t>(i + 1)}, role_of(ports[i]), ports[i].local_vips};
  }
  return out;
}

sfc::HealthOptions health_options(const SfcConfig& c) {
  return {std::chrono::milliseconds(c.interval_ms), c.misses, std::chrono::milliseconds(c.timeout_ms)};
}

}  // namespace

ServiceChaining::ServiceChaining(Topology& topo, const std::vector<HostPortConfig>& ports,
                                 const SfcConfig& config, std::function<void(std::string_view)> log)
    : ports_(ports),
      log_(std::move(log)),
      chains_(lookup()),
      program_(topo.pipeline(), placement(topo), program_ports(ports)),
      health_(health_options(config)) {}

// The registry's view of the host ports: the live list (verbs run under mu_, as set_ports changes it).
sfc::ServiceChains::PortLookup ServiceChaining::lookup() const {
  return [this](std::string_view name) -> std::optional<sfc::PortRole> {
    for (const auto& p : ports_)
      if (!p.name.empty() && p.name == name) return role_of(p);
    return std::nullopt;
  };
}

std::string ServiceChaining::port_users(const std::string& name) const {
  std::lock_guard lock(mu_);
  std::string users;
  const auto add = [&](const std::string& what) { users += (users.empty() ? "" : ", ") + what; };
  for (const auto& [pair, p] : chains_.pairs()) {
    if (p.in == name || p.out == name) add("port pair " + pair);
  }
  for (const auto& [classifier, c] : chains_.classifiers()) {
    if (c.port == name) add("classifier " + classifier);
  }
  return users;
}

void ServiceChaining::set_ports(const std::vector<HostPortConfig>& ports) {
  std::lock_guard lock(mu_);
  ports_ = ports;
  program_.set_ports(program_ports(ports_));
  auto s = program_.apply(chains_, [this](const std::string& p) { return health_.live(p); });
  if (!s && log_) log_("sfc: reprogramming after a reload failed: " + s.error().message);
}

Status<std::string> ServiceChaining::load(const SfcConfig& config) {
  std::lock_guard lock(mu_);
  for (std::size_t i = 0; i < config.verbs.size(); ++i) {
    if (auto s = sfc::run_verb(chains_, config.verbs[i]); !s)
      return Err{config.origins[i] + ": " + s.error().message};
  }
  sync_health();
  auto s = program_.apply(chains_, [this](const std::string& p) { return health_.live(p); });
  if (!s) return Err{"x-sw.sfc: " + s.error().message};
  return {};
}

PortId ServiceChaining::port_id(const std::string& name) const {
  for (std::size_t i = 0; i < ports_.size(); ++i)
    if (!ports_[i].name.empty() && ports_[i].name == name) return PortId{static_cast<uint16_t>(i + 1)};
  return PortId{0};
}

void ServiceChaining::sync_health() {
  std::map<std::string, std::pair<PortId, PortId>> pairs;
  for (const auto& [name, p] : chains_.pairs()) pairs[name] = {port_id(p.in), port_id(p.out)};
  health_.sync(pairs);
}

// The verb on a copy; programmed; kept. A program that fails goes back to the registry as it was.
Status<sfc::SfcError> ServiceChaining::change(const std::vector<std::string>& argv) {
  sfc::ServiceChains next = chains_;
  if (auto s = sfc::run_verb(next, argv); !s) return s;
  const auto live = [this](const std::string& p) { return health_.live(p); };
  if (auto s = program_.apply(next, live); !s) {
    (void)program_.apply(chains_, live);
    return s;
  }
  chains_ = std::move(next);
  sync_health();
  ++changes_;
  return {};
}

admin::AdminResult ServiceChaining::handle(const json& args, const std::vector<admin::PortSnapshot>& ports) {
  const auto argv = args.at("argv").get<std::vector<std::string>>();
  if (argv.empty() || argv[0] == "show") {
    json j;
    {
      std::lock_guard lock(mu_);
      j = chains_.to_json();
    }
    j["counters"] = admin::sfc_json(snapshot(ports));
    return j;
  }
  std::lock_guard lock(mu_);
  if (auto s = change(argv); !s) {
    return admin::admin_fail(admin::AdminErrc::kBadArgs,
                             std::string(sfc::to_string(s.error().code)) + ": " + s.error().message);
  }
  return json{{"ok", true}, {"entries", program_.entries()}, {"groups", program_.groups()}};
}

void ServiceChaining::tick(std::chrono::steady_clock::time_point now, const Send& send) {
  std::lock_guard lock(mu_);
  for (const auto& probe : health_.tick(now)) {
    if (send(probe.port, probe.frame)) ++probe_tx_[probe.port];
  }
  apply_health();
}

void ServiceChaining::on_probe(std::span<const uint8_t> frame, PortId port) {
  std::lock_guard lock(mu_);
  ++probe_rx_[port];
  (void)health_.received(frame, port);
  apply_health();
}

// Health changes only which targets entries take: the registry stays; a failure keeps the old program.
void ServiceChaining::apply_health() {
  const auto changes = health_.take_changes();
  if (changes.empty()) return;
  for (const auto& [pair, live] : changes) {
    if (!log_) break;
    const auto group = chains_.group_of_pair(pair);
    const std::string where = group ? " (group " + *group + ", fail-mode " +
                                          std::string(sfc::to_string(chains_.groups().at(*group).fail_mode)) +
                                          ")"
                                    : "";
    log_("sfc: port pair " + pair +
         (live ? " back in: its probe came back" + where
               : " out: " + std::to_string(health_.options().misses) + " probes missed in a row" + where));
  }
  auto s = program_.apply(chains_, [this](const std::string& p) { return health_.live(p); });
  if (!s && log_) log_("sfc: reprogramming after a health change failed: " + s.error().message);
}

admin::SfcSnapshot ServiceChaining::snapshot(const std::vector<admin::PortSnapshot>& ports) const {
  std::lock_guard lock(mu_);
  admin::SfcSnapshot s;
  const sfc::ProgramCounts counts = program_.counts();
  const auto count = [](const auto& m, const auto& k) {
    auto it = m.find(k);
    return it == m.end() ? uint64_t{0} : it->second;
  };
  for (const auto& [name, c] : chains_.classifiers()) {
    s.classifiers.push_back({name, c.chain, c.port, std::string(sfc::to_string(c.direction)), c.symmetric,
                             count(counts.classifier, name), count(counts.classifier_return, name)});
  }
  for (const auto& [name, chain] : chains_.chains()) {
    for (std::size_t h = 0; h < chain.groups.size(); ++h)
      s.hops.push_back({name, chain.groups[h], h, count(counts.hop, std::pair{name, h})});
  }
  const auto port = [&](const std::string& name) -> admin::PortSnapshot {
    for (const auto& p : ports)
      if (p.name == name) return p;
    return {};
  };
  for (const auto& [name, p] : chains_.pairs()) {
    admin::SfcInstanceSnapshot i;
    i.pair = name;
    i.group = chains_.group_of_pair(name).value_or("");
    i.in = p.in;
    i.out = p.out;
    const auto in = port(p.in);
    const auto out = port(p.out);
    // Data only: the probes go out of the ingress port and come back from the egress port (one port
    // for a one-armed pair: the same subtraction).
    const auto data = [](uint64_t all, uint64_t probes) { return all > probes ? all - probes : 0; };
    i.in_tx = data(in.tx_packets, count(probe_tx_, port_id(p.in)));
    i.in_rx = data(in.rx_packets, count(probe_rx_, port_id(p.in)));
    i.out_tx = data(out.tx_packets, count(probe_tx_, port_id(p.out)));
    i.out_rx = data(out.rx_packets, count(probe_rx_, port_id(p.out)));
    auto h = health_.pairs().find(name);
    if (h != health_.pairs().end()) {
      i.live = h->second.live;
      i.probes_sent = h->second.sent;
      i.probes_returned = h->second.returned;
    }
    s.instances.push_back(std::move(i));
  }
  return s;
}

}  // namespace pspgw::gateway
