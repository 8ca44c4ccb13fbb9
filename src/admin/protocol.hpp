// The admin wire protocol (tools/pspctl/README.md): newline-delimited JSON over a Unix stream socket.
//
//   request:  {"cmd": "<name>", "args": {...}}\n          ("args" optional, an object)
//   response: {"ok": true, "result": <any>}\n
//             {"ok": false, "code": "<AdminErrc>", "error": "<message>"}\n
//
// One response per request, in order. Both directions are declared here once; the server and the client
// both use these functions, so the two ends cannot drift apart.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "admin/error.hpp"
#include "base/result.hpp"

namespace pspgw::admin {

// A request line longer than this (without its '\n') is answered kRequestTooLong and the connection closed.
inline constexpr std::size_t kMaxRequestLine = 64 * 1024;
// The client refuses a response line longer than this (a pipeline dump of a large table fits easily).
inline constexpr std::size_t kMaxResponseLine = 64 * 1024 * 1024;

inline constexpr std::string_view kDefaultInstance = "psp0";
inline constexpr std::string_view kSocketDir = "/run/psp-gateway";

// "/run/psp-gateway/<instance>.sock".
std::string default_socket_path(std::string_view instance = kDefaultInstance);

struct Request {
  std::string cmd;
  nlohmann::json args = nlohmann::json::object();
};

// Server side: one line (without '\n') -> a request, or kBadRequest naming what is wrong.
Result<Request, AdminError> parse_request(std::string_view line);
// Server side: the response line, '\n' included. The one place where AdminError meets the wire.
std::string encode_response(const Result<nlohmann::json, AdminError>& r);

// Client side.
std::string encode_request(const Request& req);  // '\n' included
// json() is not declared noexcept, but a null json never allocates.
struct Reply {  // NOLINT(bugprone-exception-escape)
  bool ok = false;
  nlohmann::json result;  // when ok
  std::string code;       // when !ok: the AdminErrc name ("unknown_command", ...)
  std::string error;      // when !ok
};
// A response line -> Reply, or a message saying why the line is not a valid response.
Result<Reply, std::string> parse_reply(std::string_view line);

}  // namespace pspgw::admin
