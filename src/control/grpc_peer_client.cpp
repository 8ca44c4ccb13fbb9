#include "control/grpc_peer_client.hpp"

#include "control/grpc_convert.hpp"
#include "control/grpc_status.hpp"

namespace pspgw::control {

GrpcPeerClient::GrpcPeerClient(std::vector<std::string> addresses, GrpcClientOptions options)
    : addresses_(std::move(addresses)), options_(std::move(options)) {
  if (!options_.credentials) options_.credentials = grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, static_cast<int>(options_.reconnect_backoff.count()));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(options_.reconnect_backoff.count()));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(options_.max_reconnect_backoff.count()));
  stubs_.reserve(addresses_.size());
  for (const std::string& address : addresses_) {  // channels connect lazily, on the first call
    stubs_.push_back(
        psp_gateway::PSP_Gateway::NewStub(grpc::CreateCustomChannel(address, options_.credentials, args)));
  }
}

void GrpcPeerClient::arm(grpc::ClientContext& context) const {
  context.set_deadline(std::chrono::system_clock::now() + options_.deadline);
  context.set_wait_for_ready(false);  // an unreachable peer fails now (UNAVAILABLE), not at the deadline
}

CResult<MultiTunnelResponse> GrpcPeerClient::request_tunnels(PeerIndex peer,
                                                             const MultiTunnelRequest& request) {
  if (peer >= stubs_.size()) return fail(ControlError::kNotFound, "no peer #" + std::to_string(peer));
  psp_gateway::MultiTunnelRequest wire;
  grpc_convert::to_proto(request, &wire);
  psp_gateway::MultiTunnelResponse reply;
  grpc::ClientContext context;
  arm(context);
  const grpc::Status status = stubs_[peer]->RequestMultipleTunnelParams(&context, wire, &reply);
  grpc_convert::wipe_keys(&wire);
  if (!status.ok()) return Err{from_grpc_status(status, addresses_[peer])};
  auto parsed = grpc_convert::from_proto(reply);
  grpc_convert::wipe_keys(&reply);
  if (!parsed) {  // the peer sent garbage: a protocol violation, not a bad request of ours
    return fail(ControlError::kInternal, addresses_[peer] + ": bad response: " + parsed.error().message);
  }
  return parsed;
}

CResult<KeyRotationResponse> GrpcPeerClient::request_key_rotation(PeerIndex peer,
                                                                  const KeyRotationRequest& request) {
  if (peer >= stubs_.size()) return fail(ControlError::kNotFound, "no peer #" + std::to_string(peer));
  psp_gateway::KeyRotationRequest wire;
  wire.set_request_id(request.request_id);
  wire.set_issue_new_keys(request.issue_new_keys);
  psp_gateway::KeyRotationResponse reply;
  grpc::ClientContext context;
  arm(context);
  const grpc::Status status = stubs_[peer]->RequestKeyRotation(&context, wire, &reply);
  if (!status.ok()) return Err{from_grpc_status(status, addresses_[peer])};
  return KeyRotationResponse{reply.request_id()};
}

}  // namespace pspgw::control
