// Shared helpers for control-plane tests: addresses, a manual clock, and a PeerTransport that routes
// requests straight into other TunnelManagers (no gRPC), with failure injection and a call log.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "control/fake_data_plane.hpp"
#include "control/tunnel_manager.hpp"

namespace pspgw::control::testing {

inline net::IpAddr ip(std::string_view text) {
  auto a = net::IpAddr::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(net::IpAddr{});
}

inline net::MacAddr mac(std::string_view text) {
  auto m = net::MacAddr::parse(text);
  EXPECT_TRUE(m.has_value()) << text;
  return m.value_or(net::MacAddr{});
}

inline VipPair pair(std::string_view local, std::string_view remote) {
  return VipPair{ip(local), ip(remote)};
}

struct ManualClock {
  Clock::time_point t = Clock::time_point{} + std::chrono::hours(1);
  std::function<Clock::time_point()> fn() {
    return [this] { return t; };
  }
};

// A request from the peer at index `peer` of the receiving manager's config.
inline Caller from_peer(PeerIndex peer = 0) {
  return Caller{{peer}, "test"};
}

class LoopbackTransport final : public PeerTransport {
 public:
  Caller caller(PeerIndex peer) const { return peer < callers.size() ? callers[peer] : from_peer(0); }
  // peers[i] answers for peer index i; nullptr = unreachable.
  std::vector<TunnelManager*> peers;
  // callers[i]: who we are to peers[i] (its authenticated Caller); default: its peer #0.
  std::vector<Caller> callers;
  std::map<PeerIndex, std::vector<Error>> scripted_failures;  // consumed front first
  std::function<void(PeerIndex, const MultiTunnelRequest&)> before_send;
  std::vector<PeerIndex> calls;

  CResult<MultiTunnelResponse> request_tunnels(PeerIndex peer, const MultiTunnelRequest& request) override {
    calls.push_back(peer);
    if (before_send) before_send(peer, request);
    auto& script = scripted_failures[peer];
    if (!script.empty()) {
      Error e = script.front();
      script.erase(script.begin());
      return Err{e};
    }
    if (peer >= peers.size() || peers[peer] == nullptr)
      return fail(ControlError::kUnavailable, "unreachable");
    return peers[peer]->handle_tunnel_request(caller(peer), request);
  }
  CResult<KeyRotationResponse> request_key_rotation(PeerIndex peer,
                                                    const KeyRotationRequest& request) override {
    if (peer >= peers.size() || peers[peer] == nullptr)
      return fail(ControlError::kUnavailable, "unreachable");
    return peers[peer]->handle_key_rotation(caller(peer), request);
  }
  CResult<CloseTunnelsResponse> close_tunnels(PeerIndex peer, const CloseTunnelsRequest& request) override {
    if (peer >= peers.size() || peers[peer] == nullptr)
      return fail(ControlError::kUnavailable, "unreachable");
    return peers[peer]->handle_close_request(caller(peer), request);
  }
};

inline std::vector<uint8_t> bytes_of(const psp::DerivedKey& k) {
  auto v = k.view();
  return {v.begin(), v.end()};
}

}  // namespace pspgw::control::testing
