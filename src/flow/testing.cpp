#include "flow/testing.hpp"

#include <cstring>

#include "base/byteorder.hpp"
#include "net/headers.hpp"

namespace pspgw::flow::testing {
namespace {

void put_eth(std::vector<uint8_t>& f, uint16_t ethertype) {
  for (int i = 0; i < 12; ++i) f.push_back(static_cast<uint8_t>(i + 1));
  f.push_back(static_cast<uint8_t>(ethertype >> 8));
  f.push_back(static_cast<uint8_t>(ethertype));
}

// IP header for `l4_len` bytes of L4, appended to f.
void put_ip(std::vector<uint8_t>& f, const net::IpAddr& src, const net::IpAddr& dst, uint8_t proto,
            std::size_t l4_len) {
  const std::size_t at = f.size();
  if (src.is_v4()) {
    f.resize(at + 20, 0);
    f[at] = 0x45;
    store_be16(&f[at + 2], static_cast<uint16_t>(20 + l4_len));
    f[at + 8] = 64;
    f[at + 9] = proto;
    std::memcpy(&f[at + 12], src.bytes.data(), 4);
    std::memcpy(&f[at + 16], dst.bytes.data(), 4);
  } else {
    f.resize(at + 40, 0);
    f[at] = 0x60;
    store_be16(&f[at + 4], static_cast<uint16_t>(l4_len));
    f[at + 6] = proto;
    f[at + 7] = 64;
    std::memcpy(&f[at + 8], src.bytes.data(), 16);
    std::memcpy(&f[at + 24], dst.bytes.data(), 16);
  }
}

void put_l4(std::vector<uint8_t>& f, uint8_t proto, uint16_t sport, uint16_t dport, std::size_t payload) {
  const std::size_t at = f.size();
  const std::size_t hl = proto == net::kIpProtoTcp ? 20 : 8;
  f.resize(at + hl, 0);
  store_be16(&f[at], sport);
  store_be16(&f[at + 2], dport);
  if (proto == net::kIpProtoTcp) {
    f[at + 12] = 0x50;
  } else {
    store_be16(&f[at + 4], static_cast<uint16_t>(8 + payload));
  }
}

}  // namespace

std::vector<uint8_t> frame(const FrameSpec& s) {
  std::vector<uint8_t> f;
  put_eth(f, s.src.is_v4() ? net::kEtherTypeIpv4 : net::kEtherTypeIpv6);
  const bool l4 = s.proto == net::kIpProtoUdp || s.proto == net::kIpProtoTcp;
  const std::size_t l4_hdr = !l4 ? 0 : s.proto == net::kIpProtoTcp ? 20 : 8;
  put_ip(f, s.src, s.dst, s.proto, l4_hdr + s.payload.size());
  if (l4) put_l4(f, s.proto, s.sport, s.dport, s.payload.size());
  f.insert(f.end(), s.payload.begin(), s.payload.end());
  return f;
}

std::vector<uint8_t> arp_frame() {
  std::vector<uint8_t> f;
  put_eth(f, net::kEtherTypeArp);
  f.resize(f.size() + sizeof(net::ArpEthIpv4), 0);
  return f;
}

std::vector<uint8_t> psp_frame(uint32_t spi, bool s_bit, const net::IpAddr& inner_src,
                               const net::IpAddr& inner_dst) {
  const std::vector<uint8_t> inner_frame =
      frame({inner_src, inner_dst, 17, 4000, 5000, std::vector<uint8_t>(10, 7)});
  const std::vector<uint8_t> inner(inner_frame.begin() + 14, inner_frame.end());
  std::vector<uint8_t> psp(16, 0);
  psp[0] = net::kIpProtoIpv4;
  psp[1] = 1;
  psp[3] = static_cast<uint8_t>((s_bit ? 0x80 : 0) | 0x01);
  store_be32(&psp[4], spi);
  const std::size_t udp_payload = psp.size() + inner.size() + 16;
  std::vector<uint8_t> f;
  put_eth(f, net::kEtherTypeIpv6);
  put_ip(f, *net::IpAddr::parse("fd00::1"), *net::IpAddr::parse("fd00::2"), 17, 8 + udp_payload);
  put_l4(f, 17, 4242, 1000, udp_payload);
  f.insert(f.end(), psp.begin(), psp.end());
  f.insert(f.end(), inner.begin(), inner.end());
  f.resize(f.size() + 16, 0xcc);
  return f;
}

std::size_t CollectSink::count(Target t) const {
  std::size_t n = 0;
  for (const auto& d : out) n += d.target == t;
  return n;
}

void CollectSink::clear() {
  for (const auto& d : out) pool_.free(d.pkt);
  out.clear();
  calls = 0;
}

void CollectSink::add(Target t, std::span<net::Packet* const> pkts) {
  ++calls;
  for (net::Packet* p : pkts) out.push_back({t, p});
}

net::PacketBatch make_batch(net::PacketPool& pool, const std::vector<std::vector<uint8_t>>& frames,
                            uint16_t in_port) {
  net::PacketBatch b;
  for (const auto& f : frames) {
    net::Packet* p = pool.alloc();
    if (p == nullptr || !p->assign(f)) break;
    p->meta.in_port = PortId(in_port);
    b.push(p);
  }
  return b;
}

}  // namespace pspgw::flow::testing
