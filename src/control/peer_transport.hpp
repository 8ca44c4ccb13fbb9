// PeerTransport: how the control core reaches a peer gateway. GrpcPeerClient implements it over gRPC
// (one channel per peer, a deadline on every call); tests route it straight into another TunnelManager.
// Calls block until the answer or the deadline: call them only from the control thread, never from a
// packet worker.
#pragma once

#include <cstddef>

#include "control/error.hpp"
#include "control/messages.hpp"

namespace pspgw::control {

// Index of a peer in the config's peers[] (and in TunnelManager's peer table).
using PeerIndex = std::size_t;

class PeerTransport {
 public:
  virtual ~PeerTransport() = default;
  // RequestMultipleTunnelParams. Errors: the peer's status, or kUnavailable / kDeadlineExceeded.
  virtual CResult<MultiTunnelResponse> request_tunnels(PeerIndex peer, const MultiTunnelRequest& request) = 0;
  // RequestKeyRotation.
  virtual CResult<KeyRotationResponse> request_key_rotation(PeerIndex peer,
                                                            const KeyRotationRequest& request) = 0;
  // CloseTunnels (psp-gateway's own: a DOCA peer answers kUnimplemented). A transport without it says so.
  virtual CResult<CloseTunnelsResponse> close_tunnels(PeerIndex /*peer*/,
                                                      const CloseTunnelsRequest& /*request*/) {
    return fail(ControlError::kUnimplemented, "CloseTunnels is not supported by this transport");
  }
};

}  // namespace pspgw::control
