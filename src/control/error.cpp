#include "control/error.hpp"

#include "control/data_plane.hpp"

namespace pspgw::control {

std::string_view to_string(ControlError e) {
  switch (e) {
    case ControlError::kInvalidArgument:
      return "invalid argument";
    case ControlError::kNotFound:
      return "not found";
    case ControlError::kAlreadyExists:
      return "already exists";
    case ControlError::kPermissionDenied:
      return "permission denied";
    case ControlError::kResourceExhausted:
      return "resource exhausted";
    case ControlError::kFailedPrecondition:
      return "failed precondition";
    case ControlError::kUnavailable:
      return "unavailable";
    case ControlError::kDeadlineExceeded:
      return "deadline exceeded";
    case ControlError::kUnimplemented:
      return "unimplemented";
    case ControlError::kInternal:
      return "internal";
  }
  return "?";
}

std::string_view to_string(DataPlaneError e) {
  switch (e) {
    case DataPlaneError::kNoSpace:
      return "table full";
    case DataPlaneError::kExists:
      return "entry exists";
    case DataPlaneError::kNotFound:
      return "no such entry";
    case DataPlaneError::kRejected:
      return "rejected by the data plane";
  }
  return "?";
}

}  // namespace pspgw::control
