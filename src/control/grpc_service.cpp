#include "control/grpc_service.hpp"

#include "control/grpc_convert.hpp"
#include "control/grpc_status.hpp"

namespace pspgw::control {

grpc::Status GrpcService::RequestMultipleTunnelParams(grpc::ServerContext* /*context*/,
                                                      const psp_gateway::MultiTunnelRequest* request,
                                                      psp_gateway::MultiTunnelResponse* response) {
  auto parsed = grpc_convert::from_proto(*request);
  if (!parsed) return to_grpc_status(parsed.error());
  auto answer = manager_.handle_tunnel_request(parsed.value());
  if (!answer) return to_grpc_status(answer.error());
  grpc_convert::to_proto(answer.value(), response);
  return grpc::Status::OK;
}

grpc::Status GrpcService::RequestKeyRotation(grpc::ServerContext* /*context*/,
                                             const psp_gateway::KeyRotationRequest* request,
                                             psp_gateway::KeyRotationResponse* response) {
  auto answer =
      manager_.handle_key_rotation(KeyRotationRequest{request->request_id(), request->issue_new_keys()});
  if (!answer) return to_grpc_status(answer.error());
  response->set_request_id(answer->request_id);
  return grpc::Status::OK;
}

CResult<std::unique_ptr<GrpcServer>> GrpcServer::start(const std::string& address, TunnelManager& manager,
                                                       std::shared_ptr<grpc::ServerCredentials> credentials) {
  std::unique_ptr<GrpcServer> server(new GrpcServer(manager));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, std::move(credentials), &server->port_);
  builder.RegisterService(&server->service_);
  // Peers keep their channels up with keepalive pings (GrpcClientOptions::keepalive): allow them, idle
  // too, instead of answering GOAWAY "too many pings" (the reconnect would look like a peer restart).
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  server->server_ = builder.BuildAndStart();
  if (!server->server_ || server->port_ == 0) {
    return fail(ControlError::kUnavailable, "cannot listen for gRPC on " + address);
  }
  return server;
}

void GrpcServer::shutdown(std::chrono::milliseconds grace) {
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + grace);
    server_->Wait();
    server_.reset();
  }
}

GrpcServer::~GrpcServer() {
  shutdown();
}

}  // namespace pspgw::control
