// A packet worker: one thread, its own queue of every port (multi-queue TAP, SO_REUSEPORT UDP socket), its
// own packet pool, its flow::Worker, and two frame rings to and from the control thread.
//
// Loop (one iteration): go offline and wait on the ports and the inbound ring (epoll) -> online -> per
// ready port: rx_burst -> (network: write the outer headers back; host: learn the workload's MAC, and
// answer or fragment what is larger than the tunnel carries: mtu_guard.hpp) -> pipeline -> sink (ports, CPU
// ring, drop) -> frames from the control thread (resubmitted held packets into EGR_ACL, exception replies
// straight to their port) -> quiescent point for both epoch domains -> every 100 ms, publish counters.
// Nothing here blocks on the control plane.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/unique_fd.hpp"
#include "flow/epoch.hpp"
#include "flow/pipeline.hpp"
#include "gateway/frame_ring.hpp"
#include "gateway/mtu_guard.hpp"
#include "gateway/outer.hpp"
#include "gateway/psp_actions.hpp"
#include "gateway/topology.hpp"
#include "net/packet.hpp"
#include "ports/poller.hpp"
#include "ports/port.hpp"

namespace pspgw::gateway {

// What the control thread sends a worker (FrameInfo::reason).
enum class FrameKind : uint16_t {
  kResubmit = 1,  // a held packet: into the pipeline at EGR_ACL (the seeds' "resubmit")
  kTransmit = 2,  // a finished frame (exception reply): straight out of FrameInfo::port
};

// Counters a worker publishes for the control plane to read.
struct WorkerStats {
  std::vector<ports::PortStats> ports;  // by PortId
  psp::Counters psp;
  psp::KeyCacheStats key_cache;
  uint64_t batches = 0;
  uint64_t cpu_queue_drops = 0;  // the ring to the control thread was full
  // Exported in the slow_path group (gateway.cpp fill_psp_snapshot) under the names after each.
  uint64_t pool_empty = 0;        // segments of a super-packet lost: no free buffer (dropped_pool_empty)
  uint64_t resubmit_waits = 0;    // a held frame left in its ring for want of a buffer (resubmit_pool_waits)
  uint64_t unwrap_failures = 0;   // toward the network without outer headers, a bug (dropped_unwrap_failed)
  uint64_t segment_failures = 0;  // a super-packet that could not be cut, a bug too (dropped_segment_failed)
  TooBigCounters too_big;         // host-port frames larger than the tunnel carries (mtu_guard.hpp)
};

struct WorkerConfig {
  uint16_t index = 0;
  std::unique_ptr<ports::Port> network;             // PortId 0
  std::vector<std::unique_ptr<ports::Port>> hosts;  // PortId 1..N
  OuterEndpoint outer;
  const SaTable* sas = nullptr;  // the SAs super-packets are sealed with as they leave (segment_seal.hpp)
  uint32_t payload_mtu = 0;  // the largest inner IP packet the tunnel carries (path_mtu.hpp); 0: unchecked
  std::size_t pool_packets = 768;
  uint32_t buffer_size = ports::kGsoRxBufferSize;
};

class PacketWorker {
 public:
  PacketWorker(WorkerConfig config, Topology& topo, flow::EpochDomain& sa_epoch, WorkerPsp& psp,
               std::vector<std::unique_ptr<HostPortInfo>>& host_ports);
  ~PacketWorker();
  PacketWorker(const PacketWorker&) = delete;
  PacketWorker& operator=(const PacketWorker&) = delete;

  // Thread control.
  Status<std::string> start();
  void stop();

  FrameRing& to_cpu() { return to_cpu_; }
  // Control thread -> worker; wake() after pushing.
  FrameRing& from_cpu() { return from_cpu_; }
  void wake();
  // Set by the worker when it pushed to to_cpu(): the control thread's eventfd.
  void set_cpu_notify(int eventfd) { cpu_notify_ = eventfd; }

  WorkerStats stats() const;
  uint16_t index() const { return cfg_.index; }

  // A reload's host-port change (gateway.cpp): host port `index` (PortId index + 1) becomes `port`, or
  // goes (null: its queue is closed, so the TAP goes once every worker closed its own). The worker thread
  // adopts it between batches (the port lists are its own: no lock on the data path); this waits until
  // it has, at most `limit`. False on timeout (the change is still applied later).
  bool set_host_port(std::size_t index, std::unique_ptr<ports::Port> port,
                     std::chrono::milliseconds limit = std::chrono::seconds(2));

 private:
  class Sink;
  void run();
  void poll_port(ports::Port& port, bool network);
  void drain_from_cpu();
  void learn_workload_mac(const net::PacketBatch& batch, std::size_t host_index);
  void process_host_batch(ports::Port& port, net::PacketBatch& batch);
  void publish_stats();
  void adopt_host_ports(ports::Poller* poller);  // null: the thread is not running
  void report_stale_peer(std::chrono::steady_clock::time_point now);

  WorkerConfig cfg_;
  Topology& topo_;
  flow::EpochDomain& sa_epoch_;
  WorkerPsp& psp_;
  std::vector<std::unique_ptr<HostPortInfo>>& host_ports_;
  net::PacketPool pool_;
  std::unique_ptr<flow::Worker> flow_;
  std::unique_ptr<Sink> sink_;
  MtuGuard mtu_guard_;
  FrameRing to_cpu_;
  FrameRing from_cpu_;
  UniqueFd wake_fd_;
  int cpu_notify_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::chrono::steady_clock::time_point next_stale_report_{};
  WorkerStats local_;  // written by the worker only
  mutable std::mutex stats_mu_;
  WorkerStats published_;
  // set_host_port -> the worker thread: pending changes (index, port or null), how many were asked for
  // and how many the worker applied.
  std::mutex ports_mu_;
  std::condition_variable ports_cv_;
  std::vector<std::pair<std::size_t, std::unique_ptr<ports::Port>>> port_changes_;
  std::atomic<bool> port_changes_pending_{false};
  uint64_t port_changes_asked_ = 0, port_changes_done_ = 0;
};

}  // namespace pspgw::gateway
