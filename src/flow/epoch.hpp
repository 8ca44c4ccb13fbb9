// Quiescent-state-based reclamation (QSBR) for the control plane -> data plane path.
//
// Workers (readers) never block and never write shared state on the fast path except one store per batch:
// at the end of each batch a worker publishes "I have seen global epoch E" (quiescent()). The control
// plane (one writer at a time, serialized by the caller) unlinks an object with a release store, then
// retire()s it: the object is tagged with a new epoch T = ++global (an acq_rel RMW) and destroyed once every
// online worker has published an epoch >= T. A worker that publishes >= T loaded the global epoch after the
// RMW, so everything unlinked before it happens-before that worker's next batch; and its earlier batches'
// reads happen-before the writer's reclaim through the release/acquire pair on the worker's counter.
// Plain std::atomic acquire/release only, which ThreadSanitizer models exactly (no fences on the reader's
// fast path; online() orders its store before later loads with an RMW on the global epoch, not a fence).
// See docs/architecture.md, "Control plane -> data plane publication".
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>

namespace pspgw::flow {

class EpochDomain {
 public:
  explicit EpochDomain(uint16_t max_readers);
  ~EpochDomain();  // runs every pending retire callback: no reader may be online any more
  EpochDomain(const EpochDomain&) = delete;
  EpochDomain& operator=(const EpochDomain&) = delete;

  // Reader side: reader r is one worker thread.
  void quiescent(uint16_t r) {
    readers_[r].seen.store(global_.load(std::memory_order_acquire), std::memory_order_release);
  }
  void online(uint16_t r);
  void offline(uint16_t r) { readers_[r].seen.store(kOffline, std::memory_order_release); }

  // Writer side (callers serialize). fn runs after a grace period, from poll()/synchronize() of a writer.
  void retire(std::function<void()> fn);
  // Runs the callbacks whose grace period has ended; never waits. Returns how many ran.
  std::size_t poll();
  // Waits (sleeping) until every callback retired so far has run. Workers must keep passing batches or
  // be offline; used by tests, shutdown and a table-full retry.
  void synchronize();
  // Waits at most `limit` for at least one callback to run (a writer out of free slots). False on timeout.
  bool wait_reclaim(std::chrono::microseconds limit);
  std::size_t pending() const { return limbo_.size(); }

 private:
  static constexpr uint64_t kOffline = 0;
  struct alignas(64) Reader {
    std::atomic<uint64_t> seen{kOffline};
  };
  uint64_t oldest_seen() const;

  alignas(64) std::atomic<uint64_t> global_{1};
  uint16_t n_readers_;
  std::unique_ptr<Reader[]> readers_;
  struct Retired {
    uint64_t epoch;
    std::function<void()> fn;
  };
  std::deque<Retired> limbo_;  // epochs ascending
};

}  // namespace pspgw::flow
