#include "ports/memory_port.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <utility>

namespace pspgw::ports::testing {

void Wire::set_hook(Hook hook) {
  std::lock_guard lock(mu_);
  hook_ = std::move(hook);
}

void Wire::set_capture(bool on) {
  std::lock_guard lock(mu_);
  capture_ = on;
}

std::vector<WireFrame> Wire::take_captured() {
  std::lock_guard lock(mu_);
  return std::exchange(captured_, {});
}

void Wire::set_queue_limit(std::size_t frames) {
  std::lock_guard lock(mu_);
  limit_ = frames;
}

MemoryPort::MemoryPort(std::shared_ptr<Wire> wire, int end, EndpointConfig config)
    : wire_(std::move(wire)),
      end_(end),
      config_(std::move(config)),
      event_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (!event_.valid()) throw std::runtime_error("eventfd failed");
}

std::size_t MemoryPort::queued() const {
  std::lock_guard lock(wire_->mu_);
  return wire_->queue_[end_].size();
}

std::size_t MemoryPort::rx_burst(net::PacketPool& pool, net::PacketBatch& out) {
  std::lock_guard lock(wire_->mu_);
  auto& q = wire_->queue_[end_];
  std::size_t n = 0;
  while (!q.empty() && !out.full()) {
    net::Packet* p = pool.alloc();
    if (p == nullptr) break;
    WireFrame& f = q.front();
    if (f.bytes.size() > config_.max_frame || !p->assign(f.bytes)) {
      stats_.drop(DropReason::kTruncated);
      pool.free(p);
    } else {
      p->meta.in_port = config_.id;
      p->meta.peer = f.src;
      p->meta.peer_port = f.src_port;
      out.push(p);
      stats_.rx_bytes += p->size();
      ++n;
    }
    q.pop_front();
  }
  stats_.rx_packets += n;
  if (q.empty()) {
    uint64_t v = 0;
    (void)::read(event_.get(), &v, sizeof(v));  // level back to "not readable"
  }
  return n;
}

std::size_t MemoryPort::tx_burst(const net::PacketBatch& pkts) {
  std::size_t sent = 0;
  for (const net::Packet* p : pkts) {
    WireFrame f;
    f.bytes.assign(p->data(), p->data() + p->size());
    f.from = end_;
    f.src = config_.addr;
    f.src_port = config_.port;
    f.dst = p->meta.peer;
    f.dst_port = p->meta.peer_port;
    f.flow_hash = p->meta.flow_hash;
    if (deliver(std::move(f))) {
      ++sent;
      stats_.tx_bytes += p->size();
    }
  }
  stats_.tx_packets += sent;
  if (sent != 0) signal_peer();
  return sent;
}

bool MemoryPort::deliver(WireFrame frame) {
  std::lock_guard lock(wire_->mu_);
  if (wire_->hook_ && wire_->hook_(frame) == Verdict::kDrop) {
    stats_.drop(DropReason::kWire);
    return false;
  }
  auto& q = wire_->queue_[1 - end_];
  if (q.size() >= wire_->limit_) {
    stats_.drop(DropReason::kTxQueueFull);
    return false;
  }
  if (wire_->capture_) wire_->captured_.push_back(frame);
  q.push_back(std::move(frame));
  return true;
}

void MemoryPort::signal_peer() {
  const uint64_t one = 1;
  (void)::write(other_->event_.get(), &one, sizeof(one));
}

MemoryPair make_pair(EndpointConfig a, EndpointConfig b) {
  MemoryPair pair;
  pair.wire = std::make_shared<Wire>();
  pair.a = std::make_unique<MemoryPort>(pair.wire, 0, std::move(a));
  pair.b = std::make_unique<MemoryPort>(pair.wire, 1, std::move(b));
  pair.a->other_ = pair.b.get();
  pair.b->other_ = pair.a.get();
  return pair;
}

}  // namespace pspgw::ports::testing
