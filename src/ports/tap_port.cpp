#include "ports/tap_port.hpp"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "net/headers.hpp"
#include "ports/header_fields.hpp"

namespace pspgw::ports {
namespace {

constexpr int kVnetHdrSize = sizeof(VirtioNetHdr);
constexpr unsigned kOffloadsTso = kTunFCsum | kTunFTso4 | kTunFTso6;
constexpr unsigned kOffloadsAll = kOffloadsTso | kTunFUso4 | kTunFUso6;

// The caller checked name.size() < IFNAMSIZ; ifr is zeroed, so the name stays terminated.
void set_ifname(ifreq& ifr, std::string_view name) {
  std::memcpy(ifr.ifr_name, name.data(), name.size());
}

// TUNSETOFFLOAD, USO first; a kernel without USO (< 6.2) says EINVAL and we go on with TSO only.
Result<unsigned, SysError> set_offloads(int fd, bool wanted) {
  if (!wanted) {
    if (::ioctl(fd, TUNSETOFFLOAD, 0U) != 0) return Err{SysError{"TUNSETOFFLOAD", errno}};
    return 0U;
  }
  for (unsigned bits : {kOffloadsAll, kOffloadsTso}) {
    if (::ioctl(fd, TUNSETOFFLOAD, bits) == 0) return bits;
    if (errno != EINVAL) break;
  }
  return Err{SysError{"TUNSETOFFLOAD", errno}};
}

// MTU, queue length, MAC and IFF_UP through an ordinary socket's interface ioctls (in the caller's network
// namespace).
Result<uint32_t, SysError> configure_link(std::string_view ifname, const TapConfig& config) {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return Err{SysError{"socket", errno}};
  ifreq ifr{};
  set_ifname(ifr, ifname);
  if (config.mtu != 0) {
    ifr.ifr_mtu = static_cast<int>(config.mtu);
    if (::ioctl(sock.get(), SIOCSIFMTU, &ifr) != 0) return Err{SysError{"SIOCSIFMTU", errno}};
  }
  if (config.tx_queue_len != 0) {
    ifr.ifr_qlen = static_cast<int>(config.tx_queue_len);
    if (::ioctl(sock.get(), SIOCSIFTXQLEN, &ifr) != 0) return Err{SysError{"SIOCSIFTXQLEN", errno}};
  }
  if (config.mac) {
    ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    std::memcpy(ifr.ifr_hwaddr.sa_data, config.mac->bytes.data(), config.mac->bytes.size());
    if (::ioctl(sock.get(), SIOCSIFHWADDR, &ifr) != 0) return Err{SysError{"SIOCSIFHWADDR", errno}};
  }
  if (config.up) {
    if (::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0) return Err{SysError{"SIOCGIFFLAGS", errno}};
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (::ioctl(sock.get(), SIOCSIFFLAGS, &ifr) != 0) return Err{SysError{"SIOCSIFFLAGS", errno}};
  }
  if (::ioctl(sock.get(), SIOCGIFMTU, &ifr) != 0) return Err{SysError{"SIOCGIFMTU", errno}};
  return static_cast<uint32_t>(ifr.ifr_mtu);
}

bool would_block(int err) {
  return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

}  // namespace

Result<std::unique_ptr<TapPort>, SysError> TapPort::open(const TapConfig& config) {
  if (config.name.empty() || config.name.size() >= IFNAMSIZ) return Err{SysError{"interface name", EINVAL}};
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) return Err{SysError{"open /dev/net/tun", errno}};

  ifreq ifr{};
  set_ifname(ifr, config.name);
  ifr.ifr_flags =
      static_cast<short>(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (config.multi_queue ? IFF_MULTI_QUEUE : 0));
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0) return Err{SysError{"TUNSETIFF", errno}};
  int hdr_size = kVnetHdrSize;
  if (::ioctl(fd.get(), TUNSETVNETHDRSZ, &hdr_size) != 0) return Err{SysError{"TUNSETVNETHDRSZ", errno}};
  auto offloads = set_offloads(fd.get(), config.offloads);
  if (!offloads) return Err{offloads.error()};
  const std::string name(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));  // the kernel's, if it chose
  auto mtu = configure_link(name, config);
  if (!mtu) return Err{mtu.error()};

  std::unique_ptr<TapPort> port(new TapPort(std::move(fd), name, config));
  port->offloads_ = *offloads;
  // GSO writes need the kernel's checksum offload on this TAP (it finishes NEEDS_CSUM if it must);
  // USO frames only where it took the USO bits (kernel >= 6.2).
  port->coalescing_ = config.coalesce_tx && (*offloads & kTunFTso4) != 0;
  port->coalesce_ = {.tcp = true, .udp = (*offloads & (kTunFUso4 | kTunFUso6)) == (kTunFUso4 | kTunFUso6)};
  port->mtu_ = *mtu;
  return port;
}

TapPort::TapPort(UniqueFd fd, std::string name, const TapConfig& config)
    : fd_(std::move(fd)), name_(std::move(name)), config_(config) {}

TapPort::~TapPort() {
  if (pending_ != nullptr) pending_pool_->free(pending_);
}

uint32_t TapPort::min_rx_buffer() const {
  if ((offloads_ & (kTunFTso4 | kTunFTso6 | kTunFUso4 | kTunFUso6)) != 0) return kGsoRxBufferSize;
  return net::kDefaultHeadroom + mtu_ + sizeof(net::EthHdr) + sizeof(net::VlanTag);
}

std::size_t TapPort::rx_burst(net::PacketPool& pool, net::PacketBatch& out) {
  if (gone_) return 0;
  const std::size_t first = out.size();
  bool more = pending_ == nullptr || drain_pending(pool, out);
  uint64_t bytes = 0;
  while (more && !out.full() && pending_ == nullptr && bytes < config_.rx_burst_bytes) {
    const std::size_t before = out.size();
    more = read_one(pool, out);
    for (std::size_t i = before; i < out.size(); ++i) bytes += out[i]->size();
  }
  for (std::size_t i = first; i < out.size(); ++i) stats_.rx_bytes += out[i]->size();
  stats_.rx_packets += out.size() - first;
  return out.size() - first;
}

// One readv(): false when the kernel queue is empty, the pool is, or the read failed.
bool TapPort::read_one(net::PacketPool& pool, net::PacketBatch& out) {
  net::Packet* p = pool.alloc();
  if (p == nullptr) return false;
  VirtioNetHdr hdr{};
  const uint32_t room = p->capacity() - p->headroom();
  iovec iov[2] = {{&hdr, sizeof(hdr)}, {p->data(), room}};
  const ssize_t n = ::readv(fd_.get(), iov, 2);
  if (n < 0) {
    pool.free(p);
    if (errno == EBADFD) {  // the device was deleted under us (tun_chr_read_iter): down for good
      gone_ = true;
      stats_.drop(DropReason::kDeviceGone);
    } else if (!would_block(errno)) {
      stats_.drop(DropReason::kRxError);
    }
    return false;
  }
  // TUN returns the frame's full length even when it copied less (tun_put_user).
  const std::size_t len = static_cast<std::size_t>(n) - sizeof(hdr);
  if (static_cast<std::size_t>(n) < sizeof(hdr) || len > room) {
    stats_.drop(static_cast<std::size_t>(n) < sizeof(hdr) ? DropReason::kBadVnetHeader
                                                          : DropReason::kTruncated);
    pool.free(p);
    return true;
  }
  p->set_size(static_cast<uint32_t>(len));
  p->meta.in_port = config_.id;
  accept_frame(hdr, p, pool, out);
  return true;
}

void TapPort::accept_frame(const VirtioNetHdr& hdr, net::Packet* p, net::PacketPool& pool,
                           net::PacketBatch& out) {
  const uint8_t gso = static_cast<uint8_t>(hdr.gso_type & ~kVnetGsoEcn);
  if (gso == kVnetGsoNone) {
    if ((hdr.flags & kVnetFlagNeedsCsum) != 0 &&
        !complete_checksum(p->bytes(), hdr.csum_start, hdr.csum_offset)) {
      stats_.drop(DropReason::kBadVnetHeader);
      pool.free(p);
      return;
    }
    out.push(p);  // room checked by the caller
  } else if ((gso == kVnetGsoTcpV4 || gso == kVnetGsoTcpV6 || gso == kVnetGsoUdpL4) && hdr.gso_size != 0) {
    if (config_.segment_on_rx) {
      start_segmenting(hdr, p, pool, out);
    } else {
      p->meta.gso_size = hdr.gso_size;
      out.push(p);
    }
  } else {
    stats_.drop(DropReason::kBadVnetHeader);  // UFO (never enabled) or a type this code does not know
    pool.free(p);
  }
}

void TapPort::start_segmenting(const VirtioNetHdr& hdr, net::Packet* p, net::PacketPool& pool,
                               net::PacketBatch& out) {
  const uint8_t gso = static_cast<uint8_t>(hdr.gso_type & ~kVnetGsoEcn);
  auto seg = GsoSegmenter::start(p->bytes(), hdr.gso_size);
  // The headers must say what the virtio header says (TCPV4 = IPv4 + TCP, ...).
  const bool consistent = seg && (gso == kVnetGsoUdpL4 ? seg->l4_proto() == net::kIpProtoUdp
                                                       : seg->l4_proto() == net::kIpProtoTcp &&
                                                             seg->ipv4() == (gso == kVnetGsoTcpV4));
  if (!consistent) {
    stats_.drop(DropReason::kBadGso);
    pool.free(p);
    return;
  }
  segmenter_ = *seg;
  pending_ = p;
  pending_pool_ = &pool;
  drain_pending(pool, out);
}

// Emits what fits of the pending super-packet; true once it is fully segmented (and freed).
bool TapPort::drain_pending(net::PacketPool& pool, net::PacketBatch& out) {
  auto n = segmenter_->next(pool, out, pending_->meta);
  if (n && !segmenter_->done()) return false;  // out full or pool empty: go on next call
  if (!n) stats_.drop(DropReason::kBadGso);    // segments larger than this pool's buffers
  pool.free(pending_);
  pending_ = nullptr;
  segmenter_.reset();
  return true;
}

std::size_t TapPort::tx_burst(const net::PacketBatch& pkts) {
  if (gone_) {
    stats_.drop(DropReason::kDeviceGone, pkts.size());
    return 0;
  }
  std::array<std::span<const uint8_t>, net::kMaxBatch> frames;
  for (std::size_t i = 0; i < pkts.size(); ++i) frames[i] = {pkts[i]->data(), pkts[i]->size()};
  // Runs of plain frames (coalesced where they merge), and super-packets one write each, in batch order.
  std::size_t sent = 0;
  for (std::size_t i = 0; i < pkts.size();) {
    if (pkts[i]->meta.gso_size != 0) {
      sent += write_super(*pkts[i]) ? 1 : 0;
      ++i;
      continue;
    }
    std::size_t end = i + 1;
    while (end < pkts.size() && pkts[end]->meta.gso_size == 0) ++end;
    sent += write_frames(std::span<const std::span<const uint8_t>>(frames.data() + i, end - i));
    i = end;
  }
  stats_.tx_packets += sent;
  return sent;
}

std::size_t TapPort::write_frames(std::span<const std::span<const uint8_t>> batch) {
  std::size_t writes = 0;
  if (coalescing_) {
    writes = plan_coalesced_writes(batch, coalesce_, writes_);
  } else {
    for (; writes < batch.size(); ++writes)
      writes_[writes] = {.first = static_cast<uint16_t>(writes), .count = 1};
  }
  std::size_t sent = 0;
  for (std::size_t i = 0; i < writes; ++i) {
    const CoalescedWrite& w = writes_[i];
    if (!write_one(w, batch)) {
      count_write_error(w.count);
      continue;
    }
    sent += w.count;
    for (std::size_t k = 0; k < w.count; ++k) stats_.tx_bytes += batch[w.first + k].size();
    if (w.count > 1) ++coalesced_writes_;
  }
  return sent;
}

void TapPort::count_write_error(std::size_t frames) {
  gone_ = gone_ || errno == EBADFD;
  stats_.drop(gone_                ? DropReason::kDeviceGone
              : would_block(errno) ? DropReason::kTxQueueFull
                                   : DropReason::kTxError,
              frames);
}

// A super-packet that crossed the gateway whole (takes_gso): one write with the virtio-net GSO header the
// kernel gave it (its L4 checksum field still holds the pseudo-header sum NEEDS_CSUM asks for).
bool TapPort::write_super(const net::Packet& p) {
  auto seg = GsoSegmenter::start(p.bytes(), p.meta.gso_size);
  if (!seg) {
    stats_.drop(DropReason::kBadGso);
    return false;
  }
  const bool tcp = seg->l4_proto() == net::kIpProtoTcp;
  VirtioNetHdr h{};
  h.flags = kVnetFlagNeedsCsum;
  h.gso_type = tcp ? (seg->ipv4() ? kVnetGsoTcpV4 : kVnetGsoTcpV6) : kVnetGsoUdpL4;
  h.hdr_len = static_cast<uint16_t>(seg->header_len());
  h.gso_size = p.meta.gso_size;
  h.csum_start = seg->l4_offset();
  h.csum_offset = static_cast<uint16_t>(tcp ? fields::kTcpCsum : fields::kUdpCsum);
  iovec iov[2] = {{&h, sizeof(h)},
                  {const_cast<uint8_t*>(p.data()), p.size()}};  // NOLINT: writev does not write
  if (::writev(fd_.get(), iov, 2) < 0) {
    count_write_error(1);
    return false;
  }
  stats_.tx_bytes += p.size();
  return true;
}

// One writev(): [virtio header][frame], or [virtio header][run header][payload of each frame of the run].
bool TapPort::write_one(const CoalescedWrite& w, std::span<const std::span<const uint8_t>> frames) {
  std::array<iovec, net::kMaxBatch + 2> iov;  // NOLINT(cppcoreguidelines-pro-type-member-init): filled below
  iov[0] = {const_cast<VirtioNetHdr*>(&w.vnet), sizeof(w.vnet)};  // NOLINT: writev does not write
  std::size_t n = 1;
  if (w.count == 1) {
    const auto f = frames[w.first];
    iov[n++] = {const_cast<uint8_t*>(f.data()), f.size()};  // NOLINT: writev does not write
  } else {
    iov[n++] = {const_cast<uint8_t*>(w.hdr.data()), w.hdr_len};  // NOLINT: writev does not write
    for (std::size_t k = 0; k < w.count; ++k) {
      const auto payload = frames[w.first + k].subspan(w.hdr_len);
      iov[n++] = {const_cast<uint8_t*>(payload.data()), payload.size()};  // NOLINT: writev does not write
    }
  }
  return ::writev(fd_.get(), iov.data(), static_cast<int>(n)) >= 0;
}

}  // namespace pspgw::ports
