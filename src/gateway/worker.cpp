#include "gateway/worker.hpp"

#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>

#include "gateway/segment_seal.hpp"

namespace pspgw::gateway {
namespace {

constexpr uint32_t kWakeToken = 0xffff;
constexpr int kIdleWaitMs = 100;
constexpr auto kStatsPeriod = std::chrono::milliseconds(100);
constexpr uint32_t kRingSlots = 512;
// Stale-peer reports (psp_actions.hpp) a worker forwards to the control thread: a few per second are
// plenty to notice a restarted peer; a flood of bad packets costs nothing more.
constexpr auto kStaleReportPeriod = std::chrono::milliseconds(250);
constexpr uint8_t kDropNoOuter = static_cast<uint8_t>(GatewayDrop::kBadFrame);

void signal_fd(int fd) {
  if (fd < 0) return;
  const uint64_t one = 1;
  (void)!::write(fd, &one, sizeof(one));
}

}  // namespace

// Where the pipeline's packets leave: ports (the network one reduced to UDP payloads), the CPU ring,
// or the pool (drops, kernel). Batches of at most kMaxBatch per call. Super-packets (TAP TSO/USO frames
// that crossed the pipeline whole) are cut here: sealed segment by segment toward the network
// (segment_seal.hpp), written whole to a TAP that takes GSO frames, segmented for anything else.
class PacketWorker::Sink final : public flow::Sink {
 public:
  explicit Sink(PacketWorker& w) : w_(w) {}

  void to_port(PortId port, std::span<net::Packet* const> pkts) override {
    if (port.value() == 0) {
      to_network(pkts);
      return;
    }
    ports::Port* dst = port.value() <= w_.cfg_.hosts.size() ? w_.cfg_.hosts[port.value() - 1].get() : nullptr;
    net::PacketBatch out;
    for (net::Packet* p : pkts) {
      if (dst != nullptr && p->meta.gso_size != 0 && !dst->takes_gso()) {
        flush(*dst, out);
        segment(*p, [dst](const net::PacketBatch& segs) { dst->tx_burst(segs); });
        w_.pool_.free(p);
        continue;
      }
      out.push(p);
    }
    if (dst != nullptr) {
      flush(*dst, out);
    } else {
      free_all(out);
    }
  }
  void to_cpu(uint16_t reason, std::span<net::Packet* const> pkts) override {
    bool pushed = false;
    const auto push = [&](const net::Packet& p) {
      if (w_.to_cpu_.push(p.bytes(), {reason, p.meta.in_port})) {
        pushed = true;
      } else {
        ++w_.local_.cpu_queue_drops;
      }
    };
    for (net::Packet* p : pkts) {
      if (p->meta.gso_size != 0) {  // a held or sampled super-packet: the frames its segments are on the wire
        segment(*p, [&push](const net::PacketBatch& segs) {
          for (const net::Packet* s : segs) push(*s);
        });
      } else {
        push(*p);
      }
      w_.pool_.free(p);
    }
    if (pushed) signal_fd(w_.cpu_notify_);
  }
  void to_kernel(std::span<net::Packet* const> pkts) override { free_all(pkts); }
  void dropped(uint8_t /*reason*/, std::span<net::Packet* const> pkts) override { free_all(pkts); }

 private:
  void to_network(std::span<net::Packet* const> pkts) {
    ports::Port& net = *w_.cfg_.network;
    net::PacketBatch out;
    for (net::Packet* p : pkts) {
      if (!unwrap_for_send(*p)) {
        ++w_.local_.unwrap_failures;
        w_.pool_.free(p);
        continue;
      }
      if (p->meta.gso_size != 0) {
        flush(net, out);  // what came before it leaves before its segments
        seal_segments(*p);
        w_.pool_.free(p);
        continue;
      }
      out.push(p);
    }
    flush(net, out);
  }

  // An encapsulated super-packet, reduced to its UDP payload: its segments sealed and sent a batch at a
  // time, with the SA behind the crypto id encrypt() checked (a re-key since then seals with the new one,
  // as encrypt() would; an SA gone meanwhile drops it as unknown-key).
  void seal_segments(const net::Packet& sp) {
    WorkerPsp& psp = w_.psp_;
    const TxSa* sa = nullptr;
    const crypto::AeadKey* key =
        w_.cfg_.sas != nullptr ? sealing_key(*w_.cfg_.sas, static_cast<CryptoId>(sp.meta.pkt_meta), psp, sa)
                               : nullptr;
    if (key == nullptr) {
      psp.counters.count_drop(psp::DropReason::kUnknownKey);
      return;
    }
    auto seal = SegmentSeal::start(sp, *sa->tmpl, *key, w_.pool_.buffer_size());
    if (!seal) {
      psp.counters.count_drop(seal.error());
      return;
    }
    ports::Port& net = *w_.cfg_.network;
    while (!seal->done()) {
      net::PacketBatch out;
      if (seal->next(w_.pool_, out, *psp.aead, psp.iv, psp.scratch.ops) == 0) {
        if (seal->done()) break;  // the last ones did not fit their crypt offset
        ++w_.local_.pool_empty;   // every buffer in use: the rest of the super-packet is lost
        break;
      }
      for (const net::Packet* p : out) psp.counters.count_tx(psp::DropReason::kNone, p->size());
      flush(net, out);
    }
    for (std::size_t i = 0; i < seal->dropped(); ++i)
      psp.counters.count_drop(psp::DropReason::kBadCryptOffset);
  }

  // Cuts a super-packet into frames (the TAP's own, or an encapsulated one: a sample) and hands them to
  // `emit` a batch at a time (which must not keep them).
  template <class Emit>
  void segment(const net::Packet& sp, Emit emit) {
    const uint32_t inner = sp.meta.gso_encapped ? encapped_inner_offset(sp.bytes()) : 0;
    auto seg = sp.meta.gso_encapped
                   ? ports::GsoSegmenter::start_at(sp.bytes(), static_cast<uint16_t>(inner), sp.meta.gso_size)
                   : ports::GsoSegmenter::start(sp.bytes(), sp.meta.gso_size);
    if (!seg || (sp.meta.gso_encapped && inner == 0)) {
      ++w_.local_.segment_failures;
      return;
    }
    net::Metadata meta = sp.meta;
    meta.gso_encapped = false;
    while (!seg->done()) {
      net::PacketBatch out;
      auto n = seg->next(w_.pool_, out, meta);
      if (!n || *n == 0) {
        ++(n ? w_.local_.pool_empty : w_.local_.segment_failures);
        free_all(out);
        return;
      }
      net::PacketBatch ready;
      for (net::Packet* p : out) {
        if (!sp.meta.gso_encapped || finish_encapped_segment(*p)) {
          ready.push(p);
        } else {
          ++w_.local_.segment_failures;
        }
      }
      if (!ready.empty()) emit(ready);
      free_all(out);
    }
  }

  void flush(ports::Port& port, net::PacketBatch& out) {
    if (out.empty()) return;
    port.tx_burst(out);
    free_all(out);
    out.clear();
  }
  void free_all(std::span<net::Packet* const> pkts) {
    for (net::Packet* p : pkts) w_.pool_.free(p);
  }
  void free_all(const net::PacketBatch& pkts) {
    for (net::Packet* p : pkts) w_.pool_.free(p);
  }
  PacketWorker& w_;
};

PacketWorker::PacketWorker(WorkerConfig config, Topology& topo, flow::EpochDomain& sa_epoch, WorkerPsp& psp,
                           std::vector<std::unique_ptr<HostPortInfo>>& host_ports)
    : cfg_(std::move(config)),
      topo_(topo),
      sa_epoch_(sa_epoch),
      psp_(psp),
      host_ports_(host_ports),
      pool_(cfg_.pool_packets, cfg_.buffer_size),
      sink_(std::make_unique<Sink>(*this)),
      mtu_guard_(cfg_.payload_mtu),
      to_cpu_(kRingSlots, 16384),
      from_cpu_(kRingSlots, 16384),
      wake_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  local_.ports.resize(1 + cfg_.hosts.size());
  published_.ports.resize(local_.ports.size());
}

PacketWorker::~PacketWorker() {
  stop();
}

Status<std::string> PacketWorker::start() {
  auto w = topo_.pipeline().attach_worker({&pool_, 0});
  if (!w) return Err{std::string("attach worker: ") + std::string(flow::to_string(w.error()))};
  flow_ = std::move(*w);
  if (!wake_fd_.valid()) return Err{std::string("eventfd failed")};
  thread_ = std::thread([this] { run(); });
  return {};
}

void PacketWorker::stop() {
  if (!thread_.joinable()) return;
  stop_.store(true, std::memory_order_relaxed);
  wake();
  thread_.join();
}

void PacketWorker::wake() {
  signal_fd(wake_fd_.get());
}

void PacketWorker::run() {
  const std::string name = "pspgw-worker" + std::to_string(cfg_.index);
  pthread_setname_np(pthread_self(), name.c_str());  // top -H, perf: which thread is which
  auto poller = ports::Poller::create();
  if (!poller) return;
  (void)poller->add(*cfg_.network, 0);
  for (std::size_t i = 0; i < cfg_.hosts.size(); ++i) {
    if (cfg_.hosts[i]) (void)poller->add(*cfg_.hosts[i], static_cast<uint32_t>(i + 1));
  }
  (void)poller->add(wake_fd_.get(), kWakeToken);
  std::array<uint32_t, 16> ready{};
  auto next_stats = std::chrono::steady_clock::now();
  flow_->online();
  sa_epoch_.online(cfg_.index);
  while (!stop_.load(std::memory_order_relaxed)) {
    // Busy, the worker stays online: going online again is an RMW on each epoch domain's global word
    // (epoch.hpp), a cache line every worker and the control thread share, so it is paid per sleep, not
    // per batch. Asleep, a worker holds no reference: offline, so grace periods need not wait for it.
    std::size_t n = poller->wait(ready, 0);
    if (n == 0) {
      flow_->offline();
      sa_epoch_.offline(cfg_.index);
      n = poller->wait(ready, kIdleWaitMs);
      flow_->online();
      sa_epoch_.online(cfg_.index);
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (ready[i] == kWakeToken) {
        uint64_t v;
        (void)!::read(wake_fd_.get(), &v, sizeof(v));
      } else if (ready[i] == 0) {
        poll_port(*cfg_.network, true);
      } else if (ready[i] <= cfg_.hosts.size() && cfg_.hosts[ready[i] - 1]) {
        ports::Port& host = *cfg_.hosts[ready[i] - 1];
        poll_port(host, false);
        // A deleted TAP polls as an error for ever: stop watching it (frames toward it are counted as
        // device_gone by its tx_burst; the control thread logs it once).
        if (host.gone()) (void)poller->remove(host.fd());
      }
    }
    drain_from_cpu();
    if (port_changes_pending_.load(std::memory_order_acquire)) adopt_host_ports(&*poller);
    flow_->quiescent();
    sa_epoch_.quiescent(cfg_.index);
    const auto now = std::chrono::steady_clock::now();
    if (psp_.stale.pending) report_stale_peer(now);
    if (now >= next_stats) {
      publish_stats();
      next_stats = now + kStatsPeriod;
    }
  }
  drain_from_cpu();  // stopping: what the control thread queued last (it stopped first) still goes out
  flow_->offline();
  sa_epoch_.offline(cfg_.index);
  publish_stats();
}

void PacketWorker::poll_port(ports::Port& port, bool network) {
  net::PacketBatch batch;
  port.rx_burst(pool_, batch);
  if (batch.empty()) return;
  ++local_.batches;
  if (network) {
    if (wrap_received(batch, cfg_.outer, kDropNoOuter) != batch.size()) {
      net::PacketBatch ok;
      for (net::Packet* p : batch) {
        if (p->meta.drop_reason == 0) {
          ok.push(p);
        } else {
          pool_.free(p);
        }
      }
      batch = ok;
    }
  } else {
    learn_workload_mac(batch, port.id().value() - 1);
    // A VNF port returns frames that were sized at their workload's port (H2N) or came out of the tunnel
    // (N2H): neither needs the too-big check again, and an ICMP error must never be sent into a VNF.
    const std::size_t host_index = port.id().value() - 1;
    if (host_index >= host_ports_.size() || !host_ports_[host_index]->vnf) {
      process_host_batch(port, batch);
      return;
    }
  }
  flow_->process(batch, *sink_);
}

// Frames larger than the tunnel carries first (mtu_guard.hpp): ICMP errors straight back out of the port,
// IPv4 fragments (DF clear) through the pipeline after the rest of the batch (or before it, when more
// fragments than a batch holds are flushed early). Held packets resubmitted later were checked here.
void PacketWorker::process_host_batch(ports::Port& port, net::PacketBatch& batch) {
  net::PacketBatch replies;
  net::PacketBatch frags;
  mtu_guard_.apply(batch, pool_, replies, frags,
                   [this](net::PacketBatch& full) { flow_->process(full, *sink_); });
  if (!replies.empty()) {
    port.tx_burst(replies);
    for (net::Packet* p : replies) pool_.free(p);
  }
  if (!batch.empty()) flow_->process(batch, *sink_);
  if (!frags.empty()) flow_->process(frags, *sink_);
}

void PacketWorker::learn_workload_mac(const net::PacketBatch& batch, std::size_t host_index) {
  if (host_index >= host_ports_.size()) return;
  HostPortInfo& info = *host_ports_[host_index];
  if (info.vnf) return;
  for (const net::Packet* p : batch) {
    if (p->size() < 12 || (p->data()[6] & 1) != 0) continue;  // multicast source: not a station
    const uint64_t mac = HostPortInfo::pack_mac(p->data() + 6);
    if (mac != info.workload_mac.load(std::memory_order_relaxed)) {
      info.workload_mac.store(mac, std::memory_order_relaxed);
    }
  }
}

void PacketWorker::drain_from_cpu() {
  std::span<const uint8_t> frame;
  FrameInfo info;
  net::PacketBatch resubmit;
  while (!resubmit.full() && from_cpu_.peek(frame, info)) {
    net::Packet* p = pool_.alloc();
    if (p == nullptr) {
      ++local_.resubmit_waits;
      break;  // leave it in the ring: the next iteration retries once buffers are back
    }
    if (!p->assign(frame)) {
      pool_.free(p);
      from_cpu_.release();
      continue;
    }
    from_cpu_.release();
    p->meta.in_port = info.port;
    if (info.reason == static_cast<uint16_t>(FrameKind::kTransmit)) {
      sink_->to_port(info.port, {&p, 1});
    } else {
      resubmit.push(p);
    }
  }
  if (!resubmit.empty()) flow_->process(resubmit, topo_.egr_acl(), *sink_);
  // More than a batch was waiting: the control thread's wake-ups were consumed already, so wake
  // ourselves rather than leave the rest until the next packet or the idle timeout.
  if (!from_cpu_.empty()) wake();
}

void PacketWorker::report_stale_peer(std::chrono::steady_clock::time_point now) {
  if (now >= next_stale_report_ &&
      to_cpu_.push({psp_.stale.head.data(), psp_.stale.len},
                   {static_cast<uint16_t>(CpuReason::kStalePeer), cfg_.network->id()})) {
    next_stale_report_ = now + kStaleReportPeriod;
    signal_fd(cpu_notify_);
  }
  psp_.stale.pending = false;  // rate limited: dropped, the next bad packet reports again
}

void PacketWorker::publish_stats() {
  local_.ports[0] = cfg_.network->stats();
  for (std::size_t i = 0; i < cfg_.hosts.size(); ++i)
    local_.ports[i + 1] = cfg_.hosts[i] ? cfg_.hosts[i]->stats() : ports::PortStats{};
  local_.psp = psp_.counters;
  local_.too_big = mtu_guard_.counters();
  local_.key_cache = psp_.keys.stats();
  std::lock_guard<std::mutex> lock(stats_mu_);
  published_ = local_;
}

bool PacketWorker::set_host_port(std::size_t index, std::unique_ptr<ports::Port> port,
                                 std::chrono::milliseconds limit) {
  std::unique_lock lock(ports_mu_);
  port_changes_.emplace_back(index, std::move(port));
  const uint64_t ticket = ++port_changes_asked_;
  port_changes_pending_.store(true, std::memory_order_release);
  if (!thread_.joinable()) {  // not started (or stopped): no worker thread to hand it to
    lock.unlock();
    adopt_host_ports(nullptr);
    return true;
  }
  wake();
  return ports_cv_.wait_for(lock, limit, [&] { return port_changes_done_ >= ticket; });
}

// Worker thread: the new ports watched, the removed ones unwatched and closed. Port stats keep their
// PortId slots (a removed port reads zero).
void PacketWorker::adopt_host_ports(ports::Poller* poller) {
  std::vector<std::pair<std::size_t, std::unique_ptr<ports::Port>>> changes;
  uint64_t asked = 0;
  {
    std::lock_guard lock(ports_mu_);
    changes.swap(port_changes_);
    asked = port_changes_asked_;
    port_changes_pending_.store(false, std::memory_order_relaxed);
  }
  for (auto& [index, port] : changes) {
    if (cfg_.hosts.size() <= index) cfg_.hosts.resize(index + 1);
    if (cfg_.hosts[index] && poller != nullptr) (void)poller->remove(cfg_.hosts[index]->fd());
    cfg_.hosts[index] = std::move(port);
    if (cfg_.hosts[index] && poller != nullptr)
      (void)poller->add(*cfg_.hosts[index], static_cast<uint32_t>(index + 1));
  }
  local_.ports.resize(std::max(local_.ports.size(), 1 + cfg_.hosts.size()));
  changes.clear();  // closes the removed ports' queues here, before the caller hears it is done
  {
    std::lock_guard lock(ports_mu_);
    port_changes_done_ = asked;
  }
  ports_cv_.notify_all();
}

WorkerStats PacketWorker::stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return published_;
}

}  // namespace pspgw::gateway
