// Writes the binary seed corpora: fuzz_make_corpus <fuzz/corpus dir>. PSP seeds are sealed with
// fuzz_keys.hpp's ring, so they authenticate in fuzz_psp_decap and reach the frame-restore code;
// exception_reply seeds ask for the addresses fuzz_exception_reply's policy claims; tap_gso seeds are
// super-packets behind their virtio-net headers, flow_match seeds random programs. The text corpora
// (gateway_config, psp_pcap_config, admin_request) are written by hand.
#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "base/byteorder.hpp"
#include "control/grpc_convert.hpp"
#include "fuzz/fuzz_keys.hpp"
#include "net/checksum.hpp"
#include "net/headers.hpp"
#include "ports/pcap_io.hpp"
#include "ports/test_frames.hpp"
#include "ports/vnet_hdr.hpp"
#include "psp/encap.hpp"
#include "psp/seal.hpp"
#include "psp/test_util.hpp"

namespace {

using namespace pspgw;
namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

void write(const fs::path& dir, const std::string& name, std::span<const uint8_t> bytes) {
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

bool write_psp_seeds(const fs::path& root) {
  auto aead = crypto::make_openssl_backend();
  const psp::KeyRing ring = fuzz::fixed_ring();
  net::PacketPool pool(1);
  int n = 0;
  for (auto mode : {psp::Mode::kTransport, psp::Mode::kTunnel}) {
    for (auto fam : {net::IpFamily::kV4, net::IpFamily::kV6}) {
      for (auto v : {psp::PspVersion::kAesGcm128, psp::PspVersion::kAesGcm256, psp::PspVersion::kAesGmac128,
                     psp::PspVersion::kAesGmac256}) {
        for (bool vc : {false, true}) {
          const auto frame = psp::testing::make_frame(
              {fam, static_cast<uint8_t>(vc ? 6 : 17), 24, vc && v == psp::PspVersion::kAesGcm128});
          write(root / "net_parse", "frame" + std::to_string(n), frame);
          psp::SealParams p;
          p.mode = mode;
          p.version = v;
          p.spi = vc ? 0x80000003 : 0x00000002;
          p.iv = 1;
          p.has_vc = vc;
          p.crypt_offset = vc ? 1 : 2;
          auto derived = ring.derive(p.spi, v).value();
          auto key = aead->make_key(*psp::aead_alg(static_cast<uint8_t>(v)), derived.view());
          net::Packet* pkt = psp::testing::load(pool, frame);
          if (!psp::encap_frame(*pkt, p, *key, *aead).ok()) return false;
          write(root / "psp_decap", "frame" + std::to_string(n), pkt->bytes());
          pool.free(pkt);
          psp::PspHeaderFields h = psp::seal_header(p, 4);
          std::array<uint8_t, 24> hb{};
          psp::encode_header(h, hb);
          write(root / "psp_header", "hdr" + std::to_string(n), std::span<const uint8_t>(hb).first(h.size()));
          ++n;
        }
      }
    }
  }
  return true;
}

// ---- exception_reply: ARP requests, Neighbor Solicitations, DHCP DISCOVER / REQUEST --------------------

const net::MacBytes kVmMac = {0x02, 0, 0, 0, 0, 0x01};

void put_ip(uint8_t* at, const char* text) {
  const auto ip = *net::IpAddr::parse(text);
  std::memcpy(at, ip.bytes.data(), ip.size());
}

Bytes eth(const net::MacBytes& dst, uint16_t type, std::size_t payload) {
  Bytes f(14 + payload, 0);
  std::memcpy(f.data(), dst.data(), 6);
  std::memcpy(&f[6], kVmMac.data(), 6);
  store_be16(&f[12], type);
  return f;
}

Bytes arp_request(const char* target) {
  Bytes f = eth({0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, net::kEtherTypeArp, 28);
  uint8_t* a = &f[14];
  store_be16(a, 1);
  store_be16(a + 2, net::kEtherTypeIpv4);
  a[4] = 6;
  a[5] = 4;
  store_be16(a + 6, net::kArpRequest);
  std::memcpy(a + 8, kVmMac.data(), 6);
  put_ip(a + 14, "10.0.0.1");
  put_ip(a + 24, target);
  return f;
}

Bytes neighbor_solicit(const char* target, bool with_option) {
  const std::size_t icmp_len = with_option ? 32 : 24;
  Bytes f = eth({0x33, 0x33, 0xff, 0, 0, 2}, net::kEtherTypeIpv6, 40 + icmp_len);
  uint8_t* h = &f[14];
  store_be32(h, 0x60000000);
  store_be16(h + 4, static_cast<uint16_t>(icmp_len));
  h[6] = net::kIpProtoIcmpv6;
  h[7] = 255;
  put_ip(h + 8, "fd00::1");
  put_ip(h + 24, "ff02::1:ff00:2");
  uint8_t* m = h + 40;
  m[0] = 135;
  put_ip(m + 8, target);
  if (with_option) {
    m[24] = 1;
    m[25] = 1;
    std::memcpy(m + 26, kVmMac.data(), 6);
  }
  store_be16(m + 2, net::l4_checksum(h, net::kIpProtoIcmpv6, {m, icmp_len}));
  return f;
}

Bytes dhcp(uint8_t type, const char* requested) {
  Bytes bootp(240, 0);
  bootp[0] = 1;
  bootp[1] = 1;
  bootp[2] = 6;
  store_be32(&bootp[4], 0xdeadbeef);
  std::memcpy(&bootp[28], kVmMac.data(), 6);
  store_be32(&bootp[236], 0x63825363);
  bootp.insert(bootp.end(), {53, 1, type});
  if (requested != nullptr) {
    bootp.insert(bootp.end(), {50, 4, 0, 0, 0, 0});
    put_ip(&bootp[bootp.size() - 4], requested);
  }
  bootp.insert(bootp.end(), {0, 0, 255});
  const std::size_t total = 20 + 8 + bootp.size();
  Bytes f = eth({0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, net::kEtherTypeIpv4, total);
  uint8_t* ip = &f[14];
  ip[0] = 0x45;
  store_be16(ip + 2, static_cast<uint16_t>(total));
  ip[8] = 64;
  ip[9] = net::kIpProtoUdp;
  put_ip(ip + 16, "255.255.255.255");
  net::ipv4_set_checksum(ip);
  uint8_t* udp = ip + 20;
  store_be16(udp, 68);
  store_be16(udp + 2, 67);
  store_be16(udp + 4, static_cast<uint16_t>(8 + bootp.size()));
  std::memcpy(udp + 8, bootp.data(), bootp.size());
  store_be16(udp + 6, net::l4_checksum(ip, net::kIpProtoUdp, {udp, 8 + bootp.size()}));
  return f;
}

void write_exception_seeds(const fs::path& dir) {
  write(dir, "arp_proxied", arp_request("10.0.0.2"));
  write(dir, "arp_gateway", arp_request("10.0.0.254"));
  write(dir, "arp_other", arp_request("10.0.0.3"));
  write(dir, "ns_option", neighbor_solicit("fd00::2", true));
  write(dir, "ns_plain", neighbor_solicit("fd00::2", false));
  write(dir, "dhcp_discover", dhcp(1, nullptr));
  write(dir, "dhcp_request_ack", dhcp(3, "10.0.0.1"));
  write(dir, "dhcp_request_nak", dhcp(3, "10.0.0.9"));
}

// ---- pcap_reader: both byte orders and timestamp units, old versions, pcapng, truncations ------------

// PcapWriter writes host byte order; these edit its fields in place.
uint32_t get_host32(const uint8_t* p) {
  uint32_t v = 0;
  std::memcpy(&v, p, 4);
  return v;
}
void set_host32(uint8_t* p, uint32_t v) {
  std::memcpy(p, &v, 4);
}
void set_minor_version(Bytes& b, uint16_t minor) {
  std::memcpy(&b[6], &minor, 2);
}

bool write_pcap_seeds(const fs::path& dir) {
  fs::create_directories(dir);
  const fs::path base = dir / "micro_le";
  {
    auto w = ports::PcapWriter::create(base.string(), 65535);
    if (!w) return false;
    const Bytes frames[] = {arp_request("10.0.0.2"), neighbor_solicit("fd00::2", true), dhcp(1, nullptr)};
    uint32_t sec = 1;
    for (const Bytes& f : frames) {
      if (!w->write(f, {sec++, 500000}, static_cast<uint32_t>(f.size() + 4))) return false;
    }
    if (!w->close()) return false;
  }
  std::ifstream in(base, std::ios::binary);
  const Bytes micro((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto variant = [&](const char* name, auto&& edit) {
    Bytes b = micro;
    edit(b);
    write(dir, name, b);
  };
  variant("nano", [](Bytes& b) { set_host32(b.data(), ports::kPcapMagicNano); });
  variant("v2_2", [](Bytes& b) { set_minor_version(b, 2); });  // caplen / len stored the other way round
  variant("v2_3", [](Bytes& b) { set_minor_version(b, 3); });
  variant("swapped", [](Bytes& b) {  // the same file written on a big-endian host
    for (std::size_t at : {0, 8, 12, 16, 20}) std::reverse(&b[at], &b[at + 4]);
    std::reverse(&b[4], &b[6]);
    std::reverse(&b[6], &b[8]);
    for (std::size_t rec = 24; rec + 16 <= b.size();) {
      const uint32_t caplen = get_host32(&b[rec + 8]);
      for (std::size_t f = 0; f < 16; f += 4) std::reverse(&b[rec + f], &b[rec + f + 4]);
      rec += 16 + caplen;
    }
  });
  variant("truncated_record", [](Bytes& b) { b.resize(b.size() - 5); });
  variant("huge_caplen", [](Bytes& b) { set_host32(&b[24 + 8], 0x7fffffff); });
  variant("pcapng", [](Bytes& b) { set_host32(b.data(), ports::kPcapngMagic); });
  variant("header_only", [](Bytes& b) { b.resize(24); });
  return true;
}

// ---- grpc_convert: serialized MultiTunnelRequest / MultiTunnelResponse -------------------------------

void set_params(psp_gateway::TunnelParameters* p, const char* ip, uint32_t version, uint32_t spi) {
  p->set_mac_addr("02:00:00:00:00:0" + std::to_string(version + 1));
  p->set_ip_addr(ip);
  p->set_psp_version(version);
  p->set_spi(spi);
  p->set_encryption_key(std::string(version == 0 ? 16 : 32, '\x5a'));
  p->set_virt_cookie(0x778899aabbccddeeULL);
  p->set_encap_type(std::string_view(ip).find(':') == std::string_view::npos ? 4 : 6);
}

void write_message(const fs::path& dir, const std::string& name, const google::protobuf::MessageLite& m) {
  const std::string bytes = m.SerializeAsString();
  write(dir, name, {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
}

void write_grpc_seeds(const fs::path& dir) {
  psp_gateway::MultiTunnelRequest req;
  req.set_request_id(7);
  req.add_psp_versions_accepted(1);
  req.add_psp_versions_accepted(0);
  auto* t4 = req.add_tunnels();
  t4->set_virt_src_ip("192.168.1.1");
  t4->set_virt_dst_ip("192.168.2.2");
  t4->set_inner_type(4);
  set_params(t4->mutable_reverse_params(), "10.0.0.1", 0, 0x00000011);
  write_message(dir, "request_v4", req);
  auto* t6 = req.add_tunnels();
  t6->set_virt_src_ip("fd00::1");
  t6->set_virt_dst_ip("fd00::2");
  set_params(t6->mutable_reverse_params(), "fd00:1::1", 1, 0x80000012);
  write_message(dir, "request_v4_v6", req);
  req.add_tunnels()->set_virt_src_ip("10.1.1.1");  // no destination: refused
  write_message(dir, "request_bad", req);
  psp_gateway::MultiTunnelResponse resp;
  resp.set_request_id(7);
  set_params(resp.add_tunnels_params(), "10.0.0.2", 0, 0x00000021);
  set_params(resp.add_tunnels_params(), "fd00:1::2", 1, 0x80000022);
  write_message(dir, "response", resp);
}

// fuzz_tap_gso: virtio-net header, the pool-size byte (even: full buffers, odd: 512 bytes), the frame.
void write_tap_gso_seed(const fs::path& dir, const std::string& name, const ports::VirtioNetHdr& hdr,
                        uint8_t pool, const ports::test::L4Spec& spec) {
  Bytes b(sizeof(hdr));
  std::memcpy(b.data(), &hdr, sizeof(hdr));
  b.push_back(pool);
  const Bytes frame = ports::test::build_frame(spec);
  b.insert(b.end(), frame.begin(), frame.end());
  write(dir, name, b);
}

void write_tap_gso_seeds(const fs::path& dir) {
  using ports::VirtioNetHdr;
  constexpr uint8_t kTcp = net::kIpProtoTcp;
  constexpr uint8_t kUdp = net::kIpProtoUdp;
  write_tap_gso_seed(dir, "tcp4", VirtioNetHdr{0, ports::kVnetGsoTcpV4, 54, 1448, 34, 16}, 0,
                     {.v6 = false, .proto = kTcp, .payload = 3000});
  write_tap_gso_seed(dir, "tcp4_ecn_fin",
                     VirtioNetHdr{0, ports::kVnetGsoTcpV4 | ports::kVnetGsoEcn, 54, 1000, 34, 16}, 0,
                     {.v6 = false, .proto = kTcp, .payload = 2500, .tcp_flags = 0x99});
  write_tap_gso_seed(dir, "tcp6_options", VirtioNetHdr{0, ports::kVnetGsoTcpV6, 86, 1200, 54, 16}, 0,
                     {.v6 = true, .proto = kTcp, .payload = 3000, .tcp_options = 12});
  write_tap_gso_seed(dir, "udp4_uso", VirtioNetHdr{0, ports::kVnetGsoUdpL4, 42, 1400, 34, 6}, 0,
                     {.v6 = false, .proto = kUdp, .payload = 3500});
  write_tap_gso_seed(dir, "udp6_uso", VirtioNetHdr{0, ports::kVnetGsoUdpL4, 62, 700, 54, 6}, 0,
                     {.v6 = true, .proto = kUdp, .payload = 2000});
  write_tap_gso_seed(dir, "tcp4_small_pool", VirtioNetHdr{0, ports::kVnetGsoTcpV4, 54, 1448, 34, 16}, 1,
                     {.v6 = false, .proto = kTcp, .payload = 3000});
  write_tap_gso_seed(dir, "csum_tcp4",
                     VirtioNetHdr{ports::kVnetFlagNeedsCsum, ports::kVnetGsoNone, 0, 0, 34, 16}, 0,
                     {.v6 = false, .proto = kTcp, .payload = 500, .checksum = false});
  write_tap_gso_seed(dir, "csum_udp6",
                     VirtioNetHdr{ports::kVnetFlagNeedsCsum, ports::kVnetGsoNone, 0, 0, 54, 6}, 0,
                     {.v6 = true, .proto = kUdp, .payload = 300, .checksum = false});
}

// fuzz_flow_match: programs of adds (op % 4 < 2), removes (2) and batches (3), exact (first byte odd) or
// ternary pipes; the last one ends in a raw frame (op 0xff).
Bytes flow_program(std::mt19937& rng, bool exact, int ops) {
  Bytes b{static_cast<uint8_t>(exact ? 1 : 0)};
  auto byte = [&rng] { return static_cast<uint8_t>(rng()); };
  for (int i = 0; i < ops; ++i) {
    const uint8_t kind = std::array<uint8_t, 6>{0, 0, 1, 2, 3, 3}[rng() % 6];
    b.push_back(static_cast<uint8_t>(kind + 4 * (rng() % 63)));
    if (kind < 2) {
      for (int k = 0; k < (exact ? 4 : 6); ++k) b.push_back(byte());  // values, (masks), priority
    } else if (kind == 2) {
      b.push_back(byte());
    } else {
      const uint8_t n = rng() % 16;
      b.push_back(n);
      for (int k = 0; k < 3 * (n + 1); ++k) b.push_back(byte());
    }
  }
  return b;
}

void write_flow_match_seeds(const fs::path& dir) {
  std::mt19937 rng(7);
  write(dir, "exact_small", flow_program(rng, true, 12));
  write(dir, "exact_many", flow_program(rng, true, 120));
  write(dir, "ternary_small", flow_program(rng, false, 12));
  write(dir, "ternary_many", flow_program(rng, false, 150));
  Bytes raw = flow_program(rng, false, 20);
  raw.push_back(0xff);
  const Bytes frame = ports::test::build_frame({.v6 = false, .proto = net::kIpProtoUdp, .payload = 18});
  raw.insert(raw.end(), frame.begin(), frame.end());
  write(dir, "ternary_raw", raw);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const fs::path root = argv[1];
  if (!write_psp_seeds(root) || !write_pcap_seeds(root / "pcap_reader")) return 1;
  write_exception_seeds(root / "exception_reply");
  write_grpc_seeds(root / "grpc_convert");
  write_tap_gso_seeds(root / "tap_gso");
  write_flow_match_seeds(root / "flow_match");
  std::printf("wrote the binary seed corpora under %s\n", root.c_str());
  return 0;
}
