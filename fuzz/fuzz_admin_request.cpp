// The admin protocol's parsers on arbitrary lines (src/admin/protocol.hpp): never throw; a parsed request
// has a non-empty cmd and object args and survives encode_request -> parse_request unchanged; a parsed
// reply either carries a result or an error text.
#include <string_view>

#include "admin/protocol.hpp"
#include "fuzz/fuzz_target.hpp"

PSPGW_FUZZ_TARGET(admin_request) {
  using namespace pspgw::admin;
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  auto req = parse_request(line);
  if (req) {
    PSPGW_FUZZ_CHECK(!req->cmd.empty() && req->args.is_object());
    std::string again = encode_request(*req);
    PSPGW_FUZZ_CHECK(!again.empty() && again.back() == '\n');
    again.pop_back();
    auto back = parse_request(again);
    PSPGW_FUZZ_CHECK(back.ok() && back->cmd == req->cmd && back->args == req->args);
  } else {
    PSPGW_FUZZ_CHECK(req.error().code == AdminErrc::kBadRequest && !req.error().message.empty());
    // What the server sends back for it is itself a valid response line.
    std::string resp = encode_response(pspgw::Err{req.error()});
    resp.pop_back();
    auto reply = parse_reply(resp);
    PSPGW_FUZZ_CHECK(reply.ok() && !reply->ok && reply->code == "bad_request");
  }
  auto reply = parse_reply(line);  // the client's side of the same protocol
  if (reply && !reply->ok) PSPGW_FUZZ_CHECK(!reply->error.empty());
  return 0;
}
