// The port abstraction: where packets enter and leave the gateway (wireguard-go's tun.Device / conn.Bind).
//
// A Port moves whole batches: one virtual call per batch, never per packet. Backends:
//   tap_port.hpp     host side, L2 TAP with virtio-net header and TSO/USO offloads
//   udp_port.hpp     network side, PSP over UDP through the kernel stack (recvmmsg/sendmmsg, GSO/GRO)
//   memory_port.hpp  an in-memory connected pair for tests (no OS, no root)
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/ids.hpp"
#include "net/packet.hpp"

namespace pspgw::ports {

// Why a port dropped a packet. Each has a counter in PortStats.
enum class DropReason : uint8_t {
  kTruncated,      // rx: the frame/datagram did not fit the pool buffer (buffer smaller than min_rx_buffer())
  kBadVnetHeader,  // rx (TAP): short read, unknown GSO type or flags, checksum offsets out of bounds
  kBadGso,         // rx (TAP): super-packet the segmenter rejected (headers inconsistent with its GSO type)
  kRxError,        // rx: read/recvmmsg failed with an error other than EAGAIN
  kNoDestination,  // tx (UDP): metadata.peer missing or of a family the socket cannot reach
  kTxQueueFull,    // tx: the kernel queue is full (EAGAIN); never retried, like a full NIC ring
  kTxError,        // tx: write/sendmmsg failed for this packet (EMSGSIZE, ENETUNREACH, ...)
  kWire,           // tx (memory double): dropped by the test wire's hook
  kDeviceGone,     // rx/tx: the device was removed under the port (a TAP deleted): the port stays down
  kCount,
};
inline constexpr std::size_t kDropReasonCount = static_cast<std::size_t>(DropReason::kCount);
std::string_view to_string(DropReason r);

// Per-port counters. Owned and written by the one thread that drives the port.
struct PortStats {
  uint64_t rx_packets = 0;
  uint64_t rx_bytes = 0;
  uint64_t tx_packets = 0;
  uint64_t tx_bytes = 0;
  std::array<uint64_t, kDropReasonCount> drops{};

  void drop(DropReason r, uint64_t n = 1) { drops[static_cast<std::size_t>(r)] += n; }
  uint64_t dropped(DropReason r) const { return drops[static_cast<std::size_t>(r)]; }
  uint64_t total_drops() const;
};

// Why opening a port failed: the step (a syscall or ioctl, by name) and its errno.
struct SysError {
  std::string_view step;
  int err = 0;
  std::string message() const;  // "TUNSETIFF: Operation not permitted"
};

// Largest frame the kernel hands a TAP reader with TSO/USO on, or a UDP reader with GRO on (64 KiB), plus
// the pool's default headroom. A pool used for rx_burst on such a port needs buffers at least this big.
inline constexpr uint32_t kMaxGsoBytes = 65536;
inline constexpr uint32_t kGsoRxBufferSize = net::kDefaultHeadroom + kMaxGsoBytes;

class Port {
 public:
  virtual ~Port() = default;

  // Appends to `out` the packets ready now, at most out's free room, allocating them from `pool`. Never
  // blocks. Returns how many were appended (0: nothing ready, or the pool is empty). A port may keep one
  // received packet of `pool` between calls (a super-packet part-way through segmentation, when `out`
  // filled up): pass the same pool on every call and keep it alive as long as the port.
  virtual std::size_t rx_burst(net::PacketPool& pool, net::PacketBatch& out) = 0;

  // Sends the batch. The kernel copies what it sends, so ownership never moves: the caller still owns
  // every packet afterwards and frees or reuses them; `pkts` is not modified. Never blocks and never
  // retries: a packet that cannot be sent now is dropped and counted (PortStats::drops). Returns how many
  // were sent.
  virtual std::size_t tx_burst(const net::PacketBatch& pkts) = 0;

  // A file descriptor that is readable when rx_burst has something (for Poller), or -1.
  virtual int fd() const = 0;
  virtual std::string_view name() const = 0;
  virtual PortId id() const = 0;
  virtual const PortStats& stats() const = 0;
  // Smallest pool buffer size rx_burst needs to receive every frame whole (see kGsoRxBufferSize).
  virtual uint32_t min_rx_buffer() const = 0;
  // True once the device behind the port went away (a TAP deleted with `ip link del`): its descriptor
  // polls as an error forever, so the caller stops polling it; rx_burst returns nothing and tx_burst drops
  // (kDeviceGone) without a syscall.
  virtual bool gone() const { return false; }
  // True when tx_burst takes super-packets (metadata.gso_size != 0) whole: a TAP with offloads writes
  // them as virtio-net GSO frames. Anything else is handed their segments.
  virtual bool takes_gso() const { return false; }

 protected:
  Port() = default;
  Port(const Port&) = default;
  Port& operator=(const Port&) = default;
};

}  // namespace pspgw::ports
