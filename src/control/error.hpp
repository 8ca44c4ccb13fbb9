// Control-plane errors: one typed code plus a human message. The policy core speaks only these;
// the gRPC adapter maps them to grpc::StatusCode in exactly one function (grpc_status.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace pspgw::control {

// Named after the gRPC codes they map to (spec §2: the status is the RPC's result).
enum class ControlError : uint8_t {
  kInvalidArgument,     // malformed request / response field
  kNotFound,            // no such VIP pair / peer / session
  kAlreadyExists,       // an exchange for the pair is in flight or the pair is connected
  kPermissionDenied,    // the config does not allow this VIP pair for this peer
  kResourceExhausted,   // SPIs, tunnel slots or data-plane entries exhausted
  kFailedPrecondition,  // e.g. retrying a pair before its backoff expired
  kUnavailable,         // the peer could not be reached
  kDeadlineExceeded,    // the peer did not answer in time
  kUnimplemented,       // the peer does not implement the call
  kInternal,            // data-plane install failure, protocol violation by the peer
};
std::string_view to_string(ControlError e);

struct Error {
  ControlError code = ControlError::kInternal;
  std::string message;
};

inline Err<Error> fail(ControlError code, std::string message) {
  return Err{Error{code, std::move(message)}};
}

template <class T>
using CResult = Result<T, Error>;
using CStatus = Status<Error>;

}  // namespace pspgw::control
