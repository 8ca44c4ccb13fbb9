#include "sfc/health.hpp"

#include <array>
#include <cstring>
#include <utility>

namespace pspgw::sfc {
namespace {

constexpr std::array<uint8_t, 8> kMagic = {'P', 'S', 'P', 'G', 'W', 'S', 'F', 'C'};
constexpr std::size_t kEthHeader = 14;
constexpr std::size_t kProbeSize = 60;  // the Ethernet minimum: no VNF pads or drops it as a runt
// Locally administered unicast MACs: a bridge floods the unknown destination to its other port.
constexpr std::array<uint8_t, 6> kProbeDst = {0x02, 0x50, 0x53, 0x50, 0xff, 0xfe};
constexpr std::array<uint8_t, 6> kProbeSrc = {0x02, 0x50, 0x53, 0x50, 0xff, 0xff};

void put32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
uint32_t get32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

}  // namespace

void HealthMonitor::sync(const std::map<std::string, std::pair<PortId, PortId>>& pairs) {
  for (auto it = state_.begin(); it != state_.end();) {
    auto p = pairs.find(it->first);
    if (p != pairs.end() && p->second == std::pair{it->second.in, it->second.out}) {
      ++it;
      continue;
    }
    health_.erase(it->first);
    it = state_.erase(it);
  }
  for (const auto& [name, ports] : pairs) {
    if (state_.contains(name)) continue;
    State s;
    s.token = next_token_++;
    s.in = ports.first;
    s.out = ports.second;
    state_.emplace(name, s);
    health_.emplace(name, PairHealth{});
  }
}

std::vector<uint8_t> HealthMonitor::frame(const State& s) const {
  std::vector<uint8_t> f(kProbeSize, 0);
  std::memcpy(f.data(), kProbeDst.data(), 6);
  std::memcpy(f.data() + 6, kProbeSrc.data(), 6);
  f[12] = static_cast<uint8_t>(kProbeEtherType >> 8);
  f[13] = static_cast<uint8_t>(kProbeEtherType & 0xff);
  std::memcpy(f.data() + kEthHeader, kMagic.data(), kMagic.size());
  put32(f.data() + kEthHeader + 8, s.token);
  put32(f.data() + kEthHeader + 12, s.seq);
  return f;
}

void HealthMonitor::miss(const std::string& name, State& s) {
  s.outstanding = false;
  PairHealth& h = health_.at(name);
  ++h.missed;
  if (h.live && h.missed >= opts_.misses) {
    h.live = false;
    ++h.downs;
    changes_.emplace_back(name, false);
  }
}

std::vector<HealthMonitor::Probe> HealthMonitor::tick(Clock::time_point now) {
  std::vector<Probe> out;
  for (auto& [name, s] : state_) {
    if (s.outstanding && now - s.sent_at >= opts_.timeout) miss(name, s);
    if (now < s.next) continue;
    if (s.outstanding) miss(name, s);  // a timeout longer than the interval: the next probe replaces it
    ++s.seq;
    s.outstanding = true;
    s.sent_at = now;
    s.next = now + opts_.interval;
    ++health_.at(name).sent;
    out.push_back({s.in, frame(s)});
  }
  return out;
}

bool HealthMonitor::received(std::span<const uint8_t> f, PortId port) {
  if (f.size() < kEthHeader + 16 || f[12] != (kProbeEtherType >> 8) || f[13] != (kProbeEtherType & 0xff) ||
      std::memcmp(f.data() + kEthHeader, kMagic.data(), kMagic.size()) != 0) {
    return false;
  }
  const uint32_t token = get32(f.data() + kEthHeader + 8);
  const uint32_t seq = get32(f.data() + kEthHeader + 12);
  for (auto& [name, s] : state_) {
    if (s.token != token) continue;
    // Out of the other port, the probe now outstanding: a reflected or late one proves nothing.
    if (port != s.out || !s.outstanding || seq != s.seq) return false;
    s.outstanding = false;
    PairHealth& h = health_.at(name);
    ++h.returned;
    h.missed = 0;
    if (!h.live) {
      h.live = true;
      changes_.emplace_back(name, true);
    }
    return true;
  }
  return false;
}

std::vector<std::pair<std::string, bool>> HealthMonitor::take_changes() {
  return std::exchange(changes_, {});
}

bool HealthMonitor::live(const std::string& pair) const {
  auto it = health_.find(pair);
  return it == health_.end() || it->second.live;
}

}  // namespace pspgw::sfc
