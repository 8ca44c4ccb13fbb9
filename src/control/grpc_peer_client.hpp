// GrpcPeerClient: PeerTransport over gRPC. One channel per configured peer; EVERY call carries a
// deadline (spec §6: DOCA has none) and fails fast when the peer is unreachable, so a dead peer costs
// at most one deadline. Calls block: make them from the control thread, never from a packet worker.
//
// Channels are connected ahead of need (connect_ahead) and kept up (no idle timeout, keepalive pings),
// so the first packet of a tunnel pays one round trip, not a TCP (+TLS) handshake. A watcher thread
// keeps every channel connecting and reports each channel that becomes READY, saying whether it had
// been READY before and was lost: a peer whose connection dropped and came back may have restarted.
// On each channel that becomes READY it first makes one call without effect (a request for no tunnels),
// so that no first exchange pays either end's first-call set-up (grpc_peer_client.cpp, WarmUp).
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "control/peer_transport.hpp"
#include "psp_gateway.grpc.pb.h"

namespace pspgw::control {

struct GrpcClientOptions {
  std::chrono::milliseconds deadline{2000};
  // Channel reconnect backoff: kept short so TunnelManager's per-pair backoff is what paces retries.
  std::chrono::milliseconds reconnect_backoff{100};
  std::chrono::milliseconds max_reconnect_backoff{1000};
  // HTTP/2 keepalive pings on an idle channel (0: off); our server permits them down to half this. A
  // peer whose gRPC server refuses idle pings (gRPC's default) closes the connection after a few; the
  // channel then reconnects, which the watcher reports as a loss.
  std::chrono::milliseconds keepalive{20000};
  std::chrono::milliseconds keepalive_timeout{5000};
  std::chrono::milliseconds watch_period{50};  // the watcher's longest wait (stop takes at most this)
  // A call on a channel in TRANSIENT_FAILURE first reconnects at once and waits this long for it.
  std::chrono::milliseconds revive_wait{200};
  // Called on the watcher thread when peer's channel becomes READY; after_loss: it had been READY before.
  std::function<void(PeerIndex peer, bool after_loss)> on_ready;
  // Default (null): plaintext, as DOCA uses, so the two can peer.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

class GrpcPeerClient final : public PeerTransport {
 public:
  // addresses[i] is peer i's "host:port" (config peers[i].remote-grpc-address, normalised).
  explicit GrpcPeerClient(std::vector<std::string> addresses, GrpcClientOptions options = {});
  ~GrpcPeerClient() override;
  GrpcPeerClient(const GrpcPeerClient&) = delete;
  GrpcPeerClient& operator=(const GrpcPeerClient&) = delete;

  // Starts connecting every channel now and the watcher thread (idempotent). Without it channels connect
  // on their first call and nothing watches them.
  void connect_ahead();
  void stop_watching();

  CResult<MultiTunnelResponse> request_tunnels(PeerIndex peer, const MultiTunnelRequest& request) override;
  CResult<KeyRotationResponse> request_key_rotation(PeerIndex peer,
                                                    const KeyRotationRequest& request) override;

 private:
  struct WarmUp;
  void arm(grpc::ClientContext& context) const;
  void revive(PeerIndex peer) const;
  void watch();
  void warm_up(PeerIndex peer, grpc::CompletionQueue& cq, std::unique_ptr<WarmUp>& slot) const;

  std::vector<std::string> addresses_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<psp_gateway::PSP_Gateway::Stub>> stubs_;
  GrpcClientOptions options_;
  std::mutex watch_mu_;
  bool watch_stop_ = false;
  std::thread watcher_;
};

}  // namespace pspgw::control
