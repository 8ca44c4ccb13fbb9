// control::DataPlane on the gateway's pipeline: how the tunnel manager's decisions become entries.
//   open_ingress   -> an INGR_ACL entry (SPI, remote VIP, local VIP) toward the local VIP's host port
//   install_egress -> a TxSa (its key, prepared by each worker on first use) + PSP_ENCRYPT (pkt_meta = crypto
//   id) + EGR_ACL
//                     (in-port = the local VIP's host port (vip_ports), local VIP, remote VIP -> encap,
//                     pkt_meta = crypto id; a local VIP behind no host port is refused); a second install for
//                     the pair swaps the SA behind the same crypto id, so no packet sees a half-made tunnel
//   publish_master_keys -> the board PSP_DECRYPT's workers read
// Transport mode: a packet's outer addresses are its own, so an SA is refused unless the peer's outer
// address (learned from its TunnelParameters) is the remote VIP.
// Called from control threads (the tunnel manager's callers, gRPC handlers); one mutex serialises them.
// Workers never take it.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "base/id_table.hpp"
#include "control/data_plane.hpp"
#include "control/tunnel_manager.hpp"
#include "gateway/psp_actions.hpp"
#include "gateway/sa_table.hpp"
#include "gateway/topology.hpp"

namespace pspgw::gateway {

struct DataPlaneOptions {
  net::IpAddr local_outer;   // our outer address: the source of every encapsulated packet
  bool send_vc = false;      // --cookie
  uint8_t crypt_offset = 0;  // 4-octet units (GatewayFlags::effective_crypt_offset)
  psp::Mode mode = psp::Mode::kTunnel;
  std::vector<std::pair<net::IpAddr, std::size_t>> vip_ports;  // local VIP -> host-port index
  // --perf-print: receives "key-gen" (making an SA; each worker prepares its key on its first packet) and
  // "insertion" (publishing its entries) timings; null = off.
  std::function<void(std::string_view what, std::chrono::nanoseconds took, const control::VipPair&)> perf;
};

class FlowDataPlane final : public control::DataPlane {
 public:
  FlowDataPlane(Topology& topo, SaTable& sas, flow::EpochDomain& sa_epoch, MasterKeyBoard& keys,
                const std::vector<std::unique_ptr<WorkerPsp>>& workers, DataPlaneOptions opts);

  Status<control::DataPlaneError> open_ingress(uint32_t spi, const net::IpAddr& remote_vip,
                                               const net::IpAddr& local_vip) override;
  Status<control::DataPlaneError> close_ingress(uint32_t spi, const net::IpAddr& remote_vip,
                                                const net::IpAddr& local_vip) override;
  Status<control::DataPlaneError> install_egress(const control::VipPair& pair, control::TxSa sa) override;
  Status<control::DataPlaneError> remove_egress(const control::VipPair& pair) override;
  void publish_master_keys(std::shared_ptr<const psp::MasterKeySnapshot> keys) override;

  // The host-port index of a local VIP.
  std::optional<std::size_t> host_port_of(const net::IpAddr& local_vip) const;
  // The local VIPs and their host ports, at start and at every reload (first wins for a VIP listed
  // twice). With -a it also keeps INGR_ACL's per-VIP "any SPI" entries in step: made for new VIPs (and
  // VIPs that moved port) before the map changes, removed for VIPs that left. Tunnels of VIPs that stay
  // are not touched.
  Status<std::string> set_vip_ports(const std::vector<std::pair<net::IpAddr, std::size_t>>& vip_ports);

  // The egress table for introspection: pair -> (crypto id, EGR_ACL hits).
  struct EgressView {
    control::VipPair pair;
    CryptoId crypto_id;
    uint32_t spi;
    uint64_t packets;
  };
  std::vector<EgressView> egress() const;  // in pair order
  std::size_t egress_count() const;        // egress().size(), without making the view
  // Per pair, EGR_ACL hits + INGR_ACL hits of its open SPIs (flow entry counters, which workers keep
  // anyway): the activity idle aging watches. One pass over the tables, control thread.
  control::ActivityMap activity() const;
  // Every tunnel's egress SPI and packets, and the packets INGR_ACL delivered from remote to local VIP over
  // every SPI the pair has had open (0 with -a, whose per-VIP entries do not tell peers apart). One pass over
  // the tables, not a scan of every ingress entry per tunnel: the handles are copied under the lock, their
  // counters read after it.
  struct TunnelCounters {
    control::VipPair pair;
    uint32_t spi = 0;
    uint64_t tx_packets = 0;
    uint64_t rx_packets = 0;
    bool egress = false;  // an egress SA is installed (else only ingress entries exist)
  };
  std::vector<TunnelCounters> tunnel_counters() const;
  // Frees what removed SAs left behind once their grace period is over (control thread, periodically).
  void reclaim();

 private:
  struct Egress {
    CryptoId id;
    uint32_t spi;
    Topology::EgressEntries entries;
  };
  // An open ingress SPI: (SPI, remote VIP -> local VIP).
  struct IngressKey {
    uint32_t spi = 0;
    control::VipPair pair;
    friend bool operator==(const IngressKey&, const IngressKey&) = default;
  };
  struct IngressKeyHash {
    std::size_t operator()(const IngressKey& k) const noexcept {
      return control::VipPairHash{}(k.pair) * 31 ^ k.spi;
    }
  };
  Result<std::unique_ptr<TxSa>, control::DataPlaneError> make_sa(const control::TxSa& sa) const;
  // f(pair, egress) for every installed egress, mu_ held.
  template <class F>
  void for_each_egress(F&& f) const;
  // f(key, entry) for every open ingress SPI, mu_ held.
  template <class F>
  void for_each_ingress(F&& f) const;
  Status<control::DataPlaneError> publish_egress(const control::VipPair& pair, std::unique_ptr<TxSa> sa,
                                                 uint32_t spi, std::size_t host_port);

  Topology& topo_;
  SaTable& sas_;
  flow::EpochDomain& sa_epoch_;
  MasterKeyBoard& keys_;
  const std::vector<std::unique_ptr<WorkerPsp>>& workers_;
  DataPlaneOptions opts_;
  mutable std::mutex vip_mu_;
  std::unordered_map<net::IpAddr, std::size_t> vip_port_;  // set_vip_ports, first wins: O(1) per open
  std::unordered_map<net::IpAddr, std::pair<flow::EntryHandle, std::size_t>> any_;  // -a: entry, port
  mutable std::mutex mu_;
  // Installed egress: the pair interned to an id (no node per tunnel), its entries in egress_[id].
  IdTable<control::VipPair, control::VipPairHash> egress_ids_;
  std::vector<Egress> egress_;
  IdTable<IngressKey, IngressKeyHash> ingress_ids_;  // as the egress map: the key interned, its entry by id
  std::vector<flow::EntryHandle> ingress_;
};

}  // namespace pspgw::gateway
