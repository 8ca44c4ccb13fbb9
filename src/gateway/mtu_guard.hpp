// A worker's check of the frames a workload sends against the tunnel's payload MTU (path_mtu.hpp), on the
// host-port batch before the pipeline, so that nothing larger than the path is ever encapsulated (an outer
// packet larger than the uplink would be fragmented or, with DF, dropped by the kernel unseen):
//   fits                         -> stays in the batch
//   IPv6                         -> ICMPv6 Packet Too Big back to the workload (RFC 8201 path MTU discovery)
//   IPv4 with DF                 -> ICMP fragmentation needed with the MTU (RFC 1191)
//   IPv4 without DF              -> fragmented here, before encap (RFC 4459 §3 "inner fragmentation"): the
//                                   sender allowed fragments, and a sender that does not do PMTUD (DF clear)
//                                   may ignore an ICMP, so answering with one would lose its packet. The
//                                   fragments go through the pipeline after the rest of the batch. A packet
//                                   that would need more fragments than a batch holds gets the ICMP instead.
//   GSO super-packet (TAP TSO)   -> judged by gso_size (each segment's size), never by its own length; one
//   too
//                                   big gets the ICMP (a super-packet cannot be fragmented before it is cut).
// The ICMP errors are built in place over the offending frame (net/icmp_too_big.hpp) and go back out of the
// port the batch came from: no allocation, no copy to the control thread. They are rate-limited per worker
// (a token bucket, Linux's icmp_msgs_per_sec/icmp_msgs_burst defaults) and every outcome is counted.
#pragma once

#include <chrono>
#include <cstdint>

#include "net/packet.hpp"

namespace pspgw::gateway {

struct TooBigCounters {
  uint64_t icmp_sent = 0;     // ICMP fragmentation needed / ICMPv6 packet too big built for the workload
  uint64_t fragmented = 0;    // IPv4 packets without DF cut into fragments before encapsulation
  uint64_t rate_limited = 0;  // too big, an ICMP due, over the rate: dropped
  uint64_t dropped = 0;  // too big and not to be answered (an ICMP error, a later fragment, multicast, ...)
};

class MtuGuard {
 public:
  static constexpr uint32_t kIcmpPerSecond = 1000;
  static constexpr uint32_t kIcmpBurst = 50;

  // payload_mtu: the largest inner IP packet the tunnel carries; 0 turns the check off.
  explicit MtuGuard(uint32_t payload_mtu) : payload_mtu_(payload_mtu) {}

  // Takes every frame out of `batch` whose IP packet is larger than the payload MTU: its ICMP error goes to
  // `replies` (at most one per frame taken), its fragments to `frags`, handed to flush(frags) and cleared
  // whenever it cannot take the next packet's fragments. Frames dropped are freed to `pool`.
  template <typename Flush>
  void apply(net::PacketBatch& batch, net::PacketPool& pool, net::PacketBatch& replies,
             net::PacketBatch& frags, Flush&& flush) {
    if (payload_mtu_ == 0) return;
    net::PacketBatch kept;
    for (net::Packet* p : batch) {
      if (fits(*p)) {
        kept.push(p);
      } else if (!take(*p, pool, replies, frags, !frags.empty())) {
        flush(frags);
        frags.clear();
        (void)take(*p, pool, replies, frags, false);
      }
    }
    batch = kept;
  }

  uint32_t payload_mtu() const { return payload_mtu_; }
  const TooBigCounters& counters() const { return counters_; }

 private:
  bool fits(const net::Packet& p) const;
  // Handles one oversized frame. False (nothing done) when its fragments do not fit `frags` and
  // may_defer: the caller flushes and calls again.
  bool take(net::Packet& p, net::PacketPool& pool, net::PacketBatch& replies, net::PacketBatch& frags,
            bool may_defer);
  void reply(net::Packet& p, uint32_t l3, bool v6, net::PacketPool& pool, net::PacketBatch& replies);
  bool allow_icmp();

  uint32_t payload_mtu_;
  TooBigCounters counters_;
  double tokens_ = kIcmpBurst;
  std::chrono::steady_clock::time_point last_refill_{};
};

}  // namespace pspgw::gateway
