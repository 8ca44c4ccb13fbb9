// The network-side port: PSP over UDP through the kernel's UDP stack (spec psp-protocol.md §1: UDP
// destination port 1000, IPv4 or IPv6 outer). A received packet's data is the UDP payload, i.e. it starts
// at the PSP header; metadata.peer / peer_port hold the datagram's source. A packet to send is a UDP
// payload too, sent to metadata.peer / peer_port.
//
// Batching and offloads:
//   rx  recvmmsg: up to a batch of datagrams per syscall. UDP_GRO: the kernel may coalesce a train of
//       equal-size datagrams from one sender into one receive with a UDP_GRO cmsg giving the segment
//       size; we split it back (copies into further pool packets, the last segment stays in place).
//       A coalesced receive is up to 64 KiB, so with GRO rx pools need kGsoRxBufferSize buffers
//       (min_rx_buffer()); a datagram that does not fit is dropped as kTruncated.
//   tx  sendmmsg: one syscall per batch and source socket. UDP_SEGMENT (GSO): a run of consecutive
//       equal-size packets (the last may be shorter) to the same peer from the same socket goes down
//       the stack as one super-datagram and is cut by the NIC or at the last moment. If the kernel
//       rejects GSO (EINVAL/EIO before any GSO send has worked) GSO is switched off for this port and
//       the run is resent datagram by datagram; after it has worked once, or when the segments exceed
//       the route MTU (EMSGSIZE: GSO never fragments, a plain datagram may), the run is just resent.
//
// Fragmentation: never. Every socket has IP(V6)_PMTUDISC_DO: DF set, nothing fragmented locally; a datagram
// larger than the path MTU fails (EMSGSIZE, counted as kTxError). Senders size their packets to fit.
//
// UDP source port = a hash of the inner flow (spec §1: entropy for ECMP/RSS; receivers must not check
// it). A socket's source port is fixed and IP_PKTINFO cannot change it, so the port keeps `source_ports`
// extra send-only sockets on ephemeral ports of the same local address and picks one by
// metadata.flow_hash: one flow always leaves from one port (its order kept), flows spread over
// `source_ports` values. Send-only sockets carry a drop-all socket filter, so nothing queues on them.
//
// Checksums: the spec asks for UDP checksum 0 on transmit and acceptance of 0 on receive. Receive:
// UDP_NO_CHECK6_RX is always set on IPv6 (Linux drops zero-checksum UDP/IPv6 otherwise; IPv4 accepts
// it anyway). Transmit: the kernel refuses UDP_SEGMENT on a socket with SO_NO_CHECK / UDP_NO_CHECK6_TX
// (udp_send_skb: -EINVAL), so zero_checksum_tx and GSO exclude each other; the default keeps GSO and
// lets the stack (or the NIC) compute a valid checksum, which every receiver accepts.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "net/addr.hpp"
#include "ports/port.hpp"

namespace pspgw::ports {

inline constexpr uint16_t kPspUdpPort = 1000;  // spec §1
inline constexpr std::size_t kMaxSourcePorts = 64;

struct UdpConfig {
  net::IpAddr local;              // address to bind: IPv4 or IPv6 (0.0.0.0 / :: for any)
  uint16_t port = kPspUdpPort;    // 0: an ephemeral port (tests)
  PortId id{};                    // stamped into metadata.in_port of every received packet
  bool v6only = true;             // IPv6: IPV6_V6ONLY; false also reaches IPv4 peers (v4-mapped)
  uint16_t source_ports = 16;     // send-only sockets picked by flow hash; 0: send from `port`
  int socket_buffer = 8 << 20;    // SO_RCVBUF / SO_SNDBUF bytes (the *FORCE variants when privileged)
  bool gro = true;                // UDP_GRO on the receive socket
  bool gso = true;                // UDP_SEGMENT on transmit (not with zero_checksum_tx)
  bool zero_checksum_tx = false;  // SO_NO_CHECK / UDP_NO_CHECK6_TX (turns GSO off)
  bool reuse_port = false;        // SO_REUSEPORT on every socket: one UdpPort per worker on the same ports
  // The send sockets' port numbers (size source_ports); empty: ephemeral. Workers share one set, so a flow's
  // source port depends on its hash alone, never on the worker that sent it: the peer keeps it on one worker.
  std::vector<uint16_t> source_port_numbers;
};

class UdpPort final : public Port {
 public:
  static Result<std::unique_ptr<UdpPort>, SysError> open(const UdpConfig& config);
  ~UdpPort() override;
  UdpPort(const UdpPort&) = delete;
  UdpPort& operator=(const UdpPort&) = delete;

  std::size_t rx_burst(net::PacketPool& pool, net::PacketBatch& out) override;
  std::size_t tx_burst(const net::PacketBatch& pkts) override;

  int fd() const override { return rx_sock_.get(); }
  std::string_view name() const override { return name_; }
  PortId id() const override { return config_.id; }
  const PortStats& stats() const override { return stats_; }
  uint32_t min_rx_buffer() const override;

  uint16_t local_port() const { return local_port_; }
  bool gro_enabled() const { return gro_; }
  bool gso_enabled() const { return gso_; }
  // Source ports packets leave from (index = flow hash range-reduced); just local_port() without extras.
  const std::vector<uint16_t>& source_ports() const { return tx_ports_; }
  // Number of sendmmsg messages that carried a GSO run (for tests and stats).
  uint64_t gso_sends() const { return gso_sends_; }
  // Number of received buffers that were GRO-coalesced and split.
  uint64_t gro_receives() const { return gro_receives_; }

 private:
  explicit UdpPort(const UdpConfig& config);

  // One sendmmsg message: iovecs [first_iov, first_iov + pkts), all to the same peer.
  struct TxMsg {
    uint16_t first_iov;
    uint16_t pkts;
    uint32_t bytes;
  };

  std::size_t receive(net::PacketPool& pool, std::size_t room);
  void stage(net::Packet* p, const mmsghdr& msg, const sockaddr_storage& from);
  void drain_staged(net::PacketPool& pool, net::PacketBatch& out);
  bool split_gro(net::Packet* p, uint16_t seg, net::PacketPool& pool, net::PacketBatch& out);
  std::size_t build_msgs(const net::PacketBatch& pkts, const uint8_t* order, std::size_t count);
  std::size_t send_msgs(int sock, mmsghdr* msgs, TxMsg* info, std::size_t count);
  std::size_t resend_plain(int sock, const msghdr& run, const TxMsg& msg);
  void drop_msgs(const TxMsg* info, std::size_t count, DropReason why);

  UdpConfig config_;
  std::string name_;
  UniqueFd rx_sock_;
  std::vector<UniqueFd> tx_socks_;  // empty: transmit on rx_sock_
  std::vector<uint16_t> tx_ports_;
  uint16_t local_port_ = 0;
  bool gro_ = false;
  bool gso_ = false;
  bool gso_proven_ = false;  // a GSO send has succeeded: later rejections are per run, not the kernel's
  PortStats stats_;
  uint64_t gso_sends_ = 0;
  uint64_t gro_receives_ = 0;

  // Receive state: buffers handed to recvmmsg, then datagrams staged until `out` has room for them
  // (a GRO receive can turn into many packets).
  static constexpr std::size_t kCtrlSize = CMSG_SPACE(sizeof(int));
  std::array<mmsghdr, net::kMaxBatch> rx_msgs_{};
  std::array<iovec, net::kMaxBatch> rx_iov_{};
  std::array<sockaddr_storage, net::kMaxBatch> rx_addr_{};
  alignas(cmsghdr) std::array<std::array<uint8_t, kCtrlSize>, net::kMaxBatch> rx_ctrl_{};
  std::array<net::Packet*, net::kMaxBatch> rx_bufs_{};
  std::array<net::Packet*, net::kMaxBatch> staged_{};
  std::array<uint16_t, net::kMaxBatch> staged_seg_{};  // GRO segment size, 0: a single datagram
  std::size_t staged_head_ = 0;
  std::size_t staged_count_ = 0;
  net::PacketPool* staged_pool_ = nullptr;

  // Transmit state, rebuilt per batch.
  static constexpr std::size_t kTxCtrlSize = CMSG_SPACE(sizeof(uint16_t));
  std::array<mmsghdr, net::kMaxBatch> tx_msgs_{};
  std::array<TxMsg, net::kMaxBatch> tx_info_{};
  std::array<iovec, net::kMaxBatch> tx_iov_{};
  std::array<sockaddr_storage, net::kMaxBatch> tx_addr_{};
  alignas(cmsghdr) std::array<std::array<uint8_t, kTxCtrlSize>, net::kMaxBatch> tx_ctrl_{};
  std::array<mmsghdr, net::kMaxBatch> retry_msgs_{};
  std::array<TxMsg, net::kMaxBatch> retry_info_{};
};

}  // namespace pspgw::ports
