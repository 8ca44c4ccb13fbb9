// The host-side port: an L2 TAP device (the workloads' port; DOCA's VF representor pf0vf0).
//
// Opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR: every read and write carries a 10-byte virtio-net header
// (vnet_hdr.hpp; TUNSETVNETHDRSZ 10, the legacy size: TUN never merges rx buffers, so num_buffers is
// useless). With offloads on (TUNSETOFFLOAD):
//   TUN_F_CSUM          the kernel may hand us frames with a partial L4 checksum (NEEDS_CSUM) instead of
//                       summing every packet it sends; we finish it (cheap, data is hot) or recompute it
//                       per segment anyway. Required by the kernel for any TSO/USO bit.
//   TUN_F_TSO4/TSO6     the workload's TCP stack sends up to 64 KiB per skb through the TAP: one read()
//                       and one trip through the kernel per ~44 MSS-sized segments.
//   TUN_F_USO4/USO6     the same for UDP (UDP_SEGMENT senders, QUIC): 0x20/0x40, absent from Debian 12's
//                       headers. If the kernel rejects them we go on with TSO only (offloads() says).
// Super-packets are cut into MSS-sized frames in user space (GsoSegmenter), in rx_burst or — with
// segment_on_rx = false — by the gateway while encrypting. Either way rx pools need buffers of at least
// min_rx_buffer() (kGsoRxBufferSize = headroom + 64 KiB with offloads on): a larger frame is dropped as
// kTruncated.
//
// TAP has no batched read or write (recvmmsg/sendmmsg do not apply to a character device): rx_burst
// loops readv() until EAGAIN or the batch is full. tx_burst makes the writes few instead: with offloads on
// (and coalesce_tx), consecutive segments of one TCP flow (UDP too where the kernel took USO) go down as
// one virtio-net GSO frame, one writev() whose iovecs point at each segment's payload (coalesce.hpp: what
// Linux GRO does for a NIC); any other frame is one writev() with a zero virtio header.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "net/addr.hpp"
#include "ports/coalesce.hpp"
#include "ports/gso.hpp"
#include "ports/port.hpp"
#include "ports/vnet_hdr.hpp"

namespace pspgw::ports {

// TUNSETOFFLOAD bits (linux/if_tun.h; the USO ones are missing from Debian 12's copy).
inline constexpr unsigned kTunFCsum = 0x01;
inline constexpr unsigned kTunFTso4 = 0x02;
inline constexpr unsigned kTunFTso6 = 0x04;
inline constexpr unsigned kTunFUso4 = 0x20;
inline constexpr unsigned kTunFUso6 = 0x40;

struct TapConfig {
  std::string name = "psp0";  // created if absent, attached if it exists (persistent, same owner)
  PortId id{};                // stamped into metadata.in_port of every received packet
  bool multi_queue = false;   // IFF_MULTI_QUEUE: open once per worker with the same name for one queue each
  bool offloads = true;       // CSUM + TSO4/6 (+ USO4/6 when the kernel has them)
  bool segment_on_rx = true;  // false: super-packets are returned whole with metadata.gso_size set
  bool coalesce_tx = true;    // with offloads: merge one flow's consecutive frames into GSO writes
  // rx_burst stops reading once a call has read this many bytes: with super-packets handed up whole, a
  // batch of 64 would be 4 MiB, out of the core's L2 before its first one is sealed; a few stay in it.
  uint32_t rx_burst_bytes = 256 * 1024;
  bool up = true;    // set IFF_UP
  uint32_t mtu = 0;  // 0: leave the device's MTU as is
  // Frames the kernel holds for each queue of the TAP (its tx_queue_len) before it drops what the workload
  // sends: 0 leaves the device's (500 for a new TAP). A reader late by a few milliseconds at a few hundred
  // thousand frames a second loses frames with 500.
  uint32_t tx_queue_len = 0;
  std::optional<net::MacAddr> mac;
};

class TapPort final : public Port {
 public:
  static Result<std::unique_ptr<TapPort>, SysError> open(const TapConfig& config);
  ~TapPort() override;
  TapPort(const TapPort&) = delete;
  TapPort& operator=(const TapPort&) = delete;

  // Frames from the kernel. With segment_on_rx = false, a packet with metadata.gso_size != 0 is a TCP/UDP
  // super-packet whose L4 checksum is unfinished: it must go through GsoSegmenter before leaving.
  std::size_t rx_burst(net::PacketPool& pool, net::PacketBatch& out) override;
  // Frames to the kernel (complete Ethernet frames, checksums valid), coalesced where they merge; a
  // super-packet (metadata.gso_size) is written whole as a virtio-net GSO frame.
  std::size_t tx_burst(const net::PacketBatch& pkts) override;
  // Number of writes that carried more than one frame (a GSO frame), for tests and stats.
  uint64_t coalesced_writes() const { return coalesced_writes_; }

  int fd() const override { return fd_.get(); }
  std::string_view name() const override { return name_; }
  PortId id() const override { return config_.id; }
  const PortStats& stats() const override { return stats_; }
  uint32_t min_rx_buffer() const override;
  bool gone() const override { return gone_; }
  // Super-packets go down whole (one write with their GSO header) where frames are coalesced anyway: a
  // workload's kernel stack takes them; a VNF port (coalesce_tx off) gets their segments instead.
  bool takes_gso() const override { return coalescing_; }

  unsigned offloads() const { return offloads_; }  // TUN_F_* bits the kernel accepted
  uint32_t mtu() const { return mtu_; }

 private:
  TapPort(UniqueFd fd, std::string name, const TapConfig& config);
  bool read_one(net::PacketPool& pool, net::PacketBatch& out);
  void accept_frame(const VirtioNetHdr& hdr, net::Packet* p, net::PacketPool& pool, net::PacketBatch& out);
  void start_segmenting(const VirtioNetHdr& hdr, net::Packet* p, net::PacketPool& pool,
                        net::PacketBatch& out);
  bool drain_pending(net::PacketPool& pool, net::PacketBatch& out);
  bool write_one(const CoalescedWrite& w, std::span<const std::span<const uint8_t>> frames);
  std::size_t write_frames(std::span<const std::span<const uint8_t>> frames);
  bool write_super(const net::Packet& p);
  void count_write_error(std::size_t frames);

  UniqueFd fd_;
  std::string name_;
  TapConfig config_;
  unsigned offloads_ = 0;
  uint32_t mtu_ = 0;
  PortStats stats_;
  bool gone_ = false;  // the device was deleted: read/write fail with EBADFD from now on
  // A super-packet part-way through segmentation (the batch filled up), and its pool.
  net::Packet* pending_ = nullptr;
  net::PacketPool* pending_pool_ = nullptr;
  std::optional<GsoSegmenter> segmenter_;
  // Transmit: the writes planned for one batch (coalesce.hpp), kept here so a batch allocates nothing.
  CoalesceOptions coalesce_{};
  bool coalescing_ = false;
  uint64_t coalesced_writes_ = 0;
  std::array<CoalescedWrite, net::kMaxBatch> writes_{};
};

}  // namespace pspgw::ports
