#include "admin/metrics.hpp"

#include <functional>
#include <string_view>

namespace pspgw::admin {

namespace {

constexpr std::string_view kPrefix = "psp_gateway_";

// Label values: backslash, quote and newline escaped (exposition format).
std::string escape(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// Metric names from counter names: anything but [a-zA-Z0-9_] becomes '_'.
std::string sanitize(std::string_view n) {
  std::string out(n);
  for (char& c : out) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) c = '_';
  }
  return out;
}

using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

class Writer {
 public:
  // Starts a family: # HELP and # TYPE once, before its samples.
  void family(std::string_view name, std::string_view type, std::string_view help) {
    name_ = std::string(kPrefix) + std::string(name);
    out_ += "# HELP " + name_ + ' ' + std::string(help) + '\n';
    out_ += "# TYPE " + name_ + ' ' + std::string(type) + '\n';
  }
  void sample(const Labels& labels, uint64_t value) {
    out_ += name_;
    if (!labels.empty()) {
      out_ += '{';
      for (std::size_t i = 0; i < labels.size(); ++i) {
        if (i > 0) out_ += ',';
        out_ += std::string(labels[i].first) + "=\"" + escape(labels[i].second) + '"';
      }
      out_ += '}';
    }
    out_ += ' ' + std::to_string(value) + '\n';
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
  std::string name_;
};

void render_pipes(Writer& w, const StatsSnapshot& s) {
  struct Field {
    const char* name;
    const char* type;
    const char* help;
    uint64_t PipeSnapshot::*value;
  };
  static const Field kFields[] = {
      {"pipe_entries", "gauge", "Entries installed in the pipe.", &PipeSnapshot::entries},
      {"pipe_hits_total", "counter", "Packets that matched an entry of the pipe.", &PipeSnapshot::hits},
      {"pipe_misses_total", "counter", "Packets that matched no entry of the pipe.", &PipeSnapshot::misses},
      {"pipe_mirrored_total", "counter", "Packets the pipe mirrored (sampling).", &PipeSnapshot::mirrored},
  };
  for (const auto& f : kFields) {
    w.family(f.name, f.type, f.help);
    for (const auto& p : s.pipes) w.sample({{"pipe", p.name}}, p.*f.value);
  }
  w.family("pipe_drops_total", "counter", "Packets the pipe dropped, by reason.");
  for (const auto& p : s.pipes) {
    for (const auto& d : p.drops) w.sample({{"pipe", p.name}, {"reason", d.name}}, d.value);
  }
  w.family("syndromes_total", "counter",
           "Packets that failed decapsulation or the ingress ACL, by syndrome (SYND_STATS).");
  for (const auto& p : s.pipes) {
    for (const auto& d : p.syndromes) w.sample({{"reason", d.name}}, d.value);
  }
}

void render_ports(Writer& w, const StatsSnapshot& s) {
  struct Field {
    const char* name;
    const char* help;
    uint64_t PortSnapshot::*value;
  };
  static const Field kFields[] = {
      {"port_rx_packets_total", "Packets received on the port.", &PortSnapshot::rx_packets},
      {"port_rx_bytes_total", "Bytes received on the port.", &PortSnapshot::rx_bytes},
      {"port_tx_packets_total", "Packets sent on the port.", &PortSnapshot::tx_packets},
      {"port_tx_bytes_total", "Bytes sent on the port.", &PortSnapshot::tx_bytes},
      {"port_drops_total", "Packets the port dropped (queue full, send error).", &PortSnapshot::drops},
  };
  for (const auto& f : kFields) {
    w.family(f.name, "counter", f.help);
    for (const auto& p : s.ports) w.sample({{"port", p.name}}, p.*f.value);
  }
}

// "rx_bytes" -> psp_gateway_psp_rx_bytes_total: every one of these is a counter.
void render_named(Writer& w, std::string_view group, const std::vector<NamedCount>& counts,
                  std::string_view help) {
  for (const auto& c : counts) {
    w.family(std::string(group) + sanitize(c.name) + "_total", "counter",
             std::string(help) + ": " + c.name + '.');
    w.sample({}, c.value);
  }
}

void render_tunnels(Writer& w, const StatsSnapshot& s, std::size_t max_tunnels) {
  const std::size_t shown = std::min(max_tunnels, s.tunnels.size());
  w.family("tunnels", "gauge", "Tunnels with an egress SA installed.");
  w.sample({}, s.tunnels.size());
  w.family("tunnels_unexported", "gauge",
           "Tunnels left out of the per-tunnel series (more than --metrics-max-tunnels).");
  w.sample({}, s.tunnels.size() - shown);
  const std::string help_suffix = " Per tunnel; at most --metrics-max-tunnels (" +
                                  std::to_string(max_tunnels) + ") tunnels are exported.";
  w.family("tunnel_tx_packets_total", "counter", "Packets encapsulated into the tunnel." + help_suffix);
  for (std::size_t i = 0; i < shown; ++i) {
    const auto& t = s.tunnels[i];
    w.sample({{"local_vip", t.local_vip}, {"remote_vip", t.remote_vip}}, t.tx_packets);
  }
  w.family("tunnel_rx_packets_total", "counter", "Packets decapsulated from the tunnel." + help_suffix);
  for (std::size_t i = 0; i < shown; ++i) {
    const auto& t = s.tunnels[i];
    w.sample({{"local_vip", t.local_vip}, {"remote_vip", t.remote_vip}}, t.rx_packets);
  }
}

void render_peers(Writer& w, const StatsSnapshot& s) {
  w.family("peer_tunnels", "gauge", "Connected tunnels with the peer.");
  for (const auto& p : s.peers) w.sample({{"peer", p.name}}, p.tunnels);
  w.family("peer_pending_exchanges", "gauge", "Key exchanges with the peer in flight.");
  for (const auto& p : s.peers) w.sample({{"peer", p.name}}, p.pending);
  w.family("peer_up", "gauge", "1 when every configured tunnel with the peer is connected.");
  for (const auto& p : s.peers) w.sample({{"peer", p.name}}, p.state == "connected" ? 1 : 0);
  w.family(
      "peer_rpcs_total", "counter",
      "Key-exchange RPCs with the peer: direction sent (ours, by how they ended) or received (theirs, by "
      "what we answered), by gRPC status code.");
  for (const auto& p : s.peers) {
    for (const auto& c : p.rpcs_sent)
      w.sample({{"peer", p.name}, {"direction", "sent"}, {"code", c.name}}, c.value);
    for (const auto& c : p.rpcs_received)
      w.sample({{"peer", p.name}, {"direction", "received"}, {"code", c.name}}, c.value);
  }
  w.family("rpcs_unattributed_total", "counter",
           "Key-exchange requests refused before they could be attributed to a configured peer.");
  w.sample({}, s.rpcs_unattributed);
}

// Service chains: only when some are configured (no empty families on gateways without chains).
void render_sfc(Writer& w, const SfcSnapshot& s) {
  if (!s.classifiers.empty()) {
    w.family("sfc_classifier_packets_total", "counter", "Packets a flow classifier steered into its chain.");
    for (const auto& c : s.classifiers) w.sample({{"classifier", c.name}, {"chain", c.chain}}, c.packets);
    w.family("sfc_classifier_return_packets_total", "counter",
             "Return packets a bi-directional classifier steered back through its chain.");
    for (const auto& c : s.classifiers)
      w.sample({{"classifier", c.name}, {"chain", c.chain}}, c.return_packets);
  }
  if (!s.hops.empty()) {
    w.family("sfc_hop_packets_total", "counter", "Packets back from a chain hop's instances and sent on.");
    for (const auto& h : s.hops) {
      const std::string hop = std::to_string(h.hop);
      w.sample({{"chain", h.chain}, {"hop", hop}, {"group", h.group}}, h.packets);
    }
  }
  if (!s.instances.empty()) {
    w.family("sfc_instance_up", "gauge", "1 while the port pair answers its health probes.");
    for (const auto& i : s.instances) w.sample({{"pair", i.pair}, {"group", i.group}}, i.live ? 1 : 0);
    w.family("sfc_instance_tx_packets_total", "counter", "Packets sent into the instance's ingress port.");
    for (const auto& i : s.instances) w.sample({{"pair", i.pair}, {"group", i.group}}, i.in_tx);
    w.family("sfc_instance_rx_packets_total", "counter", "Packets received from the instance's egress port.");
    for (const auto& i : s.instances) w.sample({{"pair", i.pair}, {"group", i.group}}, i.out_rx);
  }
}

void render_fleet(Writer& w, const StatsSnapshot::Fleet& f) {
  if (!f.enabled) return;
  w.family("fleet_store_up", "gauge", "1 while the etcd watch stream is up (fleet mode).");
  w.sample({}, f.connected ? 1 : 0);
  w.family("fleet_registered", "gauge", "1 while our host record is in etcd under a live lease.");
  w.sample({}, f.registered ? 1 : 0);
  w.family("fleet_directory_revision", "gauge", "The etcd revision the fleet directory has caught up to.");
  w.sample({}, static_cast<uint64_t>(f.revision));
  w.family("fleet_directory_hosts", "gauge", "Host records in the fleet directory.");
  w.sample({}, f.hosts);
  w.family("fleet_directory_vips", "gauge", "VIPs in the fleet directory.");
  w.sample({}, f.vips);
  w.family("fleet_resyncs_total", "counter", "Full reads of the directory (start, compaction).");
  w.sample({}, f.resyncs);
  w.family("fleet_reconnects_total", "counter", "Watch streams reopened after a break.");
  w.sample({}, f.reconnects);
  w.family("fleet_bad_records_total", "counter", "Records or policies in etcd that did not decode.");
  w.sample({}, f.bad_records);
}

}  // namespace

std::string render_metrics(const StatsSnapshot& s, std::size_t max_tunnels) {
  Writer w;
  w.family("uptime_seconds", "gauge", "Seconds since the gateway started.");
  w.sample({}, s.uptime_s);
  w.family("key_generation", "gauge", "Generation of the master key (increments on each rotation).");
  w.sample({}, s.key_generation);
  render_pipes(w, s);
  render_ports(w, s);
  render_named(w, "psp_", s.psp, "PSP data-path counter");
  w.family("psp_drops_total", "counter", "Packets the PSP actions dropped, by reason.");
  for (const auto& d : s.psp_drops) w.sample({{"reason", d.name}}, d.value);
  render_named(w, "slow_path_", s.slow_path, "Slow-path (exception, key exchange) counter");
  render_tunnels(w, s, max_tunnels);
  render_peers(w, s);
  render_sfc(w, s.sfc);
  render_fleet(w, s.fleet);
  return w.take();
}

}  // namespace pspgw::admin
