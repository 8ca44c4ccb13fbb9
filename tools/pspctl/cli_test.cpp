// Runs the built pspctl (PSPCTL_BIN) against an AdminServer with the FakeHandler in this process:
// exit codes, stdout and stderr, as a user or a script sees them.
#include <gtest/gtest.h>
#include <stdio.h>  // popen
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "admin/server.hpp"
#include "admin/testing/fake_handler.hpp"
#include "render.hpp"

namespace pspgw::pspctl {
namespace {

using nlohmann::json;
namespace fake = admin::testing;

struct Outcome {
  int code = -1;
  std::string out, err;
};

class PspctlCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pspctl-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    sock_ = dir_ + "/gw.sock";
    server_ = std::make_unique<admin::AdminServer>(sock_, handler_);
    ASSERT_TRUE(server_->start().ok());
  }
  void TearDown() override {
    server_->stop();
    std::filesystem::remove_all(dir_);
  }

  // `args` is shell syntax (quoted by the caller). -s points at this test's server unless `sock` is false.
  Outcome pspctl(const std::string& args, bool sock = true, const std::string& prefix = "") {
    const std::string err_file = dir_ + "/stderr";
    const std::string cmd =
        prefix + PSPCTL_BIN + (sock ? " -s " + sock_ : std::string()) + " " + args + " 2>" + err_file;
    Outcome r;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return r;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof(buf), p)) > 0;) r.out.append(buf, n);
    const int status = ::pclose(p);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::stringstream err;
    err << std::ifstream(err_file).rdbuf();
    r.err = err.str();
    return r;
  }

  std::string dir_, sock_;
  fake::FakeHandler handler_;
  std::unique_ptr<admin::AdminServer> server_;
};

// pspctl sfc sends the verb's words as they were typed (the daemon parses them: sfc/verbs.hpp), a MATCH
// with blanks as one word and --fail-mode with its value.
TEST_F(PspctlCliTest, SfcSendsTheVerbsWords) {
  Outcome r =
      pspctl("--json sfc classifier-add pc1 vm2 entry-lport bi-directional c1 'ip4 && tcp.dst == 80'");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["argv"], json({"classifier-add", "pc1", "vm2", "entry-lport", "bi-directional",
                                              "c1", "ip4 && tcp.dst == 80"}));
  r = pspctl("--json sfc group-add pc1 pg1 --fail-mode open");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["argv"], json({"group-add", "pc1", "pg1", "--fail-mode", "open"}));
  r = pspctl("sfc show --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["argv"], json({"show"}));
  EXPECT_EQ(pspctl("sfc group-add pc1 pg1 --fail-mode sideways").code, 2);
}

TEST_F(PspctlCliTest, TablesAreTheRenderedResults) {
  const std::pair<const char*, std::string> cases[] = {
      {"tunnels", render_tunnels(fake::fake_tunnels())},
      {"counters", render_counters(fake::fake_counters())},
      {"peers", render_peers(fake::fake_peers())},
      {"status", render_fields(fake::fake_status())},
  };
  for (const auto& [cmd, expected] : cases) {
    Outcome r = pspctl(cmd);
    EXPECT_EQ(r.code, 0) << cmd << ": " << r.err;
    EXPECT_EQ(r.out, expected) << cmd;
    EXPECT_EQ(r.err, "") << cmd;
  }
  EXPECT_NE(pspctl("status").out.find("instance:"), std::string::npos);
}

TEST_F(PspctlCliTest, JsonFlagPrintsTheResultAnywhereOnTheLine) {
  for (const char* args : {"--json tunnels", "tunnels --json"}) {
    Outcome r = pspctl(args);
    ASSERT_EQ(r.code, 0) << args << ": " << r.err;
    EXPECT_EQ(json::parse(r.out), fake::fake_tunnels()) << args;
  }
}

TEST_F(PspctlCliTest, Pipeline) {
  Outcome mermaid = pspctl("pipeline");
  EXPECT_EQ(mermaid.code, 0);
  EXPECT_EQ(mermaid.out, fake::kFakeMermaid);
  Outcome dump = pspctl("pipeline --format json");
  EXPECT_EQ(dump.code, 0);
  EXPECT_EQ(json::parse(dump.out)["pipes"][1]["name"], "EGR_ACL");
  EXPECT_EQ(pspctl("pipeline --format svg").code, 2);
}

TEST_F(PspctlCliTest, RotateKeysPassesTheFlag) {
  Outcome plain = pspctl("rotate-keys");
  EXPECT_EQ(plain.code, 0);
  EXPECT_NE(plain.out.find("issued_new_keys:  false\n"), std::string::npos) << plain.out;
  Outcome issue = pspctl("rotate-keys --issue-new-keys --json");
  EXPECT_EQ(issue.code, 0);
  EXPECT_EQ(json::parse(issue.out)["issued_new_keys"], true);
  EXPECT_EQ(json::parse(issue.out)["generation"], 5);
}

TEST_F(PspctlCliTest, WatchRepeatsWithFreshRequests) {
  Outcome r = pspctl("counters --watch 0.05 --count 3 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream lines(r.out);
  int n = 0;
  for (std::string line; std::getline(lines, line); ++n) EXPECT_EQ(json::parse(line), fake::fake_counters());
  EXPECT_EQ(n, 3);
  EXPECT_EQ(handler_.calls.load(), 3);
  Outcome text = pspctl("counters --watch 0.05 --count 2");
  EXPECT_EQ(text.code, 0);
  EXPECT_NE(text.out.find("(every 0.05 s)"), std::string::npos);
}

// counters --watch without a value: every second; --interval sets the period; text mode adds each
// counter's change per second from the second round on.
TEST_F(PspctlCliTest, WatchShowsRatesPerSecond) {
  Outcome text = pspctl("counters --watch --interval 0.05 --count 2");
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("(every 0.05 s)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("PER SECOND (over the last"), std::string::npos) << text.out;
  EXPECT_EQ(handler_.calls.load(), 2);
  EXPECT_EQ(pspctl("counters --interval 1").code, 2);  // --interval needs --watch
}

TEST_F(PspctlCliTest, ReloadReportsTheOutcomeInItsExitStatus) {
  Outcome ok = pspctl("reload");
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_NE(ok.out.find("peers +1 -0"), std::string::npos) << ok.out;
  handler_.reload_ok = false;
  Outcome refused = pspctl("reload");
  EXPECT_EQ(refused.code, 1);
  EXPECT_EQ(refused.err,
            "pspctl: reload: reload refused, the running config stays: c.json: bogus: unknown key\n");
}

TEST_F(PspctlCliTest, SampleSendsOnOffAndTheRate) {
  EXPECT_EQ(json::parse(pspctl("sample on --rate 3 --json").out), json({{"on", true}, {"rate", 3}}));
  EXPECT_EQ(json::parse(pspctl("sample on --json").out), json({{"on", true}}));
  EXPECT_EQ(json::parse(pspctl("sample off --json").out), json({{"on", false}}));
  for (const char* bad :
       {"sample", "sample maybe", "sample on --rate 0", "sample on --rate 17", "sample off --rate 2"})
    EXPECT_EQ(pspctl(bad).code, 2) << bad;
}

TEST(PspctlRates, DeltasPerSecondMatchRowsByName) {
  const json before = {
      {"pipes", {{{"name", "EGR_ACL"}, {"hits", 100}}, {{"name", "INGR_ACL"}, {"hits", 50}}}},
      {"psp", {{"tx_packets", 10}}},
      {"tunnels", {{{"local_vip", "10.0.0.1"}, {"remote_vip", "10.0.1.1"}, {"tx_packets", 7}}}}};
  const json now = {{"pipes", {{{"name", "INGR_ACL"}, {"hits", 70}}, {{"name", "EGR_ACL"}, {"hits", 300}}}},
                    {"psp", {{"tx_packets", 30}}},
                    {"tunnels",
                     {{{"local_vip", "10.0.0.1"}, {"remote_vip", "10.0.1.1"}, {"tx_packets", 3}},  // re-made
                      {{"local_vip", "10.0.0.1"}, {"remote_vip", "10.0.1.2"}, {"tx_packets", 4}}}}};  // new
  const json r = counter_rates(now, before, 2.0);
  EXPECT_EQ(r["pipes"][0]["name"], "INGR_ACL");
  EXPECT_EQ(r["pipes"][0]["hits"], 10);
  EXPECT_EQ(r["pipes"][1]["hits"], 100);
  EXPECT_EQ(r["psp"]["tx_packets"], 10);
  EXPECT_EQ(r["tunnels"][0]["tx_packets"], 0);
  EXPECT_EQ(r["tunnels"][1]["tx_packets"], 2);
  EXPECT_EQ(r["tunnels"][1]["remote_vip"], "10.0.1.2");
}

TEST_F(PspctlCliTest, ServerErrorsExitOne) {
  handler_.fail_all = true;
  Outcome r = pspctl("tunnels");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "pspctl: tunnels: the gateway is shutting down\n");
}

TEST_F(PspctlCliTest, RawSendsAnyLineAndPrintsTheWholeResponse) {
  Outcome ok = pspctl(R"(raw '{"cmd": "peers"}')");
  EXPECT_EQ(ok.code, 0);
  EXPECT_EQ(json::parse(ok.out), json({{"ok", true}, {"result", fake::fake_peers()}}));
  Outcome unknown = pspctl(R"(raw '{"cmd": "frobnicate"}')");
  EXPECT_EQ(unknown.code, 1);
  EXPECT_EQ(json::parse(unknown.out)["code"], "unknown_command");
  Outcome bad = pspctl(R"(raw '[1, 2]')");
  EXPECT_EQ(bad.code, 1);
  EXPECT_EQ(json::parse(bad.out)["code"], "bad_request");
  EXPECT_EQ(pspctl("raw 'not json'").code, 2);
}

TEST_F(PspctlCliTest, UsageErrorsExitTwo) {
  for (const char* args :
       {"", "frobnicate", "counters --count 3", "counters --watch 0", "-i x status", "-t 0 status", "raw"}) {
    Outcome r = pspctl(args);
    EXPECT_EQ(r.code, 2) << args;
    EXPECT_NE(r.err, "") << args;
  }
  EXPECT_EQ(handler_.calls.load(), 0);
  Outcome help = pspctl("--help", false);
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("rotate-keys"), std::string::npos);
}

TEST_F(PspctlCliTest, NoGatewayExitsThreeWithAHint) {
  Outcome r = pspctl("-s " + dir_ + "/none.sock status", false);
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.err, "pspctl: no gateway running at " + dir_ +
                       "/none.sock (is psp-gateway started? -s to choose the socket)\n");
  Outcome inst = pspctl("-i pspctl-test-nonexistent status", false);
  EXPECT_EQ(inst.code, 3);
  EXPECT_NE(inst.err.find("/run/psp-gateway/pspctl-test-nonexistent.sock"), std::string::npos) << inst.err;
}

TEST_F(PspctlCliTest, SlowGatewayTimesOut) {
  Outcome r = pspctl(R"(-t 0.2 raw '{"cmd": "sleep", "args": {"ms": 600}}')");
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.err.find("no answer from the gateway at " + sock_ + " within 0.2 s"), std::string::npos)
      << r.err;
}

TEST_F(PspctlCliTest, PermissionDenied) {
  if (::geteuid() != 0 || !std::filesystem::exists("/usr/bin/setpriv"))
    GTEST_SKIP() << "needs root and setpriv";
  // The socket's 0700 temp directory keeps nobody out.
  Outcome r = pspctl("status", true, "setpriv --reuid=65534 --regid=65534 --clear-groups ");
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.err,
            "pspctl: permission denied on " + sock_ + " (the socket is for root and the gateway's group)\n");
}

}  // namespace
}  // namespace pspgw::pspctl
