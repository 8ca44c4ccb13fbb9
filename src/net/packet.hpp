// Packet buffers, their per-packet metadata, pools and batches.
//
// A Packet is a view into a fixed buffer owned by a PacketPool: [headroom | data | tailroom]. Encap grows
// the front into the headroom, the ICV grows the back into the tailroom; neither ever reallocates.
// Pools are per worker (no locks): alloc/free are O(1) pops/pushes on a preallocated free list.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/ids.hpp"
#include "net/addr.hpp"

namespace pspgw::net {

// Tuning constants (not spec): room in front for the largest encap (Eth 14 + IPv6 40 + UDP 8 + PSP 16 +
// VC 8 = 86, rounded up), and the default buffer for a jumbo frame plus encap and ICV.
inline constexpr uint32_t kDefaultHeadroom = 128;
inline constexpr uint32_t kDefaultBufferSize = 9216 + 256;
inline constexpr std::size_t kMaxBatch = 64;

// Where a received PSP frame's layers lie (psp::DecapPlan, psp/batch.hpp). The decrypt step plans the frame
// and keeps the plan in the packet's metadata, and the decap step after it restores the frame from that plan:
// the frame is parsed once (it was parsed twice, the open path's largest cost beyond the AEAD call in
// bench/psp_seal). psp_len 0 = not planned.
struct DecapPlan {
  uint16_t l2_len = 0;        // Ethernet (+VLAN)
  uint16_t l3_offset = 0;     // outer IP header
  uint16_t udp_offset = 0;    // outer UDP header (end of the IP header and its extensions)
  uint16_t proto_offset = 0;  // the byte that says 17 (IPv4 protocol / IPv6 last next header)
  uint16_t psp_offset = 0;    // PSP header
  uint16_t psp_len = 0;       // PSP header .. ICV (the UDP payload)
  bool outer_v4 = false;
};

// Per-packet metadata: what the pipeline matches on besides the bytes. The flow engine knows these as
// generic registers; src/psp gives `syndrome` its meaning.
struct Metadata {
  PortId in_port{};
  uint32_t pkt_meta = 0;           // DOCA's pkt_meta: e.g. the crypto id chosen by EGR_ACL
  std::array<uint32_t, 4> regs{};  // scratch registers for pipes (service-chain hop state, ...)
  uint32_t random = 0;             // per-packet random value, for sampling 1 in 2^N
  uint8_t syndrome = 0;     // result of the last decrypt (0 = not decrypted); values in psp/drop_reason.hpp
  uint8_t drop_reason = 0;  // why the pipeline dropped it, when it did
  uint16_t l3_offset = 0;   // offset of the (inner, after decap) IP header; 0 = not parsed
  uint32_t flow_hash = 0;   // hash of the inner 5-tuple (RSS, UDP source port, worker choice)
  // Outer peer of a network-side packet: the UDP source on receive, the destination on transmit.
  IpAddr peer;
  uint16_t peer_port = 0;
  // Host-side super-packet (TAP TSO/USO) not yet segmented: L4 payload bytes per segment; 0 = a plain frame.
  uint16_t gso_size = 0;
  // A super-packet encap() has encapsulated (its segments are made when it is sealed, or when a sample of
  // it leaves for the CPU); false: still the Ethernet frame the TAP gave.
  bool gso_encapped = false;
  // The decrypt step's plan of a received PSP frame, valid while `syndrome` says it opened (psp/batch.hpp).
  DecapPlan decap_plan;
};

class Packet {
 public:
  Packet() = default;
  Packet(uint8_t* buf, uint32_t capacity) : buf_(buf), cap_(capacity) { reset(); }

  uint8_t* data() { return buf_ + off_; }
  const uint8_t* data() const { return buf_ + off_; }
  uint32_t size() const { return len_; }
  std::span<uint8_t> bytes() { return {data(), len_}; }
  std::span<const uint8_t> bytes() const { return {data(), len_}; }
  uint32_t headroom() const { return off_; }
  uint32_t tailroom() const { return cap_ - off_ - len_; }
  uint32_t capacity() const { return cap_; }

  // Empties the packet, leaving `headroom` bytes in front, and clears the metadata.
  void reset(uint32_t headroom = kDefaultHeadroom) {
    off_ = headroom < cap_ ? headroom : 0;
    len_ = 0;
    meta = Metadata{};
  }
  // Grows the front by n bytes; returns the new start or nullptr if the headroom is too small.
  uint8_t* push_front(uint32_t n) {
    if (n > off_) return nullptr;
    off_ -= n;
    len_ += n;
    return data();
  }
  // Drops n bytes from the front; false if the packet is shorter.
  bool pull_front(uint32_t n) {
    if (n > len_) return false;
    off_ += n;
    len_ -= n;
    return true;
  }
  // Grows the back by n bytes; returns a pointer to them or nullptr if the tailroom is too small.
  uint8_t* push_back(uint32_t n) {
    if (n > tailroom()) return nullptr;
    uint8_t* p = data() + len_;
    len_ += n;
    return p;
  }
  bool trim_back(uint32_t n) {
    if (n > len_) return false;
    len_ -= n;
    return true;
  }
  // Makes the packet the `len` bytes from `front` bytes after its current start (negative: into the
  // headroom): one bounds check for what a pull_front/trim_back or push_front/push_back pair does with
  // two to four (the PSP encap and decap steps, per packet). False, and the packet unchanged, where that
  // window leaves the buffer.
  bool reframe(int32_t front, uint32_t len) {
    const int64_t off = int64_t{off_} + front;
    if (off < 0 || static_cast<uint64_t>(off) + len > cap_) return false;
    off_ = static_cast<uint32_t>(off);
    len_ = len;
    return true;
  }
  // Sets the data length (after a receive into data()); false if it would exceed the buffer.
  bool set_size(uint32_t n) {
    if (n > cap_ - off_) return false;
    len_ = n;
    return true;
  }
  // Copies bytes in as the whole packet; false if they do not fit after the current headroom.
  bool assign(std::span<const uint8_t> src);

  Metadata meta;

 private:
  uint8_t* buf_ = nullptr;
  uint32_t cap_ = 0;
  uint32_t off_ = 0;
  uint32_t len_ = 0;
};

// A fixed set of packets and buffers, allocated once. Single-owner (one worker); not thread-safe.
class PacketPool {
 public:
  PacketPool(std::size_t count, uint32_t buffer_size = kDefaultBufferSize);
  PacketPool(const PacketPool&) = delete;
  PacketPool& operator=(const PacketPool&) = delete;

  // nullptr when exhausted (the caller counts a drop).
  Packet* alloc() {
    if (free_.empty()) return nullptr;
    Packet* p = free_.back();
    free_.pop_back();
    p->reset();
    return p;
  }
  void free(Packet* p) { free_.push_back(p); }
  std::size_t available() const { return free_.size(); }
  std::size_t capacity() const { return packets_.size(); }
  uint32_t buffer_size() const { return buffer_size_; }

 private:
  uint32_t buffer_size_;
  std::unique_ptr<uint8_t[]> memory_;
  std::vector<Packet> packets_;
  std::vector<Packet*> free_;
};

// Up to kMaxBatch packet pointers: the unit of work of every stage.
class PacketBatch {
 public:
  std::size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  bool full() const { return count_ == kMaxBatch; }
  Packet* operator[](std::size_t i) const { return pkts_[i]; }
  Packet** begin() { return pkts_.data(); }
  Packet** end() { return pkts_.data() + count_; }
  Packet* const* begin() const { return pkts_.data(); }
  Packet* const* end() const { return pkts_.data() + count_; }
  // false (and nothing added) when full.
  bool push(Packet* p) {
    if (count_ == kMaxBatch) return false;
    pkts_[count_++] = p;
    return true;
  }
  void clear() { count_ = 0; }

 private:
  std::array<Packet*, kMaxBatch> pkts_{};
  std::size_t count_ = 0;
};

}  // namespace pspgw::net
