#include "gateway/fleet_mode.hpp"

#include <gtest/gtest.h>

namespace pspgw::gateway {
namespace {

net::IpAddr ip(const char* s) {
  return *net::IpAddr::parse(s);
}

fleet::DirectoryPeer peer(const std::string& name, const char* pip, std::vector<const char*> vips) {
  fleet::DirectoryPeer p;
  p.record = {name, std::string(pip) + ":3000", ip(pip), "", {{"psp0", {}}}};
  for (const char* v : vips) {
    p.record.ports[0].vips.push_back(ip(v));
    p.vips.push_back(ip(v));
  }
  return p;
}

GatewayConfig local(std::vector<const char*> vips) {
  GatewayConfig c;
  c.local_pip = ip("192.0.2.1");
  HostPortConfig hp;
  hp.name = "psp0";
  for (const char* v : vips) hp.local_vips.push_back(ip(v));
  c.sw.host_ports.push_back(hp);
  return c;
}

TEST(GatewayFleet, DirectoryHostsBecomePeersOfEveryLocalVip) {
  fleet::FleetView v;
  v.peers = {peer("b", "192.0.2.2", {"10.0.0.2", "10.0.0.3"}), peer("c", "192.0.2.3", {"10.0.0.4"})};
  const auto peers = fleet_peers(v, local({"10.0.0.1", "10.0.0.9"}), net::IpFamily::kV4);
  ASSERT_EQ(peers.size(), 2u);
  EXPECT_EQ(peers[0].remote_grpc_address.to_string(), "192.0.2.2:3000");
  EXPECT_EQ(peers[0].pip, ip("192.0.2.2"));  // bound: traffic for its VIPs goes to its PIP only
  ASSERT_EQ(peers[0].sessions.size(), 2u);
  EXPECT_EQ(peers[0].sessions[0].local_vip, ip("10.0.0.1"));
  EXPECT_EQ(peers[0].sessions[0].remote_vips, (std::vector<net::IpAddr>{ip("10.0.0.2"), ip("10.0.0.3")}));
  EXPECT_EQ(peers[1].sessions[1].local_vip, ip("10.0.0.9"));
}

TEST(GatewayFleet, PolicyRestrictsPairs) {
  fleet::FleetView v;
  v.peers = {peer("b", "192.0.2.2", {"10.0.1.2", "10.0.2.2"})};
  v.policy = fleet::decode_policy(R"({"allow":[{"from":["10.0.0.0/24"],"to":["10.0.1.0/24"]}]})").value();
  const auto peers = fleet_peers(v, local({"10.0.0.1"}), net::IpFamily::kV4);
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_EQ(peers[0].sessions[0].remote_vips, std::vector<net::IpAddr>{ip("10.0.1.2")});
  v.policy = fleet::decode_policy(R"({"allow":[]})").value();
  EXPECT_TRUE(fleet_peers(v, local({"10.0.0.1"}), net::IpFamily::kV4).empty());
}

TEST(GatewayFleet, StaticPeersWinAndOwnVipsAreNeverRemote) {
  GatewayConfig c = local({"10.0.0.1"});
  PeerConfig s{{"192.0.2.7", 3000}, {{ip("10.0.0.1"), {ip("10.0.0.2")}}}, std::nullopt};
  c.peers.push_back(s);
  fleet::FleetView v;
  v.peers = {peer("b", "192.0.2.2", {"10.0.0.2", "10.0.0.3", "10.0.0.1"}),
             peer("s", "192.0.2.7", {"10.0.0.8"}), peer("v6", "fd00::9", {"10.0.0.5"})};
  const auto peers = fleet_peers(v, c, net::IpFamily::kV4);
  ASSERT_EQ(peers.size(), 1u);  // s is a static peer's address; v6's PIP is not of the outer family
  EXPECT_EQ(peers[0].sessions[0].remote_vips, std::vector<net::IpAddr>{ip("10.0.0.3")});
}

TEST(GatewayFleet, OwnRecord) {
  GatewayConfig c = local({"10.0.0.1"});
  c.local_grpc_address = {"0.0.0.0", 3000};
  HostPortConfig vnf;
  vnf.name = "fw-in";
  vnf.role = HostPortRole::kVnf;
  const auto r = own_record("a", c, {c.sw.host_ports[0], vnf}, ip("192.0.2.1"), 3005);
  EXPECT_EQ(r.grpc_address, "192.0.2.1:3005");  // listening on any address: reached at the PIP
  ASSERT_EQ(r.ports.size(), 1u);                // VNF ports carry no VIPs
  EXPECT_EQ(r.vips(), std::vector<net::IpAddr>{ip("10.0.0.1")});
  c.local_grpc_address = {"192.0.2.50", 3000};
  EXPECT_EQ(own_record("a", c, c.sw.host_ports, ip("192.0.2.1"), 3000).grpc_address, "192.0.2.50:3000");
}

TEST(GatewayFleet, Settings) {
  GatewayFlags f;
  GatewayConfig c;
  EXPECT_FALSE(*fleet_settings(f, c));  // off
  f.etcd_prefix = "/x/";
  EXPECT_FALSE(fleet_settings(f, c));  // a prefix without endpoints
  c.sw.etcd.endpoints = {"http://127.0.0.1:2379"};
  c.sw.etcd.host = "h1";
  c.sw.etcd.prefix = "/cfg/";
  auto s = fleet_settings(f, c);
  ASSERT_TRUE(s && *s);
  EXPECT_EQ((*s)->prefix, "/x/");  // the flag wins
  EXPECT_EQ((*s)->host, "h1");
  f.etcd_endpoints = {"http://10.0.0.1:2379", "http://10.0.0.2:2379"};
  f.etcd_prefix.clear();
  s = fleet_settings(f, c);
  EXPECT_EQ((*s)->etcd.endpoints.size(), 2u);
  EXPECT_EQ((*s)->prefix, "/cfg/");
  c.sw.etcd.host = "bad/name";
  EXPECT_FALSE(fleet_settings(f, c));
}

}  // namespace
}  // namespace pspgw::gateway
