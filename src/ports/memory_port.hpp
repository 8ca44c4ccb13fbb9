// In-memory doubles of Port (wireguard-go's tuntest / bindtest): a connected pair of ports — what one
// sends the other receives — joined by a Wire that tests can watch, drop from or tamper with. With two
// pairs (host side, network side) a whole gateway runs in one process, without root or devices.
//
// Either end can stand for a TAP (frames) or the PSP/UDP socket (payloads): each end has an address and
// port, and a received packet's metadata.peer / peer_port is the sending end's, as a UDP socket reports
// the source; WireFrame::dst records where the sender addressed it (metadata.peer / peer_port).
//
// Test double, not data path: it copies and allocates per packet and locks the wire. Safe to drive the
// two ends from two threads. Each end has an eventfd that is readable while its queue is not empty, so
// Poller works on it as on a real port.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/unique_fd.hpp"
#include "net/addr.hpp"
#include "ports/port.hpp"

namespace pspgw::ports::testing {

struct WireFrame {
  std::vector<uint8_t> bytes;
  int from = 0;  // 0: sent by end a, 1: by end b
  net::IpAddr src;
  uint16_t src_port = 0;
  net::IpAddr dst;  // the sender's metadata.peer / peer_port
  uint16_t dst_port = 0;
  uint32_t flow_hash = 0;
};

enum class Verdict : uint8_t { kPass, kDrop };

struct EndpointConfig {
  std::string name;
  PortId id{};
  net::IpAddr addr;  // reported as metadata.peer by the other end
  uint16_t port = 0;
  uint32_t max_frame = net::kDefaultBufferSize - net::kDefaultHeadroom;
};

// The link between the two ends: one queue per direction, a hook and an optional capture.
class Wire {
 public:
  // Called for every frame sent, on the sender's thread, before it is queued, with the wire locked (so
  // it must not call back into the Wire). May change frame.bytes.
  using Hook = std::function<Verdict(WireFrame&)>;

  void set_hook(Hook hook);
  void set_capture(bool on);
  std::vector<WireFrame> take_captured();    // frames that passed the hook, as delivered
  void set_queue_limit(std::size_t frames);  // per direction; beyond it tx drops as kTxQueueFull

 private:
  friend class MemoryPort;
  std::mutex mu_;
  Hook hook_;
  bool capture_ = false;
  std::vector<WireFrame> captured_;
  std::size_t limit_ = 4096;
  std::deque<WireFrame> queue_[2];  // queue_[i]: frames for end i
};

struct MemoryPair;

class MemoryPort final : public Port {
 public:
  MemoryPort(std::shared_ptr<Wire> wire, int end, EndpointConfig config);
  MemoryPort(const MemoryPort&) = delete;
  MemoryPort& operator=(const MemoryPort&) = delete;
  ~MemoryPort() override = default;

  std::size_t rx_burst(net::PacketPool& pool, net::PacketBatch& out) override;
  std::size_t tx_burst(const net::PacketBatch& pkts) override;
  int fd() const override { return event_.get(); }
  std::string_view name() const override { return config_.name; }
  PortId id() const override { return config_.id; }
  const PortStats& stats() const override { return stats_; }
  uint32_t min_rx_buffer() const override { return net::kDefaultHeadroom + config_.max_frame; }

  // Frames waiting for this end's rx_burst.
  std::size_t queued() const;

 private:
  friend MemoryPair make_pair(EndpointConfig a, EndpointConfig b);
  void signal_peer();
  bool deliver(WireFrame frame);

  std::shared_ptr<Wire> wire_;
  int end_;
  EndpointConfig config_;
  UniqueFd event_;  // readable while queue_[end_] is not empty
  MemoryPort* other_ = nullptr;
  PortStats stats_;
};

struct MemoryPair {
  std::shared_ptr<Wire> wire;
  std::unique_ptr<MemoryPort> a;
  std::unique_ptr<MemoryPort> b;
};
MemoryPair make_pair(EndpointConfig a, EndpointConfig b);

}  // namespace pspgw::ports::testing
