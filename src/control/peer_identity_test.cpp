#include "control/peer_identity.hpp"

#include <gtest/gtest.h>

#include "control/test_util.hpp"

namespace pspgw::control {
namespace {

using testing::ip;

TEST(PeerDirectory, CertificateNamesMatchIpHostsAsAddressesAndDnsHostsIgnoringCase) {
  PeerDirectory d({"192.0.2.1", "2001:db8::1", "Peer.Example", "192.0.2.1"});
  const std::vector<std::string> v4{"DNS-ignored.example", "192.0.2.1"};
  EXPECT_EQ(d.by_names(v4).peers, (std::vector<PeerIndex>{0, 3}));  // two peers on one host: both
  const std::vector<std::string> v6{"2001:db8:0::1"};
  EXPECT_EQ(d.by_names(v6).peers, (std::vector<PeerIndex>{1}));
  const std::vector<std::string> dns{"peer.example"};
  EXPECT_EQ(d.by_names(dns).peers, (std::vector<PeerIndex>{2}));
  EXPECT_EQ(d.by_names(dns).proof, "certificate peer.example");
  const std::vector<std::string> none{"192.0.2.9", "other.example", "*.example"};
  EXPECT_TRUE(d.by_names(none).peers.empty());
  // An IP host is not matched by a DNS SAN spelling the same text, and vice versa.
  PeerDirectory named({"10.0.0.1.example"});
  const std::vector<std::string> ip_san{"10.0.0.1"};
  EXPECT_TRUE(named.by_names(ip_san).peers.empty());
}

TEST(PeerDirectory, SourceAddressMatchesIpHostsAndResolvedNames) {
  PeerDirectory d({"192.0.2.1", "localhost"});
  EXPECT_EQ(d.by_address(ip("192.0.2.1")).peers, (std::vector<PeerIndex>{0}));
  EXPECT_TRUE(d.by_address(ip("127.0.0.1")).peers.empty());  // not resolved yet
  ASSERT_TRUE(d.resolve().ok());
  EXPECT_EQ(d.by_address(ip("127.0.0.1")).peers, (std::vector<PeerIndex>{1}));
  EXPECT_EQ(d.by_address(ip("::ffff:192.0.2.1")).peers, (std::vector<PeerIndex>{0}));
  EXPECT_TRUE(d.by_address(ip("192.0.2.2")).peers.empty());
  PeerDirectory bad({"no-such-host.invalid"});
  auto r = bad.resolve();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("no-such-host.invalid"), std::string::npos);
}

TEST(PeerDirectory, ParsesGrpcPeerStrings) {
  EXPECT_EQ(parse_grpc_peer("ipv4:10.1.2.3:45678"), ip("10.1.2.3"));
  EXPECT_EQ(parse_grpc_peer("ipv6:[2001:db8::7]:3000"), ip("2001:db8::7"));
  EXPECT_EQ(parse_grpc_peer("ipv6:%5Bfd00:100::1%5D:57336"), ip("fd00:100::1"));  // as gRPC 1.51 writes it
  EXPECT_FALSE(parse_grpc_peer("ipv6:%5Bfd00:100::1%5").has_value());
  EXPECT_EQ(parse_grpc_peer("ipv6:[::ffff:10.1.2.3]:3000"), ip("10.1.2.3"));
  EXPECT_EQ(parse_grpc_peer("ipv6:[fe80::1%eth0]:3000"), ip("fe80::1"));
  EXPECT_FALSE(parse_grpc_peer("unix:/tmp/x").has_value());
  EXPECT_FALSE(parse_grpc_peer("ipv4:nonsense:1").has_value());
  EXPECT_FALSE(parse_grpc_peer("ipv6:[::1").has_value());
}

}  // namespace
}  // namespace pspgw::control
