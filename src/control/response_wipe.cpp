#include "control/response_wipe.hpp"

#include <cstring>

#include "control/grpc_convert.hpp"
#include "psp_gateway.pb.h"

namespace pspgw::control {

namespace {

using grpc::experimental::InterceptionHookPoints;

constexpr const char* kTunnelMethod = "/psp_gateway.PSP_Gateway/RequestMultipleTunnelParams";

class ResponseWipe final : public grpc::experimental::Interceptor {
 public:
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE)) {
      sent_ = methods->GetSendMessage();  // null if the message was handed over already serialised
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_SEND_MESSAGE) && sent_ != nullptr) {
      // The handler's response object: gRPC gave it to us as const, but it is the handler's own and lives
      // until the call's operations complete, i.e. past this hook.
      auto* response = static_cast<psp_gateway::MultiTunnelResponse*>(const_cast<void*>(sent_));  // NOLINT
      grpc_convert::wipe_keys(response);
      sent_ = nullptr;
    }
    methods->Proceed();
  }

 private:
  const void* sent_ = nullptr;
};

}  // namespace

grpc::experimental::Interceptor* ResponseWipeFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  // Only the tunnel call carries keys; gRPC owns (and deletes) the interceptor.
  return std::strcmp(info->method(), kTunnelMethod) == 0 ? new ResponseWipe : nullptr;  // NOLINT
}

}  // namespace pspgw::control
