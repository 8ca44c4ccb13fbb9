#include "gateway/exception.hpp"

#include <gtest/gtest.h>

#include <cstring>

#include "base/byteorder.hpp"
#include "net/checksum.hpp"
#include "net/headers.hpp"
#include "net/parse.hpp"

namespace pspgw::gateway {
namespace {

const net::MacBytes kVmMac = {0x02, 0, 0, 0, 0, 0x01};

ResponderPolicy policy() {
  ResponderPolicy p;
  p.gateway_mac = *net::MacAddr::parse("02:50:53:50:00:01");
  p.proxied = {*net::IpAddr::parse("10.0.0.2"), *net::IpAddr::parse("fd00::2")};
  std::sort(p.proxied.begin(), p.proxied.end());
  p.gateway_ip = net::IpAddr::parse("10.0.0.254");
  p.dhcp_address = net::IpAddr::parse("10.0.0.1");
  p.mtu = 1400;
  return p;
}

std::vector<uint8_t> arp_request(const char* target) {
  std::vector<uint8_t> f(42, 0);
  std::memset(f.data(), 0xff, 6);
  std::memcpy(&f[6], kVmMac.data(), 6);
  store_be16(&f[12], net::kEtherTypeArp);
  uint8_t* a = &f[14];
  store_be16(a, 1);
  store_be16(a + 2, 0x0800);
  a[4] = 6;
  a[5] = 4;
  store_be16(a + 6, 1);
  std::memcpy(a + 8, kVmMac.data(), 6);
  const uint8_t spa[4] = {10, 0, 0, 1};
  std::memcpy(a + 14, spa, 4);
  std::memcpy(a + 24, net::IpAddr::parse(target)->bytes.data(), 4);
  return f;
}

TEST(Arp, AnswersOnlyForProxiedAddresses) {
  auto p = policy();
  auto rep = exception_reply(arp_request("10.0.0.2"), p);
  ASSERT_TRUE(rep.has_value());
  ASSERT_GE(rep->size(), 42u);
  EXPECT_EQ(0, std::memcmp(rep->data(), kVmMac.data(), 6));
  EXPECT_EQ(0, std::memcmp(rep->data() + 6, p.gateway_mac.bytes.data(), 6));
  EXPECT_EQ(load_be16(rep->data() + 14 + 6), net::kArpReply);
  EXPECT_EQ(0, std::memcmp(rep->data() + 14 + 8, p.gateway_mac.bytes.data(), 6));  // sha
  const uint8_t spa[4] = {10, 0, 0, 2};
  EXPECT_EQ(0, std::memcmp(rep->data() + 14 + 14, spa, 4));
  EXPECT_TRUE(exception_reply(arp_request("10.0.0.254"), p).has_value());  // the gateway address
  EXPECT_FALSE(exception_reply(arp_request("10.0.0.3"), p).has_value());   // not ours: silence
  auto short_req = arp_request("10.0.0.2");
  short_req.resize(40);
  EXPECT_FALSE(exception_reply(short_req, p).has_value());
}

std::vector<uint8_t> neighbor_solicit(const char* target, bool with_option = true) {
  const std::size_t icmp_len = with_option ? 32 : 24;
  std::vector<uint8_t> f(14 + 40 + icmp_len, 0);
  const net::MacBytes mcast = {0x33, 0x33, 0xff, 0, 0, 2};
  std::memcpy(f.data(), mcast.data(), 6);
  std::memcpy(&f[6], kVmMac.data(), 6);
  store_be16(&f[12], net::kEtherTypeIpv6);
  uint8_t* h = &f[14];
  store_be32(h, 0x60000000);
  store_be16(h + 4, static_cast<uint16_t>(icmp_len));
  h[6] = 58;
  h[7] = 255;
  std::memcpy(h + 8, net::IpAddr::parse("fd00::1")->bytes.data(), 16);
  std::memcpy(h + 24, net::IpAddr::parse("ff02::1:ff00:2")->bytes.data(), 16);
  uint8_t* m = h + 40;
  m[0] = 135;
  std::memcpy(m + 8, net::IpAddr::parse(target)->bytes.data(), 16);
  if (with_option) {
    m[24] = 1;
    m[25] = 1;
    std::memcpy(m + 26, kVmMac.data(), 6);
  }
  store_be16(m + 2, net::l4_checksum(h, 58, {m, icmp_len}));
  return f;
}

TEST(Ndp, AdvertisesProxiedTargetWithValidChecksum) {
  auto p = policy();
  auto rep = exception_reply(neighbor_solicit("fd00::2"), p);
  ASSERT_TRUE(rep.has_value());
  auto fr = net::parse_frame(*rep);
  ASSERT_TRUE(fr.ok());
  EXPECT_EQ(fr->ip.src.to_string(), "fd00::2");
  EXPECT_EQ(fr->ip.dst.to_string(), "fd00::1");
  const uint8_t* m = rep->data() + fr->ip.l4_offset;
  EXPECT_EQ(m[0], 136);
  EXPECT_EQ(m[4], 0x60);  // solicited + override
  EXPECT_EQ(0, std::memcmp(m + 26, p.gateway_mac.bytes.data(), 6));
  EXPECT_TRUE(net::l4_checksum_ok(rep->data() + 14, 58, {m, 32}));
  EXPECT_FALSE(exception_reply(neighbor_solicit("fd00::3"), p).has_value());
  auto bad = neighbor_solicit("fd00::2");
  bad[14 + 40 + 2] ^= 1;  // checksum
  EXPECT_FALSE(exception_reply(bad, p).has_value());
  EXPECT_TRUE(exception_reply(neighbor_solicit("fd00::2", false), p).has_value());
}

std::vector<uint8_t> dhcp(uint8_t type, const char* requested) {
  std::vector<uint8_t> bootp(240, 0);
  bootp[0] = 1;
  bootp[1] = 1;
  bootp[2] = 6;
  store_be32(&bootp[4], 0xdeadbeef);
  std::memcpy(&bootp[28], kVmMac.data(), 6);
  store_be32(&bootp[236], 0x63825363);
  // push_back one by one: g++ 12 warns falsely (-Warray-bounds) on vector::insert of short ranges.
  for (uint8_t b : {uint8_t{53}, uint8_t{1}, type}) bootp.push_back(b);
  if (requested != nullptr) {
    bootp.push_back(50);
    bootp.push_back(4);
    const auto a = net::IpAddr::parse(requested)->bytes;
    for (int i = 0; i < 4; ++i) bootp.push_back(a[i]);
  }
  bootp.push_back(255);
  std::vector<uint8_t> f(14 + 28 + bootp.size(), 0);
  std::memset(f.data(), 0xff, 6);
  std::memcpy(&f[6], kVmMac.data(), 6);
  store_be16(&f[12], net::kEtherTypeIpv4);
  std::copy(bootp.begin(), bootp.end(), f.begin() + 42);
  uint8_t* ip = &f[14];
  ip[0] = 0x45;
  store_be16(ip + 2, static_cast<uint16_t>(f.size() - 14));
  ip[8] = 64;
  ip[9] = 17;
  std::memset(ip + 16, 0xff, 4);
  net::ipv4_set_checksum(ip);
  store_be16(ip + 20, 68);
  store_be16(ip + 22, 67);
  store_be16(ip + 24, static_cast<uint16_t>(f.size() - 34));
  return f;
}

uint8_t dhcp_type(const std::vector<uint8_t>& rep) {
  for (std::size_t i = 14 + 28 + 240; i + 2 < rep.size() && rep[i] != 255; i += 2 + rep[i + 1]) {
    if (rep[i] == 53) return rep[i + 2];
  }
  return 0;
}

TEST(Dhcp, OffersAndAcksTheConfiguredVip) {
  auto p = policy();
  auto offer = exception_reply(dhcp(1, nullptr), p);
  ASSERT_TRUE(offer.has_value());
  auto fr = net::parse_frame(*offer);
  ASSERT_TRUE(fr.ok());
  EXPECT_EQ(fr->ip.dst_port, 68);
  EXPECT_TRUE(net::ipv4_checksum_ok(offer->data() + 14));
  EXPECT_TRUE(net::l4_checksum_ok(offer->data() + 14, 17, {offer->data() + 34, offer->size() - 34}));
  EXPECT_EQ(dhcp_type(*offer), 2);
  const uint8_t yiaddr[4] = {10, 0, 0, 1};
  EXPECT_EQ(0, std::memcmp(offer->data() + 42 + 16, yiaddr, 4));
  EXPECT_EQ(load_be32(offer->data() + 42 + 4), 0xdeadbeefu);  // xid echoed

  auto ack = exception_reply(dhcp(3, "10.0.0.1"), p);
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(dhcp_type(*ack), 5);
  auto nak = exception_reply(dhcp(3, "10.0.0.9"), p);
  ASSERT_TRUE(nak.has_value());
  EXPECT_EQ(dhcp_type(*nak), 6);

  auto truncated = dhcp(1, nullptr);
  truncated[14 + 28 + 241] = 9;  // option 53 length runs past the end
  truncated.resize(14 + 28 + 243);
  store_be16(&truncated[16], static_cast<uint16_t>(truncated.size() - 14));
  EXPECT_FALSE(exception_reply(truncated, p).has_value());
}

TEST(Classify, NamesEachKind) {
  EXPECT_EQ(classify_exception(arp_request("10.0.0.2")), ExceptionKind::kArp);
  EXPECT_EQ(classify_exception(neighbor_solicit("fd00::2")), ExceptionKind::kNeighborSolicit);
  EXPECT_EQ(classify_exception(dhcp(1, nullptr)), ExceptionKind::kDhcp);
  EXPECT_EQ(classify_exception(std::vector<uint8_t>(10, 0)), ExceptionKind::kOther);
}

}  // namespace
}  // namespace pspgw::gateway
