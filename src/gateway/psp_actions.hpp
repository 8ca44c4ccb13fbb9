// The PSP actions of the gateway's pipeline (flow::BatchAction): the parts the seeds' pipes name as
// encap(), encrypt(), decrypt() and decap(). Each runs once per batch with the packets that hit; no
// allocation, lock or log line per packet; per-worker state (crypto backend, key cache, IV counter,
// counters) is indexed by ActionContext::worker. The PSP work itself is src/psp's, shared with psp-pcap and
// bench/psp_seal: encap()/encrypt() call psp/encap_template.hpp with the SA's template, decrypt()/decap()
// the decap steps of psp/batch.hpp; what stays here is the SA lookup, the flow hash, drop codes, counters.
//
//   EGR_ACL      encap(crypto_id)   Ethernet frame -> [Eth][outer IP][UDP 1000][PSP hdr][payload][ICV room]
//                                   payload: tunnel: the inner IP packet (NH 4/41); transport: the L4
//                                   segment (NH = its protocol), the IP header dropped (see below)
//   EGR_SAMP     (flow set_bits: psp.S = 1)
//   PSP_ENCRYPT  encrypt(crypto_id) seal the PSP packet in place (one AEAD call per batch)
//   PSP_DECRYPT  decrypt()          open in place, key derived from the SPI; meta.syndrome := result
//   INGR_ACL     decap(host_port)   -> [Eth toward the workload][inner IP] (destination MAC: --decap-dmac,
//                                   else the workload MAC learned from the host port)
//                                   (transport: [IP from the outer one, proto := NH, lengths fixed][L4])
//
// Transport mode through a kernel UDP socket (spec §1 keeps the original IP header; we cannot): the kernel
// writes the outer IP header from the socket's addresses, so the workload's addresses must be the hosts'
// outer ones (VIP == PIP, checked at start). The original IP header is dropped at encap and the receiver
// rebuilds it from the outer one: addresses, protocol and length are exact (L4 checksums stay valid);
// TTL/hop limit, TOS/traffic class, IPv4 ID/DF, the IPv6 flow label, IPv4 options and IPv6 extension
// headers of the sender are not carried. Fragments are refused (kFragment): their L4 header is not here.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "crypto/aead.hpp"
#include "flow/action.hpp"
#include "gateway/sa_table.hpp"
#include "net/addr.hpp"
#include "psp/batch.hpp"
#include "psp/counters.hpp"
#include "psp/encap.hpp"
#include "psp/key_cache.hpp"
#include "psp/key_ring.hpp"

namespace pspgw::gateway {

// Drop codes the gateway's actions assign (flow: actions own 1..0xef; psp::DropReason uses the low ones).
enum class GatewayDrop : uint8_t {
  kNoSa = 0x40,  // crypto id without an SA (removed while the packet was in flight)
  kBadFrame,     // a host-port frame that is not Ethernet + a well-formed IPv4/IPv6 packet
  kTooBig,       // no room for the encap in the buffer, or longer than 64 KiB once encapsulated
  kNoWorkload,   // decap toward a host port whose workload MAC is not known yet
  kFragment,     // transport mode: an IP fragment (the L4 segment PSP carries is not in one packet)
  kWrongMode,    // decap: Next Header of the other mode (4/41 in transport, an L4 protocol in tunnel)
};
std::string_view to_string(GatewayDrop d);
// A drop code of either family, for dumps and stats.
std::string_view drop_name(uint8_t code);

// Master keys as the workers see them: the control plane publishes, each worker picks the new snapshot
// up at its next batch (one atomic load per batch; the mutex only when the generation changed).
class MasterKeyBoard {
 public:
  void publish(std::shared_ptr<const psp::MasterKeySnapshot> s);
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  std::shared_ptr<const psp::MasterKeySnapshot> current() const;

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const psp::MasterKeySnapshot> snapshot_;
  std::atomic<uint64_t> generation_{0};
};

// Per-host-port facts decap needs: the MACs of its Ethernet header.
struct HostPortInfo {
  net::MacAddr gateway_mac;
  std::atomic<uint64_t> workload_mac{0};  // learned from the port's traffic (48 bits; 0 = unknown)
  // A service chain's VNF port (x-sw.host-ports[].role "vnf"): no workload behind it, so no MAC is learned
  // (a VNF forwards the workloads' frames: their MACs must never be taken as its own).
  bool vnf = false;

  // workload_mac's representation: the 6 MAC bytes as a big-endian 48-bit number.
  static uint64_t pack_mac(const uint8_t* mac) {
    uint64_t v = 0;
    for (int i = 0; i < 6; ++i) v = v << 8 | mac[i];
    return v;
  }
  static void unpack_mac(uint64_t v, uint8_t* mac) {
    for (int i = 0; i < 6; ++i) mac[i] = static_cast<uint8_t>(v >> (8 * (5 - i)));
  }
};

// The drop reasons that say "this sender's keys are not ours": an SPI we have no key for, or a key that
// does not authenticate. From a known peer's address that means it (or we) restarted and it still
// sends with SPIs of our previous life: decrypt reports them (StaleReport) so the control thread can
// re-exchange that peer's tunnels. The one place that decides which reasons count.
constexpr bool signals_stale_peer(psp::DropReason r) {
  return r == psp::DropReason::kUnknownKey || r == psp::DropReason::kAuthFailed ||
         r == psp::DropReason::kUnissuedSpi;
}

// The first packet of a worker that signalled a stale peer, its outer headers only, until the worker
// forwards it to the control thread (rate limited there, worker.cpp). Written and read by the worker
// thread only: no atomics, no allocation.
struct StaleReport {
  static constexpr std::size_t kBytes = 96;  // Eth + IPv6 + UDP + PSP header with VC fits
  bool pending = false;
  uint8_t len = 0;
  std::array<uint8_t, kBytes> head{};

  void capture(std::span<const uint8_t> frame) {
    if (pending) return;
    len = static_cast<uint8_t>(std::min(frame.size(), kBytes));
    std::copy_n(frame.begin(), len, head.begin());
    pending = true;
  }
};

// One worker's PSP state. Cache-line aligned: workers never share a line.
struct alignas(64) WorkerPsp {
  WorkerPsp(uint16_t worker, std::unique_ptr<crypto::AeadBackend> backend, std::size_t cache_capacity);
  uint16_t worker;
  std::unique_ptr<crypto::AeadBackend> aead;
  IvCounter iv;
  psp::KeyCache keys;
  uint64_t key_generation = 0;
  psp::Counters counters;
  StaleReport stale;
  // Scratch of the batch being sealed or opened (too big for a worker's stack frame per call, and
  // actions are shared by all workers).
  psp::detail::OpenScratch scratch;
  psp::detail::BatchSlots<psp::DecapPlan, net::kMaxBatch> plans;
};

// The SA behind `id` (into `sa`) and this worker's key of it, made on its first use: what each seal step
// starts from (encrypt(), and the worker's seal of a super-packet's segments). nullptr: no SA for the id
// (removed while the packet was in flight).
inline const crypto::AeadKey* sealing_key(const SaTable& sas, CryptoId id, WorkerPsp& w, const TxSa*& sa) {
  sa = sas.get(id);
  return sa != nullptr && sa->tmpl ? sa->key_for(w.worker, *w.aead) : nullptr;
}

// Everything the actions share, owned by the gateway.
struct PspContext {
  SaTable* sas = nullptr;
  MasterKeyBoard* master_keys = nullptr;
  std::vector<std::unique_ptr<WorkerPsp>>* workers = nullptr;
  std::vector<std::unique_ptr<HostPortInfo>>* host_ports = nullptr;  // by host-port index
  net::MacAddr local_mac;                                            // source MAC of encapsulated frames
  net::MacAddr nexthop_mac;  // destination MAC of encapsulated frames (-n; informational through UDP)
  // --decap-dmac: destination MAC of every decapsulated frame, instead of the workload MAC learned from the
  // host port (HostPortInfo::pack_mac form; 0 = learned, as without the flag).
  uint64_t decap_dmac = 0;
};

std::shared_ptr<flow::BatchAction> make_encap_action(const PspContext& ctx,
                                                     psp::Mode mode = psp::Mode::kTunnel);
std::shared_ptr<flow::BatchAction> make_encrypt_action(const PspContext& ctx);
std::shared_ptr<flow::BatchAction> make_decrypt_action(const PspContext& ctx);
std::shared_ptr<flow::BatchAction> make_decap_action(const PspContext& ctx,
                                                     psp::Mode mode = psp::Mode::kTunnel);

// The flow hash of an Ethernet frame's IP 5-tuple, symmetric: a flow's two directions hash alike. It picks
// the UDP source port (whose low 14 bits carry it to the peer), the IPv6 flow label and, through the same
// bits, the worker of both directions (ports/steering.hpp). 0 for a frame that is not IPv4/IPv6.
uint32_t flow_hash(std::span<const uint8_t> frame);

}  // namespace pspgw::gateway
