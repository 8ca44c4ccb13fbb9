// Health of port pairs (issue 8): every pair is probed at an interval, a probe sent into its ingress port
// must come back out of its egress port within the timeout; after `misses` misses in a row the instance is
// out (its group's fail mode applies once none is left), and the first probe back puts it in again. So an
// instance that stops forwarding is out within interval x misses + timeout.
//
// A probe is an Ethernet frame of the IEEE 802 local experimental ethertype 0x88b5 (no stack answers or
// routes it; a bump-in-the-wire VNF forwards it like any frame): magic "PSPGWSFC", the pair's token and a
// sequence number. The monitor builds and checks them; the gateway sends them (through a worker) and hands
// back what its ROOT pipe sent to the CPU. Control thread only, except where noted.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "base/ids.hpp"

namespace pspgw::sfc {

inline constexpr uint16_t kProbeEtherType = 0x88b5;

struct HealthOptions {
  std::chrono::milliseconds interval{1000};
  uint32_t misses = 3;
  std::chrono::milliseconds timeout{500};
};

struct PairHealth {
  bool live = true;       // instances start in: a fresh chain carries traffic at once
  uint32_t missed = 0;    // probes missed in a row
  uint64_t sent = 0;      // probes sent
  uint64_t returned = 0;  // probes that came back out of the egress port in time
  uint64_t downs = 0;     // times it went out
};

class HealthMonitor {
 public:
  using Clock = std::chrono::steady_clock;
  explicit HealthMonitor(HealthOptions opts) : opts_(opts) {}

  // The pairs to probe: (name -> ingress port, egress port). Kept pairs keep their state.
  void sync(const std::map<std::string, std::pair<PortId, PortId>>& pairs);

  struct Probe {
    PortId port;  // send it out of this port (the pair's ingress)
    std::vector<uint8_t> frame;
  };
  // Ages outstanding probes (a miss each past the timeout) and returns the probes due now.
  std::vector<Probe> tick(Clock::time_point now);
  // A probe frame back from `port`. True if it is the outstanding probe of the pair whose egress that is.
  bool received(std::span<const uint8_t> frame, PortId port);
  // The pairs that went out (false) or came back (true) since the last call, in order.
  std::vector<std::pair<std::string, bool>> take_changes();

  bool live(const std::string& pair) const;
  const std::map<std::string, PairHealth>& pairs() const { return health_; }
  const HealthOptions& options() const { return opts_; }

 private:
  struct State {
    uint32_t token = 0;
    PortId in, out;
    uint32_t seq = 0;
    bool outstanding = false;
    Clock::time_point sent_at{}, next{};
  };
  void miss(const std::string& name, State& s);
  std::vector<uint8_t> frame(const State& s) const;

  HealthOptions opts_;
  uint32_t next_token_ = 1;
  std::vector<std::pair<std::string, bool>> changes_;
  std::map<std::string, State> state_;
  std::map<std::string, PairHealth> health_;
};

}  // namespace pspgw::sfc
