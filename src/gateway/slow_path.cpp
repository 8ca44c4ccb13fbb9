#include "gateway/slow_path.hpp"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <span>

#include "base/byteorder.hpp"
#include "net/headers.hpp"
#include "net/parse.hpp"
#include "psp/header.hpp"

namespace pspgw::gateway {
namespace {

constexpr int kTickMs = 100;
// Re-keys queued or running on the exchange threads at once.
constexpr std::size_t kMaxRekeysInFlight = 16;
// At most this many first exchanges in one request (and the tunnel manager's client_request_chunk).
constexpr std::size_t kMaxPairsPerExchange = 1024;

std::string hex_dump(std::span<const uint8_t> bytes, std::size_t max_bytes) {
  std::string out;
  const std::size_t n = std::min(bytes.size(), max_bytes);
  char line[24];
  for (std::size_t i = 0; i < n; ++i) {
    if (i % 16 == 0) {
      std::snprintf(line, sizeof(line), "%s%04zx ", i == 0 ? "" : "\n", i);
      out += line;
    }
    std::snprintf(line, sizeof(line), " %02x", bytes[i]);
    out += line;
  }
  if (n < bytes.size()) out += "\n... (" + std::to_string(bytes.size() - n) + " more bytes)";
  return out;
}

std::string l3_summary(const net::IpInfo& ip) {
  std::string s = ip.src.to_string() + " > " + ip.dst.to_string() + " proto " + std::to_string(ip.l4_proto);
  if (ip.src_port != 0 || ip.dst_port != 0) {
    s += " ports " + std::to_string(ip.src_port) + " > " + std::to_string(ip.dst_port);
  }
  return s;
}

}  // namespace

// A stale-peer report is the head of a PSP packet as received ([Eth][IPv4/IPv6][UDP][PSP header]),
// truncated (StaleReport): parse_frame would refuse it for its IP length, so read the fields directly.
std::optional<std::pair<net::IpAddr, uint32_t>> stale_report_source(std::span<const uint8_t> f) {
  constexpr std::size_t kEth = sizeof(net::EthHdr);
  if (f.size() < kEth + 1) return std::nullopt;
  const uint16_t type = load_be16(&f[12]);
  std::size_t l4 = 0;
  net::IpAddr src;
  if (type == net::kEtherTypeIpv4 && f.size() >= kEth + sizeof(net::Ipv4Hdr)) {
    src = net::IpAddr::v4(std::span<const uint8_t, 4>(&f[kEth + 12], 4));
    l4 = kEth + static_cast<std::size_t>(f[kEth] & 0x0f) * 4;
  } else if (type == net::kEtherTypeIpv6 && f.size() >= kEth + sizeof(net::Ipv6Hdr)) {
    src = net::IpAddr::v6(std::span<const uint8_t, 16>(&f[kEth + 8], 16));
    l4 = kEth + sizeof(net::Ipv6Hdr);
  } else {
    return std::nullopt;
  }
  const std::size_t spi_at = l4 + sizeof(net::UdpHdr) + 4;
  if (f.size() < spi_at + 4) return std::nullopt;
  return std::make_pair(src, load_be32(&f[spi_at]));
}

std::string describe_sample(std::span<const uint8_t> frame, std::string_view direction,
                            std::size_t max_bytes) {
  std::string s =
      "SAMPLED PACKET (" + std::string(direction) + ", " + std::to_string(frame.size()) + " bytes): ";
  auto f = net::parse_frame(frame);
  if (!f || f->ip.family == net::IpFamily::kNone) {
    s += "not IP";
  } else {
    s += l3_summary(f->ip);
    const net::IpInfo& ip = f->ip;
    if (ip.l4_proto == net::kIpProtoUdp && ip.dst_port == psp::kPspUdpPort) {
      auto hdr = psp::decode_header(frame.subspan(ip.l4_offset + sizeof(net::UdpHdr)));
      if (hdr) {
        char buf[96];
        std::snprintf(buf, sizeof(buf), " | PSP spi 0x%08x iv %llu v%u nh %u S=%d", hdr->spi,
                      static_cast<unsigned long long>(hdr->iv), hdr->version, hdr->next_header,
                      hdr->sample ? 1 : 0);
        s += buf;
        const std::size_t inner = ip.l4_offset + sizeof(net::UdpHdr) + hdr->size();
        if (auto in = net::parse_ip(frame, static_cast<uint16_t>(inner));
            in && (hdr->next_header == 4 || hdr->next_header == 41)) {
          s += " | inner " + l3_summary(*in);
        }
      }
    }
  }
  return s + "\n" + hex_dump(frame, max_bytes);
}

// ---- ExchangeRunner ----

ExchangeRunner::ExchangeRunner(std::size_t threads, std::function<void()> notify)
    : notify_(std::move(notify)) {
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

ExchangeRunner::~ExchangeRunner() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void ExchangeRunner::submit(control::VipPair pair, Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back({pair, std::nullopt, std::move(job)});
  }
  cv_.notify_one();
}

void ExchangeRunner::submit_batch(std::vector<control::VipPair> pairs, Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const control::VipPair first = pairs.front();
    queue_.push_back({first, std::nullopt, std::move(job), std::move(pairs)});
  }
  cv_.notify_one();
}

void ExchangeRunner::submit_peer(control::PeerIndex peer, Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back({{}, peer, std::move(job)});
  }
  cv_.notify_one();
}

std::vector<ExchangeRunner::Completion> ExchangeRunner::take() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::exchange(done_, {});
}

std::size_t ExchangeRunner::busy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return running_ + queue_.size();
}

void ExchangeRunner::run() {
  pthread_setname_np(pthread_self(), "pspgw-exchange");
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    Queued q = std::move(queue_.front());
    queue_.pop_front();
    ++running_;
    lock.unlock();
    control::CStatus status = q.job();
    lock.lock();
    --running_;
    done_.push_back({q.pair, std::move(status), q.peer, std::move(q.batch)});
    notify_();
  }
}

// ---- SlowPath ----

SlowPath::SlowPath(std::vector<PacketWorker*> workers, control::TunnelManager& tm,
                   control::PeerTransport& transport, SlowPathOptions opts)
    : workers_(std::move(workers)),
      tm_(tm),
      transport_(transport),
      opts_(std::move(opts)),
      hold_(opts_.hold_per_pair, opts_.hold_total),
      pending_(opts_.pending_pairs),
      wake_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  for (PacketWorker* w : workers_) w->set_cpu_notify(wake_.get());
  exchanges_ = std::make_unique<ExchangeRunner>(opts_.exchange_threads, [this] { wake(); });
}

SlowPath::~SlowPath() {
  stop();
}

Status<std::string> SlowPath::start() {
  if (!wake_.valid()) return Err{std::string("eventfd failed")};
  if (!opts_.sample_pcap.empty()) {
    auto w = ports::PcapWriter::create(opts_.sample_pcap, 65535);
    if (!w) return Err{"--sample-pcap: " + w.error().message};
    pcap_.emplace(std::move(*w));
  }
  thread_ = std::thread([this] { run(); });
  return {};
}

void SlowPath::stop() {
  if (thread_.joinable()) {
    stop_.store(true);
    wake();
    thread_.join();
  }
  exchanges_.reset();  // joins exchange threads (each bounded by its RPC deadline)
  if (pcap_) (void)pcap_->close();
  pcap_.reset();
}

void SlowPath::wake() const {
  const uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
}

void SlowPath::schedule_rekeys() {
  rekey_requested_.store(true);
  wake();
}

void SlowPath::schedule_refresh() {
  refresh_requested_.store(true);
  wake();
}

SlowPathStats SlowPath::stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

void SlowPath::log(const std::string& line) const {
  if (opts_.log) {
    opts_.log(line);
  } else {
    std::cerr << line << '\n';
  }
}

#define BUMP(field, n)                            \
  do {                                            \
    std::lock_guard<std::mutex> lock_(stats_mu_); \
    stats_.field += (n);                          \
  } while (0)

void SlowPath::run() {
  pthread_setname_np(pthread_self(), "pspgw-control");
  auto next_tick = std::chrono::steady_clock::now();
  while (!stop_.load()) {
    pollfd pfd{wake_.get(), POLLIN, 0};
    (void)::poll(&pfd, 1, kTickMs);
    uint64_t v;
    (void)!::read(wake_.get(), &v, sizeof(v));
    for (PacketWorker* w : workers_) drain(*w);
    const std::size_t rekeying = rekeying_.size();
    for (const auto& c : exchanges_->take()) on_completion(c);
    start_pending();
    bool rekey_now = rekey_requested_.exchange(false) || rekeying_.size() < rekeying;
    const auto now = std::chrono::steady_clock::now();
    // Refreshes run when asked and, for those backing off after a failure, again every tick.
    if (refresh_requested_.exchange(false) || now >= next_tick) start_peer_jobs();
    if (now >= next_tick) {
      if (opts_.tick) opts_.tick();  // may rotate (timer, deferred rotation): re-keys follow below
      // Samples reach the file within a tick (readable while the gateway runs; a full disk shows now).
      if (pcap_) {
        if (auto st = pcap_->flush(); !st) pcap_failed(st.error().message);
      }
      flush_settled();
      start_pending();
      next_tick = now + std::chrono::milliseconds(kTickMs);
      rekey_now = true;
    }
    if (rekey_now) start_rekeys();
  }
}

void SlowPath::start_rekeys() {
  if (rekeying_.size() >= kMaxRekeysInFlight) return;
  for (const control::VipPair& pair : tm_.rekey_due(kMaxRekeysInFlight - rekeying_.size())) {
    if (rekeying_.size() >= kMaxRekeysInFlight) break;
    if (!rekeying_.insert(pair).second) continue;
    exchanges_->submit(pair, [this, pair] { return tm_.rekey(pair, transport_); });
  }
}

void SlowPath::drain(PacketWorker& w) {
  std::span<const uint8_t> frame;
  FrameInfo info;
  while (w.to_cpu().peek(frame, info)) {
    if (opts_.show_rss_packets) {
      log("RSS rx (" + std::string(to_string(static_cast<CpuReason>(info.reason))) + ") " +
          describe_sample(frame, "cpu", 64));
    }
    switch (static_cast<CpuReason>(info.reason)) {
      case CpuReason::kEgressMiss:
        on_egress_miss(frame, info.port, w.index());
        break;
      case CpuReason::kException:
        on_exception(frame, info.port, w.index());
        break;
      case CpuReason::kSampleEgress:
      case CpuReason::kSampleIngress:
        on_sample(frame, info.reason);
        break;
      case CpuReason::kStalePeer:
        on_stale_report(frame);
        break;
      case CpuReason::kSfcProbe:
        if (opts_.on_sfc_probe) opts_.on_sfc_probe(frame, info.port);
        break;
    }
    w.to_cpu().release();
  }
}

void SlowPath::on_egress_miss(std::span<const uint8_t> frame, PortId port, uint16_t worker) {
  auto f = net::parse_frame(frame);
  if (!f || f->ip.family == net::IpFamily::kNone) {
    BUMP(dropped_no_route, 1);
    return;
  }
  const control::VipPair pair{f->ip.src, f->ip.dst};
  if (!tm_.peer_of(pair)) {
    BUMP(dropped_no_route, 1);
    return;
  }
  if (opts_.host_port_of) {
    const auto behind = opts_.host_port_of(pair.local);
    if (!behind || *behind + 1 != port.value()) {  // a workload sending as another port's VIP
      BUMP(dropped_wrong_port, 1);
      return;
    }
  }
  const control::PairState state = tm_.state(pair);
  switch (state) {
    case control::PairState::kConnected:
      // Installed after this packet missed: send it on, behind the packets held for the pair (the
      // exchange finished on its thread, but its completion may not have been handled yet).
      resubmit_held(pair);
      if (send_to_worker(worker, frame, {static_cast<uint16_t>(FrameKind::kResubmit), port})) {
        BUMP(resubmitted, 1);
      }
      return;
    case control::PairState::kBackoff:
      BUMP(dropped_backoff, 1);
      return;
    case control::PairState::kIdle:
    case control::PairState::kInFlight:
      break;
  }
  if (hold_.hold(pair, {std::vector<uint8_t>(frame.begin(), frame.end()), worker, port}) ==
      HoldQueue::Verdict::kHeld) {
    BUMP(held, 1);
  } else {
    BUMP(dropped_hold_full, 1);
  }
  // Held or not: a full hold queue costs this packet, not the pair's tunnel (the workload's next packet
  // finds it up, where before it found nothing started and was dropped again).
  if (state == control::PairState::kIdle) queue_exchange(pair);
}

void SlowPath::queue_exchange(const control::VipPair& pair) {
  if (pending_.push(pair) == PendingPairs::Verdict::kFull) BUMP(pending_full, 1);
}

void SlowPath::start_pending() {
  // While every exchange thread is busy, pairs keep gathering here (their packets are held): the next
  // free thread carries all of a peer's in one request. A full request's worth leaves at once.
  if (pending_.empty()) return;
  const std::size_t chunk =
      std::max<std::size_t>(1, std::min(kMaxPairsPerExchange, tm_.client_request_chunk()));
  if (exchanges_->busy() >= exchanges_->threads() && pending_.size() < chunk) return;
  std::map<control::PeerIndex, std::vector<control::VipPair>> by_peer;
  for (const control::VipPair& pair : pending_.take()) {
    const auto peer = tm_.peer_of(pair);
    if (!peer) {
      const std::size_t n = hold_.take(pair).size();
      BUMP(dropped_no_route, n);
      continue;
    }
    by_peer[*peer].push_back(pair);
  }
  for (auto& [peer, pairs] : by_peer) {
    for (std::size_t from = 0; from < pairs.size(); from += chunk) {
      const std::size_t to = std::min(pairs.size(), from + chunk);
      std::vector<std::pair<control::VipPair, control::Error>> refused;
      auto x = tm_.begin_exchange(std::span<const control::VipPair>(pairs).subspan(from, to - from),
                                  refused);  // opens our ingress ACLs before the request leaves
      for (const auto& [pair, error] : refused) {
        // Settled since it was queued (the peer's own request or a static connect made it, or an exchange
        // has it in flight): begin_exchange, under the tunnel manager's lock, is the one place that
        // decides, and the pair's packets go on as its state says. A separate state check before it left
        // a window in which the peer's request connected the pair and its held packets were dropped
        // (RotationTimer under TSan: "not started: ...: connected").
        if (const auto state = tm_.state(pair); state != control::PairState::kIdle) {
          settle(pair, state);
          continue;
        }
        const std::size_t n = hold_.take(pair).size();
        BUMP(dropped_exchange_failed, n);
        log("key exchange for " + pair.local.to_string() + " -> " + pair.remote.to_string() +
            " not started: " + error.message);
      }
      if (!x) continue;
      BUMP(exchanges_started, x->pairs.size());
      auto shared = std::make_shared<control::PendingExchange>(std::move(*x));
      auto job = [this, shared]() {
        auto answer = transport_.request_tunnels(shared->peer, shared->request);
        return tm_.finish_exchange(std::move(*shared), std::move(answer));
      };
      if (shared->pairs.size() == 1) {
        exchanges_->submit(shared->pairs.front(), std::move(job));
      } else {
        exchanges_->submit_batch(shared->pairs, std::move(job));
      }
    }
  }
}

void SlowPath::on_stale_report(std::span<const uint8_t> frame) {
  BUMP(stale_peer_reports, 1);
  const auto outer = stale_report_source(frame);
  if (!outer) return;
  const auto peer = tm_.peer_by_outer(outer->first);
  if (!peer) return;  // not a peer's address: nothing of ours to refresh (still dropped and counted)
  char why[64];
  std::snprintf(why, sizeof(why), "packets our keys do not match, SPI 0x%08x", outer->second);
  (void)tm_.note_stale_peer(*peer, why);  // rate limited per peer; wakes us through schedule_refresh
}

// One job per peer at a time: a static connect for peers due one, else a refresh of its due tunnels.
void SlowPath::start_peer_jobs() {
  for (control::PeerIndex peer : tm_.take_static_due()) {
    if (!peer_jobs_.insert(peer).second) continue;
    exchanges_->submit_peer(peer, [this, peer] { return tm_.connect_peer_static(peer, transport_); });
  }
  for (control::PeerIndex peer : tm_.refresh_due_peers()) {
    if (!peer_jobs_.insert(peer).second) continue;
    exchanges_->submit_peer(peer, [this, peer] { return tm_.refresh_peer(peer, transport_); });
  }
}

void SlowPath::on_completion(const ExchangeRunner::Completion& c) {
  if (c.peer) {
    peer_jobs_.erase(*c.peer);
    BUMP(refreshes, 1);
    if (!c.status) {
      log("refreshing the tunnels of " + tm_.peer_name(*c.peer) + " failed: " + c.status.error().message);
    }
    flush_settled();
    return;
  }
  if (rekeying_.erase(c.pair) != 0) {
    // No line per tunnel: a rotation re-keys them all; the tunnel manager logs a summary.
    BUMP(rekeys, c.status ? 1 : 0);
    BUMP(rekeys_failed, c.status ? 0 : 1);
    return;
  }
  // Only the exchange's own pairs (a sweep of every held pair per completion cost O(held) each time);
  // pairs that other paths settled are swept each tick.
  if (!c.batch.empty()) {
    // Counted per tunnel, as single exchanges are: a batch may be answered for some pairs only.
    std::size_t ok = 0;
    for (const control::VipPair& pair : c.batch) {
      const control::PairState state = tm_.state(pair);
      ok += state == control::PairState::kConnected ? 1 : 0;
      if (hold_.held(pair) > 0) settle(pair, state);
    }
    BUMP(exchanges_ok, ok);
    BUMP(exchanges_failed, c.batch.size() - ok);
    if (!c.status) {
      log("key exchange for " + std::to_string(c.batch.size()) + " tunnels (the first " +
          c.pair.local.to_string() + " -> " + c.pair.remote.to_string() + ") failed for " +
          std::to_string(c.batch.size() - ok) + ": " + c.status.error().message);
    }
    return;
  }
  BUMP(exchanges_ok, c.status ? 1 : 0);
  BUMP(exchanges_failed, c.status ? 0 : 1);
  if (!c.status) {
    log("key exchange for " + c.pair.local.to_string() + " -> " + c.pair.remote.to_string() +
        " failed: " + c.status.error().message);
  }
  if (hold_.held(c.pair) > 0) settle(c.pair, tm_.state(c.pair));
}

// Held packets follow their pair's state, whoever changed it (our exchange, a static-mode connect, a
// peer's request with reverse params): connected -> resubmit in order; failed -> drop; idle -> start.
void SlowPath::settle(const control::VipPair& pair, control::PairState state) {
  switch (state) {
    case control::PairState::kInFlight:
      break;
    case control::PairState::kConnected:
      resubmit_held(pair);
      break;
    case control::PairState::kBackoff: {
      const std::size_t n = hold_.take(pair).size();
      BUMP(dropped_exchange_failed, n);
      log("dropped " + std::to_string(n) + " held packet(s) for " + pair.local.to_string() + " -> " +
          pair.remote.to_string() + ": no tunnel (retry after backoff)");
      break;
    }
    case control::PairState::kIdle:
      queue_exchange(pair);
      break;
  }
}

void SlowPath::flush_settled() {
  for (const control::VipPair& pair : hold_.pairs()) settle(pair, tm_.state(pair));
}

void SlowPath::resubmit_held(const control::VipPair& pair) {
  uint64_t sent = 0;
  for (const HeldPacket& p : hold_.take(pair)) {
    sent += send_to_worker(p.worker, p.frame, {static_cast<uint16_t>(FrameKind::kResubmit), p.port}) ? 1 : 0;
  }
  BUMP(resubmitted, sent);
}

void SlowPath::set_responders(std::vector<ResponderPolicy> responders) {
  std::lock_guard lock(responders_mu_);
  opts_.responders = std::move(responders);
}

void SlowPath::on_exception(std::span<const uint8_t> frame, PortId port, uint16_t worker) {
  const std::size_t index = port.value() - 1u;
  std::unique_lock responders_lock(responders_mu_);
  if (port.value() == 0 || index >= opts_.responders.size()) {
    BUMP(exceptions_ignored, 1);
    return;
  }
  auto reply = exception_reply(frame, opts_.responders[index]);
  responders_lock.unlock();
  if (!reply) {
    BUMP(exceptions_ignored, 1);
    return;
  }
  if (send_to_worker(worker, *reply, {static_cast<uint16_t>(FrameKind::kTransmit), port})) {
    BUMP(exceptions_answered, 1);
  }
}

void SlowPath::on_sample(std::span<const uint8_t> frame, uint16_t reason) {
  BUMP(samples, 1);
  BUMP(samples_not_written, pcap_off_ ? 1 : 0);
  const bool egress = reason == static_cast<uint16_t>(CpuReason::kSampleEgress);
  log(describe_sample(frame, egress ? "egress" : "ingress"));
  if (pcap_) {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
    ports::PcapTimestamp ts{static_cast<uint32_t>(us / 1000000), static_cast<uint32_t>(us % 1000000)};
    if (auto s = pcap_->write(frame, ts); !s) pcap_failed(s.error().message);
  }
}

// A sample file that cannot be written (disk full, I/O error): one line, the samples it lost counted, and
// no more writes (no retry per sample, no line per sample). Samples are still logged; traffic is untouched.
void SlowPath::pcap_failed(const std::string& why) {
  BUMP(samples_not_written, pcap_->records() - pcap_->records_on_disk());
  log("--sample-pcap: " + why + "; the file keeps the " + std::to_string(pcap_->records_on_disk()) +
      " sample(s) written before, no more are written to it (samples are still logged)");
  pcap_.reset();
  pcap_off_ = true;
}

bool SlowPath::transmit(PortId port, std::span<const uint8_t> frame) {
  return send_to_worker(0, frame, {static_cast<uint16_t>(FrameKind::kTransmit), port});
}

bool SlowPath::send_to_worker(uint16_t worker, std::span<const uint8_t> frame, FrameInfo info) {
  PacketWorker& w = *workers_[worker < workers_.size() ? worker : 0];
  if (!w.from_cpu().push(frame, info)) {
    BUMP(dropped_ring_full, 1);
    return false;
  }
  w.wake();
  return true;
}

#undef BUMP

}  // namespace pspgw::gateway
