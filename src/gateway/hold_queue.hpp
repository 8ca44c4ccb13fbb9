// What waits on the control thread for a tunnel (control thread only):
//   HoldQueue     packets held while their tunnel is being set up (the seeds' "store the miss packet P1";
//                 DOCA has no hold queue and loses them). Bounded per VIP pair and in total, so a flood
//                 toward an unreachable VIP costs a fixed amount of memory; a packet that does not fit is
//                 dropped and counted.
//   PendingPairs  VIP pairs whose first exchange waits for an exchange thread, each once, in arrival order.
//                 Bounded apart from the packets (the gateway: by its tunnel limit), so a pair whose first
//                 packet found the hold queue full still gets its exchange: a dropped packet does not
//                 delay the tunnel.
#pragma once

#include <cstdint>
#include <deque>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/ids.hpp"
#include "control/messages.hpp"

namespace pspgw::gateway {

struct HeldPacket {
  std::vector<uint8_t> frame;
  uint16_t worker = 0;  // resubmitted on the worker it came from: one flow stays on one worker
  PortId port{0};       // the host port it came in on: EGR_ACL matches it again at resubmission
};

class HoldQueue {
 public:
  HoldQueue(std::size_t per_pair, std::size_t total) : per_pair_(per_pair), total_limit_(total) {}

  enum class Verdict : uint8_t { kHeld, kPairFull, kTotalFull };
  Verdict hold(const control::VipPair& pair, HeldPacket pkt);
  // Everything held for the pair, oldest first; the pair's queue is gone afterwards.
  std::deque<HeldPacket> take(const control::VipPair& pair);
  std::size_t held(const control::VipPair& pair) const;
  std::size_t total() const { return total_; }
  std::vector<control::VipPair> pairs() const;

 private:
  std::size_t per_pair_;
  std::size_t total_limit_;
  std::size_t total_ = 0;
  std::unordered_map<control::VipPair, std::deque<HeldPacket>, control::VipPairHash> queues_;
};

class PendingPairs {
 public:
  explicit PendingPairs(std::size_t limit) : limit_(limit) {}

  enum class Verdict : uint8_t { kQueued, kAlreadyQueued, kFull };
  Verdict push(const control::VipPair& pair);
  // Every waiting pair, oldest first; none waits afterwards.
  std::vector<control::VipPair> take();
  std::size_t size() const { return order_.size(); }
  bool empty() const { return order_.empty(); }

 private:
  std::size_t limit_;
  std::vector<control::VipPair> order_;
  std::unordered_set<control::VipPair, control::VipPairHash> queued_;
};

}  // namespace pspgw::gateway
