// The registry behind `pspctl sfc`: each verb, its typed errors (what and where), references that block
// deletion, port roles, overlapping classifiers (both directions of bi-directional ones), JSON.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "sfc/chains.hpp"

namespace pspgw::sfc {
namespace {

using Code = SfcError::Code;

std::optional<PortRole> roles(std::string_view p) {
  if (p.starts_with("vm")) return PortRole::kWorkload;
  if (p.starts_with("fw") || p.starts_with("lb")) return PortRole::kVnf;
  return std::nullopt;
}

Code code(const Status<SfcError>& s) {
  EXPECT_FALSE(s.ok());
  return s.ok() ? Code::kBadArgument : s.error().code;
}
std::string msg(const Status<SfcError>& s) {
  return s.ok() ? std::string() : s.error().message;
}

struct Chains : ::testing::Test {
  ServiceChains sc{roles};
  void SetUp() override {
    ASSERT_TRUE(sc.pair_add("fw1-in", "fw1-out", "fw1").ok());
    ASSERT_TRUE(sc.pair_add("fw2-in", "fw2-out", "fw2").ok());
    ASSERT_TRUE(sc.chain_add("web").ok());
    ASSERT_TRUE(sc.group_add("web", "fws", FailMode::kOpen).ok());
    ASSERT_TRUE(sc.group_pair_add("fws", "fw1").ok());
    ASSERT_TRUE(sc.group_pair_add("fws", "fw2").ok());
  }
};

TEST_F(Chains, BuildsTheModel) {
  ASSERT_TRUE(sc.classifier_add("web", "vm2", Direction::kEntry, true, "http", "tcp.dst == 80").ok());
  EXPECT_EQ(sc.chains().at("web").groups, std::vector<std::string>{"fws"});
  EXPECT_EQ(sc.groups().at("fws").pairs, (std::vector<std::string>{"fw1", "fw2"}));
  EXPECT_EQ(sc.groups().at("fws").fail_mode, FailMode::kOpen);
  const auto j = sc.to_json();
  EXPECT_EQ(j["classifiers"][0]["direction"], "entry-lport");
  EXPECT_EQ(j["classifiers"][0]["normalized"], "tcp && tcp.dst == 80");
  EXPECT_EQ(j["groups"][0]["fail_mode"], "open");
  EXPECT_EQ(j["pairs"].size(), 2U);
  // A one-armed VNF: one port both ways.
  EXPECT_TRUE(sc.pair_add("lb1", "lb1", "lb").ok());
}

TEST_F(Chains, UnknownAndDuplicateNames) {
  EXPECT_EQ(code(sc.pair_add("fw3-in", "fw3-out", "fw1")), Code::kDuplicateName);
  EXPECT_EQ(code(sc.chain_add("web")), Code::kDuplicateName);
  EXPECT_EQ(code(sc.group_add("nochain", "g")), Code::kUnknownObject);
  EXPECT_NE(msg(sc.group_add("nochain", "g")).find("'nochain'"), std::string::npos);
  EXPECT_EQ(code(sc.group_add("web", "fws")), Code::kDuplicateName);
  EXPECT_EQ(code(sc.group_pair_add("fws", "nopair")), Code::kUnknownObject);
  EXPECT_EQ(code(sc.group_pair_add("nogroup", "fw1")), Code::kUnknownObject);
  EXPECT_EQ(code(sc.classifier_add("nochain", "vm1", Direction::kEntry, false, "c")), Code::kUnknownObject);
  EXPECT_EQ(code(sc.pair_del("nopair")), Code::kUnknownObject);
  EXPECT_EQ(code(sc.classifier_del("noclass")), Code::kUnknownObject);
  EXPECT_EQ(code(sc.group_pair_del("fws", "nopair")), Code::kUnknownObject);
  EXPECT_EQ(code(sc.chain_add("")), Code::kBadArgument);
}

TEST_F(Chains, PortRoles) {
  EXPECT_EQ(code(sc.pair_add("vm1", "fw3-out", "p")), Code::kBadPort);
  EXPECT_NE(msg(sc.pair_add("vm1", "fw3-out", "p")).find("not a vnf port"), std::string::npos);
  EXPECT_EQ(code(sc.pair_add("eth9", "fw3-out", "p")), Code::kBadPort);
  EXPECT_EQ(code(sc.pair_add("fw1-in", "fw3-out", "p")), Code::kInUse);  // fw1-in belongs to fw1
  EXPECT_EQ(code(sc.classifier_add("web", "fw1-in", Direction::kEntry, false, "c")), Code::kBadPort);
  EXPECT_EQ(code(sc.classifier_add("web", "nosuch", Direction::kEntry, false, "c")), Code::kBadPort);
  ServiceChains unchecked;  // no lookup: any names
  EXPECT_TRUE(unchecked.pair_add("a", "b", "p").ok());
}

TEST_F(Chains, ReferencesBlockDeletion) {
  ASSERT_TRUE(sc.classifier_add("web", "vm2", Direction::kEntry, false, "all").ok());
  EXPECT_EQ(code(sc.pair_del("fw1")), Code::kInUse);
  EXPECT_NE(msg(sc.pair_del("fw1")).find("'fws'"), std::string::npos);
  EXPECT_EQ(code(sc.group_pair_add("fws", "fw1")), Code::kInUse);
  EXPECT_EQ(code(sc.chain_del("web")), Code::kInUse);
  EXPECT_NE(msg(sc.chain_del("web")).find("'all'"), std::string::npos);
  ASSERT_TRUE(sc.classifier_del("all").ok());
  EXPECT_EQ(code(sc.chain_del("web")), Code::kInUse);  // still has group fws
  EXPECT_EQ(code(sc.group_del("fws")), Code::kInUse);  // still has pairs
  ASSERT_TRUE(sc.group_pair_del("fws", "fw1").ok());
  ASSERT_TRUE(sc.group_pair_del("fws", "fw2").ok());
  ASSERT_TRUE(sc.pair_del("fw1").ok());
  ASSERT_TRUE(sc.group_del("fws").ok());
  ASSERT_TRUE(sc.chain_del("web").ok());
  EXPECT_TRUE(sc.chains().empty());
}

TEST_F(Chains, BadMatchSaysWhere) {
  const auto s = sc.classifier_add("web", "vm2", Direction::kEntry, false, "c", "ip4 && tcp.dst == x");
  EXPECT_EQ(code(s), Code::kBadMatch);
  EXPECT_NE(msg(s).find("column 19"), std::string::npos) << msg(s);
}

TEST_F(Chains, OverlapsAreRefusedNamingBoth) {
  ASSERT_TRUE(sc.chain_add("other").ok());
  ASSERT_TRUE(sc.classifier_add("web", "vm2", Direction::kEntry, false, "http", "tcp.dst == 80").ok());
  const auto s = sc.classifier_add("other", "vm2", Direction::kEntry, false, "v4", "ip4");
  EXPECT_EQ(code(s), Code::kOverlap);
  EXPECT_NE(msg(s).find("'v4'"), std::string::npos);
  EXPECT_NE(msg(s).find("'http'"), std::string::npos);
  // Disjoint match, other port, other direction: fine.
  EXPECT_TRUE(sc.classifier_add("other", "vm2", Direction::kEntry, false, "dns", "udp.dst == 53").ok());
  EXPECT_TRUE(sc.classifier_add("other", "vm1", Direction::kEntry, false, "v4b", "ip4").ok());
  EXPECT_TRUE(
      sc.classifier_add("other", "vm2", Direction::kExit, false, "out", "tcp.dst == 80 && tcp.src == 1000")
          .ok());
  // Bi-directional entry on vm2 steers vm2's replies (exit, tcp.src == 443): clashes with an exit classifier.
  ASSERT_TRUE(sc.classifier_add("web", "vm2", Direction::kEntry, true, "https", "tcp.dst == 443").ok());
  const auto r = sc.classifier_add("other", "vm2", Direction::kExit, false, "replies", "tcp.src == 443");
  EXPECT_EQ(code(r), Code::kOverlap);
  EXPECT_NE(msg(r).find("exit-lport"), std::string::npos);
}

TEST(Names, ParseAndPrint) {
  EXPECT_EQ(parse_direction("entry-lport"), Direction::kEntry);
  EXPECT_EQ(parse_direction("exit-lport"), Direction::kExit);
  EXPECT_FALSE(parse_direction("entry"));
  EXPECT_EQ(parse_fail_mode("open"), FailMode::kOpen);
  EXPECT_FALSE(parse_fail_mode("shut"));
  EXPECT_EQ(parse_symmetric("bi-directional"), true);
  EXPECT_EQ(parse_symmetric("uni-directional"), false);
  EXPECT_FALSE(parse_symmetric("both"));
  EXPECT_EQ(to_string(Code::kOverlap), "overlap");
}

}  // namespace
}  // namespace pspgw::sfc
