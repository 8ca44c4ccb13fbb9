#include "fleet/record.hpp"

#include <gtest/gtest.h>

namespace pspgw::fleet {
namespace {

net::IpAddr ip(const char* s) {
  return *net::IpAddr::parse(s);
}

HostRecord sample() {
  return {"hostA",
          "192.0.2.1:3000",
          ip("192.0.2.1"),
          "",
          {{"psp0", {ip("10.0.0.1"), ip("10.0.0.2")}}, {"vm2", {ip("10.0.1.1")}}}};
}

TEST(FleetRecord, RoundTrips) {
  const HostRecord r = sample();
  auto back = decode_record(encode_record(r));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, r);
  EXPECT_EQ(back->vips().size(), 3u);
  EXPECT_EQ(back->effective_identity(), "192.0.2.1");
}

TEST(FleetRecord, IdentityAndIpv6Address) {
  auto r = decode_record(R"({"host":"b","grpc-address":"[fd00::1]:3000","pip":"fd00::1","ports":[]})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->effective_identity(), "fd00::1");
  r = decode_record(
      R"({"host":"b","grpc-address":"b.example:3000","pip":"fd00::1","identity":"b.example","ports":[]})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->effective_identity(), "b.example");
}

TEST(FleetRecord, RefusesBadInput) {
  for (const char* bad : {
           "",
           "[]",
           "{",
           R"({"host":"a"})",
           R"({"host":"a/b","grpc-address":"1.2.3.4:1","pip":"1.2.3.4","ports":[]})",
           R"({"host":"a","grpc-address":"1.2.3.4","pip":"1.2.3.4","ports":[]})",
           R"({"host":"a","grpc-address":"1.2.3.4:99999","pip":"1.2.3.4","ports":[]})",
           R"({"host":"a","grpc-address":"1.2.3.4:1","pip":"nope","ports":[]})",
           R"({"host":"a","grpc-address":"1.2.3.4:1","pip":"1.2.3.4","ports":[{"vips":["x"]}]})",
           R"({"host":"a","grpc-address":"1.2.3.4:1","pip":"1.2.3.4","ports":[{"vips":"10.0.0.1"}]})",
           R"({"host":"a","grpc-address":"1.2.3.4:1","pip":"1.2.3.4","ports":[],"extra":1})",
           R"({"host":7,"grpc-address":"1.2.3.4:1","pip":"1.2.3.4","ports":[]})",
       }) {
    auto r = decode_record(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_EQ(r.error().code, FleetError::kBadRecord);
    }
  }
}

TEST(FleetRecord, BoundsSize) {
  std::string big(kMaxRecordBytes + 1, ' ');
  EXPECT_FALSE(decode_record(big));
}

TEST(FleetRecord, Keys) {
  EXPECT_EQ(host_key("/p", "a"), "/p/hosts/a");
  EXPECT_EQ(host_key("/p/", "a"), "/p/hosts/a");
  EXPECT_EQ(policy_key("/psp-gateway/"), "/psp-gateway/policy");
  EXPECT_EQ(host_of_key("/p/", "/p/hosts/a"), "a");
  EXPECT_FALSE(host_of_key("/p/", "/p/hosts/"));
  EXPECT_FALSE(host_of_key("/p/", "/p/hosts/a/b"));
  EXPECT_FALSE(host_of_key("/p/", "/q/hosts/a"));
}

}  // namespace
}  // namespace pspgw::fleet
