#include "flow/epoch.hpp"

#include <chrono>
#include <limits>
#include <thread>

namespace pspgw::flow {
namespace {
bool limit_passed(std::chrono::steady_clock::time_point until) {
  return std::chrono::steady_clock::now() >= until;
}
}  // namespace

EpochDomain::EpochDomain(uint16_t max_readers)
    : n_readers_(max_readers), readers_(std::make_unique<Reader[]>(max_readers)) {}

EpochDomain::~EpochDomain() {
  for (auto& r : limbo_) r.fn();
}

// The store-load problem of going online, without a fence (which TSan cannot model): after publishing
// `seen`, an RMW on the global epoch. Both that RMW and retire()'s are in global_'s modification order:
// if ours comes later it reads retire()'s value, so the unlink before it happens-before our next loads;
// if ours comes first, retire()'s RMW reads ours, so the writer's later load of `seen` sees us online
// with an epoch older than the retired object's, and it waits.
void EpochDomain::online(uint16_t r) {
  readers_[r].seen.store(global_.load(std::memory_order_acquire), std::memory_order_release);
  global_.fetch_add(0, std::memory_order_acq_rel);
}

void EpochDomain::retire(std::function<void()> fn) {
  const uint64_t epoch = global_.fetch_add(1, std::memory_order_seq_cst) + 1;
  limbo_.push_back({epoch, std::move(fn)});
}

uint64_t EpochDomain::oldest_seen() const {
  uint64_t oldest = std::numeric_limits<uint64_t>::max();
  for (uint16_t r = 0; r < n_readers_; ++r) {
    const uint64_t s = readers_[r].seen.load(std::memory_order_seq_cst);
    if (s != kOffline && s < oldest) oldest = s;
  }
  return oldest;
}

std::size_t EpochDomain::poll() {
  if (limbo_.empty()) return 0;
  const uint64_t oldest = oldest_seen();
  std::size_t n = 0;
  while (!limbo_.empty() && limbo_.front().epoch <= oldest) {
    auto fn = std::move(limbo_.front().fn);
    limbo_.pop_front();
    fn();
    ++n;
  }
  return n;
}

void EpochDomain::synchronize() {
  poll();
  while (!limbo_.empty()) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
    poll();
  }
}

bool EpochDomain::wait_reclaim(std::chrono::microseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (poll() == 0) {
    if (limit_passed(until) || limbo_.empty()) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
  return true;
}

}  // namespace pspgw::flow
