#include "admin/server.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "admin/client.hpp"
#include "admin/commands.hpp"
#include "admin/testing/fake_handler.hpp"

namespace pspgw::admin {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/pspgw-admin-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

template <class Pred>
bool wait_for(Pred pred, std::chrono::milliseconds limit = 2000ms) {
  const auto end = Clock::now() + limit;
  while (!pred()) {
    if (Clock::now() > end) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

// A client that sends arbitrary bytes, for what AdminClient never sends.
class RawConn {
 public:
  explicit RawConn(const std::string& path) {
    auto fd = connect_unix(path, 1000ms);
    EXPECT_TRUE(fd.ok());
    if (fd) fd_ = std::move(*fd);
  }
  bool send(std::string_view bytes) {
    return ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  // The next line, or nullopt on EOF / error / timeout.
  std::optional<std::string> read_line(std::chrono::milliseconds limit = 2000ms) {
    const auto end = Clock::now() + limit;
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      if (!fill(end)) return std::nullopt;
    }
  }
  // True when the server closes the connection within `limit` (after any pending lines).
  bool closed_within(std::chrono::milliseconds limit) {
    const auto end = Clock::now() + limit;
    while (fill(end)) {
    }
    return closed_;
  }
  void close() { fd_.reset(); }

 private:
  bool fill(Clock::time_point end) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(end - Clock::now()).count();
    pollfd p{fd_.get(), POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    char chunk[4096];
    const ssize_t n = ::recv(fd_.get(), chunk, sizeof(chunk), 0);
    if (n <= 0) {
      closed_ = true;
      return false;
    }
    buf_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
  UniqueFd fd_;
  std::string buf_;
  bool closed_ = false;
};

class AdminServerTest : public ::testing::Test {
 protected:
  std::unique_ptr<AdminServer> start_server(AdminServerOptions opts = {}) {
    if (opts.path.empty()) opts.path = path_;
    opts.log = [this](std::string_view line) {
      std::lock_guard lock(log_mu_);
      logs_.emplace_back(line);
    };
    auto server = std::make_unique<AdminServer>(std::move(opts), handler_);
    auto st = server->start();
    EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().message);
    return server;
  }

  Reply call(std::string_view cmd, json args = json::object()) {
    auto client = AdminClient::connect(path_, 2000ms);
    EXPECT_TRUE(client.ok()) << (client.ok() ? "" : client.error().message);
    if (!client) return {};
    auto reply = client->call(Request{std::string(cmd), std::move(args)});
    EXPECT_TRUE(reply.ok()) << (reply.ok() ? "" : reply.error().message);
    return reply ? *reply : Reply{};
  }

  TempDir dir_;
  std::string path_ = dir_.path() + "/run/psp0.sock";
  testing::FakeHandler handler_;
  std::mutex log_mu_;
  std::vector<std::string> logs_;
};

TEST_F(AdminServerTest, EveryCommandRoundTrips) {
  auto server = start_server();
  const std::pair<std::string_view, json> expected[] = {
      {cmd::kStatus, testing::fake_status()},
      {cmd::kTunnels, testing::fake_tunnels()},
      {cmd::kCounters, testing::fake_counters()},
      {cmd::kPeers, testing::fake_peers()},
  };
  for (const auto& [name, result] : expected) {
    Reply r = call(name);
    EXPECT_TRUE(r.ok) << name << ": " << r.error;
    EXPECT_EQ(r.result, result) << name;
  }
  Reply mermaid = call(cmd::kPipeline, {{"format", "mermaid"}});
  ASSERT_TRUE(mermaid.ok);
  EXPECT_EQ(mermaid.result.get<std::string>(), testing::kFakeMermaid);
  Reply dump = call(cmd::kPipeline, {{"format", "json"}});
  ASSERT_TRUE(dump.ok);
  EXPECT_EQ(dump.result["pipes"][0]["name"], "ROOT");
  Reply rotated = call(cmd::kRotateKeys, {{"issue_new_keys", true}});
  ASSERT_TRUE(rotated.ok);
  EXPECT_EQ(rotated.result["generation"], 4);
  EXPECT_EQ(rotated.result["issued_new_keys"], true);
  EXPECT_EQ(handler_.calls.load(), 7);
  EXPECT_EQ(server->stats().requests, 7u);
}

TEST_F(AdminServerTest, ErrorsAreTypedOnTheWireAndTheConnectionSurvives) {
  auto server = start_server();
  auto client = AdminClient::connect(path_, 2000ms);
  ASSERT_TRUE(client.ok());
  const std::pair<Request, std::string_view> cases[] = {
      {{"no-such-command"}, "unknown_command"},
      {{"pipeline", {{"format", "svg"}}}, "bad_args"},
      {{"rotate-keys", {{"issue_new_keys", "yes"}}}, "bad_args"},  // json type_error in the handler
      {{"sleep", {}}, "bad_args"},                                 // args.at("ms"): missing
      {{"fail"}, "failed"},
      {{"throw"}, "internal"},
  };
  for (const auto& [req, code] : cases) {
    auto r = client->call(req);
    ASSERT_TRUE(r.ok()) << req.cmd;
    EXPECT_FALSE(r->ok) << req.cmd;
    EXPECT_EQ(r->code, code) << req.cmd;
    EXPECT_FALSE(r->error.empty()) << req.cmd;
  }
  auto after = client->call(Request{"status"});
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->ok);
  std::lock_guard lock(log_mu_);
  ASSERT_EQ(logs_.size(), 1u) << "only the handler's exception is logged";
  EXPECT_NE(logs_[0].find("boom"), std::string::npos);
}

TEST_F(AdminServerTest, MalformedLineIsBadRequestAndTheConnectionSurvives) {
  auto server = start_server();
  RawConn conn(path_);
  ASSERT_TRUE(conn.send("{\"cmd\": \"status\"\n"));
  auto bad = conn.read_line();
  ASSERT_TRUE(bad.has_value());
  auto reply = parse_reply(*bad);
  ASSERT_TRUE(reply.ok());
  EXPECT_FALSE(reply->ok);
  EXPECT_EQ(reply->code, "bad_request");
  EXPECT_EQ(handler_.calls.load(), 0);
  ASSERT_TRUE(conn.send("{\"cmd\": \"status\"}\r\n"));  // CRLF tolerated
  auto good = conn.read_line();
  ASSERT_TRUE(good.has_value());
  EXPECT_EQ(json::parse(*good)["result"], testing::fake_status());
}

TEST_F(AdminServerTest, PipelinedRequestsAreAnsweredInOrder) {
  auto server = start_server();
  RawConn conn(path_);
  ASSERT_TRUE(conn.send("{\"cmd\":\"status\"}\n{\"cmd\":\"nope\"}\n{\"cmd\":\"peers\"}\n"));
  auto a = conn.read_line(), b = conn.read_line(), c = conn.read_line();
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(json::parse(*a)["result"], testing::fake_status());
  EXPECT_EQ(json::parse(*b)["code"], "unknown_command");
  EXPECT_EQ(json::parse(*c)["result"], testing::fake_peers());
}

TEST_F(AdminServerTest, LineOfExactlyTheLimitIsServed) {
  auto server = start_server();
  std::string line = R"({"cmd":"status","args":{"pad":""}})";
  line.insert(line.size() - 3, kMaxRequestLine - line.size(), 'x');
  ASSERT_EQ(line.size(), kMaxRequestLine);
  RawConn conn(path_);
  ASSERT_TRUE(conn.send(line + "\n"));
  auto r = conn.read_line();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(json::parse(*r)["ok"], true);
}

TEST_F(AdminServerTest, OversizeLineIsAnsweredAndClosed) {
  auto server = start_server();
  RawConn conn(path_);
  // No newline at all: the server must not wait for one (nor buffer without bound).
  ASSERT_TRUE(conn.send(std::string(kMaxRequestLine + 100, 'x')));
  auto r = conn.read_line();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(json::parse(*r)["code"], "request_too_long");
  EXPECT_TRUE(conn.closed_within(2000ms));
  EXPECT_EQ(handler_.calls.load(), 0);
  EXPECT_TRUE(call(cmd::kStatus).ok) << "the server carries on";
}

TEST_F(AdminServerTest, OversizeLineWithItsNewlineInOneWriteIsRefusedToo) {
  auto server = start_server();
  RawConn conn(path_);
  ASSERT_TRUE(conn.send(std::string(kMaxRequestLine + 1, ' ') + "{\"cmd\":\"status\"}\n"));
  auto r = conn.read_line();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(json::parse(*r)["code"], "request_too_long");
  EXPECT_TRUE(conn.closed_within(2000ms));
}

TEST_F(AdminServerTest, ClientGoneMidRequestIsDroppedUnanswered) {
  auto server = start_server();
  {
    RawConn conn(path_);
    ASSERT_TRUE(conn.send("{\"cmd\":\"sta"));
    ASSERT_TRUE(wait_for([&] { return server->stats().accepted == 1; }));
  }
  ASSERT_TRUE(wait_for([&] { return server->stats().clients == 0; }));
  EXPECT_EQ(handler_.calls.load(), 0);
  EXPECT_EQ(server->stats().timeouts, 0u);
  EXPECT_TRUE(call(cmd::kStatus).ok);
}

TEST_F(AdminServerTest, PartialRequestTimesOut) {
  auto server = start_server({.read_timeout = 150ms});
  RawConn conn(path_);
  const auto t0 = Clock::now();
  ASSERT_TRUE(conn.send("{\"cmd\":"));
  auto r = conn.read_line(3000ms);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(json::parse(*r)["code"], "timeout");
  EXPECT_TRUE(conn.closed_within(1000ms));
  EXPECT_GE(Clock::now() - t0, 150ms);
  EXPECT_EQ(server->stats().timeouts, 1u);
}

TEST_F(AdminServerTest, TricklingBytesDoNotExtendTheReadTimeout) {
  auto server = start_server({.read_timeout = 300ms});
  RawConn conn(path_);
  const auto t0 = Clock::now();
  for (int i = 0; i < 20 && conn.send("x"); ++i) std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(conn.closed_within(2000ms));
  EXPECT_LT(Clock::now() - t0, 1500ms);
}

TEST_F(AdminServerTest, IdleClientIsClosed) {
  auto server = start_server({.idle_timeout = 150ms});
  RawConn conn(path_);
  EXPECT_TRUE(conn.closed_within(3000ms));
  EXPECT_FALSE(conn.read_line(10ms).has_value()) << "nothing to answer, nothing sent";
  EXPECT_EQ(server->stats().timeouts, 1u);
}

TEST_F(AdminServerTest, ConcurrentClientsAreAllServed) {
  auto server = start_server();
  constexpr int kClients = 8, kCalls = 50;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&] {
      auto client = AdminClient::connect(path_, 5000ms);
      if (!client) return;
      for (int i = 0; i < kCalls; ++i) {
        auto r = client->call(Request{i % 2 ? "counters" : "tunnels"});
        if (r && r->ok && r->result.is_object()) ok++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kClients * kCalls);
  EXPECT_EQ(server->stats().rejected, 0u);
}

TEST_F(AdminServerTest, ClientBeyondTheLimitIsToldBusy) {
  auto server = start_server({.max_clients = 3});
  std::vector<AdminClient> held;
  for (int i = 0; i < 3; ++i) {
    auto c = AdminClient::connect(path_, 1000ms);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c->call(Request{"status"}).ok());  // accepted and served
    held.push_back(std::move(*c));
  }
  auto extra = AdminClient::connect(path_, 1000ms);
  ASSERT_TRUE(extra.ok());
  auto r = extra->call(Request{"status"});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->ok);
  EXPECT_EQ(r->code, "busy");
  EXPECT_EQ(server->stats().rejected, 1u);
  held.pop_back();
  ASSERT_TRUE(wait_for([&] { return server->stats().clients == 2; }));
  EXPECT_TRUE(call(cmd::kStatus).ok) << "a freed slot is usable again";
}

TEST_F(AdminServerTest, StopWithClientsConnectedIsPromptAndRemovesTheSocket) {
  auto server = start_server({.read_timeout = 30000ms, .idle_timeout = 30000ms});
  std::vector<std::unique_ptr<RawConn>> conns;
  for (int i = 0; i < 8; ++i) {
    conns.push_back(std::make_unique<RawConn>(path_));
    if (i % 2 == 0) {
      ASSERT_TRUE(conns.back()->send("{\"cmd\":\"sta"));  // half of them mid-request
    }
  }
  ASSERT_TRUE(wait_for([&] { return server->stats().clients == 8; }));
  const auto t0 = Clock::now();
  server->stop();
  EXPECT_LT(Clock::now() - t0, 500ms) << "stop() must not wait for client timeouts";
  EXPECT_FALSE(std::filesystem::exists(path_));
  for (auto& c : conns) EXPECT_TRUE(c->closed_within(1000ms));
  server->stop();  // idempotent
  EXPECT_EQ(handler_.calls.load(), 0);
}

TEST_F(AdminServerTest, StopWaitsOnlyForTheHandlerCallInProgress) {
  auto server = start_server();
  std::thread slow([&] { call("sleep", {{"ms", 300}}); });
  ASSERT_TRUE(wait_for([&] { return handler_.calls.load() == 1; }));
  const auto t0 = Clock::now();
  server->stop();
  EXPECT_LT(Clock::now() - t0, 1000ms);
  slow.join();
}

TEST_F(AdminServerTest, ClientTimesOutOnASlowServer) {
  auto server = start_server();
  auto client = AdminClient::connect(path_, 100ms);
  ASSERT_TRUE(client.ok());
  const auto t0 = Clock::now();
  auto r = client->call(Request{"sleep", {{"ms", 400}}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ClientErrc::kTimeout);
  EXPECT_LT(Clock::now() - t0, 350ms);
}

TEST_F(AdminServerTest, CreatesTheDirectoryAndSetsModes) {
  auto server = start_server();
  struct stat st {};
  ASSERT_EQ(::stat(std::filesystem::path(path_).parent_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0660u);
}

TEST_F(AdminServerTest, StaleSocketFromADeadServerIsReplaced) {
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path());
  {
    auto dead = listen_unix(path_);  // bound and listening, then closed without unlinking: a crashed daemon
    ASSERT_TRUE(dead.ok());
  }
  ASSERT_TRUE(std::filesystem::is_socket(path_));
  auto server = start_server();
  EXPECT_TRUE(call(cmd::kStatus).ok);
}

TEST_F(AdminServerTest, LiveSocketIsRefusedAndLeftAlone) {
  auto first = start_server();
  AdminServer second(path_, handler_);
  auto st = second.start();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ListenErrc::kInUse);
  EXPECT_EQ(st.error().message, "another gateway is running on " + path_);
  second.stop();
  EXPECT_TRUE(std::filesystem::exists(path_)) << "the loser must not unlink the winner's socket";
  EXPECT_TRUE(call(cmd::kStatus).ok);
}

TEST_F(AdminServerTest, StopLeavesASocketItDoesNotOwn) {
  auto server = start_server();
  std::filesystem::remove(path_);
  auto replacement = listen_unix(path_);  // someone else's socket now lives at the path
  ASSERT_TRUE(replacement.ok());
  server->stop();
  EXPECT_TRUE(std::filesystem::is_socket(path_));
}

TEST_F(AdminServerTest, NonSocketFileAndOverlongPathAreErrors) {
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path());
  std::ofstream(path_) << "not a socket";
  AdminServer a(path_, handler_);
  auto st = a.start();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ListenErrc::kSystem);
  EXPECT_NE(st.error().message.find("not a socket"), std::string::npos);
  EXPECT_TRUE(std::filesystem::is_regular_file(path_)) << "never removes what is not a socket";

  AdminServer b(dir_.path() + "/" + std::string(120, 'p') + ".sock", handler_);
  auto st2 = b.start();
  ASSERT_FALSE(st2.ok());
  EXPECT_NE(st2.error().message.find("longer than"), std::string::npos);
}

TEST_F(AdminServerTest, ClientErrorsNameTheCause) {
  auto missing = AdminClient::connect(dir_.path() + "/none.sock", 500ms);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ClientErrc::kNoServer);

  auto server = start_server();
  ASSERT_EQ(::chmod(path_.c_str(), 0600), 0);
  if (::geteuid() != 0) {
    ASSERT_EQ(::chmod(path_.c_str(), 0), 0);
    auto denied = AdminClient::connect(path_, 500ms);
    ASSERT_FALSE(denied.ok());
    EXPECT_EQ(denied.error().code, ClientErrc::kPermission);
    return;
  }
  // As root permissions are not checked: try as nobody in a child.
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
    auto denied = AdminClient::connect(path_, 500ms);
    ::_exit(!denied.ok() && denied.error().code == ClientErrc::kPermission ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace pspgw::admin
