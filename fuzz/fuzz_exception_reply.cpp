// gateway::exception_reply (ARP / NDP / DHCP responder) on arbitrary frames, under two policies. No crash
// or out-of-bounds read; every reply is a well-formed frame: it parses with net::parse_frame, comes from
// the gateway's MAC, and its IPv4 header and UDP / ICMPv6 checksums verify.
#include <algorithm>
#include <cstring>
#include <span>

#include "base/byteorder.hpp"
#include "fuzz/fuzz_target.hpp"
#include "gateway/exception.hpp"
#include "net/checksum.hpp"
#include "net/headers.hpp"
#include "net/parse.hpp"

namespace {

using namespace pspgw;

// The addresses fuzz_make_corpus's exception_reply seeds ask for.
gateway::ResponderPolicy make_policy(bool with_gateway) {
  gateway::ResponderPolicy p;
  p.gateway_mac = *net::MacAddr::parse("02:50:53:50:00:01");
  p.proxied = {*net::IpAddr::parse("10.0.0.2"), *net::IpAddr::parse("fd00::2")};
  std::sort(p.proxied.begin(), p.proxied.end());
  if (with_gateway) {
    p.gateway_ip = net::IpAddr::parse("10.0.0.254");
    p.mtu = 1400;
  } else {
    p.dhcp_prefix_len = 0;  // the edge of the mask computation
  }
  p.dhcp_address = net::IpAddr::parse("10.0.0.1");
  return p;
}

void check_ipv4(std::span<const uint8_t> f, const net::IpInfo& ip) {
  const uint8_t* h = &f[ip.l3_offset];
  PSPGW_FUZZ_CHECK(net::ipv4_checksum_ok(h));
  PSPGW_FUZZ_CHECK(ip.l4_proto == net::kIpProtoUdp && ip.src_port == 67 && ip.dst_port == 68);
  PSPGW_FUZZ_CHECK(ip.l3_offset + ip.l3_total_len == f.size());
  const auto udp = f.subspan(ip.l4_offset, ip.l3_offset + ip.l3_total_len - ip.l4_offset);
  PSPGW_FUZZ_CHECK(load_be16(&udp[4]) == udp.size());
  PSPGW_FUZZ_CHECK(net::l4_checksum_ok(h, net::kIpProtoUdp, udp));
}

void check_ipv6(std::span<const uint8_t> f, const net::IpInfo& ip) {
  PSPGW_FUZZ_CHECK(ip.l4_proto == net::kIpProtoIcmpv6 && f[ip.l3_offset + 7] == 255);  // RFC 4861 §7.1.2
  PSPGW_FUZZ_CHECK(ip.l3_offset + ip.l3_total_len == f.size());
  const auto icmp = f.subspan(ip.l4_offset, ip.l3_offset + ip.l3_total_len - ip.l4_offset);
  PSPGW_FUZZ_CHECK(icmp.size() >= 24 && icmp[0] == 136 && icmp[1] == 0);
  PSPGW_FUZZ_CHECK(net::l4_checksum_ok(&f[ip.l3_offset], net::kIpProtoIcmpv6, icmp));
}

void check_reply(std::span<const uint8_t> f, const gateway::ResponderPolicy& policy) {
  PSPGW_FUZZ_CHECK(f.size() >= 60);  // Ethernet minimum without FCS
  PSPGW_FUZZ_CHECK(std::memcmp(&f[6], policy.gateway_mac.bytes.data(), 6) == 0);
  auto fr = net::parse_frame(f);
  PSPGW_FUZZ_CHECK(fr.ok());
  switch (fr->ip.family) {
    case net::IpFamily::kV4:
      return check_ipv4(f, fr->ip);
    case net::IpFamily::kV6:
      return check_ipv6(f, fr->ip);
    case net::IpFamily::kNone:
      PSPGW_FUZZ_CHECK(fr->ethertype == net::kEtherTypeArp);
      PSPGW_FUZZ_CHECK(load_be16(&f[14 + 6]) == net::kArpReply);
      return;
  }
}

}  // namespace

PSPGW_FUZZ_TARGET(exception_reply) {
  static const gateway::ResponderPolicy policies[] = {make_policy(true), make_policy(false)};
  const std::span<const uint8_t> frame(data, size);
  for (const auto& policy : policies) {
    auto reply = gateway::exception_reply(frame, policy);
    if (reply) check_reply(*reply, policy);
  }
  return 0;
}
