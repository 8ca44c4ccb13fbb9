// GrpcService: psp_gateway.PSP_Gateway over TunnelManager. Identifies the caller (peer_identity.hpp),
// converts and validates the proto, calls the core with the caller, maps its typed error to the status
// (grpc_status.hpp). Nothing else: the policy lives in the core.
//
// Identity. With mutual TLS (the default) the handshake has verified the client's certificate against our
// CA; the caller is the set of configured peers one of its subjectAltNames names. In insecure mode
// (--grpc-insecure, plaintext, as DOCA's hardware gateways speak) it is the set of peers whose host is the
// connection's source address. A caller that is no configured peer is refused with PERMISSION_DENIED
// before its request is even parsed (UNAUTHENTICATED only if a TLS connection carries no verified
// certificate, which the handshake already prevents); the refusal is logged, rate-limited.
//
// Key bytes. The parsed request and the answer hold keys in Secret (zeroed on destruction); the proto
// request's key bytes are zeroed once parsed, the proto response's once gRPC has sent it (response_wipe.hpp).
// Not wiped: the serialised copies in gRPC's own transport and TLS buffers, which gRPC frees.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "control/error.hpp"
#include "control/log_limiter.hpp"
#include "control/peer_identity.hpp"
#include "control/rpc_counters.hpp"
#include "control/tunnel_manager.hpp"
#include "psp_gateway.grpc.pb.h"

namespace pspgw::control {

struct GrpcServerOptions {
  // Mutual TLS (tls.hpp: tls_server_credentials), callers identified by certificate. Null: plaintext,
  // callers identified by source address (--grpc-insecure).
  std::shared_ptr<grpc::ServerCredentials> tls;
  PeerDirectory peers;                        // hosts of the configured peers, in config order
  std::function<void(std::string_view)> log;  // refused callers, rate-limited; default: stderr
  RpcCounters* counters = nullptr;            // every call's outcome per calling peer (kReceived)
  // --log-level debug: one line per call (caller, request id, tunnels, outcome); null: none. Never keys.
  // Rate-limited with the refusals' limiter: a remote party triggers it.
  std::function<void(std::string_view)> debug;
  // More server interceptors, before ours: their POST hooks run after ours (tests observe what was sent).
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
};

class GrpcService final : public psp_gateway::PSP_Gateway::Service {
 public:
  GrpcService(TunnelManager& manager, GrpcServerOptions options);

  grpc::Status RequestMultipleTunnelParams(grpc::ServerContext* context,
                                           const psp_gateway::MultiTunnelRequest* request,
                                           psp_gateway::MultiTunnelResponse* response) override;
  grpc::Status RequestKeyRotation(grpc::ServerContext* context,
                                  const psp_gateway::KeyRotationRequest* request,
                                  psp_gateway::KeyRotationResponse* response) override;
  // psp-gateway's own (proto/psp_gateway.proto): the caller closed these tunnels.
  grpc::Status CloseTunnels(grpc::ServerContext* context, const psp_gateway::CloseTunnelsRequest* request,
                            psp_gateway::CloseTunnelsResponse* response) override;

  // The configured peers this call comes from, or the status to refuse it with.
  Result<Caller, grpc::Status> identify(const grpc::ServerContext& context);
  // A reload's new peer table (indices as TunnelManager's).
  void set_peers(PeerDirectory peers);

 private:
  void log_refusal(const std::string& line);
  std::shared_ptr<const PeerDirectory> peers() const;
  grpc::Status answered(const Caller& caller, const std::string& what, grpc::Status status);

  TunnelManager& manager_;
  GrpcServerOptions options_;
  mutable std::mutex peers_mu_;
  std::shared_ptr<const PeerDirectory> peers_;  // options_.peers, then each reload's
  std::mutex log_mu_;
  LogLimiter refusal_log_;
  LogLimiter debug_log_{100, std::chrono::milliseconds(100)};  // debug lines: rate-limited all the same
};

// A running gRPC server hosting one GrpcService. Port 0 in the address picks a free port.
class GrpcServer {
 public:
  static CResult<std::unique_ptr<GrpcServer>> start(const std::string& address, TunnelManager& manager,
                                                    GrpcServerOptions options);
  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  int port() const { return port_; }
  void set_peers(PeerDirectory peers) { service_.set_peers(std::move(peers)); }
  // Stops accepting, waits up to `grace` for calls in progress, then cancels them.
  void shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds(500));

 private:
  GrpcServer(TunnelManager& manager, GrpcServerOptions options) : service_(manager, std::move(options)) {}

  GrpcService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace pspgw::control
