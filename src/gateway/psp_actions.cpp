#include "gateway/psp_actions.hpp"

#include <array>
#include <cstring>

#include "base/byteorder.hpp"
#include "net/headers.hpp"
#include "net/parse.hpp"
#include "ports/gso.hpp"
#include "psp/batch.hpp"
#include "psp/encap_template.hpp"
#include "psp/seal.hpp"

namespace pspgw::gateway {
namespace {

constexpr uint32_t kEth = sizeof(net::EthHdr);
constexpr uint8_t drop(GatewayDrop d) {
  return static_cast<uint8_t>(d);
}

uint32_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return static_cast<uint32_t>(h);
}

// encap() of one frame: the shared PSP encap (psp/encap_template.hpp) with the SA's template, this
// worker's next IV and the inner flow's hash; its refusals mapped onto the gateway's drop codes.
template <psp::Mode M>
uint8_t encap_one(net::Packet& pkt, const TxSa* sa, const psp::EthAddrs& eth, IvCounter& iv) {
  if (sa == nullptr || !sa->tmpl) return drop(GatewayDrop::kNoSa);
  const uint32_t hash = flow_hash(pkt.bytes());
  const psp::EncapError e = M == psp::Mode::kTunnel
                                ? psp::encap_tunnel(pkt, *sa->tmpl, eth, iv.next(), hash)
                                : psp::encap_transport(pkt, *sa->tmpl, eth, iv.next(), hash);
  switch (e) {
    case psp::EncapError::kNone:
      pkt.meta.flow_hash = hash;
      return 0;
    case psp::EncapError::kBadFrame:
      return drop(GatewayDrop::kBadFrame);
    case psp::EncapError::kFragment:
      return drop(GatewayDrop::kFragment);
    case psp::EncapError::kTooBig:
      return drop(GatewayDrop::kTooBig);
  }
  return drop(GatewayDrop::kBadFrame);
}

// encap() of a super-packet (TAP TSO/USO, segment_on_rx off: tunnel mode only): the template in front,
// outer lengths of its first segment; the segments are cut when it is sealed (segment_seal.hpp).
uint8_t encap_gso_one(net::Packet& pkt, const TxSa* sa, const psp::EthAddrs& eth, IvCounter& iv) {
  if (sa == nullptr || !sa->tmpl) return drop(GatewayDrop::kNoSa);
  const auto seg = ports::GsoSegmenter::start(pkt.bytes(), pkt.meta.gso_size);
  if (!seg || seg->segment_count() == 0) return drop(GatewayDrop::kBadFrame);
  const auto first = static_cast<uint32_t>(seg->header_len() - seg->l3_offset() + seg->payload(0).size());
  const uint32_t hash = flow_hash(pkt.bytes());
  switch (psp::encap_tunnel_gso(pkt, *sa->tmpl, eth, iv.next(), hash, first)) {
    case psp::EncapError::kNone:
      pkt.meta.flow_hash = hash;
      pkt.meta.gso_encapped = true;
      return 0;
    case psp::EncapError::kTooBig:
      return drop(GatewayDrop::kTooBig);
    default:
      return drop(GatewayDrop::kBadFrame);
  }
}

// One instance per mode: the mode is a template parameter, not a per-packet branch on a flag.
template <psp::Mode M>
class EncapAction final : public flow::BatchAction {
 public:
  explicit EncapAction(const PspContext& ctx)
      : ctx_(ctx), eth_(psp::eth_addrs(ctx.nexthop_mac, ctx.local_mac)) {}
  void apply(std::span<net::Packet* const> pkts, std::span<const uint64_t> args,
             const flow::ActionContext& ac) override {
    WorkerPsp& w = *(*ctx_.workers)[ac.worker];
    for (std::size_t i = 0; i < pkts.size(); ++i) {
      const TxSa* sa = ctx_.sas->get(static_cast<CryptoId>(args[i]));
      // A super-packet only reaches a tunnel-mode gateway (transport mode segments on the TAP's rx).
      const uint8_t r = pkts[i]->meta.gso_size == 0 ? encap_one<M>(*pkts[i], sa, eth_, w.iv)
                        : M == psp::Mode::kTunnel   ? encap_gso_one(*pkts[i], sa, eth_, w.iv)
                                                    : drop(GatewayDrop::kBadFrame);
      if (r != 0) pkts[i]->meta.drop_reason = r;
    }
  }
  std::string name() const override { return M == psp::Mode::kTunnel ? "encap()" : "encap(transport)"; }
  std::string_view drop_reason_name(uint8_t code) const override { return drop_name(code); }

 private:
  PspContext ctx_;
  psp::EthAddrs eth_;  // nexthop (-n), local MAC
};

class EncryptAction final : public flow::BatchAction {
 public:
  explicit EncryptAction(const PspContext& ctx) : ctx_(ctx) {}
  void apply(std::span<net::Packet* const> pkts, std::span<const uint64_t> args,
             const flow::ActionContext& ac) override {
    WorkerPsp& w = *(*ctx_.workers)[ac.worker];
    auto& ops = w.scratch.ops;
    auto& index = w.scratch.pkt_index;
    std::size_t n = 0;
    for (std::size_t i = 0; i < pkts.size(); ++i) {
      net::Packet& pkt = *pkts[i];
      if (pkt.meta.gso_encapped) {  // sealed segment by segment on its way out (segment_seal.hpp)
        if (const uint8_t r = check_gso(pkt, static_cast<CryptoId>(args[i]), w); r != 0) {
          pkt.meta.drop_reason = r;
        }
        continue;
      }
      const uint8_t r = prepare(pkt, static_cast<CryptoId>(args[i]), w, ops.fill(n));
      if (r != 0) {
        pkt.meta.drop_reason = r;
        if (r < static_cast<uint8_t>(psp::DropReason::kCount)) {
          w.counters.count_drop(static_cast<psp::DropReason>(r));
        }
        continue;
      }
      index[n++] = static_cast<uint8_t>(i);
    }
    w.aead->seal({ops.data(), n});
    for (std::size_t j = 0; j < n; ++j) w.counters.count_tx(psp::DropReason::kNone, pkts[index[j]]->size());
  }
  std::string name() const override { return "encrypt()"; }
  std::string_view drop_reason_name(uint8_t code) const override { return drop_name(code); }

 private:
  // The shared seal step (psp/encap_template.hpp) with the SA behind the id now: if a re-key replaced it
  // since encap(), the packet is sealed with the new key under the new SPI (the peer has both open); a
  // header the new SA would not write is dropped as kNoSa. The worker's key of the SA is made on its first
  // packet with the SA (sa_table.hpp), after that one load as before.
  uint8_t prepare(net::Packet& pkt, CryptoId id, WorkerPsp& w, crypto::AeadOp& op) const {
    const TxSa* sa = nullptr;
    const crypto::AeadKey* key = sealing_key(*ctx_.sas, id, w, sa);
    if (key == nullptr) return drop(GatewayDrop::kNoSa);
    const psp::DropReason r = psp::prepare_frame_seal(pkt, *sa->tmpl, *key, op);
    if (r == psp::DropReason::kBadHeader) return drop(GatewayDrop::kNoSa);
    return r == psp::DropReason::kNone ? 0 : static_cast<uint8_t>(r);
  }

  // A super-packet: the checks prepare() makes, nothing sealed yet. The worker seals its segments as it
  // sends them, with the SA behind meta.pkt_meta then (PSP_ENCRYPT matched pkt_meta == id; worker.cpp,
  // SegmentSeal::start checks again).
  uint8_t check_gso(const net::Packet& pkt, CryptoId id, WorkerPsp& w) const {
    const TxSa* sa = nullptr;
    if (sealing_key(*ctx_.sas, id, w, sa) == nullptr) return drop(GatewayDrop::kNoSa);
    const psp::EncapTemplate& t = *sa->tmpl;
    if (pkt.size() < t.size() || !psp::detail::header_of(pkt.data() + t.psp_offset(), t)) {
      return drop(GatewayDrop::kNoSa);
    }
    return 0;
  }

  PspContext ctx_;
};

// PSP_DECRYPT: opens in place and records the verdict as the syndrome; nothing is stripped yet, so
// INGR_SAMP and INGR_ACL still see the PSP header (S bit, SPI) and find the inner packet behind it.
class DecryptAction final : public flow::BatchAction {
 public:
  explicit DecryptAction(const PspContext& ctx) : ctx_(ctx) {}
  void apply(std::span<net::Packet* const> pkts, std::span<const uint64_t> /*args*/,
             const flow::ActionContext& ac) override {
    WorkerPsp& w = *(*ctx_.workers)[ac.worker];
    refresh_keys(w);
    auto& s = w.scratch;
    // Each plan is kept in the packet's metadata for decap() (INGR_ACL): the frame is parsed once.
    std::array<psp::DropReason, net::kMaxBatch> results;
    const std::size_t n = psp::detail::prepare_open_batch(
        pkts, w.keys, s, [&](std::size_t i) -> psp::DecapPlan& { return pkts[i]->meta.decap_plan; },
        {results.data(), pkts.size()});
    for (std::size_t i = 0; i < pkts.size(); ++i) {
      if (results[i] != psp::DropReason::kNone) verdict(*pkts[i], w, results[i]);
    }
    w.aead->open({s.ops.data(), n});
    for (std::size_t j = 0; j < n; ++j) verdict(*pkts[s.pkt_index[j]], w, psp::finish_open(s.ops[j]));
  }
  std::string name() const override { return "decrypt()"; }

 private:
  static void verdict(net::Packet& pkt, WorkerPsp& w, psp::DropReason r) {
    pkt.meta.syndrome = static_cast<uint8_t>(r);
    w.counters.count_rx(r, pkt.size());
    if (signals_stale_peer(r)) w.stale.capture(pkt.bytes());
  }
  void refresh_keys(WorkerPsp& w) const {
    const uint64_t g = ctx_.master_keys->generation();
    if (g == w.key_generation) return;
    w.keys.update(ctx_.master_keys->current());
    if (w.key_generation != 0) ++w.counters.key_rotations;  // the first snapshot is not a rotation
    w.key_generation = g;
  }

  PspContext ctx_;
};

// INGR_ACL's decap(host port): the frame becomes [Ethernet toward the workload][inner packet] (transport:
// the outer IP header with the protocol and lengths restored, then the L4 segment). Only packets of the
// gateway's own mode are restored: INGR_ACL vouches for the addresses that mode delivers (tunnel: the inner
// ones; transport: the outer ones), so e.g. an IP-in-IP segment (Next Header 4) must not be unwrapped in
// transport mode, where nothing checked its inner addresses.
template <psp::Mode M>
class DecapAction final : public flow::BatchAction {
 public:
  explicit DecapAction(const PspContext& ctx) : ctx_(ctx) {}
  void apply(std::span<net::Packet* const> pkts, std::span<const uint64_t> args,
             const flow::ActionContext& /*ac*/) override {
    for (std::size_t i = 0; i < pkts.size(); ++i) {
      if (const uint8_t r = decap_one(*pkts[i], args[i]); r != 0) pkts[i]->meta.drop_reason = r;
    }
  }
  std::string name() const override { return M == psp::Mode::kTunnel ? "decap()" : "decap(transport)"; }
  std::string_view drop_reason_name(uint8_t code) const override { return drop_name(code); }

 private:
  uint8_t decap_one(net::Packet& pkt, uint64_t host_port) const {
    if (const uint8_t r = restore(pkt); r != 0) return r;
    if (host_port >= ctx_.host_ports->size()) return drop(GatewayDrop::kNoWorkload);
    const HostPortInfo& port = *(*ctx_.host_ports)[host_port];
    const uint64_t mac =
        ctx_.decap_dmac != 0 ? ctx_.decap_dmac : port.workload_mac.load(std::memory_order_relaxed);
    if (mac == 0) return drop(GatewayDrop::kNoWorkload);
    uint8_t* d = pkt.data();
    HostPortInfo::unpack_mac(mac, d);
    std::memcpy(d + 6, port.gateway_mac.bytes.data(), 6);
    return 0;
  }

  // The frame as decrypt() planned it, when decrypt() opened it (the common case: PSP_DECRYPT, INGR_SAMP,
  // then INGR_ACL); else (a frame decrypt() did not open) planned and parsed here.
  static uint8_t restore(net::Packet& pkt) {
    const psp::DecapPlan& planned = pkt.meta.decap_plan;
    if (pkt.meta.syndrome == static_cast<uint8_t>(psp::DropReason::kNone) && planned.psp_len != 0 &&
        planned.psp_offset + planned.psp_len <= pkt.size()) [[likely]] {
      const uint8_t nh = psp::steps::planned_next_header(pkt, planned);
      const bool tunnel = nh == net::kIpProtoIpv4 || nh == net::kIpProtoIpv6;  // as finish_decap decides
      if (tunnel != (M == psp::Mode::kTunnel)) return drop(GatewayDrop::kWrongMode);
      const psp::DropReason r = psp::steps::finish_planned_decap(pkt, planned);
      return r == psp::DropReason::kNone ? 0 : static_cast<uint8_t>(r);
    }
    psp::DecapPlan plan;
    if (const psp::DropReason r = psp::steps::plan_decap(pkt.bytes(), plan); r != psp::DropReason::kNone)
      return static_cast<uint8_t>(r);
    psp::PspLayout layout;
    if (const psp::DropReason r = psp::parse_open(pkt.bytes().subspan(plan.psp_offset, plan.psp_len), layout);
        r != psp::DropReason::kNone)
      return static_cast<uint8_t>(r);
    const uint8_t nh = layout.header.next_header;
    const bool tunnel = nh == net::kIpProtoIpv4 || nh == net::kIpProtoIpv6;  // as finish_decap decides
    if (tunnel != (M == psp::Mode::kTunnel)) return drop(GatewayDrop::kWrongMode);
    psp::OpenInfo info;
    if (const psp::DropReason r = psp::steps::finish_decap(pkt, plan, layout, info);
        r != psp::DropReason::kNone)
      return static_cast<uint8_t>(r);
    return 0;
  }

  PspContext ctx_;
};

}  // namespace

std::string_view to_string(GatewayDrop d) {
  switch (d) {
    case GatewayDrop::kNoSa:
      return "no-sa";
    case GatewayDrop::kBadFrame:
      return "bad-frame";
    case GatewayDrop::kTooBig:
      return "too-big";
    case GatewayDrop::kNoWorkload:
      return "no-workload-mac";
    case GatewayDrop::kFragment:
      return "fragment";
    case GatewayDrop::kWrongMode:
      return "wrong-mode";
  }
  return "unknown";
}

std::string_view drop_name(uint8_t code) {
  if (code >= static_cast<uint8_t>(psp::DropReason::kNone) &&
      code < static_cast<uint8_t>(psp::DropReason::kCount)) {
    return psp::to_string(static_cast<psp::DropReason>(code));
  }
  if (code >= static_cast<uint8_t>(GatewayDrop::kNoSa) &&
      code <= static_cast<uint8_t>(GatewayDrop::kWrongMode)) {
    return to_string(static_cast<GatewayDrop>(code));
  }
  return {};
}

void MasterKeyBoard::publish(std::shared_ptr<const psp::MasterKeySnapshot> s) {
  std::lock_guard<std::mutex> lock(mu_);
  snapshot_ = std::move(s);
  generation_.fetch_add(1, std::memory_order_release);
}

std::shared_ptr<const psp::MasterKeySnapshot> MasterKeyBoard::current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_;
}

WorkerPsp::WorkerPsp(uint16_t w, std::unique_ptr<crypto::AeadBackend> backend, std::size_t cache_capacity)
    : worker(w), aead(std::move(backend)), iv(w), keys(*aead, cache_capacity) {}

// Symmetric: each address word pair and the port pair enter as their XOR and their sum, which do not depend
// on the direction. ports/steering.cpp computes the same in eBPF for the TAP's queue choice: keep the two
// in step (gateway_steering_test compares them).
uint32_t flow_hash(std::span<const uint8_t> frame) {
  constexpr uint64_t kPrime = 0x100000001b3ULL;
  psp::Payload in;  // the inner IP packet, as encap_tunnel finds it
  if (!psp::tunnel_payload(frame, in)) return 0;
  const uint8_t* ip = &frame[in.offset];
  uint64_t h = 0x9e3779b97f4a7c15ULL;
  const auto pair = [&h](uint32_t s, uint32_t d) {
    h = (h ^ (s ^ d)) * kPrime;
    h = (h ^ static_cast<uint32_t>(s + d)) * kPrime;
  };
  uint32_t l4 = 0;
  uint8_t proto = 0;
  if (in.next_header == net::kIpProtoIpv4) {
    pair(load_be32(ip + 12), load_be32(ip + 16));
    proto = ip[9];
    // Any fragment, the first included (MF set, offset 0), hashes on addresses and protocol only: the
    // later ones carry no ports, and one datagram must keep one worker and one UDP source port.
    const bool fragment = (load_be16(ip + 6) & (net::kIpv4FlagMf | net::kIpv4FragOffsetMask)) != 0;
    l4 = fragment ? 0 : static_cast<uint32_t>(ip[0] & 0x0f) * 4;
  } else {
    for (int i = 0; i < 16; i += 4) pair(load_be32(ip + 8 + i), load_be32(ip + 24 + i));
    proto = ip[6];
    l4 = sizeof(net::Ipv6Hdr);
  }
  h = (h ^ proto) * kPrime;
  if (l4 != 0 && (proto == net::kIpProtoTcp || proto == net::kIpProtoUdp) && l4 + 4 <= in.len) {
    const uint32_t sp = load_be16(ip + l4), dp = load_be16(ip + l4 + 2);
    h = (h ^ ((sp ^ dp) << 16 | ((sp + dp) & 0xffff))) * kPrime;
  }
  return mix(h);
}

std::shared_ptr<flow::BatchAction> make_encap_action(const PspContext& ctx, psp::Mode mode) {
  if (mode == psp::Mode::kTransport) return std::make_shared<EncapAction<psp::Mode::kTransport>>(ctx);
  return std::make_shared<EncapAction<psp::Mode::kTunnel>>(ctx);
}
std::shared_ptr<flow::BatchAction> make_encrypt_action(const PspContext& ctx) {
  return std::make_shared<EncryptAction>(ctx);
}
std::shared_ptr<flow::BatchAction> make_decrypt_action(const PspContext& ctx) {
  return std::make_shared<DecryptAction>(ctx);
}
std::shared_ptr<flow::BatchAction> make_decap_action(const PspContext& ctx, psp::Mode mode) {
  if (mode == psp::Mode::kTransport) return std::make_shared<DecapAction<psp::Mode::kTransport>>(ctx);
  return std::make_shared<DecapAction<psp::Mode::kTunnel>>(ctx);
}

}  // namespace pspgw::gateway
