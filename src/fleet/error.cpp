#include "fleet/error.hpp"

namespace pspgw::fleet {

std::string_view to_string(FleetError e) {
  switch (e) {
    case FleetError::kBadRecord:
      return "bad record";
    case FleetError::kUnavailable:
      return "unavailable";
    case FleetError::kPermissionDenied:
      return "permission denied";
    case FleetError::kCompacted:
      return "compacted";
    case FleetError::kLeaseLost:
      return "lease lost";
    case FleetError::kInternal:
      return "internal";
  }
  return "unknown";
}

}  // namespace pspgw::fleet
