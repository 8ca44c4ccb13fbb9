// Frame builders shared by the ports tests (not part of the library).
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "base/byteorder.hpp"
#include "net/checksum.hpp"
#include "net/headers.hpp"

namespace pspgw::ports::test {

struct L4Spec {
  bool v6 = false;
  uint8_t proto = net::kIpProtoTcp;
  uint32_t payload = 1000;
  uint32_t seq = 1;
  uint8_t tcp_flags = 0x10;  // ACK
  uint8_t tcp_options = 0;   // bytes, multiple of 4
  uint16_t ip_id = 0x1234;
  bool checksum = true;  // fill in a valid L4 checksum
};

inline uint8_t pattern(std::size_t i) {
  return static_cast<uint8_t>((i * 7 + 3) & 0xff);
}

// Ethernet 02:..:02 -> 02:..:01, 10.0.0.1 -> 10.0.0.2 or fd00::1 -> fd00::2, ports 40000 -> 5201,
// payload byte i = pattern(i).
inline std::vector<uint8_t> build_frame(const L4Spec& s) {
  const std::size_t l3 = s.v6 ? sizeof(net::Ipv6Hdr) : sizeof(net::Ipv4Hdr);
  const std::size_t l4 =
      s.proto == net::kIpProtoTcp ? sizeof(net::TcpHdr) + s.tcp_options : sizeof(net::UdpHdr);
  std::vector<uint8_t> f(14 + l3 + l4 + s.payload);
  uint8_t* p = f.data();
  const uint8_t dmac[6] = {2, 0, 0, 0, 0, 1};
  const uint8_t smac[6] = {2, 0, 0, 0, 0, 2};
  std::memcpy(p, dmac, 6);
  std::memcpy(p + 6, smac, 6);
  store_be16(p + 12, s.v6 ? net::kEtherTypeIpv6 : net::kEtherTypeIpv4);
  uint8_t* ip = p + 14;
  if (s.v6) {
    store_be32(ip, 0x60000000);
    store_be16(ip + 4, static_cast<uint16_t>(l4 + s.payload));
    ip[6] = s.proto;
    ip[7] = 64;
    ip[8] = 0xfd;
    ip[23] = 1;
    ip[24] = 0xfd;
    ip[39] = 2;
  } else {
    ip[0] = 0x45;
    store_be16(ip + 2, static_cast<uint16_t>(l3 + l4 + s.payload));
    store_be16(ip + 4, s.ip_id);
    store_be16(ip + 6, net::kIpv4FlagDf);
    ip[8] = 64;
    ip[9] = s.proto;
    const uint8_t src[4] = {10, 0, 0, 1};
    const uint8_t dst[4] = {10, 0, 0, 2};
    std::memcpy(ip + 12, src, 4);
    std::memcpy(ip + 16, dst, 4);
    net::ipv4_set_checksum(ip);
  }
  uint8_t* h = ip + l3;
  store_be16(h, 40000);
  store_be16(h + 2, 5201);
  std::size_t csum_at = 6;
  if (s.proto == net::kIpProtoTcp) {
    store_be32(h + 4, s.seq);
    store_be32(h + 8, 77);
    h[12] = static_cast<uint8_t>((l4 / 4) << 4);
    h[13] = s.tcp_flags;
    store_be16(h + 14, 65535);
    for (std::size_t i = 20; i < l4; ++i) h[i] = 1;  // NOP options
    csum_at = 16;
  } else {
    store_be16(h + 4, static_cast<uint16_t>(l4 + s.payload));
  }
  for (std::size_t i = 0; i < s.payload; ++i) h[l4 + i] = pattern(i);
  if (s.checksum) store_be16(h + csum_at, net::l4_checksum(ip, s.proto, {h, l4 + s.payload}));
  return f;
}

}  // namespace pspgw::ports::test
