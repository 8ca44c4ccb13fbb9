#include "fleet/policy.hpp"

#include <gtest/gtest.h>

namespace pspgw::fleet {
namespace {

net::IpAddr ip(const char* s) {
  return *net::IpAddr::parse(s);
}

TEST(FleetPolicy, PrefixContains) {
  auto p = parse_prefix("10.0.1.77/24");
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->contains(ip("10.0.1.1")));
  EXPECT_FALSE(p->contains(ip("10.0.2.1")));
  EXPECT_FALSE(p->contains(ip("fd00::1")));
  auto q = parse_prefix("10.0.0.0/9");
  EXPECT_TRUE(q->contains(ip("10.127.0.1")));
  EXPECT_FALSE(q->contains(ip("10.128.0.1")));
  EXPECT_TRUE(parse_prefix("0.0.0.0/0")->contains(ip("1.2.3.4")));
  EXPECT_TRUE(parse_prefix("10.0.0.5")->contains(ip("10.0.0.5")));
  EXPECT_FALSE(parse_prefix("10.0.0.5")->contains(ip("10.0.0.4")));
  EXPECT_TRUE(parse_prefix("fd00::/64")->contains(ip("fd00::9")));
  EXPECT_FALSE(parse_prefix("10.0.0.0/33"));
  EXPECT_FALSE(parse_prefix("10.0.0.0/"));
  EXPECT_FALSE(parse_prefix("x/8"));
}

TEST(FleetPolicy, RulesWorkBothWays) {
  auto p = decode_policy(R"({"allow":[{"from":["10.0.0.0/24"],"to":["10.0.1.0/24"]}]})");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_TRUE(p->allows(ip("10.0.0.1"), ip("10.0.1.1")));
  EXPECT_TRUE(p->allows(ip("10.0.1.1"), ip("10.0.0.1")));
  EXPECT_FALSE(p->allows(ip("10.0.0.1"), ip("10.0.0.2")));
  EXPECT_FALSE(p->allows(ip("10.0.2.1"), ip("10.0.1.1")));
}

TEST(FleetPolicy, EmptyAllowsNothing) {
  auto p = decode_policy(R"({"allow":[]})");
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->allows(ip("10.0.0.1"), ip("10.0.1.1")));
}

TEST(FleetPolicy, RefusesBadDocuments) {
  for (const char* bad : {"", "[]", R"({})", R"({"allow":{}})", R"({"allow":[{"from":["10.0.0.0/24"]}]})",
                          R"({"allow":[{"from":["nope"],"to":[]}]})", R"({"allow":[],"deny":[]})",
                          R"({"allow":[{"from":[],"to":[],"x":1}]})"}) {
    EXPECT_FALSE(decode_policy(bad)) << bad;
  }
}

}  // namespace
}  // namespace pspgw::fleet
