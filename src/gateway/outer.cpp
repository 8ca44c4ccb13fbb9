#include "gateway/outer.hpp"

#include <cstring>

#include "base/byteorder.hpp"
#include "net/checksum.hpp"
#include "net/headers.hpp"
#include "psp/header.hpp"

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

// The offset of the UDP header of an Ethernet + IPv4/IPv6 + UDP frame; 0 if it is not one.
uint32_t udp_offset(std::span<const uint8_t> f) {
  constexpr uint32_t kEth = sizeof(net::EthHdr);
  if (f.size() < kEth + sizeof(net::Ipv4Hdr) + kUdpHeader) return 0;
  const uint16_t type = load_be16(&f[12]);
  if (type == net::kEtherTypeIpv4 && (f[kEth] >> 4) == 4 && f[kEth + 9] == net::kIpProtoUdp) {
    const uint32_t ihl = static_cast<uint32_t>(f[kEth] & 0x0f) * 4;
    return ihl >= sizeof(net::Ipv4Hdr) && kEth + ihl + kUdpHeader <= f.size() ? kEth + ihl : 0;
  }
  if (type == net::kEtherTypeIpv6 && f.size() >= kEth + sizeof(net::Ipv6Hdr) + kUdpHeader &&
      (f[kEth] >> 4) == 6 && f[kEth + 6] == net::kIpProtoUdp) {
    return kEth + sizeof(net::Ipv6Hdr);
  }
  return 0;
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
  const uint32_t udp = udp_offset(frame.bytes());
  if (udp == 0) return false;
  const uint8_t* ip = frame.data() + sizeof(net::EthHdr);
  frame.meta.peer = (ip[0] >> 4) == 4 ? net::IpAddr::v4(std::span<const uint8_t, 4>(ip + 16, 4))
                                      : net::IpAddr::v6(std::span<const uint8_t, 16>(ip + 24, 16));
  frame.meta.peer_port = load_be16(frame.data() + udp + 2);
  return frame.pull_front(udp + kUdpHeader);
}

uint32_t encapped_inner_offset(std::span<const uint8_t> frame) {
  const uint32_t udp = udp_offset(frame);
  const uint32_t psp = udp + kUdpHeader;
  if (udp == 0 || frame.size() < psp + 2) return 0;
  return psp + 8 + 8u * frame[psp + 1];  // Hdr Ext Len: 8-byte units after the first 8 (spec §2)
}

bool finish_encapped_segment(net::Packet& frame) {
  const uint32_t udp = udp_offset(frame.bytes());
  if (udp == 0) return false;
  uint8_t* icv = frame.push_back(psp::kPspIcvSize);
  if (icv == nullptr) return false;
  std::memset(icv, 0, psp::kPspIcvSize);
  uint8_t* f = frame.data();
  const uint32_t ip = sizeof(net::EthHdr);
  if ((f[ip] >> 4) == 4) {
    store_be16(f + ip + 2, static_cast<uint16_t>(frame.size() - ip));
    net::ipv4_set_checksum(f + ip);
  } else {
    store_be16(f + ip + 4, static_cast<uint16_t>(frame.size() - ip - sizeof(net::Ipv6Hdr)));
  }
  store_be16(f + udp + 4, static_cast<uint16_t>(frame.size() - udp));
  return true;
}

}  // namespace pspgw::gateway
