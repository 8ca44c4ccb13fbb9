#include "create.hpp"

#include <cstring>

#include "net/checksum.hpp"
#include "net/headers.hpp"

namespace pspgw::psp_pcap {
namespace {

constexpr net::MacBytes kSrcMac = {0x00, 0x22, 0x33, 0x44, 0x55, 0x00};
constexpr net::MacBytes kDstMac = {0x00, 0x88, 0x99, 0xaa, 0xbb, 0x00};
constexpr uint16_t kSrcPort = 11111;
constexpr uint16_t kDstPort = 22222;
constexpr uint8_t kTtl = 64;

constexpr std::size_t kEth = sizeof(net::EthHdr);
constexpr std::size_t kUdp = sizeof(net::UdpHdr);

std::size_t ip_header_size(net::IpFamily f) {
  return f == net::IpFamily::kV4 ? sizeof(net::Ipv4Hdr) : sizeof(net::Ipv6Hdr);
}

void write_eth(uint8_t* p, uint16_t ethertype) {
  auto* eth = reinterpret_cast<net::EthHdr*>(p);
  eth->dst = kDstMac;
  eth->src = kSrcMac;
  eth->ethertype = Be16::from_host(ethertype);
}

void write_ipv4(uint8_t* p, uint16_t udp_len) {
  auto* ip = reinterpret_cast<net::Ipv4Hdr*>(p);
  *ip = net::Ipv4Hdr{};
  ip->version_ihl = 0x45;
  ip->total_length = Be16::from_host(static_cast<uint16_t>(sizeof(net::Ipv4Hdr) + udp_len));
  ip->frag_off = Be16::from_host(net::kIpv4FlagDf);
  ip->ttl = kTtl;
  ip->protocol = net::kIpProtoUdp;
  ip->src = {10, 0, 0, 1};
  ip->dst = {10, 0, 0, 2};
  net::ipv4_set_checksum(p);
}

void write_ipv6(uint8_t* p, uint16_t udp_len) {
  auto* ip = reinterpret_cast<net::Ipv6Hdr*>(p);
  *ip = net::Ipv6Hdr{};
  ip->ver_tc_flow = Be32::from_host(0x60000000u);
  ip->payload_length = Be16::from_host(udp_len);
  ip->next_header = net::kIpProtoUdp;
  ip->hop_limit = kTtl;
  ip->src = {10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  ip->dst = {10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
}

}  // namespace

std::size_t test_frame_size(const CreateSpec& spec) {
  return spec.empty ? kEth + ip_header_size(spec.family) + kUdp : kCreateFrameSize;
}

std::size_t build_test_frame(const CreateSpec& spec, uint32_t n, std::span<uint8_t> out) {
  const std::size_t size = test_frame_size(spec);
  const std::size_t l3 = kEth;
  const std::size_t l4 = l3 + ip_header_size(spec.family);
  const auto udp_len = static_cast<uint16_t>(size - l4);
  uint8_t* p = out.first(size).data();

  const bool v4 = spec.family == net::IpFamily::kV4;
  write_eth(p, v4 ? net::kEtherTypeIpv4 : net::kEtherTypeIpv6);
  if (v4) {
    write_ipv4(p + l3, udp_len);
  } else {
    write_ipv6(p + l3, udp_len);
  }
  for (std::size_t i = l4 + kUdp; i < size; ++i) p[i] = static_cast<uint8_t>(n + (i - l4 - kUdp));

  auto* udp = reinterpret_cast<net::UdpHdr*>(p + l4);
  udp->src_port = Be16::from_host(kSrcPort);
  udp->dst_port = Be16::from_host(kDstPort);
  udp->length = Be16::from_host(udp_len);
  udp->checksum = Be16{};
  udp->checksum = Be16::from_host(net::l4_checksum(p + l3, net::kIpProtoUdp, {p + l4, udp_len}));
  return size;
}

}  // namespace pspgw::psp_pcap
