#include "admin/protocol.hpp"

#include <gtest/gtest.h>

#include <set>

namespace pspgw::admin {
namespace {

using nlohmann::json;

TEST(AdminProtocol, ParsesRequestWithAndWithoutArgs) {
  auto r = parse_request(R"({"cmd":"pipeline","args":{"format":"json"}})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->cmd, "pipeline");
  EXPECT_EQ(r->args, json({{"format", "json"}}));

  for (const char* line : {R"({"cmd":"status"})", R"({"cmd":"status","args":null})"}) {
    auto s = parse_request(line);
    ASSERT_TRUE(s.ok()) << line;
    EXPECT_EQ(s->cmd, "status");
    EXPECT_TRUE(s->args.is_object());
    EXPECT_TRUE(s->args.empty());
  }
}

TEST(AdminProtocol, RejectsMalformedRequestsAsBadRequest) {
  for (const char* line :
       {"", "{", "not json", "[1,2]", "\"status\"", R"({"args":{}})", R"({"cmd":7})", R"({"cmd":""})",
        R"({"cmd":"status","args":[1]})", R"({"cmd":"status","args":"x"})"}) {
    auto r = parse_request(line);
    ASSERT_FALSE(r.ok()) << line;
    EXPECT_EQ(r.error().code, AdminErrc::kBadRequest) << line;
    EXPECT_FALSE(r.error().message.empty());
  }
}

TEST(AdminProtocol, ResponsesRoundTripThroughTheClientParser) {
  const std::string ok_line = encode_response(json{{"tunnels", json::array()}});
  ASSERT_EQ(ok_line.back(), '\n');
  EXPECT_EQ(ok_line.find('\n'), ok_line.size() - 1) << "one line, whatever the result";
  auto ok = parse_reply(std::string_view(ok_line).substr(0, ok_line.size() - 1));
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->ok);
  EXPECT_EQ(ok->result, json({{"tunnels", json::array()}}));

  const std::string err_line = encode_response(admin_fail(AdminErrc::kUnknownCommand, "unknown command 'x'"));
  EXPECT_EQ(json::parse(err_line),
            json({{"ok", false}, {"code", "unknown_command"}, {"error", "unknown command 'x'"}}));
  auto err = parse_reply(err_line);
  ASSERT_TRUE(err.ok());
  EXPECT_FALSE(err->ok);
  EXPECT_EQ(err->code, "unknown_command");
  EXPECT_EQ(err->error, "unknown command 'x'");
}

TEST(AdminProtocol, MultiLineStringsStayOnOneLine) {
  const std::string line = encode_response(json("flowchart LR\n  A --> B\n"));
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  auto r = parse_reply(line);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->result.get<std::string>(), "flowchart LR\n  A --> B\n");
}

TEST(AdminProtocol, InvalidUtf8FromAHandlerStillYieldsALine) {
  const std::string line = encode_response(json(std::string("bad \xff byte")));
  EXPECT_TRUE(parse_reply(line).ok());
}

TEST(AdminProtocol, RequestEncodingIsParsedBack) {
  const std::string line = encode_request(Request{"rotate-keys", {{"issue_new_keys", true}}});
  ASSERT_EQ(line.back(), '\n');
  auto r = parse_request(std::string_view(line).substr(0, line.size() - 1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->cmd, "rotate-keys");
  EXPECT_EQ(r->args, json({{"issue_new_keys", true}}));
}

TEST(AdminProtocol, RejectsInvalidReplies) {
  EXPECT_FALSE(parse_reply("").ok());
  EXPECT_FALSE(parse_reply("[]").ok());
  EXPECT_FALSE(parse_reply(R"({"result":1})").ok());
  EXPECT_FALSE(parse_reply(R"({"ok":"yes"})").ok());
}

TEST(AdminProtocol, AnErrorReplyWithoutAReasonStillCarriesAMessage) {
  // Found by fuzz_admin_request: an empty "error" text came through as an empty message.
  for (const char* line : {R"({"ok": false, "code": "unknown_command", "error": ""})",
                           R"({"ok": false, "error": 7})", R"({"ok": false})"}) {
    auto r = parse_reply(line);
    ASSERT_TRUE(r.ok()) << line;
    EXPECT_FALSE(r->ok);
    EXPECT_EQ(r->error, "unspecified error") << line;
  }
}

TEST(AdminProtocol, EveryErrorCodeHasADistinctWireName) {
  std::set<std::string_view> names;
  for (int i = 0; i <= static_cast<int>(AdminErrc::kInternal); ++i)
    names.insert(to_string(static_cast<AdminErrc>(i)));
  EXPECT_EQ(names.size(), static_cast<std::size_t>(AdminErrc::kInternal) + 1);
}

TEST(AdminProtocol, DefaultSocketPath) {
  EXPECT_EQ(default_socket_path(), "/run/psp-gateway/psp0.sock");
  EXPECT_EQ(default_socket_path("gw1"), "/run/psp-gateway/gw1.sock");
}

}  // namespace
}  // namespace pspgw::admin
