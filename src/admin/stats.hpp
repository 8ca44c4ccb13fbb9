// StatsSnapshot: the gateway's statistics as one typed value, filled in one place
// (gateway::Gateway::snapshot) and rendered by every surface: pspctl's `counters` (stats_json.hpp),
// --stat-print, and Prometheus /metrics (metrics.hpp). Plain data with names already made: the renderers
// need nothing from the layers below.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pspgw::admin {

// A named counter; the name is the JSON key and (with a unit suffix) the metric name.
struct NamedCount {
  std::string name;
  uint64_t value = 0;
};

struct PipeSnapshot {
  std::string name;
  uint64_t entries = 0;
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t mirrored = 0;
  std::vector<NamedCount> drops;      // reason -> packets, only reasons that occurred
  std::vector<NamedCount> syndromes;  // SYND_STATS only: every syndrome, zeros included
};

struct PortSnapshot {
  std::string name;
  uint64_t rx_packets = 0;
  uint64_t rx_bytes = 0;
  uint64_t tx_packets = 0;
  uint64_t tx_bytes = 0;
  uint64_t drops = 0;
};

struct TunnelSnapshot {
  std::string local_vip;
  std::string remote_vip;
  uint32_t tx_spi = 0;
  uint64_t tx_packets = 0;
  uint64_t rx_packets = 0;
};

struct PeerSnapshot {
  std::string name;
  std::string state;  // connected | partial | idle
  uint64_t tunnels = 0;
  uint64_t pending = 0;
  std::optional<std::string> pip;
  // Key-exchange RPCs with the peer, by gRPC status code name ("ok", "unavailable", ...), only codes that
  // occurred: the requests we sent it and how they ended, the requests it sent us and what we answered.
  std::vector<NamedCount> rpcs_sent;
  std::vector<NamedCount> rpcs_received;
  uint64_t rpcs_ok = 0;       // both directions
  uint64_t rpcs_refused = 0;  // answered with a refusal (PERMISSION_DENIED, RESOURCE_EXHAUSTED, ...)
  uint64_t rpcs_failed = 0;   // no answer or a fault (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, ...)
  std::string last_error;     // the last call that was not OK; "" if none
};

// Service chains (issue 8): per classifier, per hop of a chain, per instance (port pair).
struct SfcClassifierSnapshot {
  std::string name, chain, port, direction;
  bool symmetric = false;
  uint64_t packets = 0;         // steered into the chain
  uint64_t return_packets = 0;  // bi-directional: return traffic steered back through it
};
struct SfcHopSnapshot {
  std::string chain, group;
  uint64_t hop = 0;      // 0 = the first group
  uint64_t packets = 0;  // back from the hop's instances and sent on (either way)
};
struct SfcInstanceSnapshot {
  std::string pair, group, in, out;
  bool live = true;
  uint64_t in_tx = 0, out_rx = 0;  // into its ingress port / back from its egress port (forward traffic)
  uint64_t out_tx = 0, in_rx = 0;  // the reverse way (bi-directional chains' return traffic)
  uint64_t probes_sent = 0, probes_returned = 0;
};
struct SfcSnapshot {
  std::vector<SfcClassifierSnapshot> classifiers;
  std::vector<SfcHopSnapshot> hops;
  std::vector<SfcInstanceSnapshot> instances;
};

struct StatsSnapshot {
  uint64_t uptime_s = 0;
  uint64_t key_generation = 0;
  std::vector<PipeSnapshot> pipes;
  std::vector<PortSnapshot> ports;
  std::vector<NamedCount> psp;        // PSP counters and key-cache counters, in JSON key order
  std::vector<NamedCount> psp_drops;  // every PSP drop reason, zeros included
  std::vector<NamedCount> slow_path;  // slow-path counters, in JSON key order
  std::vector<TunnelSnapshot> tunnels;
  std::vector<PeerSnapshot> peers;
  SfcSnapshot sfc;
  uint64_t rpcs_unattributed = 0;  // requests refused before they could be attributed to a peer
  // Fleet mode (issue 11): the store's state and the directory; enabled false without --etcd-endpoints.
  struct Fleet {
    bool enabled = false;
    bool connected = false;   // the watch stream is up
    bool registered = false;  // our record is in the store under a live lease
    int64_t revision = 0;     // the store revision the directory has caught up to
    uint64_t hosts = 0;
    uint64_t vips = 0;
    uint64_t resyncs = 0;
    uint64_t reconnects = 0;
    uint64_t bad_records = 0;
  } fleet;
};

}  // namespace pspgw::admin
