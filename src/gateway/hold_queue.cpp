#include "gateway/hold_queue.hpp"

#include <utility>

namespace pspgw::gateway {

HoldQueue::Verdict HoldQueue::hold(const control::VipPair& pair, HeldPacket pkt) {
  if (total_ >= total_limit_) return Verdict::kTotalFull;
  auto& q = queues_[pair];
  if (q.size() >= per_pair_) return Verdict::kPairFull;
  q.push_back(std::move(pkt));
  ++total_;
  return Verdict::kHeld;
}

std::deque<HeldPacket> HoldQueue::take(const control::VipPair& pair) {
  auto it = queues_.find(pair);
  if (it == queues_.end()) return {};
  std::deque<HeldPacket> out = std::move(it->second);
  queues_.erase(it);
  total_ -= out.size();
  return out;
}

std::size_t HoldQueue::held(const control::VipPair& pair) const {
  auto it = queues_.find(pair);
  return it == queues_.end() ? 0 : it->second.size();
}

std::vector<control::VipPair> HoldQueue::pairs() const {
  std::vector<control::VipPair> out;
  out.reserve(queues_.size());
  for (const auto& [pair, q] : queues_) out.push_back(pair);
  return out;
}

PendingPairs::Verdict PendingPairs::push(const control::VipPair& pair) {
  if (queued_.contains(pair)) return Verdict::kAlreadyQueued;
  if (order_.size() >= limit_) return Verdict::kFull;
  queued_.insert(pair);
  order_.push_back(pair);
  return Verdict::kQueued;
}

std::vector<control::VipPair> PendingPairs::take() {
  queued_.clear();
  return std::exchange(order_, {});
}

}  // namespace pspgw::gateway
