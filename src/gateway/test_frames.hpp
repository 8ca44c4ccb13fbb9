// Frame builders shared by the gateway's tests (not part of the library): what a workload puts on its
// host port.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "base/byteorder.hpp"
#include "net/addr.hpp"
#include "net/checksum.hpp"
#include "net/headers.hpp"

namespace pspgw::gateway::test {

inline net::IpAddr ip(std::string_view text) {
  return net::IpAddr::parse(text).value();
}
inline net::MacAddr mac(std::string_view text) {
  return net::MacAddr::parse(text).value();
}
inline uint64_t mac_bits(const net::MacAddr& m) {
  uint64_t v = 0;
  for (uint8_t b : m.bytes) v = v << 8 | b;
  return v;
}

struct UdpSpec {
  net::MacAddr src_mac = mac("02:00:00:00:0a:01");
  net::MacAddr dst_mac = mac("02:00:00:00:0a:fe");
  net::IpAddr src = ip("10.0.0.1");
  net::IpAddr dst = ip("10.0.0.2");
  uint16_t sport = 40000;
  uint16_t dport = 5001;
  std::vector<uint8_t> payload = std::vector<uint8_t>(64, 0x5a);
  uint16_t ipv4_frag = 0;  // IPv4 flags + fragment offset field
};

// Ethernet + IPv4 (checksummed) or IPv6 (by the address family) + UDP (checksummed) + payload.
inline std::vector<uint8_t> udp_frame(const UdpSpec& s) {
  const bool v4 = s.src.is_v4();
  const std::size_t ip_len = v4 ? sizeof(net::Ipv4Hdr) : sizeof(net::Ipv6Hdr);
  const std::size_t udp_len = sizeof(net::UdpHdr) + s.payload.size();
  std::vector<uint8_t> f(sizeof(net::EthHdr) + ip_len + udp_len);
  uint8_t* p = f.data();
  std::memcpy(p, s.dst_mac.bytes.data(), 6);
  std::memcpy(p + 6, s.src_mac.bytes.data(), 6);
  store_be16(p + 12, v4 ? net::kEtherTypeIpv4 : net::kEtherTypeIpv6);
  uint8_t* iph = p + sizeof(net::EthHdr);
  if (v4) {
    iph[0] = 0x45;
    store_be16(iph + 2, static_cast<uint16_t>(ip_len + udp_len));
    store_be16(iph + 4, 0x1234);
    store_be16(iph + 6, s.ipv4_frag);
    iph[8] = 64;
    iph[9] = net::kIpProtoUdp;
    std::memcpy(iph + 12, s.src.bytes.data(), 4);
    std::memcpy(iph + 16, s.dst.bytes.data(), 4);
    net::ipv4_set_checksum(iph);
  } else {
    store_be32(iph, 0x60000000u);
    store_be16(iph + 4, static_cast<uint16_t>(udp_len));
    iph[6] = net::kIpProtoUdp;
    iph[7] = 64;
    std::memcpy(iph + 8, s.src.bytes.data(), 16);
    std::memcpy(iph + 24, s.dst.bytes.data(), 16);
  }
  uint8_t* udp = iph + ip_len;
  store_be16(udp, s.sport);
  store_be16(udp + 2, s.dport);
  store_be16(udp + 4, static_cast<uint16_t>(udp_len));
  if (!s.payload.empty()) std::memcpy(udp + sizeof(net::UdpHdr), s.payload.data(), s.payload.size());
  store_be16(udp + 6, net::l4_checksum(iph, net::kIpProtoUdp, {udp, udp_len}));
  return f;
}

// Ethernet broadcast + ARP request "who has target? tell sender".
inline std::vector<uint8_t> arp_request(const net::MacAddr& sender_mac, const net::IpAddr& sender,
                                        const net::IpAddr& target) {
  std::vector<uint8_t> f(sizeof(net::EthHdr) + 28, 0);
  uint8_t* p = f.data();
  std::memset(p, 0xff, 6);
  std::memcpy(p + 6, sender_mac.bytes.data(), 6);
  store_be16(p + 12, net::kEtherTypeArp);
  uint8_t* a = p + sizeof(net::EthHdr);
  store_be16(a, 1);  // Ethernet
  store_be16(a + 2, net::kEtherTypeIpv4);
  a[4] = 6;
  a[5] = 4;
  store_be16(a + 6, net::kArpRequest);
  std::memcpy(a + 8, sender_mac.bytes.data(), 6);
  std::memcpy(a + 14, sender.bytes.data(), 4);
  std::memcpy(a + 24, target.bytes.data(), 4);
  return f;
}

}  // namespace pspgw::gateway::test
