// GrpcService: psp_gateway.PSP_Gateway over TunnelManager. Converts and validates the proto, calls the
// core, maps its typed error to the status (grpc_status.hpp). Nothing else: the policy lives in the core.
//
// Security note (spec §6): like DOCA's, the service is plaintext and unauthenticated by default so a
// DOCA gateway can peer; GrpcServer takes server credentials for deployments that can use TLS. The
// core's VIP-pair allow list limits what any caller can install.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "control/error.hpp"
#include "control/tunnel_manager.hpp"
#include "psp_gateway.grpc.pb.h"

namespace pspgw::control {

class GrpcService final : public psp_gateway::PSP_Gateway::Service {
 public:
  explicit GrpcService(TunnelManager& manager) : manager_(manager) {}

  grpc::Status RequestMultipleTunnelParams(grpc::ServerContext* context,
                                           const psp_gateway::MultiTunnelRequest* request,
                                           psp_gateway::MultiTunnelResponse* response) override;
  grpc::Status RequestKeyRotation(grpc::ServerContext* context,
                                  const psp_gateway::KeyRotationRequest* request,
                                  psp_gateway::KeyRotationResponse* response) override;

 private:
  TunnelManager& manager_;
};

// A running gRPC server hosting one GrpcService. Port 0 in the address picks a free port.
class GrpcServer {
 public:
  static CResult<std::unique_ptr<GrpcServer>> start(
      const std::string& address, TunnelManager& manager,
      std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials());
  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  int port() const { return port_; }
  // Stops accepting, waits up to `grace` for calls in progress, then cancels them.
  void shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds(500));

 private:
  explicit GrpcServer(TunnelManager& manager) : service_(manager) {}

  GrpcService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace pspgw::control
