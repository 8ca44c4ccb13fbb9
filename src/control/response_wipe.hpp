// Zeroes the key bytes of each MultiTunnelResponse once gRPC has sent it. The synchronous API serialises a
// response after the handler has returned, so the handler cannot wipe it; a server interceptor sees the
// message before it is sent (PRE_SEND_MESSAGE) and after (POST_SEND_MESSAGE), while the handler's response
// object is still alive. What it cannot reach: the serialised copy in gRPC's own buffers, which gRPC frees.
#pragma once

#include <grpcpp/support/server_interceptor.h>

namespace pspgw::control {

class ResponseWipeFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override;
};

}  // namespace pspgw::control
