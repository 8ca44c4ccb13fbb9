// AdminHandler: what the daemon implements to answer the admin channel (tools/pspctl/README.md lists the
// commands and the JSON shape of each result).
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "admin/error.hpp"
#include "base/result.hpp"

namespace pspgw::admin {

using AdminResult = Result<nlohmann::json, AdminError>;

class AdminHandler {
 public:
  virtual ~AdminHandler() = default;

  // Called on the admin thread only, one request at a time, never on a packet worker. `args` is always
  // a JSON object (empty when the client sent none). Return the result, or AdminErrc::kUnknownCommand /
  // kBadArgs / kFailed. It should return promptly: while it runs, other admin clients wait (the data
  // path does not). Exceptions are mapped in one place (AdminServer): a nlohmann::json::exception (from
  // args.at("x") or get<T>() on a missing or mistyped argument) is answered kBadArgs; any other is
  // answered kInternal and logged.
  virtual AdminResult handle(std::string_view cmd, const nlohmann::json& args) = 0;
};

}  // namespace pspgw::admin
