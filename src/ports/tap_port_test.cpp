// TapPort against the real kernel. Each test runs on a thread that first moves into a fresh network
// namespace (unshare(CLONE_NEWNET) applies to the calling thread only), so nothing touches the host's
// interfaces; the namespace and its TAPs vanish when the thread's descriptors close and it exits.
// Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and /dev/net/tun; skips otherwise.
#include "ports/tap_port.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>

#include "net/checksum.hpp"
#include "net/parse.hpp"
#include "ports/udp_port.hpp"

namespace pspgw::ports {
namespace {

const net::MacAddr kTapMac{{0x02, 0, 0, 0, 0, 0x01}};
const net::MacAddr kPeerMac{{0x02, 0, 0, 0, 0, 0x02}};

// Runs `body` on a thread inside a new network namespace; false if the namespace could not be made.
bool in_netns(const std::function<void()>& body) {
  bool ok = false;
  std::thread t([&] {
    if (::unshare(CLONE_NEWNET) != 0) return;
    ok = true;
    body();
  });
  t.join();
  return ok;
}

class TapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    if (::access("/dev/net/tun", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/net/tun";
    if (!in_netns([] {})) GTEST_SKIP() << "cannot create a network namespace";
  }
  void run(const std::function<void()>& body) { ASSERT_TRUE(in_netns(body)); }
};

std::unique_ptr<TapPort> open_tap(TapConfig c) {
  c.mac = kTapMac;
  auto r = TapPort::open(c);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  return r.ok() ? std::move(*r) : nullptr;
}

// Gives the TAP 10.9.0.1/24 and a static neighbour 10.9.0.2 -> kPeerMac (no ARP on the wire).
void address_tap(const TapPort& tap) {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM, 0));
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, tap.name().data(), tap.name().size());
  auto* sin = reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr);
  sin->sin_family = AF_INET;
  inet_pton(AF_INET, "10.9.0.1", &sin->sin_addr);
  ASSERT_EQ(::ioctl(s.get(), SIOCSIFADDR, &ifr), 0) << strerrordesc_np(errno);
  inet_pton(AF_INET, "255.255.255.0", &sin->sin_addr);
  ASSERT_EQ(::ioctl(s.get(), SIOCSIFNETMASK, &ifr), 0) << strerrordesc_np(errno);
  arpreq arp{};
  auto* pa = reinterpret_cast<sockaddr_in*>(&arp.arp_pa);
  pa->sin_family = AF_INET;
  inet_pton(AF_INET, "10.9.0.2", &pa->sin_addr);
  arp.arp_ha.sa_family = ARPHRD_ETHER;
  std::memcpy(arp.arp_ha.sa_data, kPeerMac.bytes.data(), 6);
  arp.arp_flags = ATF_COM | ATF_PERM;
  std::memcpy(arp.arp_dev, tap.name().data(), tap.name().size());
  ASSERT_EQ(::ioctl(s.get(), SIOCSARP, &arp), 0) << strerrordesc_np(errno);
}

// A UDP socket on 10.9.0.1 (the TAP's address).
UniqueFd udp_socket(uint16_t port) {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, "10.9.0.1", &a.sin_addr);
  EXPECT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << strerrordesc_np(errno);
  return s;
}

ssize_t send_to_peer(int s, const void* data, std::size_t len, uint16_t port, uint16_t gso_size = 0) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  inet_pton(AF_INET, "10.9.0.2", &to.sin_addr);
  iovec iov{const_cast<void*>(data), len};
  alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(uint16_t))] = {};
  msghdr m{};
  m.msg_name = &to;
  m.msg_namelen = sizeof(to);
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  if (gso_size != 0) {
    m.msg_control = ctrl;
    m.msg_controllen = sizeof(ctrl);
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    std::memcpy(CMSG_DATA(c), &gso_size, sizeof(gso_size));
  }
  return ::sendmsg(s, &m, 0);
}

// Reads frames from the TAP until `want` IPv4/UDP frames to `dport` arrived (the kernel also sends
// IPv6 neighbour discovery and MLD on a new link: skipped) or a second passed.
std::vector<net::Packet*> read_udp(TapPort& tap, net::PacketPool& pool, uint16_t dport, std::size_t want) {
  std::vector<net::Packet*> got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{tap.fd(), POLLIN, 0};
    ::poll(&pfd, 1, 20);
    net::PacketBatch in;
    tap.rx_burst(pool, in);
    for (net::Packet* p : in) {
      auto f = net::parse_frame(p->bytes());
      if (f && f->ip.family == net::IpFamily::kV4 && f->ip.l4_proto == net::kIpProtoUdp &&
          f->ip.dst_port == dport) {
        got.push_back(p);
      } else {
        pool.free(p);
      }
    }
  }
  return got;
}

bool udp_checksum_ok(const net::Packet& p) {
  auto f = net::parse_frame(p.bytes());
  const std::size_t end = f->ip.l3_offset + f->ip.l3_total_len;
  return net::l4_checksum_ok(p.data() + f->ip.l3_offset, net::kIpProtoUdp,
                             {p.data() + f->ip.l4_offset, end - f->ip.l4_offset});
}

TEST_F(TapTest, OpensWithOffloads) {
  run([] {
    auto tap = open_tap(TapConfig{.name = "pspt%d", .mtu = 1400});
    ASSERT_TRUE(tap);
    EXPECT_EQ(tap->name(), "pspt0");
    EXPECT_EQ(tap->mtu(), 1400U);
    EXPECT_EQ(tap->offloads() & (kTunFCsum | kTunFTso4 | kTunFTso6), kTunFCsum | kTunFTso4 | kTunFTso6);
    EXPECT_EQ(tap->min_rx_buffer(), kGsoRxBufferSize);
    std::printf("kernel accepted TUN offloads 0x%x (USO %s)\n", tap->offloads(),
                (tap->offloads() & kTunFUso4) != 0 ? "on" : "off");
    auto plain = open_tap(TapConfig{.name = "pspt1", .offloads = false});
    ASSERT_TRUE(plain);
    EXPECT_EQ(plain->offloads(), 0U);
    EXPECT_LT(plain->min_rx_buffer(), kGsoRxBufferSize);
    EXPECT_FALSE(TapPort::open(TapConfig{.name = std::string(IFNAMSIZ, 'x')}).ok());
  });
}

// The device's tx_queue_len, as the kernel reports it (SIOCGIFTXQLEN in this thread's namespace); -1 on
// error.
int queue_len(const std::string& name) {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.data(), std::min<std::size_t>(name.size(), IFNAMSIZ - 1));
  return s.valid() && ::ioctl(s.get(), SIOCGIFTXQLEN, &ifr) == 0 ? ifr.ifr_qlen : -1;
}

TEST_F(TapTest, QueueLengthIsSetWhereAskedAndLeftOtherwise) {
  run([] {
    auto tap = open_tap(TapConfig{.name = "pspt0", .tx_queue_len = 4096});
    ASSERT_TRUE(tap);
    EXPECT_EQ(queue_len("pspt0"), 4096);
    auto plain = open_tap(TapConfig{.name = "pspt1"});
    ASSERT_TRUE(plain);
    const int kernels = queue_len("pspt1");
    EXPECT_GT(kernels, 0);
    EXPECT_NE(kernels, 4096) << "0 leaves the kernel's length";
  });
}

// A TAP deleted under the port (`ip link del`): its descriptor then polls as an error for ever and every
// read/write fails with EBADFD. The port says so (gone()), counts one device_gone for the read and every
// frame sent to it, and makes no more syscalls: a worker that stops polling it does not spin.
TEST_F(TapTest, DeletedDeviceIsGoneCountedAndNotAnErrorLoop) {
  run([] {
    auto tap = open_tap(TapConfig{.name = "pspt0"});
    ASSERT_TRUE(tap);
    EXPECT_FALSE(tap->gone());
    ASSERT_EQ(std::system("ip link del pspt0"), 0);  // a child forked from this thread: our namespace
    pollfd pfd{tap->fd(), POLLIN, 0};
    ASSERT_EQ(::poll(&pfd, 1, 1000), 1);
    EXPECT_NE(pfd.revents & POLLERR, 0) << "level-triggered: polling it again would spin";
    net::PacketPool pool(8, kGsoRxBufferSize);
    net::PacketBatch in;
    EXPECT_EQ(tap->rx_burst(pool, in), 0U);
    EXPECT_TRUE(tap->gone());
    EXPECT_EQ(tap->stats().dropped(DropReason::kDeviceGone), 1U);
    EXPECT_EQ(tap->stats().dropped(DropReason::kRxError), 0U);
    EXPECT_EQ(tap->rx_burst(pool, in), 0U);
    EXPECT_EQ(tap->stats().dropped(DropReason::kDeviceGone), 1U);  // no second read
    net::PacketBatch out;
    for (int i = 0; i < 3; ++i) {
      net::Packet* p = pool.alloc();
      ASSERT_NE(p, nullptr);
      ASSERT_TRUE(p->assign(std::vector<uint8_t>(60, 0xab)));
      out.push(p);
    }
    EXPECT_EQ(tap->tx_burst(out), 0U);
    EXPECT_EQ(tap->stats().dropped(DropReason::kDeviceGone), 4U);
    EXPECT_EQ(tap->stats().dropped(DropReason::kTxError), 0U);
    for (net::Packet* p : out) pool.free(p);
  });
}

TEST_F(TapTest, KernelFrameReachesPortWithChecksumCompleted) {
  run([] {
    auto tap = open_tap(TapConfig{.name = "pspt0", .id = PortId{3}});
    ASSERT_TRUE(tap);
    address_tap(*tap);
    UniqueFd s = udp_socket(4000);
    ASSERT_EQ(send_to_peer(s.get(), "hello", 5, 5555), 5);
    net::PacketPool pool(64, kGsoRxBufferSize);
    auto got = read_udp(*tap, pool, 5555, 1);
    ASSERT_EQ(got.size(), 1U);
    net::Packet& p = *got[0];
    EXPECT_EQ(p.meta.in_port, PortId{3});
    EXPECT_EQ(std::memcmp(p.data(), kPeerMac.bytes.data(), 6), 0);
    EXPECT_EQ(std::memcmp(p.data() + 6, kTapMac.bytes.data(), 6), 0);
    EXPECT_EQ(std::memcmp(p.data() + p.size() - 5, "hello", 5), 0);
    EXPECT_TRUE(udp_checksum_ok(p));  // TUN_F_CSUM: the kernel left it partial, rx_burst finished it
    EXPECT_GE(tap->stats().rx_packets, 1U);
    pool.free(&p);
  });
}

TEST_F(TapTest, PortFrameReachesKernelSocket) {
  run([] {
    auto tap = open_tap(TapConfig{.name = "pspt0"});
    ASSERT_TRUE(tap);
    address_tap(*tap);
    UniqueFd s = udp_socket(6666);
    // 10.9.0.2:7777 -> 10.9.0.1:6666, built by hand with a valid checksum (the kernel verifies it).
    const char msg[] = "through the tap";
    net::PacketPool pool(8, kGsoRxBufferSize);
    net::Packet* p = pool.alloc();
    p->set_size(14 + 20 + 8 + sizeof(msg));
    uint8_t* f = p->data();
    std::memset(f, 0, p->size());
    std::memcpy(f, kTapMac.bytes.data(), 6);
    std::memcpy(f + 6, kPeerMac.bytes.data(), 6);
    store_be16(f + 12, net::kEtherTypeIpv4);
    uint8_t* ip = f + 14;
    ip[0] = 0x45;
    store_be16(ip + 2, static_cast<uint16_t>(20 + 8 + sizeof(msg)));
    ip[8] = 64;
    ip[9] = net::kIpProtoUdp;
    inet_pton(AF_INET, "10.9.0.2", ip + 12);
    inet_pton(AF_INET, "10.9.0.1", ip + 16);
    net::ipv4_set_checksum(ip);
    uint8_t* udp = ip + 20;
    store_be16(udp, 7777);
    store_be16(udp + 2, 6666);
    store_be16(udp + 4, static_cast<uint16_t>(8 + sizeof(msg)));
    std::memcpy(udp + 8, msg, sizeof(msg));
    store_be16(udp + 6, net::l4_checksum(ip, net::kIpProtoUdp, {udp, 8 + sizeof(msg)}));
    net::PacketBatch b;
    b.push(p);
    ASSERT_EQ(tap->tx_burst(b), 1U);
    EXPECT_EQ(tap->stats().tx_packets, 1U);

    pollfd pfd{s.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&pfd, 1, 1000), 1);
    char buf[64] = {};
    ASSERT_EQ(::recv(s.get(), buf, sizeof(buf), 0), static_cast<ssize_t>(sizeof(msg)));
    EXPECT_STREQ(buf, msg);
    pool.free(p);
  });
}

// Ten 1000-byte datagrams (byte i = i * 13) sent with UDP_SEGMENT from socket `s` to 10.9.0.2:`dport`,
// through the TAP: what it read of them (one super-packet where the kernel took USO), or nullptr.
std::vector<uint8_t> uso_data() {
  std::vector<uint8_t> data(10 * 1000);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 13);
  return data;
}
net::Packet* send_uso_read_super(TapPort& tap, int s, uint16_t dport, net::PacketPool& pool) {
  const std::vector<uint8_t> data = uso_data();
  EXPECT_EQ(send_to_peer(s, data.data(), data.size(), dport, 1000), static_cast<ssize_t>(data.size()));
  auto got = read_udp(tap, pool, dport, 1);
  EXPECT_EQ(got.size(), 1U);
  return got.empty() ? nullptr : got[0];
}

TEST_F(TapTest, UsoSendArrivesAsOneSuperPacket) {
  run([] {
    auto tap = open_tap(TapConfig{.name = "pspt0", .segment_on_rx = false});
    ASSERT_TRUE(tap);
    if ((tap->offloads() & kTunFUso4) == 0) GTEST_SKIP() << "kernel without TUN_F_USO4";
    address_tap(*tap);
    UniqueFd s = udp_socket(4001);
    const std::vector<uint8_t> data = uso_data();
    net::PacketPool pool(64, kGsoRxBufferSize);
    net::Packet* got = send_uso_read_super(*tap, s.get(), 5556, pool);
    ASSERT_NE(got, nullptr);
    net::Packet& super = *got;
    EXPECT_EQ(super.meta.gso_size, 1000);
    EXPECT_EQ(super.size(), 14U + 20 + 8 + data.size());

    auto seg = GsoSegmenter::start(super.bytes(), super.meta.gso_size);
    ASSERT_TRUE(seg.ok());
    net::PacketBatch out;
    ASSERT_EQ(*seg->next(pool, out, super.meta), 10U);
    std::vector<uint8_t> joined;
    for (net::Packet* p : out) {
      EXPECT_EQ(p->size(), 14U + 20 + 8 + 1000);
      EXPECT_TRUE(udp_checksum_ok(*p));
      joined.insert(joined.end(), p->data() + 42, p->data() + p->size());
      pool.free(p);
    }
    EXPECT_EQ(joined, data);
    pool.free(&super);
  });
}

// A super-packet that crossed the gateway whole goes back to a kernel in one write with its GSO header
// (takes_gso): a USO super-packet read from the TAP, turned around (addresses, ports and MACs swapped:
// the IPv4 header sum and the pseudo-header sum in its checksum field stay valid), reaches the local
// socket as the ten datagrams it was sent as.
TEST_F(TapTest, SuperPacketIsWrittenWhole) {
  run([] {
    auto tap = open_tap(TapConfig{.name = "pspt0", .segment_on_rx = false});
    ASSERT_TRUE(tap);
    if ((tap->offloads() & kTunFUso4) == 0) GTEST_SKIP() << "kernel without TUN_F_USO4";
    EXPECT_TRUE(tap->takes_gso());
    address_tap(*tap);
    UniqueFd s = udp_socket(4005);
    const std::vector<uint8_t> data = uso_data();
    net::PacketPool pool(64, kGsoRxBufferSize);
    net::Packet* got = send_uso_read_super(*tap, s.get(), 5557, pool);
    ASSERT_NE(got, nullptr);
    net::Packet& super = *got;
    ASSERT_EQ(super.meta.gso_size, 1000);
    uint8_t* f = super.data();
    std::array<uint8_t, 6> mac;
    std::memcpy(mac.data(), f, 6);
    std::memcpy(f, f + 6, 6);
    std::memcpy(f + 6, mac.data(), 6);
    std::array<uint8_t, 4> addr;
    std::memcpy(addr.data(), f + 14 + 12, 4);
    std::memcpy(f + 14 + 12, f + 14 + 16, 4);
    std::memcpy(f + 14 + 16, addr.data(), 4);
    const uint16_t sport = load_be16(f + 34);
    store_be16(f + 34, load_be16(f + 36));
    store_be16(f + 36, sport);
    net::PacketBatch b;
    b.push(&super);
    ASSERT_EQ(tap->tx_burst(b), 1U);
    EXPECT_EQ(tap->stats().tx_packets, 1U);
    pool.free(&super);
    for (std::size_t k = 0; k < 10; ++k) {
      pollfd pfd{s.get(), POLLIN, 0};
      ASSERT_EQ(::poll(&pfd, 1, 1000), 1) << "datagram " << k;
      uint8_t buf[2000];
      ASSERT_EQ(::recv(s.get(), buf, sizeof(buf), 0), 1000) << "datagram " << k;
      ASSERT_TRUE(std::equal(buf, buf + 1000, data.begin() + static_cast<std::ptrdiff_t>(k * 1000)));
    }
  });
}

// A burst stops once it has read rx_burst_bytes (whole super-packets stay few enough per batch to be
// sealed while still in cache): with a budget of one byte, each call returns one super-packet.
TEST_F(TapTest, RxBurstStopsAtItsByteBudget) {
  run([] {
    auto tap = open_tap(TapConfig{.name = "pspt0", .segment_on_rx = false, .rx_burst_bytes = 1});
    ASSERT_TRUE(tap);
    if ((tap->offloads() & kTunFUso4) == 0) GTEST_SKIP() << "kernel without TUN_F_USO4";
    address_tap(*tap);
    UniqueFd s = udp_socket(4006);
    std::vector<uint8_t> data(4 * 1000, 0x5a);
    for (int i = 0; i < 3; ++i) {
      ASSERT_EQ(send_to_peer(s.get(), data.data(), data.size(), 5558, 1000),
                static_cast<ssize_t>(data.size()));
    }
    net::PacketPool pool(64, kGsoRxBufferSize);
    std::size_t supers = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (supers < 3 && std::chrono::steady_clock::now() < deadline) {
      pollfd pfd{tap->fd(), POLLIN, 0};
      ::poll(&pfd, 1, 20);
      net::PacketBatch in;
      tap->rx_burst(pool, in);
      EXPECT_LE(in.size(), 1U);
      for (net::Packet* p : in) {
        if (p->meta.gso_size == 1000) ++supers;
        pool.free(p);
      }
    }
    EXPECT_EQ(supers, 3U);
  });
}

TEST_F(TapTest, UsoSuperPacketIsSegmentedOnRxAcrossBatches) {
  run([] {
    auto tap = open_tap(TapConfig{.name = "pspt0"});
    ASSERT_TRUE(tap);
    if ((tap->offloads() & kTunFUso4) == 0) GTEST_SKIP() << "kernel without TUN_F_USO4";
    address_tap(*tap);
    UniqueFd s = udp_socket(4002);
    std::vector<uint8_t> data(60 * 500);  // 60 segments: more than the room left in the batch below
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7);
    ASSERT_EQ(send_to_peer(s.get(), data.data(), data.size(), 5557, 500), static_cast<ssize_t>(data.size()));
    net::PacketPool pool(256, kGsoRxBufferSize);
    std::vector<uint8_t> joined;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (joined.size() < data.size() && std::chrono::steady_clock::now() < deadline) {
      pollfd pfd{tap->fd(), POLLIN, 0};
      ::poll(&pfd, 1, 10);
      net::PacketBatch in;
      for (int i = 0; i < 44; ++i) in.push(nullptr);  // 20 packets of room per call
      tap->rx_burst(pool, in);
      for (std::size_t i = 44; i < in.size(); ++i) {
        auto f = net::parse_frame(in[i]->bytes());
        if (f && f->ip.l4_proto == net::kIpProtoUdp && f->ip.dst_port == 5557) {
          EXPECT_EQ(in[i]->size(), 42U + 500);
          EXPECT_TRUE(udp_checksum_ok(*in[i]));
          joined.insert(joined.end(), in[i]->data() + 42, in[i]->data() + in[i]->size());
        }
        pool.free(in[i]);
      }
    }
    EXPECT_EQ(joined, data);
    EXPECT_EQ(pool.available(), 256U);
  });
}

// Frames 10.9.0.2 -> 10.9.0.1 (the TAP's address) as the gateway writes them after decap: `count`
// consecutive segments of one flow, `size` payload bytes each, byte i of the flow's data = i * 7.
std::vector<std::vector<uint8_t>> flow_segments(uint8_t proto, uint16_t dport, std::size_t count,
                                                std::size_t size, uint8_t tcp_flags = 0) {
  const std::size_t l4 = proto == net::kIpProtoTcp ? 20 : 8;
  std::vector<std::vector<uint8_t>> out;
  for (std::size_t k = 0; k < count; ++k) {
    std::vector<uint8_t> f(14 + 20 + l4 + size);
    std::memcpy(f.data(), kTapMac.bytes.data(), 6);
    std::memcpy(f.data() + 6, kPeerMac.bytes.data(), 6);
    store_be16(f.data() + 12, net::kEtherTypeIpv4);
    uint8_t* ip = f.data() + 14;
    ip[0] = 0x45;
    store_be16(ip + 2, static_cast<uint16_t>(20 + l4 + size));
    store_be16(ip + 4, static_cast<uint16_t>(100 + k));
    store_be16(ip + 6, net::kIpv4FlagDf);
    ip[8] = 64;
    ip[9] = proto;
    inet_pton(AF_INET, "10.9.0.2", ip + 12);
    inet_pton(AF_INET, "10.9.0.1", ip + 16);
    net::ipv4_set_checksum(ip);
    uint8_t* h = ip + 20;
    store_be16(h, 33333);
    store_be16(h + 2, dport);
    if (proto == net::kIpProtoTcp) {
      store_be32(h + 4, static_cast<uint32_t>(1000 + k * size));
      h[12] = 5 << 4;
      h[13] = tcp_flags;
      store_be16(h + 14, 1000);
    } else {
      store_be16(h + 4, static_cast<uint16_t>(l4 + size));
    }
    for (std::size_t i = 0; i < size; ++i) h[l4 + i] = static_cast<uint8_t>((k * size + i) * 7);
    store_be16(h + (proto == net::kIpProtoTcp ? 16 : 6), net::l4_checksum(ip, proto, {h, l4 + size}));
    out.push_back(std::move(f));
  }
  return out;
}

std::size_t write_frames(TapPort& tap, net::PacketPool& pool,
                         const std::vector<std::vector<uint8_t>>& frames) {
  net::PacketBatch b;
  for (const auto& f : frames) {
    net::Packet* p = pool.alloc();
    EXPECT_TRUE(p->assign(f));
    b.push(p);
  }
  const std::size_t sent = tap.tx_burst(b);
  for (net::Packet* p : b) pool.free(p);
  return sent;
}

// Consecutive UDP segments of one flow go to the kernel as one USO frame (one write) and reach the
// socket as the same datagrams.
TEST_F(TapTest, UdpSegmentsAreWrittenAsOneGsoFrame) {
  run([] {
    auto tap = open_tap(TapConfig{.name = "pspt0"});
    ASSERT_TRUE(tap);
    if ((tap->offloads() & kTunFUso4) == 0) GTEST_SKIP() << "kernel without USO on TAP";
    address_tap(*tap);
    UniqueFd s = udp_socket(4003);
    net::PacketPool pool(16, kGsoRxBufferSize);
    ASSERT_EQ(write_frames(*tap, pool, flow_segments(net::kIpProtoUdp, 4003, 5, 1000)), 5U);
    EXPECT_EQ(tap->coalesced_writes(), 1U);
    EXPECT_EQ(tap->stats().tx_packets, 5U);
    for (std::size_t k = 0; k < 5; ++k) {
      pollfd pfd{s.get(), POLLIN, 0};
      ASSERT_EQ(::poll(&pfd, 1, 1000), 1) << "datagram " << k;
      uint8_t buf[2000];
      ASSERT_EQ(::recv(s.get(), buf, sizeof(buf), 0), 1000) << "datagram " << k;
      for (std::size_t i = 0; i < 1000; ++i) ASSERT_EQ(buf[i], static_cast<uint8_t>((k * 1000 + i) * 7));
    }
  });
}

// Consecutive TCP segments of one flow are one TSO frame: the kernel answers the whole of it with one
// RST (no socket on the port) acknowledging every byte, where three writes would get three RSTs.
TEST_F(TapTest, TcpSegmentsAreWrittenAsOneGsoFrame) {
  run([] {
    auto tap = open_tap(TapConfig{.name = "pspt0"});
    ASSERT_TRUE(tap);
    address_tap(*tap);
    net::PacketPool pool(64, kGsoRxBufferSize);
    ASSERT_EQ(write_frames(*tap, pool, flow_segments(net::kIpProtoTcp, 4004, 3, 1000)), 3U);
    EXPECT_EQ(tap->coalesced_writes(), 1U);
    std::vector<uint32_t> acks;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd pfd{tap->fd(), POLLIN, 0};
      ::poll(&pfd, 1, 20);
      net::PacketBatch in;
      tap->rx_burst(pool, in);
      for (net::Packet* p : in) {
        auto f = net::parse_frame(p->bytes());
        if (f && f->ip.l4_proto == net::kIpProtoTcp && f->ip.src_port == 4004) {
          acks.push_back(load_be32(p->data() + f->ip.l4_offset + 8));
        }
        pool.free(p);
      }
    }
    ASSERT_EQ(acks.size(), 1U);
    EXPECT_EQ(acks[0], 1000U + 3000U);
  });
}

// The kernel refuses a GSO send whose segments exceed the route MTU (udp_send_skb: -EMSGSIZE). UdpPort
// resends the run datagram by datagram and keeps GSO on (the size was wrong, not the kernel); with
// IP_PMTUDISC_DO the plain datagrams are refused too, so each is a counted tx error and no outer fragment
// ever reaches the wire. Datagrams that fit still go out afterwards.
TEST_F(TapTest, UdpPortResendsGsoRunTheKernelRejects) {
  run([] {
    auto tap = open_tap(TapConfig{.name = "pspt0", .mtu = 1000});
    ASSERT_TRUE(tap);
    address_tap(*tap);
    UdpConfig uc;
    uc.local = *net::IpAddr::parse("10.9.0.1");
    uc.source_ports = 0;
    auto udp = UdpPort::open(uc);
    ASSERT_TRUE(udp.ok()) << udp.error().message();
    UdpPort& port = **udp;
    ASSERT_TRUE(port.gso_enabled());
    net::PacketPool pool(64, kGsoRxBufferSize);
    auto send = [&](std::size_t size) {
      net::PacketBatch b;
      for (int i = 0; i < 8; ++i) {
        net::Packet* p = pool.alloc();
        p->set_size(size);
        std::memset(p->data(), i, size);
        p->meta.peer = *net::IpAddr::parse("10.9.0.2");
        p->meta.peer_port = kPspUdpPort;
        b.push(p);
      }
      const std::size_t sent = port.tx_burst(b);
      for (net::Packet* p : b) pool.free(p);
      return sent;
    };
    EXPECT_EQ(send(1200), 0U);  // > MTU 1000 - 28
    EXPECT_TRUE(port.gso_enabled());
    EXPECT_EQ(port.gso_sends(), 0U);
    EXPECT_EQ(port.stats().dropped(DropReason::kTxError), 8U);
    EXPECT_EQ(send(900), 8U);
    auto got = read_udp(*tap, pool, kPspUdpPort, 8);
    ASSERT_EQ(got.size(), 8U);  // only the datagrams that fit: the refused ones left no fragment behind
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i]->size(), 42U + 900);
      EXPECT_EQ(got[i]->data()[42], i);
      EXPECT_EQ(load_be16(got[i]->data() + 34), port.local_port());
      pool.free(got[i]);
    }
  });
}

}  // namespace
}  // namespace pspgw::ports
