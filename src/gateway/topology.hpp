// The gateway's pipeline: the seeds' diagrams (shared/seeds/001..003, spec/doca-psp-gateway.md §5) built
// as data with flow::PipelineBuilder.
//
// Host-to-net:  ROOT (host port, inner family) -> EGR_ACL (in-port + inner src+dst VIP; encap(),
//               pkt_meta=crypto_id; miss -> RSS "egress-miss") -> [EGR_SAMP (random & mask; psp.S=1,
//               mirror RSS)] ->
//               PSP_ENCRYPT (pkt_meta; encrypt()) -> network port.
//               ROOT (host port, ARP / IPv6 ND / DHCP) -> RSS "exception" (the slow path answers).
// Net-to-host:  ROOT (network port, outer family, UDP dst 1000) -> PSP_DECRYPT (one entry; decrypt()) ->
//               [INGR_SAMP (syndrome OK + psp.S; mirror RSS)] -> INGR_ACL (syndrome OK + SPI + inner
//               src + inner dst; decap(), reg0=port) -> SFC_ENTRY -> host port; miss -> SYND_STATS (one per
//               syndrome) -> drop.
// Service chains (src/sfc, docs/architecture.md "Service chaining"): SFC_ENTRY (reg0 = the workload's port
// + the packet's 5-tuple: entry-lport classifiers, exit-lport ones' return traffic; miss per port: deliver)
// and SFC_EXIT (in-port + 5-tuple, between ROOT and EGR_ACL: exit-lport classifiers, entry-lport ones'
// return traffic; miss: EGR_ACL) send a chain's packets to a select group of VNF ports. A packet back from
// a VNF port enters SFC_HOP (in-port + the workload's VIP as source or destination; in_port=the workload's
// port): the next hop's group, or after the last hop the host port / EGR_ACL; never a classifier again.
// ROOT (VNF port, the health probes' ethertype) -> RSS "sfc-probe"; a VNF port's ARP/ND/DHCP is dropped.
// Transport mode: the same pipes; the packet's own addresses are the outer ones (VIP == PIP), so INGR_ACL
// matches the outer source and destination, and encap()/decap() carry the L4 segment (psp_actions.hpp).
// Anything else at ROOT is dropped with a counted reason (the kernel keeps non-PSP traffic: isolated mode).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "flow/pipeline.hpp"
#include "gateway/psp_actions.hpp"
#include "net/addr.hpp"

namespace pspgw::gateway {

// Why a packet went to the CPU (the RSS queue's reason code).
enum class CpuReason : uint16_t {
  kEgressMiss = 1,     // no egress SA yet: hold it, run the key exchange, resubmit
  kException = 2,      // ARP / Neighbor Solicitation / DHCP from a workload
  kSampleEgress = 3,   // EGR_SAMP's mirror: S bit set on transmit
  kSampleIngress = 4,  // INGR_SAMP's mirror: S bit seen on receive
  // Not a pipe target: a worker's rate-limited report of a PSP packet whose SPI or ICV our keys do not
  // match (signals_stale_peer), its outer headers only: the sender may have restarted (slow_path.hpp).
  kStalePeer = 5,
  kSfcProbe = 6,  // a service-chain health probe back from a VNF port (sfc/health.hpp)
};
std::string_view to_string(CpuReason r);

// Drop codes of the pipes themselves (not of actions).
enum class PipeDrop : uint8_t {
  kRootMiss = 0x50,  // not a packet type this gateway handles
  kIngressAclMiss,   // decrypted fine, but no ACL entry for (SPI, src VIP, dst VIP)
  kSfcNoHop,         // back from a VNF port where no hop expects it (reflected the wrong way, stray)
  kSfcNoInstance,    // a chain hop with fail-mode close and no live instance
};

// Where the chain pipes sit, for src/sfc's program (sfc/program.hpp).
struct ChainPipes {
  flow::PipeId entry, exit, hop, egr_acl;
  flow::PipeId
      group_after;  // the last of the three chain pipes: every entry that targets a group is in it or before
};

struct TopologyOptions {
  PortId network_port{0};
  std::vector<PortId> host_ports;  // index = host-port index (decap()'s argument)
  std::vector<bool> vnf;           // per host_ports index: a service chain's VNF port (no VIPs, no ARP)
  // Room (ROOT entries) for this many host ports at once: ports added at run time (add_host_port).
  std::size_t max_host_ports = 0;
  net::IpFamily inner = net::IpFamily::kV4;
  net::IpFamily outer = net::IpFamily::kV6;
  psp::Mode mode = psp::Mode::kTunnel;  // transport: inner == outer family, VIPs are the outer addresses
  uint32_t sample_rate = 0;             // log2: 1 in 2^N egress packets sampled; 0 off
  // The sampling pipes even with sample_rate 0 (empty: every packet misses on to the next pipe), so that
  // pspctl sample on works on a gateway started without --sample-rate. Off: DOCA's graph, which has
  // them only with sampling.
  bool sampling_pipes = false;
  bool ingress_acl = true;  // false (-a): INGR_ACL checks the syndrome and the destination VIP only
  uint32_t max_tunnels = 256;
  // Ingress SPIs one tunnel may hold at once (control::kMaxIngressPerSession): INGR_ACL has room for
  // max_tunnels x this, so no re-key window (two SPIs per tunnel, more while exchanges cross) can fill it.
  uint32_t ingress_per_tunnel = 4;
  uint16_t workers = 1;
};

class Topology {
 public:
  static Result<std::unique_ptr<Topology>, std::string> build(const TopologyOptions& opts,
                                                              const PspContext& ctx);

  flow::Pipeline& pipeline() { return *pipeline_; }
  const flow::Pipeline& pipeline() const { return *pipeline_; }
  flow::PipeId egr_acl() const { return egr_acl_; }
  const ChainPipes& chain_pipes() const { return chains_; }
  bool is_vnf(std::size_t host_port) const;

  // Host ports at run time (a reload): host port `index`'s entries in ROOT (and SFC_ENTRY for a
  // workload), or out again. Nothing else refers to a port: its tunnels' entries (add_egress,
  // add_ingress) are the caller's to add after it and remove before it.
  Status<std::string> add_host_port(std::size_t index, PortId id, bool vnf);
  void remove_host_port(std::size_t index);

  // EGR_ACL + PSP_ENCRYPT entries of one (local VIP -> remote VIP) SA. EGR_ACL also matches the in-port:
  // the local VIP's host port (an index into TopologyOptions::host_ports, as add_ingress takes).
  struct EgressEntries {
    flow::EntryHandle acl;
    flow::EntryHandle encrypt;
  };
  Result<EgressEntries, flow::FlowError> add_egress(const net::IpAddr& local_vip,
                                                    const net::IpAddr& remote_vip, CryptoId id,
                                                    std::size_t host_port);
  Status<flow::FlowError> remove_egress(const EgressEntries& e);
  // INGR_ACL: (SPI, remote VIP -> local VIP) delivered to host port `host_port`. The VIPs are matched in
  // the inner header (tunnel) or the outer one (transport).
  Result<flow::EntryHandle, flow::FlowError> add_ingress(uint32_t spi, const net::IpAddr& remote_vip,
                                                         const net::IpAddr& local_vip, std::size_t host_port);
  // -a: one INGR_ACL entry per local VIP (any SPI, any source).
  Result<flow::EntryHandle, flow::FlowError> add_ingress_any(const net::IpAddr& local_vip,
                                                             std::size_t host_port);
  Status<flow::FlowError> remove(flow::EntryHandle h) { return pipeline_->remove_entry(h); }

  // Sampling at run time (pspctl sample; --sample-rate at start): rate N (log2) samples 1 in 2^N egress
  // packets (EGR_SAMP: S bit set, a copy to the CPU) and mirrors received packets with the S bit
  // (INGR_SAMP); 0 removes both entries (the pipes stay, empty: every packet misses to the next one).
  // Refused when the pipeline was built without the sampling pipes (TopologyOptions) or N > 16.
  Status<std::string> set_sampling(uint32_t rate);
  uint32_t sample_rate() const;
  bool can_sample() const { return egr_samp_.has_value(); }

  flow::DumpOptions dump_options(std::vector<std::string> port_names) const;
  const TopologyOptions& options() const { return opts_; }  // host_ports/vnf: port_of, is_vnf

 private:
  Topology() = default;

  PortId port_of(std::size_t host_port) const;

  TopologyOptions opts_;  // host_ports and vnf change with add_host_port: under ports_mu_
  mutable std::mutex ports_mu_;
  std::vector<std::vector<flow::EntryHandle>> port_entries_;  // by host-port index
  std::unique_ptr<flow::Pipeline> pipeline_;
  flow::PipeId egr_acl_{}, psp_encrypt_{}, ingr_acl_{};
  ChainPipes chains_{};
  std::optional<flow::PipeId> egr_samp_, ingr_samp_;  // with sampling pipes only
  mutable std::mutex sample_mu_;
  uint32_t sample_rate_ = 0;
  std::optional<flow::EntryHandle> egr_samp_entry_, ingr_samp_entry_;
};

// The ethertype of service-chain health probes (IEEE 802 local experimental: no stack answers it).
inline constexpr uint16_t kSfcProbeEtherType = 0x88b5;
// Entries of each classifier pipe (SFC_ENTRY, SFC_EXIT) and of SFC_HOP.
inline constexpr uint32_t kSfcClassifierEntries = 4096;
inline constexpr uint32_t kSfcHopEntries = 2048;

// The highest --sample-rate / pspctl sample --rate: EGR_SAMP matches 16 random bits (the seeds' 0xffff).
inline constexpr uint32_t kMaxSampleRateLog2 = 16;

}  // namespace pspgw::gateway
