// Batch PSP processing: the fast path's interface. One AEAD call per batch, no allocation, no lock, and no
// virtual call per packet (the key resolver is a template parameter: pass the concrete KeyCache, which is
// final). Each packet gets its own result; failed packets are left for the caller to drop and count.
//
// Frames (encap.hpp semantics):    encap_batch / decap_batch
// The gateway's encap and seal:     encap_template.hpp (the daemon's encap()/encrypt() batch loops)
//
// The `steps` functions are the per-packet halves around the AEAD call; encap.cpp builds the single-packet
// functions from the same steps, so there is one code path.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <span>
#include <type_traits>

#include "base/byteorder.hpp"
#include "crypto/aead.hpp"
#include "net/headers.hpp"
#include "net/packet.hpp"
#include "psp/drop_reason.hpp"
#include "psp/encap.hpp"
#include "psp/seal.hpp"

namespace pspgw::psp {

// One packet's seal request: its own parameters (the IV is per packet) and prepared key.
struct SealJob {
  SealParams params;
  const crypto::AeadKey* key = nullptr;
};

// Where a received PSP frame's parts lie, found by steps::plan_decap before any PSP byte is read (in
// net/packet.hpp: the daemon's decrypt step keeps it in the packet's metadata for its decap step).
using DecapPlan = net::DecapPlan;

namespace detail {

// Storage for up to N Ts, constructed one by one as a batch fills it: a batch of 64 ops and plans
// is ~10 KB, and value-initialising all of it per batch would cost more than the PSP layer's own work on
// small packets. T must be trivially destructible.
template <class T, std::size_t N>
class BatchSlots {
  static_assert(std::is_trivially_destructible_v<T>);

 public:
  BatchSlots() {}  // NOLINT(modernize-use-equals-default): must not value-initialise the storage
  T& make(std::size_t i) { return *::new (static_cast<void*>(&slots_[i])) T; }
  // Slot i for a caller that assigns every member before any is read, with no construction first: T is an
  // aggregate, so an implicit-lifetime type, which the slot's bytes hold as soon as they are used as one.
  // The AEAD op slots of the fast paths (detail::point_op assigns all of an AeadOp): made
  // with make(), an op's default stores stayed, since the packet byte loads between them and the real
  // values might read them (char aliasing), ~8 instructions a packet (callgrind, bench/psp_seal).
  T& fill(std::size_t i) requires std::is_aggregate_v<T> { return (*this)[i]; }
  T& operator[](std::size_t i) { return *std::launder(reinterpret_cast<T*>(&slots_[i])); }
  T* data() { return std::launder(reinterpret_cast<T*>(slots_.data())); }

 private:
  struct alignas(T) Slot {
    std::byte bytes[sizeof(T)];
  };
  std::array<Slot, N> slots_;
};

// Scratch of one open batch: the AEAD ops and which packet each belongs to.
struct OpenScratch {
  BatchSlots<crypto::AeadOp, net::kMaxBatch> ops;
  std::array<uint8_t, net::kMaxBatch> pkt_index;
};

// prepare_open_op into op slot n of `s`, the packet's index into s.pkt_index[n]; n counts the op.
template <class Resolver>
[[gnu::always_inline]] inline DropReason prepare_open_slot(std::span<uint8_t> psp_packet, Resolver& keys,
                                                           OpenScratch& s, std::size_t i, std::size_t& n) {
  if (const DropReason r = prepare_open_op(psp_packet, keys, s.ops.fill(n)); r != DropReason::kNone) return r;
  s.pkt_index[n++] = static_cast<uint8_t>(i);
  return DropReason::kNone;
}

// plan_decap for the shapes a PSP sender writes (Ethernet without VLAN tag, IPv4 without options and not
// a fragment, or IPv6 without extension headers; UDP to port 1000 whose length fills the IP packet),
// decided with a few loads: the general parser walks options, extension headers and ports and was most of
// the open path's own cost (bench/psp_seal). False for anything else, which the general parser then judges:
// it gives these frames the same plan.
inline bool plan_common(std::span<const uint8_t> f, DecapPlan& p) {
  constexpr uint32_t kEth = sizeof(net::EthHdr), kUdp = sizeof(net::UdpHdr);
  // The plans of the two shapes but for psp_len: copied whole (a few wide stores, not seven narrow ones).
  constexpr auto plan_of = [](uint32_t ip_len, uint32_t proto, bool v4) {
    DecapPlan q;
    q.l2_len = kEth;
    q.l3_offset = kEth;
    q.udp_offset = static_cast<uint16_t>(kEth + ip_len);
    q.proto_offset = static_cast<uint16_t>(kEth + proto);
    q.psp_offset = static_cast<uint16_t>(kEth + ip_len + kUdp);
    q.outer_v4 = v4;
    return q;
  };
  static constexpr DecapPlan kV4 = plan_of(sizeof(net::Ipv4Hdr), offsetof(net::Ipv4Hdr, protocol), true);
  static constexpr DecapPlan kV6 = plan_of(sizeof(net::Ipv6Hdr), offsetof(net::Ipv6Hdr, next_header), false);
  if (f.size() < kEth + sizeof(net::Ipv4Hdr) + kUdp) return false;
  const uint16_t type = load_be16(&f[12]);
  const uint8_t* ip = &f[kEth];
  uint32_t udp_len = 0;
  const DecapPlan* shape = nullptr;
  if (type == net::kEtherTypeIpv4) {
    if (ip[0] != 0x45 || ip[offsetof(net::Ipv4Hdr, protocol)] != net::kIpProtoUdp) return false;
    if ((load_be16(ip + offsetof(net::Ipv4Hdr, frag_off)) & (net::kIpv4FlagMf | net::kIpv4FragOffsetMask)) !=
        0)
      return false;
    const uint32_t total = load_be16(ip + offsetof(net::Ipv4Hdr, total_length));
    if (total < sizeof(net::Ipv4Hdr) + kUdp || kEth + total > f.size()) return false;
    udp_len = total - sizeof(net::Ipv4Hdr);
    shape = &kV4;
  } else if (type == net::kEtherTypeIpv6) {
    if (f.size() < kEth + sizeof(net::Ipv6Hdr) + kUdp || (ip[0] >> 4) != 6 ||
        ip[offsetof(net::Ipv6Hdr, next_header)] != net::kIpProtoUdp)
      return false;
    udp_len = load_be16(ip + offsetof(net::Ipv6Hdr, payload_length));
    if (udp_len < kUdp || kEth + sizeof(net::Ipv6Hdr) + udp_len > f.size()) return false;
    shape = &kV6;
  } else {
    return false;
  }
  const uint8_t* udp = &f[shape->udp_offset];
  if (load_be16(udp + offsetof(net::UdpHdr, dst_port)) != kPspUdpPort ||
      load_be16(udp + offsetof(net::UdpHdr, length)) != udp_len)
    return false;
  p = *shape;
  p.psp_len = static_cast<uint16_t>(udp_len - kUdp);
  return true;
}

}  // namespace detail

namespace steps {

// Frames.
Status<DropReason> prepare_encap(net::Packet& pkt, const SealParams& params, const crypto::AeadKey& key,
                                 crypto::AeadOp& op);
Result<DecapPlan, DropReason> plan_decap(std::span<const uint8_t> frame);
// The same into `plan` (the batch form): kNone, or the reason (then `plan` is unspecified). It fills the
// caller's plan: returned through Result, a plan built with narrow stores was reloaded wide, a
// store-forwarding stall that was most of its cost. Inline: the shapes senders write are planned with a few
// loads (detail::plan_common), anything else by the general parser (plan_decap_general, out of line), which
// gives those frames the same plan.
DropReason plan_decap_general(std::span<const uint8_t> frame, DecapPlan& plan);
inline DropReason plan_decap(std::span<const uint8_t> frame, DecapPlan& plan) {
  if (detail::plan_common(frame, plan)) [[likely]]
    return DropReason::kNone;
  return plan_decap_general(frame, plan);
}
// After a verified open: restores the original frame (see encap.hpp).
Result<OpenInfo, DropReason> finish_decap(net::Packet& pkt, const DecapPlan& plan, const PspLayout& layout);
// The same into `info`: kNone (info filled) or the reason (info untouched).
DropReason finish_decap(net::Packet& pkt, const DecapPlan& plan, const PspLayout& layout, OpenInfo& info);
// The daemon's decap step after its decrypt step verified the frame that `plan` describes (kept in
// net::Metadata::decap_plan): the PSP header is read back where parse_open checked it (it is authenticated,
// so unchanged), the frame restored as finish_decap does, without planning or parsing it again.
// planned_next_header says which mode it is before the restore.
inline uint8_t planned_next_header(const net::Packet& pkt, const DecapPlan& plan) {
  return pkt.data()[plan.psp_offset];
}
inline DropReason finish_planned_decap(net::Packet& pkt, const DecapPlan& plan);
// After aead.open of a decap batch: finish_open, then finish_decap, for the n ops in `s` (plans indexed by
// packet, as detail::prepare_open_batch planned them).
void finish_decap_batch(net::PacketBatch& pkts, detail::OpenScratch& s, std::span<const DecapPlan> plans,
                        std::size_t n, std::span<DropReason> results, std::span<OpenInfo> infos);

// The inner packet of a tunnel, checked as far as PSP needs: the version nibble names the family and the IP
// length fields fit the bytes present. Deeper parsing is the pipeline's job after decap.
struct InnerIp {
  uint8_t next_header = 0;  // 4 (IPv4) or 41 (IPv6), as PSP Next Header; 0 = not a valid IP packet
  uint32_t length = 0;      // the IP packet's own length (<= bytes present)
};
inline InnerIp check_inner_ip(std::span<const uint8_t> b) {
  if (b.empty()) return {};
  if (b[0] >> 4 == 4) {
    const uint32_t ihl = (b[0] & 0x0fu) * 4;
    if (b.size() < sizeof(net::Ipv4Hdr) || ihl < sizeof(net::Ipv4Hdr)) return {};
    const uint32_t total = load_be16(&b[offsetof(net::Ipv4Hdr, total_length)]);
    if (total < ihl || total > b.size()) return {};
    return {net::kIpProtoIpv4, total};
  }
  if (b[0] >> 4 == 6) {
    if (b.size() < sizeof(net::Ipv6Hdr)) return {};
    const uint32_t total = sizeof(net::Ipv6Hdr) + load_be16(&b[offsetof(net::Ipv6Hdr, payload_length)]);
    if (total > b.size()) return {};
    return {net::kIpProtoIpv6, total};
  }
  return {};
}

// After a verified open of a tunnel-mode frame: [L2][outer IP][UDP][PSP][inner packet][ICV] -> [L2][inner
// packet]. hdr_size: the PSP header's (16, or 24 with a VC); nh: its Next Header. Inline: the daemon's
// decap() loop runs it per packet.
inline DropReason restore_tunnel(net::Packet& pkt, const DecapPlan& plan, uint8_t nh, uint32_t hdr_size) {
  const uint32_t inner_at = plan.psp_offset + hdr_size;
  const uint32_t inner_len = plan.psp_len - hdr_size - kPspIcvSize;
  if (check_inner_ip(pkt.bytes().subspan(inner_at, inner_len)).next_header != nh)
    return DropReason::kBadInnerPacket;
  const bool want_v4 = nh == net::kIpProtoIpv4;
  // [L2][outer IP][UDP][PSP] -> [L2]: the L2 header moves up to the inner packet; its ethertype follows it.
  uint8_t* d = pkt.data();
  const uint32_t start = inner_at - plan.l2_len;
  // The L2 header (14 or 18 bytes) lands at least 44 bytes further on (outer IP + UDP + PSP header):
  // no overlap, and fixed-size copies instead of a library call.
  if (plan.l2_len == sizeof(net::EthHdr)) {
    std::memcpy(d + start, d, sizeof(net::EthHdr));
  } else {
    std::memcpy(d + start, d, plan.l2_len);
  }
  store_be16(d + inner_at - 2, want_v4 ? net::kEtherTypeIpv4 : net::kEtherTypeIpv6);
  pkt.pull_front(start);
  pkt.trim_back(pkt.size() - (plan.l2_len + inner_len));
  return DropReason::kNone;
}

// The same for a transport-mode frame (the outer IP header stays, with the original protocol and lengths).
void restore_transport(net::Packet& pkt, const DecapPlan& plan, uint8_t nh, uint32_t hdr_size);

inline DropReason finish_planned_decap(net::Packet& pkt, const DecapPlan& plan) {
  const uint8_t* psp = pkt.data() + plan.psp_offset;
  const uint8_t nh = psp[0];
  const uint32_t hdr_size =
      (psp[3] & header_bits::kFlagVc) != 0 ? kPspHeaderSize + kPspVcSize : kPspHeaderSize;
  if (nh == net::kIpProtoIpv4 || nh == net::kIpProtoIpv6) return restore_tunnel(pkt, plan, nh, hdr_size);
  restore_transport(pkt, plan, nh, hdr_size);
  return DropReason::kNone;
}

}  // namespace steps

namespace detail {

// A PSP packet's key as a key cache indexes it, read with no check at all (for prefetch hints only): false
// when the bytes cannot hold a header.
inline bool peek_key_id(std::span<const uint8_t> psp_packet, uint32_t& spi, PspVersion& version) {
  if (psp_packet.size() < kPspHeaderSize) return false;
  spi = load_be32(&psp_packet[4]);
  version =
      static_cast<PspVersion>((psp_packet[3] >> header_bits::kVersionShift) & header_bits::kVersionMask);
  return true;
}

// A resolver that can be asked ahead for what resolve() will read (KeyCache).
template <class Resolver>
concept PrefetchingResolver = requires(const Resolver& r, uint32_t spi, PspVersion v) {
  { r.prefetching() } -> std::convertible_to<bool>;
  r.prefetch_entry(spi, v);
  r.prefetch_key(spi, v);
};

// The open half of a batch up to its one AEAD call: the daemon's decrypt(), decap_batch (psp-pcap) and the
// benchmarks all run this. Plans every frame into plan_of(i) (a DecapPlan&); where the resolver can and
// should (KeyCache::prefetching: a cache sized for more keys than the CPU caches hold), asks the CPU for
// every planned packet's key-cache entry and then, in a second pass, for the keys of the entries that will
// hit; then prepares the ops into `s`. With 100,000 active SPIs the prepared keys (~1 KB each) do not fit the
// CPU's caches: resolved packet by packet, each open waited for memory twice (its entry, then its key); asked
// for a batch at a time, those reads overlap. Where it does not ask ahead (the keys are in the CPU's caches),
// each frame is planned and prepared in one pass. results[i] = kNone (an op in `s`, whose s.pkt_index names
// i) or why packet i was not prepared. Returns the number of ops. Pkts: a span or batch of net::Packet*.
template <class Pkts, class Resolver, class PlanOf>
std::size_t prepare_open_batch(const Pkts& pkts, Resolver& keys, OpenScratch& s, PlanOf&& plan_of,
                               std::span<DropReason> results) {
  const auto psp_bytes = [&](std::size_t i) {
    const DecapPlan& plan = plan_of(i);
    return pkts[i]->bytes().subspan(plan.psp_offset, plan.psp_len);
  };
  bool ahead = false;
  if constexpr (PrefetchingResolver<Resolver>) ahead = keys.prefetching();
  std::size_t n = 0;
  if (!ahead) {  // keys in the CPU's caches: each frame planned and prepared in one pass
    for (std::size_t i = 0; i < pkts.size(); ++i) {
      DecapPlan& plan = plan_of(i);
      const std::span<uint8_t> frame = pkts[i]->bytes();
      DropReason r = steps::plan_decap(frame, plan);
      if (r == DropReason::kNone)
        r = prepare_open_slot(frame.subspan(plan.psp_offset, plan.psp_len), keys, s, i, n);
      results[i] = r;
    }
    return n;
  }
  for (std::size_t i = 0; i < pkts.size(); ++i) {
    results[i] = steps::plan_decap(pkts[i]->bytes(), plan_of(i));
    if constexpr (PrefetchingResolver<Resolver>) {
      uint32_t spi = 0;
      PspVersion version{};
      if (results[i] == DropReason::kNone && peek_key_id(psp_bytes(i), spi, version)) {
        keys.prefetch_entry(spi, version);
      }
    }
  }
  if constexpr (PrefetchingResolver<Resolver>) {
    for (std::size_t i = 0; i < pkts.size(); ++i) {
      uint32_t spi = 0;
      PspVersion version{};
      if (results[i] == DropReason::kNone && peek_key_id(psp_bytes(i), spi, version)) {
        keys.prefetch_key(spi, version);
      }
    }
  }
  for (std::size_t i = 0; i < pkts.size(); ++i) {
    if (results[i] != DropReason::kNone) continue;
    results[i] = prepare_open_slot(psp_bytes(i), keys, s, i, n);
  }
  return n;
}

}  // namespace detail

// results.size() and jobs.size() must be >= pkts.size(). results[i] = kNone on success.
void encap_batch(net::PacketBatch& pkts, std::span<const SealJob> jobs, const crypto::AeadBackend& aead,
                 std::span<DropReason> results);

// results.size() and infos.size() must be >= pkts.size().
template <class Resolver>
void decap_batch(net::PacketBatch& pkts, Resolver& keys, const crypto::AeadBackend& aead,
                 std::span<DropReason> results, std::span<OpenInfo> infos) {
  detail::OpenScratch s;
  detail::BatchSlots<DecapPlan, net::kMaxBatch> plans;
  for (std::size_t i = 0; i < pkts.size(); ++i) plans.make(i);
  const std::size_t n = detail::prepare_open_batch(
      pkts, keys, s, [&](std::size_t i) -> DecapPlan& { return plans[i]; }, results);
  aead.open({s.ops.data(), n});
  steps::finish_decap_batch(pkts, s, {plans.data(), pkts.size()}, n, results, infos);
}

}  // namespace pspgw::psp
