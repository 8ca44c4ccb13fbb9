#include "ports/udp_port.hpp"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace pspgw::ports {
namespace {

// From linux/udp.h, for headers that lack them.
#ifndef UDP_NO_CHECK6_TX
#define UDP_NO_CHECK6_TX 101
#endif
#ifndef UDP_NO_CHECK6_RX
#define UDP_NO_CHECK6_RX 102
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

// A GSO send: at most 64 segments (UDP_MAX_SEGMENTS on older kernels) and a 64 KiB IP packet.
constexpr std::size_t kMaxGsoSegments = 64;
constexpr std::size_t kMaxGsoPayload = 65535 - 40 - 8;  // room left by the larger (IPv6) header

bool would_block(int err) {
  return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

Status<SysError> set_int(int fd, int level, int opt, int value, std::string_view step) {
  if (::setsockopt(fd, level, opt, &value, sizeof(value)) != 0) return Err{SysError{step, errno}};
  return Status<SysError>::Ok();
}

// Socket address of `addr`:`port` for a socket of `family`; an IPv4 peer on a dual-stack IPv6 socket
// becomes v4-mapped. 0 if the socket cannot reach that family.
socklen_t to_sockaddr(const net::IpAddr& addr, uint16_t port, int family, bool v6only, sockaddr_storage* ss) {
  if (family == AF_INET && addr.is_v4()) {
    auto* sin = reinterpret_cast<sockaddr_in*>(ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    std::memcpy(&sin->sin_addr, addr.bytes.data(), 4);
    return sizeof(sockaddr_in);
  }
  if (family != AF_INET6 || (!addr.is_v6() && (v6only || !addr.is_v4()))) return 0;
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(ss);
  *sin6 = sockaddr_in6{};
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  if (addr.is_v6()) {
    std::memcpy(&sin6->sin6_addr, addr.bytes.data(), 16);
  } else {
    sin6->sin6_addr.s6_addr[10] = 0xff;
    sin6->sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(&sin6->sin6_addr.s6_addr[12], addr.bytes.data(), 4);
  }
  return sizeof(sockaddr_in6);
}

// Source of a received datagram; a v4-mapped IPv6 source is reported as IPv4.
void from_sockaddr(const sockaddr_storage& ss, net::IpAddr* addr, uint16_t* port) {
  if (ss.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
    *addr = net::IpAddr::v4(std::span<const uint8_t, 4>(reinterpret_cast<const uint8_t*>(&sin->sin_addr), 4));
    *port = ntohs(sin->sin_port);
    return;
  }
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
  const uint8_t* b = sin6->sin6_addr.s6_addr;
  *addr = IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) ? net::IpAddr::v4(std::span<const uint8_t, 4>(b + 12, 4))
                                                 : net::IpAddr::v6(std::span<const uint8_t, 16>(b, 16));
  *port = ntohs(sin6->sin6_port);
}

// SO_*BUFFORCE passes rmem_max/wmem_max with CAP_NET_ADMIN; without it the plain option (capped).
void size_buffer(int fd, int force_opt, int opt, int bytes) {
  if (::setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof(bytes)) != 0) {
    (void)::setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof(bytes));
  }
}

// A send-only socket must not queue what arrives on its ephemeral port: a filter that accepts 0 bytes.
Status<SysError> drop_all_input(int fd) {
  sock_filter code[] = {{BPF_RET | BPF_K, 0, 0, 0}};
  sock_fprog prog{1, code};
  if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) != 0) {
    return Err{SysError{"SO_ATTACH_FILTER", errno}};
  }
  return Status<SysError>::Ok();
}

Result<UniqueFd, SysError> make_socket(const UdpConfig& c, uint16_t port, bool rx) {
  const int family = c.local.is_v4() ? AF_INET : AF_INET6;
  UniqueFd fd(::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Err{SysError{"socket", errno}};
  Status<SysError> st;
  if (family == AF_INET6) {
    if (!(st = set_int(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, c.v6only ? 1 : 0, "IPV6_V6ONLY")))
      return Err{st.error()};
    if (!(st = set_int(fd.get(), SOL_UDP, UDP_NO_CHECK6_RX, 1, "UDP_NO_CHECK6_RX"))) return Err{st.error()};
    if (c.zero_checksum_tx && !(st = set_int(fd.get(), SOL_UDP, UDP_NO_CHECK6_TX, 1, "UDP_NO_CHECK6_TX"))) {
      return Err{st.error()};
    }
  } else if (c.zero_checksum_tx && !(st = set_int(fd.get(), SOL_SOCKET, SO_NO_CHECK, 1, "SO_NO_CHECK"))) {
    return Err{st.error()};
  }
  // Never an outer fragment (issue 9): DF on every datagram and no local fragmentation; one larger than
  // the path fails with EMSGSIZE (counted) instead. The gateway sizes inner packets so none is
  // (path_mtu.hpp).
  if (family == AF_INET6) {
    if (!(st = set_int(fd.get(), IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO, "IPV6_MTU_DISCOVER")))
      return Err{st.error()};
  }
  if ((family == AF_INET || !c.v6only) &&
      !(st = set_int(fd.get(), IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO, "IP_MTU_DISCOVER"))) {
    return Err{st.error()};
  }
  size_buffer(fd.get(), SO_SNDBUFFORCE, SO_SNDBUF, c.socket_buffer);
  if (rx) size_buffer(fd.get(), SO_RCVBUFFORCE, SO_RCVBUF, c.socket_buffer);
  // One receive socket per worker on the same address: the kernel spreads datagrams by their 4-tuple, and
  // a peer sends one inner flow from one source port, so a flow stays on one worker, in order.
  if (c.reuse_port && !(st = set_int(fd.get(), SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT"))) {
    return Err{st.error()};
  }
  sockaddr_storage ss{};
  const socklen_t len = to_sockaddr(c.local, port, family, true, &ss);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) return Err{SysError{"bind", errno}};
  if (!rx && !(st = drop_all_input(fd.get()))) return Err{st.error()};
  return fd;
}

Result<uint16_t, SysError> bound_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return Err{SysError{"getsockname", errno}};
  net::IpAddr addr;
  uint16_t port = 0;
  from_sockaddr(ss, &addr, &port);
  return port;
}

}  // namespace

Result<std::unique_ptr<UdpPort>, SysError> UdpPort::open(const UdpConfig& config) {
  if (config.local.family == net::IpFamily::kNone || config.source_ports > kMaxSourcePorts ||
      (!config.source_port_numbers.empty() && config.source_port_numbers.size() != config.source_ports)) {
    return Err{SysError{"config", EINVAL}};
  }
  std::unique_ptr<UdpPort> port(new UdpPort(config));
  auto rx = make_socket(config, config.port, true);
  if (!rx) return Err{rx.error()};
  port->rx_sock_ = std::move(*rx);
  auto local = bound_port(port->rx_sock_.get());
  if (!local) return Err{local.error()};
  port->local_port_ = *local;
  // GRO is an optimisation: a kernel without it (< 5.0) just delivers datagrams one by one.
  port->gro_ = config.gro && set_int(port->rx_sock_.get(), SOL_UDP, UDP_GRO, 1, "UDP_GRO").ok();
  port->gso_ = config.gso && !config.zero_checksum_tx;

  for (uint16_t i = 0; i < config.source_ports; ++i) {
    const uint16_t want = config.source_port_numbers.empty() ? 0 : config.source_port_numbers[i];
    auto tx = make_socket(config, want, false);
    if (!tx) return Err{tx.error()};
    auto p = bound_port(tx->get());
    if (!p) return Err{p.error()};
    port->tx_ports_.push_back(*p);
    port->tx_socks_.push_back(std::move(*tx));
  }
  if (port->tx_ports_.empty()) port->tx_ports_.push_back(port->local_port_);
  port->name_ = "udp:" + config.local.to_string() + ":" + std::to_string(port->local_port_);
  return port;
}

UdpPort::UdpPort(const UdpConfig& config) : config_(config) {}

UdpPort::~UdpPort() {
  for (std::size_t i = staged_head_; i < staged_count_; ++i) staged_pool_->free(staged_[i]);
}

// Without GRO a datagram is at most a (jumbo) frame: PSP packets are sized for the path MTU.
uint32_t UdpPort::min_rx_buffer() const {
  return gro_ ? kGsoRxBufferSize : net::kDefaultBufferSize;
}

std::size_t UdpPort::rx_burst(net::PacketPool& pool, net::PacketBatch& out) {
  const std::size_t first = out.size();
  drain_staged(pool, out);
  if (staged_head_ == staged_count_ && !out.full() && receive(pool, net::kMaxBatch - out.size()) > 0) {
    drain_staged(pool, out);
  }
  for (std::size_t i = first; i < out.size(); ++i) stats_.rx_bytes += out[i]->size();
  stats_.rx_packets += out.size() - first;
  return out.size() - first;
}

// One recvmmsg() of at most `room` datagrams (each becomes at least one packet) into staged_.
std::size_t UdpPort::receive(net::PacketPool& pool, std::size_t room) {
  std::size_t n = 0;
  for (; n < room; ++n) {
    net::Packet* p = pool.alloc();
    if (p == nullptr) break;
    rx_bufs_[n] = p;
    rx_iov_[n] = {p->data(), p->capacity() - p->headroom()};
    msghdr& h = rx_msgs_[n].msg_hdr;
    h = msghdr{};
    h.msg_name = &rx_addr_[n];
    h.msg_namelen = sizeof(sockaddr_storage);
    h.msg_iov = &rx_iov_[n];
    h.msg_iovlen = 1;
    h.msg_control = rx_ctrl_[n].data();
    h.msg_controllen = kCtrlSize;
  }
  const int got =
      n == 0 ? 0
             : ::recvmmsg(rx_sock_.get(), rx_msgs_.data(), static_cast<unsigned>(n), MSG_DONTWAIT, nullptr);
  if (got < 0 && !would_block(errno)) stats_.drop(DropReason::kRxError);
  const std::size_t m = got < 0 ? 0 : static_cast<std::size_t>(got);
  for (std::size_t i = m; i < n; ++i) pool.free(rx_bufs_[i]);
  staged_head_ = 0;
  staged_count_ = 0;
  staged_pool_ = &pool;
  for (std::size_t i = 0; i < m; ++i) stage(rx_bufs_[i], rx_msgs_[i], rx_addr_[i]);
  return staged_count_;
}

void UdpPort::stage(net::Packet* p, const mmsghdr& msg, const sockaddr_storage& from) {
  if ((msg.msg_hdr.msg_flags & MSG_TRUNC) != 0) {
    stats_.drop(DropReason::kTruncated);
    staged_pool_->free(p);
    return;
  }
  p->set_size(msg.msg_len);
  p->meta.in_port = config_.id;
  from_sockaddr(from, &p->meta.peer, &p->meta.peer_port);
  uint16_t seg = 0;
  auto* h = const_cast<msghdr*>(&msg.msg_hdr);  // CMSG_FIRSTHDR/NXTHDR take non-const
  for (cmsghdr* c = CMSG_FIRSTHDR(h); c != nullptr; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
      int v = 0;
      std::memcpy(&v, CMSG_DATA(c), sizeof(v));
      seg = v > 0 && static_cast<uint32_t>(v) < msg.msg_len ? static_cast<uint16_t>(v) : 0;
    }
  }
  if (seg != 0) ++gro_receives_;
  staged_[staged_count_] = p;
  staged_seg_[staged_count_] = seg;
  ++staged_count_;
}

void UdpPort::drain_staged(net::PacketPool& pool, net::PacketBatch& out) {
  while (staged_head_ < staged_count_ && !out.full()) {
    net::Packet* p = staged_[staged_head_];
    if (staged_seg_[staged_head_] != 0 && !split_gro(p, staged_seg_[staged_head_], pool, out)) return;
    out.push(p);
    ++staged_head_;
  }
}

// Copies the leading segments of a GRO receive into fresh packets; the last stays in `p` (its front
// pulled up to it). False if `out` or the pool ran out first (resumes next call, `p` keeps the rest).
bool UdpPort::split_gro(net::Packet* p, uint16_t seg, net::PacketPool& pool, net::PacketBatch& out) {
  while (p->size() > seg) {
    if (out.full()) return false;
    net::Packet* q = pool.alloc();
    if (q == nullptr) return false;
    if (!q->assign(p->bytes().first(seg))) {  // pool buffers smaller than one segment
      stats_.drop(DropReason::kTruncated);
      pool.free(q);
    } else {
      q->meta = p->meta;
      out.push(q);
    }
    p->pull_front(seg);
  }
  return !out.full();
}

std::size_t UdpPort::tx_burst(const net::PacketBatch& pkts) {
  // Socket per packet by flow hash (Lemire's range reduction), then a stable counting sort by socket:
  // one sendmmsg per socket, and a flow's packets keep their order.
  const std::size_t nsock = tx_socks_.empty() ? 1 : tx_socks_.size();
  const int family = config_.local.is_v4() ? AF_INET : AF_INET6;
  std::array<uint8_t, net::kMaxBatch> sock_of{};
  std::array<uint16_t, kMaxSourcePorts + 1> start{};
  for (std::size_t i = 0; i < pkts.size(); ++i) {
    const net::Metadata& m = pkts[i]->meta;
    if (to_sockaddr(m.peer, m.peer_port, family, config_.v6only, &tx_addr_[i]) == 0 || m.peer_port == 0) {
      stats_.drop(DropReason::kNoDestination);
      sock_of[i] = UINT8_MAX;
      continue;
    }
    sock_of[i] = static_cast<uint8_t>((uint64_t{m.flow_hash} * nsock) >> 32);
    ++start[sock_of[i] + 1];
  }
  for (std::size_t s = 1; s <= nsock; ++s) start[s] += start[s - 1];
  std::array<uint8_t, net::kMaxBatch> order{};
  std::array<uint16_t, kMaxSourcePorts + 1> fill = start;
  for (std::size_t i = 0; i < pkts.size(); ++i) {
    if (sock_of[i] != UINT8_MAX) order[fill[sock_of[i]]++] = static_cast<uint8_t>(i);
  }
  std::size_t sent = 0;
  for (std::size_t s = 0; s < nsock; ++s) {
    const std::size_t count = start[s + 1] - start[s];
    if (count == 0) continue;
    const int sock = tx_socks_.empty() ? rx_sock_.get() : tx_socks_[s].get();
    const std::size_t msgs = build_msgs(pkts, order.data() + start[s], count);
    sent += send_msgs(sock, tx_msgs_.data(), tx_info_.data(), msgs);
  }
  stats_.tx_packets += sent;
  return sent;
}

// sendmmsg messages for one socket's packets (`order`: batch indices); consecutive packets to the same
// peer of the same size (the last may be shorter) become one GSO message when GSO is on.
std::size_t UdpPort::build_msgs(const net::PacketBatch& pkts, const uint8_t* order, std::size_t count) {
  std::size_t m = 0;
  for (std::size_t i = 0; i < count; ++m) {
    const net::Packet* head = pkts[order[i]];
    const std::size_t run_start = i;
    uint32_t bytes = 0;
    do {
      const net::Packet* p = pkts[order[i]];
      tx_iov_[i] = {const_cast<uint8_t*>(p->data()), p->size()};  // NOLINT: sendmsg only reads
      bytes += p->size();
      ++i;
    } while (gso_ && i < count && i - run_start < kMaxGsoSegments && pkts[order[i]]->size() <= head->size() &&
             pkts[order[i - 1]]->size() == head->size() && bytes + pkts[order[i]]->size() <= kMaxGsoPayload &&
             pkts[order[i]]->meta.peer == head->meta.peer &&
             pkts[order[i]]->meta.peer_port == head->meta.peer_port);
    msghdr& h = tx_msgs_[m].msg_hdr;
    h = msghdr{};
    h.msg_name = &tx_addr_[order[run_start]];
    h.msg_namelen =
        tx_addr_[order[run_start]].ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    h.msg_iov = &tx_iov_[run_start];
    h.msg_iovlen = i - run_start;
    tx_info_[m] = {static_cast<uint16_t>(run_start), static_cast<uint16_t>(i - run_start), bytes};
    if (i - run_start > 1) {
      h.msg_control = tx_ctrl_[m].data();
      h.msg_controllen = kTxCtrlSize;
      cmsghdr* c = CMSG_FIRSTHDR(&h);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      const auto seg = static_cast<uint16_t>(head->size());
      std::memcpy(CMSG_DATA(c), &seg, sizeof(seg));
    }
  }
  return m;
}

// sendmmsg until every message is sent or dropped. Returns packets sent.
std::size_t UdpPort::send_msgs(int sock, mmsghdr* msgs, TxMsg* info, std::size_t count) {
  std::size_t sent = 0;
  for (std::size_t k = 0; k < count;) {
    const int r = ::sendmmsg(sock, msgs + k, static_cast<unsigned>(count - k), MSG_DONTWAIT);
    if (r > 0) {
      for (std::size_t j = k; j < k + static_cast<std::size_t>(r); ++j) {
        sent += info[j].pkts;
        stats_.tx_bytes += info[j].bytes;
        if (info[j].pkts > 1) {
          ++gso_sends_;
          gso_proven_ = true;
        }
      }
      k += static_cast<std::size_t>(r);
      continue;
    }
    const int err = errno;
    if (would_block(err)) {
      drop_msgs(info + k, count - k, DropReason::kTxQueueFull);
      break;
    }
    if (info[k].pkts > 1 && (err == EINVAL || err == EIO || err == EMSGSIZE)) {
      // EINVAL/EIO before GSO ever worked: the kernel or the device cannot do it. EMSGSIZE: segments
      // larger than the route MTU (GSO never fragments; a plain datagram may be).
      if (err != EMSGSIZE) gso_ = gso_ && gso_proven_;
      sent += resend_plain(sock, msgs[k].msg_hdr, info[k]);
    } else {
      drop_msgs(info + k, 1, DropReason::kTxError);
    }
    ++k;
  }
  return sent;
}

// A rejected GSO run, one datagram per message (never GSO again, so no recursion beyond one level).
std::size_t UdpPort::resend_plain(int sock, const msghdr& run, const TxMsg& msg) {
  for (std::size_t j = 0; j < msg.pkts; ++j) {
    msghdr& h = retry_msgs_[j].msg_hdr;
    h = msghdr{};
    h.msg_name = run.msg_name;
    h.msg_namelen = run.msg_namelen;
    h.msg_iov = &tx_iov_[msg.first_iov + j];
    h.msg_iovlen = 1;
    retry_info_[j] = {static_cast<uint16_t>(msg.first_iov + j), 1, static_cast<uint32_t>(h.msg_iov->iov_len)};
  }
  return send_msgs(sock, retry_msgs_.data(), retry_info_.data(), msg.pkts);
}

void UdpPort::drop_msgs(const TxMsg* info, std::size_t count, DropReason why) {
  for (std::size_t j = 0; j < count; ++j) stats_.drop(why, info[j].pkts);
}

}  // namespace pspgw::ports
