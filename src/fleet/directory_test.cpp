#include "fleet/directory.hpp"

#include <gtest/gtest.h>

namespace pspgw::fleet {
namespace {

net::IpAddr ip(const char* s) {
  return *net::IpAddr::parse(s);
}

std::string record(const std::string& host, const std::string& pip, std::vector<std::string> vips) {
  HostRecord r{host, pip + ":3000", ip(pip.c_str()), "", {{"psp0", {}}}};
  for (const auto& v : vips) r.ports[0].vips.push_back(ip(v.c_str()));
  return encode_record(r);
}

constexpr const char* kA = "/psp-gateway/hosts/a";
constexpr const char* kB = "/psp-gateway/hosts/b";
constexpr const char* kC = "/psp-gateway/hosts/c";

TEST(FleetDirectory, MapsVipsToHosts) {
  Directory d;
  ASSERT_TRUE(d.put(kA, record("a", "192.0.2.1", {"10.0.0.1"}), 2));
  ASSERT_TRUE(d.put(kB, record("b", "192.0.2.2", {"10.0.0.2", "10.0.0.3"}), 3));
  EXPECT_EQ(d.host_count(), 2u);
  EXPECT_EQ(d.vip_count(), 3u);
  EXPECT_EQ(d.host_of(ip("10.0.0.3")), "b");
  EXPECT_FALSE(d.host_of(ip("10.0.0.9")));
  const auto peers = d.peers("a", net::IpFamily::kV4);
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_EQ(peers[0].record.host, "b");
  EXPECT_EQ(peers[0].vips.size(), 2u);
  d.erase(kB);
  EXPECT_FALSE(d.host_of(ip("10.0.0.2")));
  EXPECT_EQ(d.vip_count(), 1u);
}

TEST(FleetDirectory, NewerClaimWinsAndOlderReturns) {
  Directory d;
  ASSERT_TRUE(d.put(kB, record("b", "192.0.2.2", {"10.0.0.2"}), 5));
  ASSERT_TRUE(d.put(kC, record("c", "192.0.2.3", {"10.0.0.2"}), 6));  // the VM migrates: c registers first
  EXPECT_EQ(d.host_of(ip("10.0.0.2")), "c");
  EXPECT_TRUE(d.peers("a", net::IpFamily::kV4)[0].vips.empty());  // b serves it no longer
  ASSERT_TRUE(d.put(kB, record("b", "192.0.2.2", {}), 7));        // b drops it
  EXPECT_EQ(d.host_of(ip("10.0.0.2")), "c");
  d.erase(kC);
  EXPECT_FALSE(d.host_of(ip("10.0.0.2")));
}

TEST(FleetDirectory, BadRecordsAreCountedAndKeepTheLastGood) {
  Directory d;
  ASSERT_TRUE(d.put(kB, record("b", "192.0.2.2", {"10.0.0.2"}), 5));
  EXPECT_FALSE(d.put(kB, "{nonsense", 6));
  EXPECT_FALSE(d.put(kB, record("a", "192.0.2.1", {"10.0.0.9"}), 7));  // another host's name under b's key
  EXPECT_EQ(d.bad_records(), 2u);
  EXPECT_EQ(d.host_of(ip("10.0.0.2")), "b");
  EXPECT_FALSE(d.host_of(ip("10.0.0.9")));
}

TEST(FleetDirectory, PolicyAndForeignKeys) {
  Directory d;
  const uint64_t g = d.generation();
  EXPECT_TRUE(d.put("/psp-gateway/other", "x", 1));
  EXPECT_TRUE(d.put("/psp-gateway/hosts/", "x", 1));
  EXPECT_EQ(d.generation(), g);
  ASSERT_TRUE(d.put("/psp-gateway/policy", R"({"allow":[{"from":["10.0.0.0/8"],"to":["10.0.0.0/8"]}]})", 2));
  ASSERT_TRUE(d.policy());
  EXPECT_GT(d.generation(), g);
  d.erase("/psp-gateway/policy");
  EXPECT_FALSE(d.policy());
}

TEST(FleetDirectory, ClearForResync) {
  Directory d;
  ASSERT_TRUE(d.put(kA, record("a", "192.0.2.1", {"10.0.0.1"}), 2));
  d.clear();
  EXPECT_EQ(d.host_count(), 0u);
  EXPECT_EQ(d.vip_count(), 0u);
  ASSERT_TRUE(d.put(kA, record("a", "192.0.2.1", {"10.0.0.1"}), 2));
  EXPECT_EQ(d.host_of(ip("10.0.0.1")), "a");
}

TEST(FleetDirectory, FamilyFilter) {
  Directory d;
  ASSERT_TRUE(d.put(kB, record("b", "192.0.2.2", {"10.0.0.2", "fd00::2"}), 5));
  EXPECT_EQ(d.peers("a", net::IpFamily::kV4)[0].vips.size(), 1u);
  EXPECT_EQ(d.peers("a", net::IpFamily::kV6)[0].vips.size(), 1u);
}

}  // namespace
}  // namespace pspgw::fleet
