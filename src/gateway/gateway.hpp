// psp-gateway: the assembled daemon. Config + flags -> ports, workers, pipeline, control plane.
//
// Threads: N packet workers (worker.hpp); one control thread (slow_path.hpp) with a few key-exchange
// threads; gRPC's server threads (peers' requests); the admin thread (pspctl); optionally one thread for
// static tunnels (-z). Control -> data plane: flow entries and SAs published RCU-style, master keys through
// MasterKeyBoard (docs/architecture.md).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "admin/handler.hpp"
#include "admin/metrics_server.hpp"
#include "admin/server.hpp"
#include "admin/stats.hpp"
#include "control/grpc_peer_client.hpp"
#include "control/grpc_service.hpp"
#include "control/rpc_counters.hpp"
#include "control/tls.hpp"
#include "control/tunnel_manager.hpp"
#include "fleet/fleet.hpp"
#include "flow/epoch.hpp"
#include "gateway/config.hpp"
#include "gateway/data_plane.hpp"
#include "gateway/flags.hpp"
#include "gateway/log.hpp"
#include "gateway/psp_actions.hpp"
#include "gateway/reload.hpp"
#include "gateway/sa_table.hpp"
#include "gateway/service_chains.hpp"
#include "gateway/slow_path.hpp"
#include "gateway/topology.hpp"
#include "gateway/worker.hpp"
#include "ports/port.hpp"

namespace pspgw::gateway {

// Where a gateway's ports come from. Default: TAP devices and kernel UDP sockets; tests pass in-memory
// ports (ports/memory_port.hpp) to run whole gateways without root.
struct PortFactory {
  // Host port `index` (config order) for worker `worker` of `workers`.
  std::function<Result<std::unique_ptr<ports::Port>, std::string>(
      uint16_t worker, uint16_t workers, std::size_t index, const HostPortConfig& cfg, PortId id)>
      host;
  // The network (PSP/UDP) port for worker `worker`.
  std::function<Result<std::unique_ptr<ports::Port>, std::string>(uint16_t worker, uint16_t workers,
                                                                  const net::IpAddr& local_pip, PortId id)>
      network;
  // With several workers: how the ports steer a flow's packets to workers, for the start-up log (system
  // ports: the TAP and UDP steering programs, or why the kernel refused them; ports/steering.hpp).
  std::function<std::string()> steering;
};
// udp_zero_checksum: the spec's UDP checksum 0 on transmit (and so no UDP GSO) instead of valid checksums
// with UDP GSO, the default (README "Speed": why). whole_super_packets: the TAPs hand TSO/USO
// super-packets up whole, to be segmented as they are sealed (segment_seal.hpp; tunnel mode only: transport
// mode's encap needs each segment's own IP header); false: the TAP segments them as it reads them.
// tap_queue_len: each TAP queue's length (--tap-queue-len; 0: the kernel's).
PortFactory system_ports(bool udp_zero_checksum = false, bool whole_super_packets = false,
                         uint32_t tap_queue_len = 0);

class Gateway final : public admin::AdminHandler {
 public:
  static Result<std::unique_ptr<Gateway>, std::string> create(GatewayFlags flags, GatewayConfig config,
                                                              PortFactory ports = system_ports());
  ~Gateway() override;
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Opens the ports (TAPs appear), starts workers, the control thread, gRPC and the admin socket.
  Status<std::string> start();
  void stop();
  // Live reload (reload.hpp): re-reads the config file (-c) and applies the difference, or refuses the
  // new config as a whole (the running one stays) with the error start would give, or naming what needs
  // a restart. Returns a one-line summary. Thread-safe (SIGHUP and pspctl reload may race).
  Result<std::string, std::string> reload();
  Result<std::string, std::string> reload(GatewayConfig next);

  admin::AdminResult handle(std::string_view cmd, const nlohmann::json& args) override;

  // Every statistic at once, gathered in one place; the admin JSON, --stat-print and /metrics render it.
  admin::StatsSnapshot snapshot() const;
  // The /metrics port actually bound (0: no --metrics-address).
  uint16_t metrics_port() const { return metrics_ ? metrics_->port() : 0; }

  const std::string& admin_path() const { return admin_path_; }
  // The live pipeline as the admin channel's `pipeline` command shows it ("mermaid" or "json").
  std::string dump_pipeline(std::string_view format) const;
  int grpc_port() const { return grpc_ ? grpc_->port() : 0; }
  control::TunnelManager& tunnels() { return *tm_; }
  control::PeerTransport& transport() { return *transport_; }
  Topology& topology() { return *topo_; }

 private:
  Gateway(GatewayFlags flags, GatewayConfig config, PortFactory ports);
  Status<std::string> build();
  Status<std::string> build_grpc_security(control::GrpcClientOptions& client);
  struct GrpcTls {
    std::shared_ptr<grpc::ServerCredentials> server;
    std::shared_ptr<grpc::ChannelCredentials> channel;
    std::size_t digest = 0;  // of the files' contents
  };
  static Result<GrpcTls, std::string> load_grpc_tls(const control::TlsFiles& files);
  control::GrpcServerOptions grpc_options();
  Status<std::string> start_fleet();
  void apply_fleet(const fleet::FleetView& view);
  std::string peer_identity(const PeerConfig& peer) const;
  nlohmann::json fleet_json() const;
  // Host ports a reload adds: a slot (index, PortId index + 1) and one queue per worker, opened before
  // anything else changes so that a TAP that cannot be made refuses the reload as a whole.
  struct NewHostPort {
    std::size_t slot = 0;
    HostPortConfig cfg;
    std::vector<std::unique_ptr<ports::Port>> queues;  // by worker
  };
  Result<std::vector<NewHostPort>, std::string> open_host_ports(const GatewayConfig& next,
                                                                const ConfigDiff& diff);
  void add_host_ports(std::vector<NewHostPort> ports);
  void remove_host_ports(const std::vector<std::string>& names);
  // `ports` (config order) by slot: the running slots with their new VIPs; a slot whose port is not in
  // `ports` is empty (free).
  std::vector<HostPortConfig> by_slot(const std::vector<HostPortConfig>& ports) const;
  void apply_reload(const GatewayConfig& next, const ConfigDiff& diff, std::vector<NewHostPort> added);
  void apply_tls(const GrpcTls& tls);
  admin::AdminResult sample(const nlohmann::json& args);
  Status<std::string> open_workers();
  void resolve_mtus();
  Status<std::string> start_metrics();
  void log(std::string_view line, LogLevel level = LogLevel::kInfo) const;
  void log_limited(std::string_view line);  // lines a remote party can trigger
  void tick();
  void expire_idle_tunnels();
  void report_gone_ports();  // logs once per port whose device was removed under the gateway
  void print_stats();
  void run_static();
  void wait_static(std::chrono::steady_clock::duration d);
  void wake_static();

  nlohmann::json status_json() const;
  nlohmann::json tunnels_json() const;
  std::vector<admin::PipeSnapshot> pipe_snapshots() const;
  std::vector<admin::PortSnapshot> port_snapshots(const std::vector<WorkerStats>& stats) const;
  void fill_psp_snapshot(const std::vector<WorkerStats>& stats, admin::StatsSnapshot& snap) const;
  std::vector<admin::PeerSnapshot> peer_snapshots() const;
  std::vector<WorkerStats> worker_stats() const;
  std::vector<std::string> port_names() const;

  GatewayFlags flags_;
  GatewayConfig config_;
  Logger logger_;
  PortFactory port_factory_;
  // By slot (PortId - 1); an empty name: a free slot. Written by a reload (under reload_mu_ and
  // port_cfg_mu_), read by the stats readers under port_cfg_mu_ (port_names).
  std::vector<HostPortConfig> host_port_cfg_;
  mutable std::mutex port_cfg_mu_;
  net::IpAddr local_pip_;
  uint32_t payload_mtu_ = 0;  // the largest inner IP packet the tunnel carries (path_mtu.hpp)
  net::MacAddr local_mac_;
  std::string admin_path_;
  std::chrono::steady_clock::time_point started_;

  // By slot, allocated at build for every slot there may ever be (kMaxHostPorts): the workers and the
  // decap action index it while a reload adds ports, so it never grows.
  std::vector<std::unique_ptr<HostPortInfo>> host_ports_;
  std::vector<std::unique_ptr<WorkerPsp>> worker_psp_;
  std::unique_ptr<flow::EpochDomain> sa_epoch_;
  std::unique_ptr<SaTable> sas_;
  MasterKeyBoard master_keys_;
  std::unique_ptr<Topology> topo_;
  std::unique_ptr<ServiceChaining> chains_;  // after topo_: programs its pipeline
  std::unique_ptr<FlowDataPlane> dp_;
  std::unique_ptr<control::TunnelManager> tm_;
  std::unique_ptr<control::GrpcPeerClient> transport_;
  std::vector<std::unique_ptr<PacketWorker>> workers_;
  std::unique_ptr<SlowPath> slow_;
  std::unique_ptr<control::GrpcServer> grpc_;
  control::PeerDirectory grpc_peers_;                         // who may call our gRPC server
  std::shared_ptr<grpc::ServerCredentials> grpc_server_tls_;  // null: --grpc-insecure
  std::size_t tls_digest_ = 0;
  control::RpcCounters rpc_counters_;          // per peer, both directions (the gRPC adapters count)
  std::atomic<uint32_t> last_sample_rate_{0};  // pspctl sample on without --rate
  mutable std::mutex reload_mu_;               // one reload at a time; guards config_ against status readers
  // Fleet mode (fleet_mode.hpp): the store's client and the directory's peers, appended to config_'s
  // (config_ stays the file's). Guarded by reload_mu_.
  std::unique_ptr<fleet::Fleet> fleet_;
  std::vector<PeerConfig> fleet_peers_;
  fleet::FleetView fleet_view_;  // the directory's last view: a reload recomputes fleet_peers_ from it
  std::unordered_map<std::string, std::string> fleet_identity_;  // gRPC address -> certificate identity
  std::string fleet_host_;
  std::unique_ptr<admin::AdminServer> admin_;
  std::unique_ptr<admin::MetricsServer> metrics_;
  std::thread static_thread_;
  std::mutex static_mu_;
  std::condition_variable static_cv_;
  bool static_wake_ = false;
  std::atomic<bool> stopping_{false};
  std::chrono::steady_clock::time_point next_stat_print_{};
  std::chrono::steady_clock::time_point next_idle_check_{};
  std::chrono::steady_clock::time_point next_gone_check_{};
  std::vector<bool> gone_reported_;  // per port (port_names() order)
  std::string last_stats_;
};

}  // namespace pspgw::gateway
