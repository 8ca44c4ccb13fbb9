#include "control/grpc_status.hpp"

#include <string>

namespace pspgw::control {

grpc::StatusCode to_grpc_code(ControlError e) {
  switch (e) {
    case ControlError::kInvalidArgument:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case ControlError::kNotFound:
      return grpc::StatusCode::NOT_FOUND;
    case ControlError::kAlreadyExists:
      return grpc::StatusCode::ALREADY_EXISTS;
    case ControlError::kPermissionDenied:
      return grpc::StatusCode::PERMISSION_DENIED;
    case ControlError::kResourceExhausted:
      return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case ControlError::kFailedPrecondition:
      return grpc::StatusCode::FAILED_PRECONDITION;
    case ControlError::kUnavailable:
      return grpc::StatusCode::UNAVAILABLE;
    case ControlError::kDeadlineExceeded:
      return grpc::StatusCode::DEADLINE_EXCEEDED;
    case ControlError::kUnimplemented:
      return grpc::StatusCode::UNIMPLEMENTED;
    case ControlError::kInternal:
      break;
  }
  return grpc::StatusCode::INTERNAL;
}

grpc::Status to_grpc_status(const Error& e) {
  return {to_grpc_code(e.code), e.message};
}

Error from_grpc_status(const grpc::Status& s, std::string_view peer) {
  ControlError code = ControlError::kInternal;
  switch (s.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      code = ControlError::kInvalidArgument;
      break;
    case grpc::StatusCode::NOT_FOUND:
      code = ControlError::kNotFound;
      break;
    case grpc::StatusCode::ALREADY_EXISTS:
      code = ControlError::kAlreadyExists;
      break;
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
      code = ControlError::kPermissionDenied;
      break;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      code = ControlError::kResourceExhausted;
      break;
    case grpc::StatusCode::FAILED_PRECONDITION:
      code = ControlError::kFailedPrecondition;
      break;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::CANCELLED:
      code = ControlError::kUnavailable;
      break;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      code = ControlError::kDeadlineExceeded;
      break;
    case grpc::StatusCode::UNIMPLEMENTED:
      code = ControlError::kUnimplemented;
      break;
    default:
      break;
  }
  return Error{code, std::string(peer) + ": " + s.error_message()};
}

}  // namespace pspgw::control
