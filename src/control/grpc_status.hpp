// The ONE mapping between ControlError and gRPC status codes (style rule 9), both directions.
#pragma once

#include <grpcpp/support/status.h>

#include "control/error.hpp"

namespace pspgw::control {

// Server side: a core error becomes the RPC's status (spec §2: failure is the status, not a field).
grpc::StatusCode to_grpc_code(ControlError e);
grpc::Status to_grpc_status(const Error& e);
// Client side: a peer's status (or the channel's own UNAVAILABLE / DEADLINE_EXCEEDED) becomes a core error.
Error from_grpc_status(const grpc::Status& s, std::string_view peer);

}  // namespace pspgw::control
