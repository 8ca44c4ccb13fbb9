// The slow path: what the seeds call RSS and the "RSS miss handler". One control thread drains every
// worker's CPU ring and
//   egress-miss   holds the packet (HoldQueue) and, held or not (a full hold queue drops the packet, not
//                 the tunnel), queues one key exchange per VIP pair (PendingPairs; begin_exchange opens
//                 our ingress ACL first); when the exchange ends it resubmits the held packets in order
//                 into EGR_ACL — or drops them, counted and logged, if it failed (later traffic retries,
//                 after the tunnel manager's backoff);
//   exception     answers ARP / Neighbor Solicitation / DHCP (exception.hpp) back out of the same port;
//   samples       logs "SAMPLED PACKET" with a one-line summary and a hex dump, and writes --sample-pcap;
//   stale peer    a worker saw PSP packets our keys do not match from some outer address: if that is a
//                 peer's, TunnelManager::note_stale_peer (rate limited) marks its tunnels for a refresh;
//   refreshes     peers with tunnels due a refresh (a restarted peer: tunnel_manager.hpp) are
//                 re-exchanged, one job per peer, when told (schedule_refresh) and retried every tick.
// Key exchanges block on an RPC (with a deadline), so they run on a small pool of exchange threads, never
// on the control thread and never on a worker.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/unique_fd.hpp"
#include "control/peer_transport.hpp"
#include "control/tunnel_manager.hpp"
#include "gateway/exception.hpp"
#include "gateway/hold_queue.hpp"
#include "gateway/worker.hpp"
#include "ports/pcap_io.hpp"

namespace pspgw::gateway {

// Runs exchanges on `threads` threads; completions are collected for the control thread, which `notify`
// wakes.
class ExchangeRunner {
 public:
  struct Completion {
    control::VipPair pair;
    control::CStatus status;
    std::optional<control::PeerIndex> peer;  // a per-peer job (refresh, static connect), not a pair's
    std::vector<control::VipPair> batch;     // an on-demand exchange of several pairs (pair: the first)
  };
  using Job = std::function<control::CStatus()>;

  ExchangeRunner(std::size_t threads, std::function<void()> notify);
  ~ExchangeRunner();  // finishes the running jobs (each bounded by its RPC deadline), drops queued ones
  ExchangeRunner(const ExchangeRunner&) = delete;
  ExchangeRunner& operator=(const ExchangeRunner&) = delete;

  void submit(control::VipPair pair, Job job);
  // One job for the pairs of one on-demand exchange (Completion::batch).
  void submit_batch(std::vector<control::VipPair> pairs, Job job);
  void submit_peer(control::PeerIndex peer, Job job);
  std::vector<Completion> take();
  std::size_t busy() const;  // running and queued jobs
  std::size_t threads() const { return threads_.size(); }

 private:
  void run();

  std::function<void()> notify_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  struct Queued {
    control::VipPair pair;
    std::optional<control::PeerIndex> peer;
    Job job;
    std::vector<control::VipPair> batch;
  };
  std::deque<Queued> queue_;
  std::vector<Completion> done_;
  std::size_t running_ = 0;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

struct SlowPathStats {
  uint64_t held = 0;                     // packets held for a key exchange
  uint64_t resubmitted = 0;              // held packets sent on after their tunnel came up
  uint64_t dropped_no_route = 0;         // destination VIP not configured for any peer
  uint64_t dropped_wrong_port = 0;       // source VIP sits behind another host port than the frame came in on
  uint64_t dropped_backoff = 0;          // the pair's last exchange failed recently
  uint64_t dropped_hold_full = 0;        // per-pair or total hold limit reached
  uint64_t dropped_exchange_failed = 0;  // held packets of a failed exchange
  uint64_t dropped_ring_full = 0;        // a worker's inbound ring was full
  // First exchanges not queued: PendingPairs at its bound (the pair's next packet or the next tick tries
  // again). No packet is dropped for it: a held one stays held.
  uint64_t pending_full = 0;
  uint64_t exchanges_started = 0;
  uint64_t exchanges_ok = 0;
  uint64_t exchanges_failed = 0;
  uint64_t exceptions_answered = 0;
  uint64_t exceptions_ignored = 0;  // malformed, or not ours to answer (e.g. ARP for an unknown address)
  uint64_t samples = 0;
  uint64_t rekeys = 0;              // re-keys done (tunnel_manager.hpp: after every rotation)
  uint64_t rekeys_failed = 0;       // re-key tries that failed (retried with backoff; summarised in the log)
  uint64_t stale_peer_reports = 0;  // workers' reports of packets our keys do not match
  uint64_t refreshes = 0;           // per-peer refresh jobs that completed

  // Samples --sample-pcap lost to a failed write (disk full); the file is not written again.
  uint64_t samples_not_written = 0;
};

struct SlowPathOptions {
  std::vector<ResponderPolicy> responders;  // by host-port index (PortId - 1)
  std::size_t hold_per_pair = 64;
  std::size_t hold_total = 4096;
  // Pairs whose first exchange waits for an exchange thread (PendingPairs); the gateway: its tunnel limit.
  std::size_t pending_pairs = 65536;
  std::size_t exchange_threads = 4;
  std::string sample_pcap;        // "" = none
  bool show_rss_packets = false;  // --show-rss-rx-packets: log every packet that reaches the CPU
  // The host-port index (PortId - 1) a local VIP sits behind (FlowDataPlane::host_port_of). An egress miss
  // from another port is dropped (dropped_wrong_port): resubmitting it would only miss EGR_ACL again.
  std::function<std::optional<std::size_t>(const net::IpAddr&)> host_port_of;
  std::function<void(std::string_view)> log;
  std::function<void()> tick;  // called every ~100 ms on the control thread (reclaim, stat print)
  // A service-chain health probe back from VNF port `port` (CpuReason::kSfcProbe), on the control thread.
  std::function<void(std::span<const uint8_t> frame, PortId port)> on_sfc_probe;
};

class SlowPath {
 public:
  SlowPath(std::vector<PacketWorker*> workers, control::TunnelManager& tm, control::PeerTransport& transport,
           SlowPathOptions opts);
  ~SlowPath();
  SlowPath(const SlowPath&) = delete;
  SlowPath& operator=(const SlowPath&) = delete;

  Status<std::string> start();  // opens the sample pcap, starts the control thread
  void stop();
  int notify_fd() const { return wake_.get(); }
  void wake() const;
  // Starts re-keys of due pairs now rather than at the next tick. Every tick the control thread runs due
  // re-keys (after any rotation, and retries after backoff), a bounded number at a time so that first
  // exchanges never queue behind a thousand re-keys.
  void schedule_rekeys();
  // Re-exchanges every peer with tunnels due a refresh, on the exchange threads (thread-safe).
  void schedule_refresh();
  // A reload's proxy-ARP/NA and DHCP answers (by host-port index, as SlowPathOptions::responders).
  void set_responders(std::vector<ResponderPolicy> responders);
  SlowPathStats stats() const;
  // Control thread only (tick, on_sfc_probe): a finished frame out of `port` through worker 0; false if its
  // ring is full.
  bool transmit(PortId port, std::span<const uint8_t> frame);

 private:
  void run();
  void drain(PacketWorker& w);
  void on_egress_miss(std::span<const uint8_t> frame, PortId port, uint16_t worker);
  void on_exception(std::span<const uint8_t> frame, PortId port, uint16_t worker);
  void on_sample(std::span<const uint8_t> frame, uint16_t reason);
  void pcap_failed(const std::string& why);
  void on_completion(const ExchangeRunner::Completion& c);
  void on_stale_report(std::span<const uint8_t> frame);
  void start_peer_jobs();
  // First exchanges wait in pending_ until an exchange thread is free; then each peer's pending pairs
  // leave in one request (start_pending): a burst of first packets toward many VIPs becomes a few
  // requests, not one per VIP.
  void queue_exchange(const control::VipPair& pair);
  void start_pending();
  void start_rekeys();
  // Held packets follow their pair's state: settle() one pair's after its exchange, flush_settled() every
  // held pair's (each tick, after a per-peer job: states other paths changed).
  void settle(const control::VipPair& pair, control::PairState state);
  void flush_settled();
  void resubmit_held(const control::VipPair& pair);
  bool send_to_worker(uint16_t worker, std::span<const uint8_t> frame, FrameInfo info);
  void log(const std::string& line) const;

  std::vector<PacketWorker*> workers_;
  control::TunnelManager& tm_;
  control::PeerTransport& transport_;
  SlowPathOptions opts_;
  std::mutex responders_mu_;  // opts_.responders: the control thread reads, a reload writes
  HoldQueue hold_;
  PendingPairs pending_;  // first exchanges not started yet
  UniqueFd wake_;
  std::unique_ptr<ExchangeRunner> exchanges_;
  std::optional<ports::PcapWriter> pcap_;
  bool pcap_off_ = false;  // --sample-pcap failed (pcap_failed): samples are no longer written
  std::set<control::VipPair> rekeying_;
  std::atomic<bool> rekey_requested_{false};
  std::atomic<bool> refresh_requested_{false};
  std::set<control::PeerIndex> peer_jobs_;  // peers with a refresh or static connect running
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex stats_mu_;
  SlowPathStats stats_;
};

// The outer source address and SPI of a worker's stale-peer report (CpuReason::kStalePeer).
std::optional<std::pair<net::IpAddr, uint32_t>> stale_report_source(std::span<const uint8_t> frame);

// "SAMPLED PACKET" log text: a one-line decoded summary, then a hex dump (at most `max_bytes`).
std::string describe_sample(std::span<const uint8_t> frame, std::string_view direction,
                            std::size_t max_bytes = 256);

}  // namespace pspgw::gateway
