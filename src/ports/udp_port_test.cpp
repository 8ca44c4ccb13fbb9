#include "ports/udp_port.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <vector>

namespace pspgw::ports {
namespace {

using Bytes = std::vector<uint8_t>;

std::unique_ptr<UdpPort> open_port(const char* addr, UdpConfig c = {}) {
  c.local = *net::IpAddr::parse(addr);
  c.port = 0;
  auto r = UdpPort::open(c);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  return r.ok() ? std::move(*r) : nullptr;
}

// Packets of `sizes` to `to`; byte 0 = index, the rest a pattern; one flow unless `hashes` says.
std::size_t send(UdpPort& from, const UdpPort& to, const std::vector<uint32_t>& sizes, net::PacketPool& pool,
                 const std::vector<uint32_t>& hashes = {}) {
  net::PacketBatch b;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    net::Packet* p = pool.alloc();
    p->set_size(sizes[i]);
    for (uint32_t j = 0; j < sizes[i]; ++j) p->data()[j] = static_cast<uint8_t>(i * 31 + j);
    p->data()[0] = static_cast<uint8_t>(i);
    p->meta.peer = *net::IpAddr::parse(to.name().substr(4, to.name().rfind(':') - 4));
    p->meta.peer_port = to.local_port();
    p->meta.flow_hash = hashes.empty() ? 0x12345678 : hashes[i];
    b.push(p);
  }
  const std::size_t sent = from.tx_burst(b);
  for (net::Packet* p : b) pool.free(p);
  return sent;
}

struct Received {
  std::vector<Bytes> payloads;
  std::vector<uint16_t> src_ports;
  std::vector<net::IpAddr> peers;
};

Received receive(UdpPort& port, std::size_t want, net::PacketPool& pool,
                 std::chrono::milliseconds timeout = std::chrono::seconds(3)) {
  Received r;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (r.payloads.size() < want && std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{port.fd(), POLLIN, 0};
    ::poll(&pfd, 1, 50);
    net::PacketBatch in;
    port.rx_burst(pool, in);
    for (net::Packet* p : in) {
      r.payloads.emplace_back(p->data(), p->data() + p->size());
      r.src_ports.push_back(p->meta.peer_port);
      r.peers.push_back(p->meta.peer);
      EXPECT_EQ(p->meta.in_port, port.id());
      pool.free(p);
    }
  }
  return r;
}

Bytes expected(std::size_t i, uint32_t size) {
  Bytes b(size);
  for (uint32_t j = 0; j < size; ++j) b[j] = static_cast<uint8_t>(i * 31 + j);
  b[0] = static_cast<uint8_t>(i);
  return b;
}

class UdpPortTest : public ::testing::TestWithParam<const char*> {};

TEST_P(UdpPortTest, BatchWithGsoArrivesWholeAndInOrder) {
  auto tx = open_port(GetParam());
  UdpConfig rc;
  rc.id = PortId{7};
  auto rx = open_port(GetParam(), rc);
  ASSERT_TRUE(tx && rx);
  ASSERT_TRUE(rx->gro_enabled());
  ASSERT_GE(rx->min_rx_buffer(), kGsoRxBufferSize);
  EXPECT_EQ(tx->source_ports().size(), 16U);
  // 40 equal packets (one GSO run), a shorter tail that closes the run, then odd sizes.
  std::vector<uint32_t> sizes(40, 1200);
  sizes.push_back(700);
  for (uint32_t s : {1, 1500, 64, 9000}) sizes.push_back(s);
  net::PacketPool pool(256, kGsoRxBufferSize);
  ASSERT_EQ(send(*tx, *rx, sizes, pool), sizes.size());
  EXPECT_GE(tx->gso_sends(), 1U);
  EXPECT_TRUE(tx->gso_enabled());
  EXPECT_EQ(tx->stats().tx_packets, sizes.size());

  const Received r = receive(*rx, sizes.size(), pool);
  ASSERT_EQ(r.payloads.size(), sizes.size());
  for (std::size_t i = 0; i < sizes.size(); ++i) EXPECT_EQ(r.payloads[i], expected(i, sizes[i])) << i;
  // Loopback hands the GSO run to a UDP_GRO socket as one coalesced receive: the split path ran.
  EXPECT_GE(rx->gro_receives(), 1U);
  const std::set<uint16_t> ports(r.src_ports.begin(), r.src_ports.end());
  ASSERT_EQ(ports.size(), 1U);  // one flow, one source port
  EXPECT_TRUE(std::count(tx->source_ports().begin(), tx->source_ports().end(), *ports.begin()) == 1);
  EXPECT_EQ(r.peers[0], *net::IpAddr::parse(GetParam()));
  EXPECT_EQ(rx->stats().rx_packets, sizes.size());
  EXPECT_EQ(rx->stats().total_drops(), 0U);
  EXPECT_EQ(pool.available(), 256U);
}

TEST_P(UdpPortTest, SourcePortFollowsFlowHash) {
  auto tx = open_port(GetParam());
  auto rx = open_port(GetParam());
  ASSERT_TRUE(tx && rx);
  net::PacketPool pool(256, kGsoRxBufferSize);
  std::vector<uint32_t> hashes;
  for (uint32_t i = 0; i < 64; ++i) hashes.push_back((i % 8) * 0x20000000U + 5);  // 8 flows
  ASSERT_EQ(send(*tx, *rx, std::vector<uint32_t>(64, 100), pool, hashes), 64U);
  const Received r = receive(*rx, 64, pool);
  ASSERT_EQ(r.payloads.size(), 64U);
  std::map<uint32_t, std::set<uint16_t>> by_flow;
  std::map<uint32_t, std::vector<uint8_t>> order;
  for (std::size_t i = 0; i < r.payloads.size(); ++i) {
    const uint8_t idx = r.payloads[i][0];
    by_flow[hashes[idx]].insert(r.src_ports[i]);
    order[hashes[idx]].push_back(idx);
  }
  std::set<uint16_t> all;
  for (const auto& [h, ports] : by_flow) {
    EXPECT_EQ(ports.size(), 1U) << "flow " << h << " used several source ports";
    all.insert(*ports.begin());
    EXPECT_TRUE(std::is_sorted(order[h].begin(), order[h].end())) << "flow " << h << " reordered";
  }
  EXPECT_EQ(all.size(), 8U);  // hashes spread over 8 of the 16 ports
}

INSTANTIATE_TEST_SUITE_P(Loopback, UdpPortTest, ::testing::Values("127.0.0.1", "::1"));

// Two workers' ports on one address: the second reuses the first's receive port and its source ports, so a
// flow leaves from the same source port whichever worker sends it.
TEST(UdpPort, WorkersShareReceiveAndSourcePorts) {
  UdpConfig c;
  c.local = *net::IpAddr::parse("127.0.0.1");
  c.port = 0;
  c.reuse_port = true;
  auto first = UdpPort::open(c);
  ASSERT_TRUE(first.ok()) << first.error().message();
  c.port = (*first)->local_port();
  c.source_port_numbers = (*first)->source_ports();
  auto second = UdpPort::open(c);
  ASSERT_TRUE(second.ok()) << second.error().message();
  EXPECT_EQ((*second)->local_port(), (*first)->local_port());
  EXPECT_EQ((*second)->source_ports(), (*first)->source_ports());
  c.source_port_numbers.pop_back();  // must name every source port or none
  EXPECT_FALSE(UdpPort::open(c).ok());
}

TEST(UdpPort, ZeroChecksumOverIpv6IsSentAndAccepted) {
  UdpConfig zc;
  zc.zero_checksum_tx = true;
  zc.source_ports = 0;
  auto tx = open_port("::1", zc);
  auto rx = open_port("::1");
  ASSERT_TRUE(tx && rx);
  EXPECT_FALSE(tx->gso_enabled());  // the kernel refuses UDP_SEGMENT without checksums

  // Control: a plain socket (no UDP_NO_CHECK6_RX) must drop the same zero-checksum datagrams.
  UniqueFd plain(::socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, 0));
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  ASSERT_EQ(::bind(plain.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t alen = sizeof(a);
  ASSERT_EQ(::getsockname(plain.get(), reinterpret_cast<sockaddr*>(&a), &alen), 0);

  net::PacketPool pool(64, kGsoRxBufferSize);
  ASSERT_EQ(send(*tx, *rx, {300, 300, 300}, pool), 3U);
  const Received r = receive(*rx, 3, pool);
  ASSERT_EQ(r.payloads.size(), 3U);
  EXPECT_EQ(r.payloads[2], expected(2, 300));

  net::PacketBatch b;
  net::Packet* p = pool.alloc();
  p->set_size(10);
  p->meta.peer = *net::IpAddr::parse("::1");
  p->meta.peer_port = ntohs(a.sin6_port);
  b.push(p);
  ASSERT_EQ(tx->tx_burst(b), 1U);
  pool.free(p);
  pollfd pfd{plain.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&pfd, 1, 200), 0) << "a zero-checksum datagram reached a socket without UDP_NO_CHECK6_RX";
}

TEST(UdpPort, DualStackSocketReachesIpv4PeersAndMissingDestinationsAreCounted) {
  UdpConfig dual;
  dual.v6only = false;
  auto tx = open_port("::", dual);
  auto rx4 = open_port("127.0.0.1");
  ASSERT_TRUE(tx && rx4);
  net::PacketPool pool(64, kGsoRxBufferSize);
  ASSERT_EQ(send(*tx, *rx4, {100, 100}, pool), 2U);
  const Received r = receive(*rx4, 2, pool);
  ASSERT_EQ(r.payloads.size(), 2U);
  EXPECT_EQ(r.peers[0], *net::IpAddr::parse("127.0.0.1"));

  auto v4only = open_port("127.0.0.1");
  net::PacketBatch b;
  net::Packet* p = pool.alloc();
  p->set_size(10);
  p->meta.peer = *net::IpAddr::parse("::1");  // IPv6 peer on an IPv4 socket
  p->meta.peer_port = 1000;
  b.push(p);
  net::Packet* q = pool.alloc();
  q->set_size(10);  // no peer at all
  b.push(q);
  EXPECT_EQ(v4only->tx_burst(b), 0U);
  EXPECT_EQ(v4only->stats().dropped(DropReason::kNoDestination), 2U);
  pool.free(p);
  pool.free(q);
}

TEST(UdpPort, SmallPoolBuffersTruncateCoalescedReceives) {
  auto tx = open_port("127.0.0.1");
  auto rx = open_port("127.0.0.1");
  ASSERT_TRUE(tx && rx);
  net::PacketPool big(64, kGsoRxBufferSize);
  ASSERT_EQ(send(*tx, *rx, std::vector<uint32_t>(20, 1000), big), 20U);  // one GSO run: 20 KB coalesced
  net::PacketPool small(64, 4096);
  const Received r = receive(*rx, 1, small, std::chrono::milliseconds(300));
  EXPECT_TRUE(r.payloads.empty());
  EXPECT_EQ(rx->stats().dropped(DropReason::kTruncated), 1U);
  EXPECT_EQ(small.available(), 64U);
}

}  // namespace
}  // namespace pspgw::ports
