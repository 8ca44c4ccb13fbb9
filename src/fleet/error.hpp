// Fleet-mode errors: one typed code plus a human message (the store, the records, the policy).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace pspgw::fleet {

enum class FleetError : uint8_t {
  kBadRecord,         // a host record or policy document that does not parse or is inconsistent
  kUnavailable,       // no etcd endpoint answered
  kPermissionDenied,  // etcd refused (RBAC: a key outside this host's role)
  kCompacted,         // a watch asked for a revision etcd has compacted away: resync
  kLeaseLost,         // the lease expired or was revoked: register again
  kInternal,          // anything else etcd answered
};
std::string_view to_string(FleetError e);

struct Error {
  FleetError code = FleetError::kInternal;
  std::string message;
};

inline Err<Error> fail(FleetError code, std::string message) {
  return Err{Error{code, std::move(message)}};
}

template <class T>
using FResult = Result<T, Error>;
using FStatus = Status<Error>;

}  // namespace pspgw::fleet
