#include "gateway/frame_ring.hpp"

#include <bit>

namespace pspgw::gateway {

FrameRing::FrameRing(uint32_t capacity, uint32_t max_frame)
    : mask_(std::bit_ceil(capacity) - 1),
      max_frame_(max_frame),
      slots_(mask_ + 1),
      storage_((mask_ + 1) * max_frame) {}

bool FrameRing::push(std::span<const uint8_t> frame, FrameInfo info) {
  if (frame.size() > max_frame_) return false;
  const uint64_t tail = tail_.load(std::memory_order_relaxed);
  if (tail - head_.load(std::memory_order_acquire) > mask_) return false;
  Slot& s = slots_[tail & mask_];
  s.len = static_cast<uint32_t>(frame.size());
  s.info = info;
  if (!frame.empty())
    std::memcpy(data(tail), frame.data(), frame.size());  // an empty span's data() may be null
  tail_.store(tail + 1, std::memory_order_release);
  return true;
}

bool FrameRing::peek(std::span<const uint8_t>& frame, FrameInfo& info) const {
  const uint64_t head = head_.load(std::memory_order_relaxed);
  if (head == tail_.load(std::memory_order_acquire)) return false;
  const Slot& s = slots_[head & mask_];
  info = s.info;
  frame = {data(head), s.len};
  return true;
}

}  // namespace pspgw::gateway
