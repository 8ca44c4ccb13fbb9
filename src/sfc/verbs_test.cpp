#include "sfc/verbs.hpp"

#include <gtest/gtest.h>

namespace pspgw::sfc {
namespace {

std::string error_of(ServiceChains& c, const std::vector<std::string>& argv) {
  auto s = run_verb(c, argv);
  EXPECT_FALSE(s.ok());
  return s.ok() ? "" : s.error().message;
}

TEST(Verbs, TheIssuesVerbsBuildAChain) {
  ServiceChains c;
  for (const auto& v : std::vector<std::vector<std::string>>{
           {"pair-add", "fw1-in", "fw1-out", "fw1"},
           {"chain-add", "pc1"},
           {"group-add", "pc1", "pg1", "--fail-mode", "open"},
           {"group-pair-add", "pg1", "fw1"},
           {"classifier-add", "pc1", "vm1", "entry-lport", "bi-directional", "c1", "tcp.dst == 80"},
       }) {
    auto s = run_verb(c, v);
    EXPECT_TRUE(s.ok()) << v[0] << ": " << (s.ok() ? "" : s.error().message);
  }
  EXPECT_EQ(c.groups().at("pg1").fail_mode, FailMode::kOpen);
  EXPECT_TRUE(c.classifiers().at("c1").symmetric);
  EXPECT_TRUE(run_verb(c, {"classifier-del", "c1"}).ok());
  EXPECT_TRUE(run_verb(c, {"group-pair-del", "pg1", "fw1"}).ok());
  EXPECT_TRUE(run_verb(c, {"group-del", "pg1"}).ok());
  EXPECT_TRUE(run_verb(c, {"chain-del", "pc1"}).ok());
  EXPECT_TRUE(run_verb(c, {"pair-del", "fw1"}).ok());
  EXPECT_TRUE(c.pairs().empty());
}

TEST(Verbs, WrongWordsSayWhatAndShowTheUsage) {
  ServiceChains c;
  EXPECT_EQ(error_of(c, {"pair-add", "a", "b"}),
            "wrong number of arguments (usage: pair-add IN_PORT OUT_PORT PAIR)");
  EXPECT_NE(error_of(c, {"frobnicate"}).find("unknown verb 'frobnicate'"), std::string::npos);
  ASSERT_TRUE(run_verb(c, {"chain-add", "pc1"}).ok());
  EXPECT_NE(error_of(c, {"group-add", "pc1", "pg1", "--fail-mode", "sideways"}).find("not open or close"),
            std::string::npos);
  EXPECT_NE(error_of(c, {"group-add", "pc1", "pg1", "--fail-mode"}).find("needs a value"), std::string::npos);
  EXPECT_NE(error_of(c, {"classifier-add", "pc1", "vm1", "exit", "bi-directional", "c1"}).find("'exit'"),
            std::string::npos);
  EXPECT_NE(error_of(c, {"classifier-add", "pc1", "vm1", "exit-lport", "both", "c1"}).find("'both'"),
            std::string::npos);
  EXPECT_NE(
      error_of(c, {"classifier-add", "nope", "vm1", "exit-lport", "uni-directional", "c1"}).find("nope"),
      std::string::npos);
  EXPECT_FALSE(is_change_verb("show"));
  EXPECT_TRUE(is_change_verb("group-pair-del"));
}

}  // namespace
}  // namespace pspgw::sfc
