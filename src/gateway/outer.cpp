#include "gateway/outer.hpp"

#include <cstring>

#include "base/byteorder.hpp"
#include "net/checksum.hpp"
#include "net/headers.hpp"

namespace pspgw::gateway {
namespace {

constexpr uint8_t kOuterTtl = 64;
constexpr uint32_t kUdpHeader = sizeof(net::UdpHdr);

void write_eth(uint8_t* p, const net::MacAddr& dst, uint16_t type) {
  std::memcpy(p, dst.bytes.data(), 6);
  std::memset(p + 6, 0, 6);  // the peer's MAC is not known through a UDP socket
  store_be16(p + 12, type);
}

void write_udp(uint8_t* p, uint16_t sport, uint16_t dport, uint32_t payload) {
  store_be16(p, sport);
  store_be16(p + 2, dport);
  store_be16(p + 4, static_cast<uint16_t>(payload + kUdpHeader));
  store_be16(p + 6, 0);  // PSP: UDP checksum 0 (spec §1)
}

bool wrap_one(net::Packet& pkt, const OuterEndpoint& local) {
  const uint32_t payload = pkt.size();
  const net::IpAddr& peer = pkt.meta.peer;
  if (peer.family != local.local.family) return false;
  if (peer.is_v4()) {
    uint8_t* p = pkt.push_front(sizeof(net::EthHdr) + sizeof(net::Ipv4Hdr) + kUdpHeader);
    if (p == nullptr || payload + sizeof(net::Ipv4Hdr) + kUdpHeader > 0xffff) return false;
    write_eth(p, local.local_mac, net::kEtherTypeIpv4);
    uint8_t* ip = p + sizeof(net::EthHdr);
    std::memset(ip, 0, sizeof(net::Ipv4Hdr));
    ip[0] = 0x45;
    store_be16(ip + 2, static_cast<uint16_t>(payload + sizeof(net::Ipv4Hdr) + kUdpHeader));
    ip[8] = kOuterTtl;
    ip[9] = net::kIpProtoUdp;
    std::memcpy(ip + 12, peer.bytes.data(), 4);
    std::memcpy(ip + 16, local.local.bytes.data(), 4);
    net::ipv4_set_checksum(ip);
    write_udp(ip + sizeof(net::Ipv4Hdr), pkt.meta.peer_port, local.port, payload);
    return true;
  }
  uint8_t* p = pkt.push_front(sizeof(net::EthHdr) + sizeof(net::Ipv6Hdr) + kUdpHeader);
  if (p == nullptr || payload + kUdpHeader > 0xffff) return false;
  write_eth(p, local.local_mac, net::kEtherTypeIpv6);
  uint8_t* ip = p + sizeof(net::EthHdr);
  store_be32(ip, 0x60000000u);
  store_be16(ip + 4, static_cast<uint16_t>(payload + kUdpHeader));
  ip[6] = net::kIpProtoUdp;
  ip[7] = kOuterTtl;
  std::memcpy(ip + 8, peer.bytes.data(), 16);
  std::memcpy(ip + 24, local.local.bytes.data(), 16);
  write_udp(ip + sizeof(net::Ipv6Hdr), pkt.meta.peer_port, local.port, payload);
  return true;
}

}  // namespace

std::size_t wrap_received(net::PacketBatch& batch, const OuterEndpoint& local, uint8_t drop_reason) {
  std::size_t n = 0;
  for (net::Packet* pkt : batch) {
    if (wrap_one(*pkt, local)) {
      ++n;
    } else {
      pkt->meta.drop_reason = drop_reason;
    }
  }
  return n;
}

bool unwrap_for_send(net::Packet& frame) {
  const uint8_t* f = frame.data();
  const uint32_t len = frame.size();
  if (len < sizeof(net::EthHdr) + sizeof(net::Ipv4Hdr) + kUdpHeader) return false;
  const uint16_t type = load_be16(f + 12);
  uint32_t l4 = 0;
  if (type == net::kEtherTypeIpv4 && (f[14] >> 4) == 4 && f[14 + 9] == net::kIpProtoUdp) {
    const uint32_t ihl = static_cast<uint32_t>(f[14] & 0x0f) * 4;
    l4 = sizeof(net::EthHdr) + ihl;
    if (ihl < sizeof(net::Ipv4Hdr) || l4 + kUdpHeader > len) return false;
    frame.meta.peer = net::IpAddr::v4(std::span<const uint8_t, 4>(f + 14 + 16, 4));
  } else if (type == net::kEtherTypeIpv6 && len >= sizeof(net::EthHdr) + sizeof(net::Ipv6Hdr) + kUdpHeader &&
             (f[14] >> 4) == 6 && f[14 + 6] == net::kIpProtoUdp) {
    l4 = sizeof(net::EthHdr) + sizeof(net::Ipv6Hdr);
    frame.meta.peer = net::IpAddr::v6(std::span<const uint8_t, 16>(f + 14 + 24, 16));
  } else {
    return false;
  }
  frame.meta.peer_port = load_be16(f + l4 + 2);
  return frame.pull_front(l4 + kUdpHeader);
}

}  // namespace pspgw::gateway
