#include "admin/protocol.hpp"

namespace pspgw::admin {

using nlohmann::json;

std::string_view to_string(AdminErrc e) {
  switch (e) {
    case AdminErrc::kBadRequest:
      return "bad_request";
    case AdminErrc::kRequestTooLong:
      return "request_too_long";
    case AdminErrc::kUnknownCommand:
      return "unknown_command";
    case AdminErrc::kBadArgs:
      return "bad_args";
    case AdminErrc::kFailed:
      return "failed";
    case AdminErrc::kTimeout:
      return "timeout";
    case AdminErrc::kBusy:
      return "busy";
    case AdminErrc::kInternal:
      return "internal";
  }
  return "internal";
}

std::string default_socket_path(std::string_view instance) {
  std::string path(kSocketDir);
  path += '/';
  path += instance;
  path += ".sock";
  return path;
}

Result<Request, AdminError> parse_request(std::string_view line) {
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return admin_fail(AdminErrc::kBadRequest, "request is not valid JSON");
  if (!j.is_object()) return admin_fail(AdminErrc::kBadRequest, "request must be a JSON object");
  auto cmd = j.find("cmd");
  if (cmd == j.end() || !cmd->is_string() || cmd->get_ref<const std::string&>().empty()) {
    return admin_fail(AdminErrc::kBadRequest, "request needs \"cmd\": a non-empty string");
  }
  Request req{cmd->get<std::string>()};
  if (auto args = j.find("args"); args != j.end() && !args->is_null()) {
    if (!args->is_object()) return admin_fail(AdminErrc::kBadRequest, "\"args\" must be a JSON object");
    req.args = std::move(*args);
  }
  return req;
}

std::string encode_response(const Result<json, AdminError>& r) {
  json j;
  if (r.ok()) {
    j = {{"ok", true}, {"result", r.value()}};
  } else {
    j = {{"ok", false}, {"code", to_string(r.error().code)}, {"error", r.error().message}};
  }
  // Replace, not throw, on invalid UTF-8 in a handler's strings: the client still gets a line.
  std::string line = j.dump(-1, ' ', false, json::error_handler_t::replace);
  line += '\n';
  return line;
}

std::string encode_request(const Request& req) {
  std::string line =
      json{{"cmd", req.cmd}, {"args", req.args}}.dump(-1, ' ', false, json::error_handler_t::replace);
  line += '\n';
  return line;
}

Result<Reply, std::string> parse_reply(std::string_view line) {
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Err{std::string("response is not a JSON object")};
  auto ok = j.find("ok");
  if (ok == j.end() || !ok->is_boolean()) return Err{std::string("response lacks \"ok\": a boolean")};
  Reply reply;
  reply.ok = ok->get<bool>();
  if (reply.ok) {
    if (auto res = j.find("result"); res != j.end()) reply.result = std::move(*res);
    return reply;
  }
  auto err = j.find("error");
  // A server that names no reason (no text, not a string, or an empty one) still gets a message the
  // client can print.
  if (err != j.end() && err->is_string() && !err->get_ref<const std::string&>().empty())
    reply.error = err->get<std::string>();
  else
    reply.error = "unspecified error";
  auto code = j.find("code");
  reply.code = code != j.end() && code->is_string() ? code->get<std::string>() : "";
  return reply;
}

}  // namespace pspgw::admin
