// A bounded single-producer single-consumer ring of frames, copied in and out. The hand-off between a
// worker and the control thread (to the CPU: misses, exceptions, samples; back: resubmitted held packets,
// exception replies). Wait-free on both sides; full means the producer counts a drop. Memory is allocated
// once, at construction.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "base/ids.hpp"
#include "base/zero_pages.hpp"

namespace pspgw::gateway {

struct FrameInfo {
  uint16_t reason = 0;  // CpuReason toward the CPU; FrameKind back toward a worker
  PortId port{};        // the port it came in on, or goes out of
};

class FrameRing {
 public:
  // capacity: a power of two; max_frame: the largest frame a slot holds.
  FrameRing(uint32_t capacity, uint32_t max_frame);
  FrameRing(const FrameRing&) = delete;
  FrameRing& operator=(const FrameRing&) = delete;

  // Producer. False when full or the frame is larger than a slot.
  bool push(std::span<const uint8_t> frame, FrameInfo info);
  // Consumer. Copies the oldest frame into `out` (resized), false when empty.
  template <class Buffer>
  bool pop(Buffer& out, FrameInfo& info) {
    const uint64_t head = head_.load(std::memory_order_relaxed);
    if (head == tail_.load(std::memory_order_acquire)) return false;
    const Slot& s = slots_[head & mask_];
    info = s.info;
    out.resize(s.len);
    if (s.len != 0) std::memcpy(out.data(), data(head), s.len);  // an empty buffer's data() may be null
    head_.store(head + 1, std::memory_order_release);
    return true;
  }
  // Consumer: the oldest frame without copying; release() after use.
  bool peek(std::span<const uint8_t>& frame, FrameInfo& info) const;
  void release() { head_.store(head_.load(std::memory_order_relaxed) + 1, std::memory_order_release); }
  bool empty() const {
    return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire);
  }
  uint32_t max_frame() const { return max_frame_; }

 private:
  struct Slot {
    uint32_t len = 0;
    FrameInfo info;
  };
  uint8_t* data(uint64_t i) { return storage_.get() + (i & mask_) * max_frame_; }
  const uint8_t* data(uint64_t i) const { return storage_.get() + (i & mask_) * max_frame_; }

  uint64_t mask_;
  uint32_t max_frame_;
  std::vector<Slot> slots_;
  ZeroPages<uint8_t> storage_;                 // 8 MB a ring: resident as far as frames have reached
  alignas(64) std::atomic<uint64_t> head_{0};  // consumer
  alignas(64) std::atomic<uint64_t> tail_{0};  // producer
};

}  // namespace pspgw::gateway
