#include "control/grpc_service.hpp"

#include <grpc/grpc_security_constants.h>

#include <cstdio>
#include <vector>

#include "control/grpc_convert.hpp"
#include "control/grpc_status.hpp"
#include "control/response_wipe.hpp"

namespace pspgw::control {

namespace {

// Every subjectAltName of the verified client certificate, DNS and IP alike.
std::vector<std::string> certificate_names(const grpc::AuthContext& auth) {
  std::vector<std::string> names;
  for (const char* property :
       {GRPC_X509_SAN_PROPERTY_NAME, GRPC_PEER_DNS_PROPERTY_NAME, GRPC_PEER_IP_PROPERTY_NAME}) {
    for (const grpc::string_ref& v : auth.FindPropertyValues(property))
      names.emplace_back(v.data(), v.size());
  }
  return names;
}

}  // namespace

GrpcService::GrpcService(TunnelManager& manager, GrpcServerOptions options)
    : manager_(manager),
      options_(std::move(options)),
      peers_(std::make_shared<const PeerDirectory>(options_.peers)) {
  if (!options_.log) {
    options_.log = [](std::string_view line) {
      std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
    };
  }
}

void GrpcService::set_peers(PeerDirectory peers) {
  auto next = std::make_shared<const PeerDirectory>(std::move(peers));
  std::lock_guard lock(peers_mu_);
  peers_ = std::move(next);
}

std::shared_ptr<const PeerDirectory> GrpcService::peers() const {
  std::lock_guard lock(peers_mu_);
  return peers_;
}

// Counts the call's outcome for its (first) peer and, at --log-level debug, says what it was.
grpc::Status GrpcService::answered(const Caller& caller, const std::string& what, grpc::Status status) {
  if (options_.counters)
    options_.counters->count(caller.peers.front(), RpcDirection::kReceived, status.error_code(),
                             status.error_message());
  if (options_.debug) {
    std::lock_guard lock(log_mu_);
    if (debug_log_.allow(std::chrono::steady_clock::now())) {
      options_.debug("gRPC: received " + what + " from " + caller.proof + ": " +
                     std::string(rpc_code_name(status.error_code())) +
                     (status.ok() ? "" : " (" + status.error_message() + ")") + debug_log_.suffix());
    }
  }
  return status;
}

void GrpcService::log_refusal(const std::string& line) {
  if (options_.counters) options_.counters->count_unattributed();
  std::lock_guard lock(log_mu_);
  if (refusal_log_.allow(std::chrono::steady_clock::now())) options_.log(line + refusal_log_.suffix());
}

Result<Caller, grpc::Status> GrpcService::identify(const grpc::ServerContext& context) {
  Caller caller;
  if (options_.tls) {
    const auto auth = context.auth_context();
    if (!auth || !auth->IsPeerAuthenticated()) {
      log_refusal("gRPC: refused " + context.peer() + ": no verified client certificate");
      return Err{grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "a client certificate is required")};
    }
    const std::vector<std::string> names = certificate_names(*auth);
    caller = peers()->by_names(names);
    if (caller.peers.empty()) {
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      log_refusal("gRPC: refused " + context.peer() + ": its certificate (subjectAltName " +
                  (list.empty() ? "none" : list) + ") names no configured peer");
      return Err{grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                              "your certificate names no peer configured here")};
    }
    return caller;
  }
  const auto source = parse_grpc_peer(context.peer());
  if (source) caller = peers()->by_address(*source);
  if (caller.peers.empty()) {
    log_refusal("gRPC: refused " + context.peer() + " (insecure mode): not the address of a configured peer");
    return Err{grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "your address is no peer configured here")};
  }
  return caller;
}

grpc::Status GrpcService::RequestMultipleTunnelParams(grpc::ServerContext* context,
                                                      const psp_gateway::MultiTunnelRequest* request,
                                                      psp_gateway::MultiTunnelResponse* response) {
  // gRPC allocated the request for this call and frees it after we return; it is ours to wipe.
  auto* owned =
      const_cast<psp_gateway::MultiTunnelRequest*>(request);  // NOLINT(cppcoreguidelines-pro-type-const-cast)
  auto caller = identify(*context);
  if (!caller) {
    grpc_convert::wipe_keys(owned);
    return caller.error();
  }
  if (request->tunnels_size() == 0) {
    // A peer's connection warm-up (GrpcPeerClient::WarmUp): refused at once, changes nothing, and is not
    // an outcome worth counting or logging per peer.
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "a request for no tunnels");
  }
  const std::string what = "RequestMultipleTunnelParams (request " + std::to_string(request->request_id()) +
                           ", " + std::to_string(request->tunnels_size()) + " tunnel(s))";
  auto parsed = grpc_convert::from_proto(*request);
  grpc_convert::wipe_keys(owned);
  if (!parsed) return answered(*caller, what, to_grpc_status(parsed.error()));
  auto answer = manager_.handle_tunnel_request(*caller, parsed.value());
  if (!answer) return answered(*caller, what, to_grpc_status(answer.error()));
  grpc_convert::to_proto(answer.value(), response);
  return answered(*caller, what, grpc::Status::OK);
}

grpc::Status GrpcService::RequestKeyRotation(grpc::ServerContext* context,
                                             const psp_gateway::KeyRotationRequest* request,
                                             psp_gateway::KeyRotationResponse* response) {
  auto caller = identify(*context);
  if (!caller) return caller.error();
  const std::string what = "RequestKeyRotation (request " + std::to_string(request->request_id()) + ")";
  auto answer = manager_.handle_key_rotation(
      *caller, KeyRotationRequest{request->request_id(), request->issue_new_keys()});
  if (!answer) return answered(*caller, what, to_grpc_status(answer.error()));
  response->set_request_id(answer->request_id);
  return answered(*caller, what, grpc::Status::OK);
}

grpc::Status GrpcService::CloseTunnels(grpc::ServerContext* context,
                                       const psp_gateway::CloseTunnelsRequest* request,
                                       psp_gateway::CloseTunnelsResponse* response) {
  auto caller = identify(*context);
  if (!caller) return caller.error();
  const std::string what = "CloseTunnels (request " + std::to_string(request->request_id()) + ", " +
                           std::to_string(request->tunnels_size()) + " tunnel(s))";
  if (static_cast<std::size_t>(request->tunnels_size()) > kMaxClosePerRequest) {
    return answered(
        *caller, what,
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                     "more than " + std::to_string(kMaxClosePerRequest) + " tunnels in one request"));
  }
  CloseTunnelsRequest parsed{request->request_id(), {}};
  for (const auto& t : request->tunnels()) {
    auto src = net::IpAddr::parse(t.virt_src_ip());
    auto dst = net::IpAddr::parse(t.virt_dst_ip());
    if (!src || !dst) {
      return answered(
          *caller, what,
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "virt_src_ip/virt_dst_ip: not an address"));
    }
    parsed.tunnels.push_back({*src, *dst});
  }
  auto answer = manager_.handle_close_request(*caller, parsed);
  if (!answer) return answered(*caller, what, to_grpc_status(answer.error()));
  response->set_request_id(answer->request_id);
  response->set_closed(answer->closed);
  return answered(*caller, what, grpc::Status::OK);
}

CResult<std::unique_ptr<GrpcServer>> GrpcServer::start(const std::string& address, TunnelManager& manager,
                                                       GrpcServerOptions options) {
  std::shared_ptr<grpc::ServerCredentials> credentials =
      options.tls ? options.tls : grpc::InsecureServerCredentials();
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  for (auto& i : options.interceptors) interceptors.push_back(std::move(i));
  options.interceptors.clear();
  interceptors.push_back(std::make_unique<ResponseWipeFactory>());  // last: its POST hooks run first
  std::unique_ptr<GrpcServer> server(new GrpcServer(manager, std::move(options)));
  grpc::ServerBuilder builder;
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
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
