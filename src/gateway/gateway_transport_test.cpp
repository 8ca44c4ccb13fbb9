// Transport mode through the gateway's real pipeline (topology.hpp) and PSP actions (psp_actions.hpp):
// a workload frame enters from the host port, leaves toward the network port encapsulated and sealed, is
// reduced to its UDP payload and re-wrapped the way the kernel UDP socket path does it (outer.hpp), and
// comes back out of the host port decrypted and restored. One gateway plays both ends: its egress SA is
// A -> B, its INGR_ACL admits (SPI, A -> B), and A and B are outer addresses (VIP == PIP).
//
// What must survive the round trip: addresses, IP protocol, IP lengths and the whole L4 segment byte for
// byte (so the L4 checksum, whose pseudo-header covers exactly those, stays valid), a valid IPv4 header
// checksum. What the UDP socket cannot carry and the test does not compare: TTL / hop limit, TOS / traffic
// class, IPv4 ID and flags, the IPv6 flow label (the receiver's outer.cpp writes 64, 0, 0, 0).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "base/byteorder.hpp"
#include "crypto/aead.hpp"
#include "flow/epoch.hpp"
#include "gateway/data_plane.hpp"
#include "gateway/outer.hpp"
#include "gateway/psp_actions.hpp"
#include "gateway/sa_table.hpp"
#include "gateway/topology.hpp"
#include "net/checksum.hpp"
#include "net/headers.hpp"
#include "net/packet.hpp"
#include "psp/key_ring.hpp"

namespace pspgw::gateway {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint32_t kEth = sizeof(net::EthHdr);
constexpr uint64_t kVc = 0x778899aabbccddeeULL;
constexpr uint16_t kNetwork = 0;
constexpr uint16_t kHost = 1;
const net::MacAddr kWorkloadMac{{0x02, 0, 0, 0, 0, 0x11}};
const net::MacAddr kGatewayMac{{0x02, 0, 0, 0, 0, 0x22}};

struct Addrs {
  net::IpAddr a;  // the sender (remote VIP == remote PIP, from the receiver's view)
  net::IpAddr b;  // the receiver (local VIP == config.local-pip)
  net::IpAddr stranger;
};
Addrs addrs(net::IpFamily f) {
  if (f == net::IpFamily::kV4) {
    return {*net::IpAddr::parse("192.168.100.1"), *net::IpAddr::parse("192.168.100.2"),
            *net::IpAddr::parse("192.168.100.9")};
  }
  return {*net::IpAddr::parse("fd00:100::1"), *net::IpAddr::parse("fd00:100::2"),
          *net::IpAddr::parse("fd00:100::9")};
}

// A workload frame [Eth][IPv4/IPv6][L4 segment] with a correct L4 checksum (TCP/UDP/ICMP), src -> dst.
struct FrameSpec {
  net::IpAddr src, dst;
  uint8_t proto = net::kIpProtoTcp;
  std::size_t payload = 100;
  uint8_t tos = 0x28;            // not carried (see above): set so the test shows it does not matter
  uint16_t ipv4_flags = 0x4000;  // DF
  bool ipv4_more_fragments = false;
};

Bytes l4_segment(const FrameSpec& s) {
  Bytes seg;
  if (s.proto == net::kIpProtoTcp) {
    seg.assign(20, 0);
    store_be16(&seg[0], 40001);
    store_be16(&seg[2], 5201);
    store_be32(&seg[4], 0x01020304);
    store_be32(&seg[8], 0x0a0b0c0d);
    seg[12] = 5 << 4;
    seg[13] = 0x18;  // PSH ACK
    store_be16(&seg[14], 65535);
  } else if (s.proto == net::kIpProtoUdp) {
    seg.assign(8, 0);
    store_be16(&seg[0], 40001);
    store_be16(&seg[2], 7001);
  } else {
    seg.assign(8, 0);  // ICMP-shaped header, or an IP-in-IP / other protocol's opaque bytes
    seg[0] = 8;
  }
  for (std::size_t i = 0; i < s.payload; ++i) seg.push_back(static_cast<uint8_t>('A' + i % 26));
  if (s.proto == net::kIpProtoUdp) store_be16(&seg[4], static_cast<uint16_t>(seg.size()));
  return seg;
}

Bytes make_frame(const FrameSpec& s) {
  Bytes seg = l4_segment(s);
  const bool v4 = s.src.is_v4();
  Bytes f(kEth, 0);
  std::memcpy(&f[0], kGatewayMac.bytes.data(), 6);
  std::memcpy(&f[6], kWorkloadMac.bytes.data(), 6);
  store_be16(&f[12], v4 ? net::kEtherTypeIpv4 : net::kEtherTypeIpv6);
  Bytes ip(v4 ? sizeof(net::Ipv4Hdr) : sizeof(net::Ipv6Hdr), 0);
  if (v4) {
    ip[0] = 0x45;
    ip[1] = s.tos;
    store_be16(&ip[2], static_cast<uint16_t>(ip.size() + seg.size()));
    store_be16(&ip[4], 0x1234);
    store_be16(&ip[6], static_cast<uint16_t>(s.ipv4_flags | (s.ipv4_more_fragments ? net::kIpv4FlagMf : 0)));
    ip[8] = 17;
    ip[9] = s.proto;
    std::memcpy(&ip[12], s.src.bytes.data(), 4);
    std::memcpy(&ip[16], s.dst.bytes.data(), 4);
    net::ipv4_set_checksum(ip.data());
  } else {
    store_be32(&ip[0], 0x60000000u | uint32_t{s.tos} << 20 | 0xabcde);
    store_be16(&ip[4], static_cast<uint16_t>(seg.size()));
    ip[6] = s.proto;
    ip[7] = 17;
    std::memcpy(&ip[8], s.src.bytes.data(), 16);
    std::memcpy(&ip[24], s.dst.bytes.data(), 16);
  }
  const std::size_t csum_at = s.proto == net::kIpProtoTcp ? 16 : s.proto == net::kIpProtoUdp ? 6 : 2;
  if (s.proto == net::kIpProtoTcp || s.proto == net::kIpProtoUdp) {
    store_be16(&seg[csum_at], net::l4_checksum(ip.data(), s.proto, seg));
  } else if (s.proto == net::kIpProtoIcmp) {
    store_be16(&seg[csum_at], net::csum_fold(net::csum_partial(seg)));
  }
  f.insert(f.end(), ip.begin(), ip.end());
  f.insert(f.end(), seg.begin(), seg.end());
  return f;
}

// Records where each packet left the pipeline; packets go back to the pool on destruction.
class RecordSink final : public flow::Sink {
 public:
  struct Out {
    flow::TargetKind kind;
    uint16_t code;  // port, CPU reason or drop reason
    net::Packet* pkt;
  };
  explicit RecordSink(net::PacketPool& pool) : pool_(pool) {}
  ~RecordSink() override { clear(); }
  RecordSink(const RecordSink&) = delete;
  RecordSink& operator=(const RecordSink&) = delete;
  void to_port(PortId port, std::span<net::Packet* const> p) override {
    add(flow::TargetKind::kPort, port.value(), p);
  }
  void to_cpu(uint16_t reason, std::span<net::Packet* const> p) override {
    add(flow::TargetKind::kCpu, reason, p);
  }
  void to_kernel(std::span<net::Packet* const> p) override { add(flow::TargetKind::kKernel, 0, p); }
  void dropped(uint8_t reason, std::span<net::Packet* const> p) override {
    add(flow::TargetKind::kDrop, reason, p);
  }
  void clear() {
    for (const Out& o : out) pool_.free(o.pkt);
    out.clear();
  }
  std::vector<Out> out;

 private:
  void add(flow::TargetKind k, uint16_t code, std::span<net::Packet* const> p) {
    for (net::Packet* pkt : p) out.push_back({k, code, pkt});
  }
  net::PacketPool& pool_;
};

struct Options {
  net::IpFamily family = net::IpFamily::kV4;
  bool vc = false;
  uint8_t crypt_offset = 0;
};

// One gateway's data plane in transport mode, wired as Gateway::build() wires it.
class TransportGateway {
 public:
  explicit TransportGateway(const Options& o)
      : opts_(o),
        ips_(addrs(o.family)),
        sa_epoch_(1),
        sas_(16, sa_epoch_),
        ring_(psp::KeyRing::with_random_key()) {
    workers_.push_back(std::make_unique<WorkerPsp>(0, crypto::make_default_backend(), 64));
    auto hp = std::make_unique<HostPortInfo>();
    hp->gateway_mac = kGatewayMac;
    uint64_t mac = 0;
    for (uint8_t b : kWorkloadMac.bytes) mac = mac << 8 | b;
    hp->workload_mac.store(mac);
    host_ports_.push_back(std::move(hp));
    keys_.publish(ring_.snapshot());

    PspContext ctx;
    ctx.sas = &sas_;
    ctx.master_keys = &keys_;
    ctx.workers = &workers_;
    ctx.host_ports = &host_ports_;
    ctx.local_mac = net::MacAddr{{0x02, 0x50, 0x53, 0, 0, 1}};
    TopologyOptions t;
    t.network_port = PortId{kNetwork};
    t.host_ports = {PortId{kHost}};
    t.inner = t.outer = o.family;
    t.mode = psp::Mode::kTransport;
    topo_ = std::move(Topology::build(t, ctx)).value();
    worker_ = std::move(topo_->pipeline().attach_worker({&pool_, 1})).value();
    install_sa();
  }

  const Addrs& ips() const { return ips_; }
  uint32_t spi() const { return spi_; }
  net::PacketPool& pool() { return pool_; }

  // Host port -> pipeline; the packets that left, in `sink`.
  void from_host(const Bytes& frame, RecordSink& sink) { run(frame, kHost, sink); }

  // The socket path of an encapsulated frame: unwrap_for_send (sender), then wrap_received with `source`
  // as the datagram's source (receiver B), then the pipeline from ROOT.
  void through_socket(net::Packet& sent, const net::IpAddr& source, RecordSink& sink) {
    ASSERT_TRUE(unwrap_for_send(sent));
    ASSERT_EQ(sent.meta.peer, ips_.b);
    ASSERT_EQ(sent.meta.peer_port, psp::kPspUdpPort);
    net::Packet* p = pool_.alloc();
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(p->assign(sent.bytes()));
    p->meta.in_port = PortId{kNetwork};
    p->meta.peer = source;
    p->meta.peer_port = 49152;
    net::PacketBatch batch;
    batch.push(p);
    ASSERT_EQ(wrap_received(batch, {ips_.b, psp::kPspUdpPort, net::MacAddr{}}, 0xee), 1u);
    worker_->process(batch, sink);
  }

  // The control plane's view of this data plane, as Gateway::build() makes it in transport mode.
  FlowDataPlane data_plane() {
    DataPlaneOptions o;
    o.local_outer = ips_.b;
    o.mode = psp::Mode::kTransport;
    o.vip_ports = {{ips_.b, 0}};
    return FlowDataPlane(*topo_, sas_, sa_epoch_, keys_, workers_, o);
  }
  psp::DerivedKey key_for_peer() { return ring_.derive(spi_, psp::PspVersion::kAesGcm256).value(); }

  uint64_t pipe_drops(const char* pipe, uint8_t reason) const {
    auto st = topo_->pipeline().pipe_stats(*topo_->pipeline().find_pipe(pipe));
    for (const auto& [r, n] : st->drops) {
      if (r == reason) return n;
    }
    return 0;
  }

 private:
  void run(const Bytes& frame, uint16_t port, RecordSink& sink) {
    net::Packet* p = pool_.alloc();
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(p->assign(frame));
    p->meta.in_port = PortId{port};
    net::PacketBatch batch;
    batch.push(p);
    worker_->process(batch, sink);
  }

  // What the key exchange would install: B's SPI and key (derived from B's master key, here this ring)
  // as A's egress SA, and B's INGR_ACL entry for it.
  void install_sa() {
    spi_ = ring_.allocate_spi().value();
    const auto key = ring_.derive(spi_, psp::PspVersion::kAesGcm256).value();
    psp::SealParams p;
    p.spi = spi_;
    p.version = psp::PspVersion::kAesGcm256;
    p.has_vc = opts_.vc;
    p.vc = kVc;
    p.crypt_offset = opts_.crypt_offset;
    auto sa = std::make_unique<TxSa>(p, psp::OuterHeaders{ips_.a, ips_.b}, key.bytes.clone(), 1);
    const CryptoId id = sas_.install(std::move(sa)).value();
    ASSERT_TRUE(topo_->add_egress(ips_.a, ips_.b, id, 0));
    ASSERT_TRUE(topo_->add_ingress(spi_, ips_.a, ips_.b, 0));
  }

  Options opts_;
  Addrs ips_;
  net::PacketPool pool_{64};
  std::vector<std::unique_ptr<WorkerPsp>> workers_;
  std::vector<std::unique_ptr<HostPortInfo>> host_ports_;
  flow::EpochDomain sa_epoch_;
  SaTable sas_;
  MasterKeyBoard keys_;
  psp::KeyRing ring_;
  uint32_t spi_ = 0;
  std::unique_ptr<Topology> topo_;
  std::unique_ptr<flow::Worker> worker_;
};

// The single packet of `sink`, which must have left by (kind, code).
net::Packet& only(const RecordSink& sink, flow::TargetKind kind, uint16_t code) {
  EXPECT_EQ(sink.out.size(), 1u);
  EXPECT_EQ(sink.out.at(0).kind, kind);
  EXPECT_EQ(sink.out.at(0).code, code);
  return *sink.out.at(0).pkt;
}

std::size_t ip_header_len(const uint8_t* ip) {
  return (ip[0] >> 4) == 4 ? static_cast<std::size_t>(ip[0] & 0x0f) * 4 : sizeof(net::Ipv6Hdr);
}

// The wire frame A sends: [Eth][IP A -> B, UDP][UDP -> 1000][PSP: NH = proto, offset, VC][ciphertext][ICV].
void expect_wire(const net::Packet& wire, const Bytes& original, const TransportGateway& gw, const Options& o,
                 uint8_t proto) {
  const uint8_t* ip = wire.data() + kEth;
  const std::size_t ip_len = ip_header_len(ip);
  const bool v4 = o.family == net::IpFamily::kV4;
  EXPECT_EQ(ip[v4 ? 9 : 6], net::kIpProtoUdp);
  EXPECT_EQ(0, std::memcmp(ip + (v4 ? 12 : 8), gw.ips().a.bytes.data(), gw.ips().a.size()));
  EXPECT_EQ(0, std::memcmp(ip + (v4 ? 16 : 24), gw.ips().b.bytes.data(), gw.ips().b.size()));
  const uint8_t* udp = ip + ip_len;
  EXPECT_EQ(load_be16(udp + 2), psp::kPspUdpPort);
  const uint8_t* psp_hdr = udp + sizeof(net::UdpHdr);
  auto h = psp::decode_header({psp_hdr, wire.size() - kEth - ip_len - sizeof(net::UdpHdr)});
  ASSERT_TRUE(h);
  EXPECT_EQ(h->next_header, proto);
  EXPECT_EQ(h->crypt_offset, o.crypt_offset);
  EXPECT_EQ(h->has_vc, o.vc);
  EXPECT_EQ(h->spi, gw.spi());
  if (o.vc && o.crypt_offset >= 2) {
    EXPECT_EQ(load_be64(psp_hdr + psp::kPspHeaderSize), kVc);  // in the clear
  }
  // The PSP payload is exactly the L4 segment (+ ICV): no IP header inside.
  const std::size_t seg_len = original.size() - kEth - ip_header_len(original.data() + kEth);
  EXPECT_EQ(wire.size(), kEth + ip_len + sizeof(net::UdpHdr) + h->size() + seg_len + psp::kPspIcvSize);
  // The segment's bytes past the crypt offset are not on the wire in the clear.
  const std::size_t clear = o.crypt_offset * 4u - (o.vc ? std::min<std::size_t>(o.crypt_offset * 4u, 8) : 0);
  const uint8_t* seg = original.data() + original.size() - seg_len;
  const uint8_t* ct = psp_hdr + h->size();
  EXPECT_NE(0, std::memcmp(ct + clear, seg + clear, seg_len - clear));
}

// The restored frame equals the original except what the socket path cannot carry (file comment).
void expect_restored(const net::Packet& got, const Bytes& original) {
  ASSERT_EQ(got.size(), original.size());
  const uint8_t* g = got.data();
  EXPECT_EQ(0, std::memcmp(g, kWorkloadMac.bytes.data(), 6));
  EXPECT_EQ(0, std::memcmp(g + 6, kGatewayMac.bytes.data(), 6));
  EXPECT_EQ(load_be16(g + 12), load_be16(original.data() + 12));
  const uint8_t* gi = g + kEth;
  const uint8_t* oi = original.data() + kEth;
  const std::size_t ip_len = ip_header_len(oi);
  ASSERT_EQ(ip_header_len(gi), ip_len);
  uint8_t proto = 0;
  if ((oi[0] >> 4) == 4) {
    EXPECT_EQ(load_be16(gi + 2), load_be16(oi + 2));  // total length
    EXPECT_EQ(gi[9], oi[9]);                          // protocol
    EXPECT_EQ(0, std::memcmp(gi + 12, oi + 12, 8));   // addresses
    EXPECT_TRUE(net::ipv4_checksum_ok(gi));
    proto = gi[9];
  } else {
    EXPECT_EQ(0, std::memcmp(gi + 4, oi + 4, 3));   // payload length, next header
    EXPECT_EQ(0, std::memcmp(gi + 8, oi + 8, 32));  // addresses
    proto = gi[6];
  }
  const std::size_t seg_len = original.size() - kEth - ip_len;
  EXPECT_EQ(0, std::memcmp(gi + ip_len, oi + ip_len, seg_len)) << "L4 segment differs";
  if (proto == net::kIpProtoTcp || proto == net::kIpProtoUdp) {
    EXPECT_TRUE(net::l4_checksum_ok(gi, proto, {gi + ip_len, seg_len}));
  }
}

struct Case {
  net::IpFamily family;
  uint8_t proto;
  bool vc;
};

class TransportRoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(TransportRoundTrip, EncapEncryptDecryptDecapRestoresTheFrame) {
  const Case c = GetParam();
  Options o;
  o.family = c.family;
  o.vc = c.vc;
  o.crypt_offset = c.vc ? 2 : 0;  // GatewayFlags::effective_crypt_offset()'s transport defaults
  TransportGateway gw(o);
  for (std::size_t payload : {std::size_t{0}, std::size_t{1}, std::size_t{100}, std::size_t{1400}}) {
    SCOPED_TRACE(payload);
    FrameSpec s{gw.ips().a, gw.ips().b, c.proto, payload};
    const Bytes original = make_frame(s);
    RecordSink tx(gw.pool());
    gw.from_host(original, tx);
    net::Packet& wire = only(tx, flow::TargetKind::kPort, kNetwork);
    expect_wire(wire, original, gw, o, c.proto);
    RecordSink rx(gw.pool());
    gw.through_socket(wire, gw.ips().a, rx);
    expect_restored(only(rx, flow::TargetKind::kPort, kHost), original);
  }
}

INSTANTIATE_TEST_SUITE_P(Families, TransportRoundTrip,
                         ::testing::Values(Case{net::IpFamily::kV4, net::kIpProtoTcp, false},
                                           Case{net::IpFamily::kV4, net::kIpProtoUdp, false},
                                           Case{net::IpFamily::kV4, net::kIpProtoTcp, true},
                                           Case{net::IpFamily::kV4, net::kIpProtoUdp, true},
                                           Case{net::IpFamily::kV6, net::kIpProtoTcp, false},
                                           Case{net::IpFamily::kV6, net::kIpProtoUdp, false},
                                           Case{net::IpFamily::kV6, net::kIpProtoTcp, true},
                                           Case{net::IpFamily::kV6, net::kIpProtoUdp, true},
                                           Case{net::IpFamily::kV4, net::kIpProtoIcmp, false}),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           const char* proto = i.param.proto == net::kIpProtoTcp   ? "Tcp"
                                               : i.param.proto == net::kIpProtoUdp ? "Udp"
                                                                                   : "Icmp";
                           return std::string(i.param.family == net::IpFamily::kV4 ? "Ipv4" : "Ipv6") +
                                  proto + (i.param.vc ? "Vc" : "");
                         });

// -o given: the first words of the L4 segment stay clear (here the TCP ports), the rest is still sealed.
TEST(Transport, ExplicitCryptOffsetKeepsTheSegmentHeadClear) {
  Options o;
  o.vc = true;
  o.crypt_offset = 4;  // VC (2 words) + the TCP ports and sequence number (2 words)
  TransportGateway gw(o);
  const Bytes original = make_frame({gw.ips().a, gw.ips().b, net::kIpProtoTcp, 64});
  RecordSink tx(gw.pool());
  gw.from_host(original, tx);
  net::Packet& wire = only(tx, flow::TargetKind::kPort, kNetwork);
  expect_wire(wire, original, gw, o, net::kIpProtoTcp);
  const std::size_t seg_on_wire = kEth + 20 + 8 + psp::kPspHeaderSize + psp::kPspVcSize;
  EXPECT_EQ(0, std::memcmp(wire.data() + seg_on_wire, original.data() + kEth + 20, 8));
  RecordSink rx(gw.pool());
  gw.through_socket(wire, gw.ips().a, rx);
  expect_restored(only(rx, flow::TargetKind::kPort, kHost), original);
}

// INGR_ACL matches the outer addresses in transport mode: the same authentic packet arriving from another
// source is not delivered (the SPI is bound to A), and is counted as an ACL miss.
TEST(Transport, IngressAclMatchesTheOuterSource) {
  TransportGateway gw({});
  const Bytes original = make_frame({gw.ips().a, gw.ips().b, net::kIpProtoUdp, 32});
  RecordSink tx(gw.pool());
  gw.from_host(original, tx);
  RecordSink rx(gw.pool());
  gw.through_socket(only(tx, flow::TargetKind::kPort, kNetwork), gw.ips().stranger, rx);
  only(rx, flow::TargetKind::kDrop, static_cast<uint8_t>(PipeDrop::kIngressAclMiss));
  EXPECT_EQ(gw.pipe_drops("SYND_STATS", static_cast<uint8_t>(PipeDrop::kIngressAclMiss)), 1u);
}

// A segment whose protocol PSP reads as a tunnel (IP-in-IP, Next Header 4) is sealed as sent, but the
// transport-mode receiver must not unwrap it: nothing checked the addresses inside.
TEST(Transport, DecapRefusesTunnelNextHeader) {
  TransportGateway gw({});
  const Bytes original = make_frame({gw.ips().a, gw.ips().b, net::kIpProtoIpv4, 40});
  RecordSink tx(gw.pool());
  gw.from_host(original, tx);
  RecordSink rx(gw.pool());
  gw.through_socket(only(tx, flow::TargetKind::kPort, kNetwork), gw.ips().a, rx);
  only(rx, flow::TargetKind::kDrop, static_cast<uint8_t>(GatewayDrop::kWrongMode));
  EXPECT_EQ(gw.pipe_drops("INGR_ACL", static_cast<uint8_t>(GatewayDrop::kWrongMode)), 1u);
}

// A fragment holds no whole L4 segment: encap refuses it with a counted reason.
TEST(Transport, FragmentsAreDroppedAndCounted) {
  TransportGateway gw({});
  FrameSpec s{gw.ips().a, gw.ips().b, net::kIpProtoUdp, 64};
  s.ipv4_flags = 0;
  s.ipv4_more_fragments = true;
  RecordSink tx(gw.pool());
  gw.from_host(make_frame(s), tx);
  only(tx, flow::TargetKind::kDrop, static_cast<uint8_t>(GatewayDrop::kFragment));
  EXPECT_EQ(gw.pipe_drops("EGR_ACL", static_cast<uint8_t>(GatewayDrop::kFragment)), 1u);
  EXPECT_EQ(drop_name(static_cast<uint8_t>(GatewayDrop::kFragment)), "fragment");
}

// The kernel sends to the SA's peer address, which in transport mode is also the packet's destination: an
// SA whose peer PIP (from TunnelParameters) is not the remote VIP is refused.
TEST(Transport, DataPlaneRefusesAnSaWhosePeerIsNotTheRemoteVip) {
  TransportGateway gw({});
  FlowDataPlane dp = gw.data_plane();
  auto sa = [&](const net::IpAddr& peer) {
    return control::TxSa{peer, net::MacAddr{}, gw.spi(), gw.key_for_peer(), 0};
  };
  const control::VipPair pair{gw.ips().b, gw.ips().stranger};
  auto refused = dp.install_egress(pair, sa(gw.ips().a));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), control::DataPlaneError::kRejected);
  EXPECT_TRUE(dp.egress().empty());
  EXPECT_TRUE(dp.install_egress(pair, sa(gw.ips().stranger)));
  EXPECT_EQ(dp.egress().size(), 1u);
}

}  // namespace
}  // namespace pspgw::gateway
