// Admin-channel errors: one typed code plus a human message. Handlers and the server speak only these;
// protocol.cpp maps them to the wire ({"ok": false, "code": ..., "error": ...}) in exactly one function.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace pspgw::admin {

enum class AdminErrc : uint8_t {
  kBadRequest,      // the line is not a JSON object {"cmd": string, "args": object}
  kRequestTooLong,  // the line exceeds kMaxRequestLine (the connection is then closed)
  kUnknownCommand,  // no such command
  kBadArgs,         // the command exists but its args are missing, mistyped or out of range
  kFailed,          // the command was valid but could not be carried out (the message says why)
  kTimeout,         // the client sent a partial line and then nothing for the read timeout
  kBusy,            // too many clients connected; try again
  kInternal,        // the handler broke its contract (threw); a bug, reported rather than hidden
};
std::string_view to_string(AdminErrc e);  // the wire's "code": "bad_request", "unknown_command", ...

struct AdminError {
  AdminErrc code = AdminErrc::kInternal;
  std::string message;
};

inline Err<AdminError> admin_fail(AdminErrc code, std::string message) {
  return Err{AdminError{code, std::move(message)}};
}

}  // namespace pspgw::admin
