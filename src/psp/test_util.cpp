#include "psp/test_util.hpp"

#include <cctype>
#include <stdexcept>

#include "base/byteorder.hpp"
#include "net/checksum.hpp"
#include "net/headers.hpp"

namespace pspgw::psp::testing {

std::vector<uint8_t> hex(std::string_view text) {
  std::vector<uint8_t> out;
  int hi = -1;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c)) != 0) continue;
    const int v = std::isdigit(static_cast<unsigned char>(c)) != 0 ? c - '0' : (std::tolower(c) - 'a' + 10);
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<uint8_t>(hi << 4 | v));
      hi = -1;
    }
  }
  return out;
}

crypto::MasterKey master_key(std::string_view hex_text) {
  const auto b = hex(hex_text);
  if (b.size() != 32) throw std::invalid_argument("master key must be 32 bytes");
  return crypto::MasterKey(std::span<const uint8_t, 32>(b.data(), 32));
}

std::vector<uint8_t> make_ip_packet(const FrameSpec& s) {
  const bool v4 = s.family == net::IpFamily::kV4;
  const std::size_t l4_hdr = s.proto == 17 ? 8 : s.proto == 6 ? 20 : 0;
  const std::size_t ext = v4 ? s.ipv4_option_words * 4u : (s.ipv6_dest_opts ? 8 : 0);
  const std::size_t ip_hdr = (v4 ? 20 : 40) + ext;
  std::vector<uint8_t> p(ip_hdr + l4_hdr + s.payload);
  if (v4) {
    p[0] = static_cast<uint8_t>(0x40 | (5 + s.ipv4_option_words));
    store_be16(&p[2], static_cast<uint16_t>(p.size()));
    store_be16(&p[4], 1);
    store_be16(&p[6], net::kIpv4FlagDf);
    p[8] = 64;
    p[9] = s.proto;
    const uint8_t addrs[8] = {10, 0, 0, 1, 10, 0, 0, 2};
    std::copy(addrs, addrs + 8, &p[12]);
    for (std::size_t i = 20; i < ip_hdr; ++i) p[i] = 1;  // NOP options
    net::ipv4_set_checksum(p.data());
  } else {
    p[0] = 0x60;
    store_be16(&p[4], static_cast<uint16_t>(p.size() - 40));
    p[6] = s.ipv6_dest_opts ? net::kIpProtoDstOpts : s.proto;
    p[7] = 64;
    p[8] = 0x0a;
    p[23] = 1;
    p[24] = 0x0a;
    p[39] = 2;
    if (s.ipv6_dest_opts) {
      p[40] = s.proto;
      p[41] = 0;
      p[42] = 1;  // PadN option filling the header
      p[43] = 4;
    }
  }
  uint8_t* l4 = &p[ip_hdr];
  if (l4_hdr != 0) {
    store_be16(l4, 11111);
    store_be16(l4 + 2, 22222);
  }
  if (s.proto == 17) store_be16(l4 + 4, static_cast<uint16_t>(8 + s.payload));
  if (s.proto == 6) l4[12] = 0x50;
  for (std::size_t i = 0; i < s.payload; ++i) l4[l4_hdr + i] = static_cast<uint8_t>(i * 7 + 3);
  if (s.proto == 17 || s.proto == 6) {
    const std::size_t csum_at = s.proto == 17 ? 6 : 16;
    const uint16_t c = net::l4_checksum(p.data(), s.proto, {l4, l4_hdr + s.payload});
    store_be16(l4 + csum_at, c);
  }
  return p;
}

std::vector<uint8_t> make_frame(const FrameSpec& s) {
  const auto ip = make_ip_packet(s);
  const std::size_t l2 = s.vlan ? 18 : 14;
  std::vector<uint8_t> f(l2 + ip.size());
  const uint8_t macs[12] = {0x00, 0x88, 0x99, 0xaa, 0xbb, 0x00, 0x00, 0x22, 0x33, 0x44, 0x55, 0x00};
  std::copy(macs, macs + 12, f.begin());
  if (s.vlan) {
    store_be16(&f[12], net::kEtherTypeVlan);
    store_be16(&f[14], 42);
  }
  store_be16(&f[l2 - 2], s.family == net::IpFamily::kV4 ? net::kEtherTypeIpv4 : net::kEtherTypeIpv6);
  std::copy(ip.begin(), ip.end(), f.begin() + static_cast<std::ptrdiff_t>(l2));
  return f;
}

net::Packet* load(net::PacketPool& pool, std::span<const uint8_t> bytes) {
  net::Packet* p = pool.alloc();
  if (p == nullptr || !p->assign(bytes)) throw std::runtime_error("test packet does not fit");
  return p;
}

FixedResolver::FixedResolver(const crypto::AeadBackend& aead, std::span<const uint8_t> key128,
                             std::span<const uint8_t> key256)
    : k128_(aead.make_key(crypto::AeadAlg::kAesGcm128, key128)),
      k256_(aead.make_key(crypto::AeadAlg::kAesGcm256, key256)) {}

const crypto::AeadKey* FixedResolver::key_for(uint32_t /*spi*/, PspVersion version) {
  ++lookups;
  if (version == PspVersion::kAesGcm128) return k128_.get();
  if (version == PspVersion::kAesGcm256) return k256_.get();
  return nullptr;
}

void CountingBackend::seal(std::span<crypto::AeadOp> ops) const {
  ++seal_calls;
  ops_seen += ops.size();
  inner_.seal(ops);
}

void CountingBackend::open(std::span<crypto::AeadOp> ops) const {
  ++open_calls;
  ops_seen += ops.size();
  inner_.open(ops);
}

std::vector<std::string_view> backend_names() {
  std::vector<std::string_view> names = {"openssl"};
  if (crypto::make_backend("ipsec-mb")) names.push_back("ipsec-mb");
  return names;
}

}  // namespace pspgw::psp::testing
