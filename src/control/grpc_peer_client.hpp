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
//
// Reload. set_peers() replaces the peer table (indices as TunnelManager's: a removed peer's slot stays,
// empty): channels of unchanged addresses are kept (and stay connected), new ones are made, removed ones
// dropped once no call uses them. set_credentials() (new TLS material) remakes every channel. The watcher
// picks up the new table within watch_period.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "control/peer_transport.hpp"
#include "control/rpc_counters.hpp"
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
  RpcCounters* counters = nullptr;  // every call's outcome, per peer (kSent); null: not counted
  // --log-level debug: one line per call (peer, request id, tunnels, outcome); null: none. Never keys.
  std::function<void(std::string_view)> debug;
};

class GrpcPeerClient final : public PeerTransport {
 public:
  // addresses[i] is peer i's "host:port" (config peers[i].remote-grpc-address, normalised).
  explicit GrpcPeerClient(const std::vector<std::string>& addresses, GrpcClientOptions options = {});
  ~GrpcPeerClient() override;
  GrpcPeerClient(const GrpcPeerClient&) = delete;
  GrpcPeerClient& operator=(const GrpcPeerClient&) = delete;

  // Starts connecting every channel now and the watcher thread (idempotent). Without it channels connect
  // on their first call and nothing watches them.
  void connect_ahead();
  void stop_watching();
  // The new peer table: addresses[i] is peer i's address, nullopt for a removed peer's slot.
  void set_peers(const std::vector<std::optional<std::string>>& addresses);
  void set_credentials(std::shared_ptr<grpc::ChannelCredentials> credentials);

  CResult<MultiTunnelResponse> request_tunnels(PeerIndex peer, const MultiTunnelRequest& request) override;
  CResult<KeyRotationResponse> request_key_rotation(PeerIndex peer,
                                                    const KeyRotationRequest& request) override;
  // At most kCloseDeadline (or the configured deadline if shorter): a reload waits on it.
  CResult<CloseTunnelsResponse> close_tunnels(PeerIndex peer, const CloseTunnelsRequest& request) override;

 private:
  struct Link {
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<psp_gateway::PSP_Gateway::Stub> stub;
  };
  using Links = std::vector<std::shared_ptr<const Link>>;  // null: a removed peer

  std::shared_ptr<const Link> make_link(const std::string& address) const;
  CResult<std::shared_ptr<const Link>> link(PeerIndex peer) const;
  Links links() const;
  void arm(grpc::ClientContext& context) const;
  void revive(grpc::Channel& channel) const;
  void outcome(PeerIndex peer, const grpc::Status& status, const std::string& what) const;
  struct WarmUp;
  void watch();
  bool watch_round(const Links& links, uint64_t generation);
  void warm_up(const Link& link, PeerIndex peer, grpc::CompletionQueue& cq,
               std::unique_ptr<WarmUp>& slot) const;

  GrpcClientOptions options_;
  grpc::ChannelArguments args_;
  mutable std::mutex links_mu_;
  Links links_;
  uint64_t generation_ = 0;  // bumped by every change of links_: the watcher restarts its round
  std::mutex watch_mu_;
  bool watch_stop_ = false;
  std::thread watcher_;
  // Watcher state per channel, kept across rounds while the channel lives.
  struct Watched {
    bool was_ready = false;
    bool lost = false;
  };
  std::vector<std::pair<std::weak_ptr<const Link>, Watched>> watched_;
};

}  // namespace pspgw::control
