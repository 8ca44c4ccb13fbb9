// Both directions of a flow on one worker (issue 9 step 5; ports/steering.hpp): the flow hash is
// symmetric, the peer's UDP source port carries it, the TAP's eBPF program computes exactly it, and the UDP
// reuseport program picks the socket from the source port.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/byteorder.hpp"
#include "base/unique_fd.hpp"
#include "gateway/psp_actions.hpp"
#include "gateway/test_frames.hpp"
#include "net/packet.hpp"
#include "ports/steering.hpp"
#include "psp/encap_template.hpp"

namespace pspgw::gateway {
namespace {

using test::ip;
using test::udp_frame;
using test::UdpSpec;

UdpSpec reversed(UdpSpec s) {
  std::swap(s.src, s.dst);
  std::swap(s.sport, s.dport);
  std::swap(s.src_mac, s.dst_mac);
  return s;
}

// n flows with random addresses of `family` and random ports.
std::vector<UdpSpec> random_flows(bool v4, std::size_t n) {
  std::mt19937 rng(7);
  std::vector<UdpSpec> out;
  for (std::size_t i = 0; i < n; ++i) {
    UdpSpec s;
    s.src = ip(v4 ? "10.0.0.1" : "fd00::1");
    s.dst = ip(v4 ? "10.0.0.2" : "fd00::2");
    for (auto* a : {&s.src, &s.dst}) {
      for (std::size_t b = v4 ? 1 : 8; b < (v4 ? 4u : 16u); ++b) a->bytes[b] = static_cast<uint8_t>(rng());
    }
    s.sport = static_cast<uint16_t>(rng());
    s.dport = static_cast<uint16_t>(rng());
    out.push_back(s);
  }
  return out;
}

std::vector<uint8_t> with_vlan(std::vector<uint8_t> f) {
  const uint8_t tag[4] = {0x81, 0x00, 0x00, 0x2a};
  f.insert(f.begin() + 12, tag, tag + 4);
  return f;
}

TEST(Steering, FlowHashIsSymmetric) {
  for (bool v4 : {true, false}) {
    for (const UdpSpec& s : random_flows(v4, 200)) {
      EXPECT_EQ(flow_hash(udp_frame(s)), flow_hash(udp_frame(reversed(s))));
      EXPECT_EQ(flow_hash(with_vlan(udp_frame(s))), flow_hash(udp_frame(s)));
    }
  }
  UdpSpec frag;
  frag.ipv4_frag = net::kIpv4FlagMf | 100;
  EXPECT_EQ(flow_hash(udp_frame(frag)), flow_hash(udp_frame(reversed(frag))));
}

// What the peer (this gateway's own encap) writes as the UDP source port of a frame of flow `s`.
uint16_t wire_source_port(const UdpSpec& s) {
  psp::SealParams p;
  p.spi = 0x100;
  psp::OuterHeaders o;
  o.local = ip("192.0.2.1");
  o.peer = ip("192.0.2.2");
  const auto t = psp::EncapTemplate::make(p, o).value();
  net::PacketPool pool(1);
  net::Packet* pkt = pool.alloc();
  const std::vector<uint8_t> f = udp_frame(s);
  EXPECT_TRUE(pkt->assign(f));
  const psp::EthAddrs eth{};
  EXPECT_EQ(psp::encap_tunnel(*pkt, t, eth, 1, flow_hash(f)), psp::EncapError::kNone);
  const uint16_t port = load_be16(pkt->data() + 14 + 20);  // [Eth][IPv4][UDP source port]
  pool.free(pkt);
  return port;
}

// Gateway A's worker for a flow's frames from its workload (TAP queue by flow hash) and for the same flow's
// frames back from gateway B (UDP socket by the source port B's encap wrote): the same, for any worker count.
TEST(Steering, BothDirectionsOfAFlowLandOnOneWorker) {
  for (bool v4 : {true, false}) {
    for (const UdpSpec& a_to_b : random_flows(v4, 200)) {
      const uint16_t sport_from_b = wire_source_port(reversed(a_to_b));
      for (uint16_t workers : {2, 3, 4, 16}) {
        EXPECT_EQ(ports::steer_index(flow_hash(udp_frame(a_to_b)), workers),
                  ports::steer_index(sport_from_b, workers));
      }
    }
  }
}

// Runs the TAP steering program on `frame` (BPF_PROG_TEST_RUN). A socket filter's test run pulls an
// Ethernet header off the input first (eth_type_trans), where the TAP's transmit path leaves the skb at the
// frame's own: the frame goes in behind 14 bytes of filler, so the program sees it as on the TAP.
uint32_t run_program(int prog_fd, const std::vector<uint8_t>& frame) {
  std::vector<uint8_t> in(14, 0);
  in[12] = 0x08;  // the filler's type: anything the kernel accepts
  in.insert(in.end(), frame.begin(), frame.end());
  bpf_attr attr{};
  attr.test.prog_fd = static_cast<uint32_t>(prog_fd);
  attr.test.data_in = reinterpret_cast<uint64_t>(in.data());
  attr.test.data_size_in = static_cast<uint32_t>(in.size());
  attr.test.repeat = 1;
  if (::syscall(SYS_bpf, BPF_PROG_TEST_RUN, &attr, sizeof(attr)) != 0) {
    ADD_FAILURE() << ports::SysError{"BPF_PROG_TEST_RUN", errno}.message();
    return ~0u;
  }
  return attr.test.retval;
}

TEST(Steering, TapProgramComputesTheFlowHash) {
  auto prog = ports::load_tap_steering();
  if (!prog) GTEST_SKIP() << "the kernel refuses the program: " << prog.error().message();
  for (bool v4 : {true, false}) {
    for (const UdpSpec& s : random_flows(v4, 100)) {
      const std::vector<uint8_t> f = udp_frame(s);
      EXPECT_EQ(run_program(prog->get(), f), flow_hash(f) & ports::kSteerBits);
      EXPECT_EQ(run_program(prog->get(), with_vlan(f)), flow_hash(f) & ports::kSteerBits);
    }
  }
  UdpSpec frag;
  frag.ipv4_frag = net::kIpv4FlagMf;
  EXPECT_EQ(run_program(prog->get(), udp_frame(frag)), flow_hash(udp_frame(frag)) & ports::kSteerBits);
  const auto arp = test::arp_request(test::mac("02:00:00:00:00:01"), ip("10.0.0.1"), ip("10.0.0.2"));
  EXPECT_EQ(run_program(prog->get(), arp), 0u);
}

UniqueFd udp_socket(int family) {
  return UniqueFd(::socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
}

bool bind_to(int fd, int family, uint16_t port) {
  sockaddr_storage ss{};
  socklen_t len;
  if (family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(sockaddr_in);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    a->sin6_addr = in6addr_loopback;
    len = sizeof(sockaddr_in6);
  }
  return ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0;
}

uint16_t local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                       : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

// Which of `socks` the datagram arrived on (-1: none within the deadline).
int arrival(const std::vector<UniqueFd>& socks) {
  std::vector<pollfd> pfds;
  pfds.reserve(socks.size());
  for (const UniqueFd& s : socks) pfds.push_back({s.get(), POLLIN, 0});
  if (::poll(pfds.data(), pfds.size(), 2000) <= 0) return -1;
  for (std::size_t i = 0; i < socks.size(); ++i) {
    char b[64];
    if ((pfds[i].revents & POLLIN) != 0 && ::recv(socks[i].get(), b, sizeof(b), 0) >= 0)
      return static_cast<int>(i);
  }
  return -1;
}

// The workers' sockets of one port in bind order, the program on the first: a datagram from source port p
// arrives on socket (p & 0x3fff) % workers.
TEST(Steering, ReuseportProgramPicksTheSocketOfTheSourcePort) {
  for (int family : {AF_INET, AF_INET6}) {
    for (uint16_t workers : {2, 3}) {
      std::vector<UniqueFd> socks;
      uint16_t port = 0;
      for (uint16_t w = 0; w < workers; ++w) {
        UniqueFd s = udp_socket(family);
        const int one = 1;
        ASSERT_EQ(::setsockopt(s.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
        if (!bind_to(s.get(), family, port)) {
          ASSERT_NE(family, AF_INET) << ports::SysError{"bind 127.0.0.1", errno}.message();
          GTEST_SKIP() << "no IPv6 loopback";
        }
        port = local_port(s.get());
        if (w == 0) {
          auto st = ports::attach_reuseport_steering(
              s.get(), family == AF_INET ? net::IpFamily::kV4 : net::IpFamily::kV6, workers);
          ASSERT_TRUE(st) << st.error().message();
        }
        socks.push_back(std::move(s));
      }
      for (int i = 0; i < 24; ++i) {
        UniqueFd c = udp_socket(family);
        ASSERT_TRUE(bind_to(c.get(), family, 0));
        const uint16_t sport = local_port(c.get());
        sockaddr_storage to{};
        socklen_t len = sizeof(to);
        ::getsockname(socks[0].get(), reinterpret_cast<sockaddr*>(&to), &len);
        ASSERT_EQ(::sendto(c.get(), "x", 1, 0, reinterpret_cast<sockaddr*>(&to), len), 1);
        EXPECT_EQ(arrival(socks), ports::steer_index(sport, workers)) << "source port " << sport;
      }
    }
  }
}

}  // namespace
}  // namespace pspgw::gateway
