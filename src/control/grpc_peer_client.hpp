// GrpcPeerClient: PeerTransport over gRPC. One channel per configured peer; EVERY call carries a
// deadline (spec §6: DOCA has none) and fails fast when the peer is unreachable, so a dead peer costs
// at most one deadline. Calls block: make them from the control thread, never from a packet worker.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "control/peer_transport.hpp"
#include "psp_gateway.grpc.pb.h"

namespace pspgw::control {

struct GrpcClientOptions {
  std::chrono::milliseconds deadline{2000};
  // Channel reconnect backoff: kept short so TunnelManager's per-pair backoff is what paces retries.
  std::chrono::milliseconds reconnect_backoff{100};
  std::chrono::milliseconds max_reconnect_backoff{2000};
  // Default (null): plaintext, as DOCA uses, so the two can peer.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

class GrpcPeerClient final : public PeerTransport {
 public:
  // addresses[i] is peer i's "host:port" (config peers[i].remote-grpc-address, normalised).
  explicit GrpcPeerClient(std::vector<std::string> addresses, GrpcClientOptions options = {});

  CResult<MultiTunnelResponse> request_tunnels(PeerIndex peer, const MultiTunnelRequest& request) override;
  CResult<KeyRotationResponse> request_key_rotation(PeerIndex peer,
                                                    const KeyRotationRequest& request) override;

 private:
  void arm(grpc::ClientContext& context) const;

  std::vector<std::string> addresses_;
  std::vector<std::unique_ptr<psp_gateway::PSP_Gateway::Stub>> stubs_;
  GrpcClientOptions options_;
};

}  // namespace pspgw::control
