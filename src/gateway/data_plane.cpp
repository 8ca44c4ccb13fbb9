#include "gateway/data_plane.hpp"

#include <algorithm>

namespace pspgw::gateway {
namespace {

using control::DataPlaneError;

DataPlaneError from_flow(flow::FlowError e) {
  switch (e) {
    case flow::FlowError::kDuplicateEntry:
      return DataPlaneError::kExists;
    case flow::FlowError::kTableFull:
    case flow::FlowError::kReclaimPending:
      return DataPlaneError::kNoSpace;
    case flow::FlowError::kStaleHandle:
      return DataPlaneError::kNotFound;
    default:
      return DataPlaneError::kRejected;
  }
}

}  // namespace

FlowDataPlane::FlowDataPlane(Topology& topo, SaTable& sas, flow::EpochDomain& sa_epoch, MasterKeyBoard& keys,
                             const std::vector<std::unique_ptr<WorkerPsp>>& workers, DataPlaneOptions opts)
    : topo_(topo), sas_(sas), sa_epoch_(sa_epoch), keys_(keys), workers_(workers), opts_(std::move(opts)) {
  for (const auto& [vip, port] : opts_.vip_ports) vip_port_.emplace(vip, port);
}

template <class F>
void FlowDataPlane::for_each_egress(F&& f) const {
  for (uint32_t id = 0; id < egress_ids_.id_limit(); ++id) {
    if (egress_ids_.live(id)) f(egress_ids_.key(id), egress_[id]);
  }
}

template <class F>
void FlowDataPlane::for_each_ingress(F&& f) const {
  for (uint32_t id = 0; id < ingress_ids_.id_limit(); ++id) {
    if (ingress_ids_.live(id)) f(ingress_ids_.key(id), ingress_[id]);
  }
}

void FlowDataPlane::reclaim() {
  std::lock_guard<std::mutex> lock(mu_);  // SaTable's deferred frees run under the writers' lock
  sa_epoch_.poll();
}

std::optional<std::size_t> FlowDataPlane::host_port_of(const net::IpAddr& local_vip) const {
  std::lock_guard<std::mutex> lock(vip_mu_);
  auto it = vip_port_.find(local_vip);
  if (it == vip_port_.end()) return std::nullopt;
  return it->second;
}

Status<std::string> FlowDataPlane::set_vip_ports(
    const std::vector<std::pair<net::IpAddr, std::size_t>>& vip_ports) {
  std::unordered_map<net::IpAddr, std::size_t> next;
  for (const auto& [vip, port] : vip_ports) next.emplace(vip, port);
  if (!topo_.options().ingress_acl) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = any_.begin(); it != any_.end();) {  // left, or moved: its entry goes
      auto n = next.find(it->first);
      if (n != next.end() && n->second == it->second.second) {
        ++it;
        continue;
      }
      (void)topo_.remove(it->second.first);
      it = any_.erase(it);
    }
    for (const auto& [vip, port] : next) {
      if (any_.contains(vip)) continue;
      auto h = topo_.add_ingress_any(vip, port);
      if (!h) return Err{"INGR_ACL: " + std::string(flow::to_string(h.error()))};
      any_.emplace(vip, std::make_pair(*h, port));
    }
  }
  std::lock_guard<std::mutex> lock(vip_mu_);
  vip_port_ = std::move(next);
  return {};
}

Status<DataPlaneError> FlowDataPlane::open_ingress(uint32_t spi, const net::IpAddr& remote_vip,
                                                   const net::IpAddr& local_vip) {
  const auto port = host_port_of(local_vip);
  if (!port) return Err{DataPlaneError::kRejected};
  std::lock_guard<std::mutex> lock(mu_);
  const IngressKey key{spi, {local_vip, remote_vip}};
  if (ingress_ids_.find(key) != ingress_ids_.kNone) return Err{DataPlaneError::kExists};
  flow::EntryHandle handle{};
  if (topo_.options().ingress_acl) {  // else (-a) the per-VIP entries made at start accept everything
    auto h = topo_.add_ingress(spi, remote_vip, local_vip, *port);
    if (!h) return Err{from_flow(h.error())};
    handle = *h;
  }
  const auto id = ingress_ids_.insert(key).first;
  if (id >= ingress_.size()) ingress_.resize(id + 1);
  ingress_[id] = handle;
  return {};
}

Status<DataPlaneError> FlowDataPlane::close_ingress(uint32_t spi, const net::IpAddr& remote_vip,
                                                    const net::IpAddr& local_vip) {
  std::lock_guard<std::mutex> lock(mu_);
  const IngressKey key{spi, {local_vip, remote_vip}};
  const auto id = ingress_ids_.find(key);
  if (id == ingress_ids_.kNone) return Err{DataPlaneError::kNotFound};
  const flow::EntryHandle h = ingress_[id];
  (void)ingress_ids_.erase(key);
  if (!topo_.options().ingress_acl) return {};
  if (auto s = topo_.remove(h); !s) return Err{from_flow(s.error())};
  return {};
}

Result<std::unique_ptr<TxSa>, DataPlaneError> FlowDataPlane::make_sa(const control::TxSa& sa) const {
  if (sa.peer_outer_ip.family != opts_.local_outer.family) return Err{DataPlaneError::kRejected};
  const auto alg = psp::aead_alg(static_cast<uint8_t>(sa.key.version));
  if (!alg) return Err{DataPlaneError::kRejected};
  if (sa.key.size() != crypto::key_size(*alg)) return Err{DataPlaneError::kRejected};
  psp::SealParams p;
  p.version = sa.key.version;
  p.spi = sa.spi;
  p.crypt_offset = opts_.crypt_offset;
  p.has_vc = opts_.send_vc;
  p.vc = sa.virt_cookie;
  // Each worker prepares its own key on its first packet.
  return std::make_unique<TxSa>(p, psp::OuterHeaders{opts_.local_outer, sa.peer_outer_ip},
                                sa.key.bytes.clone(), workers_.size());
}

Status<DataPlaneError> FlowDataPlane::install_egress(const control::VipPair& pair, control::TxSa sa) {
  if (opts_.mode == psp::Mode::kTransport && sa.peer_outer_ip != pair.remote) {
    return Err{DataPlaneError::kRejected};  // the kernel would send it to another address than its own
  }
  const auto port = host_port_of(pair.local);  // EGR_ACL matches the port the local VIP sits behind
  if (!port) return Err{DataPlaneError::kRejected};
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  auto made = make_sa(sa);
  if (!made) return Err{made.error()};
  const auto t1 = Clock::now();
  auto s = publish_egress(pair, std::move(*made), sa.spi, *port);
  if (opts_.perf && s) {
    opts_.perf("key-gen", t1 - t0, pair);
    opts_.perf("insertion", Clock::now() - t1, pair);
  }
  return s;
}

Status<DataPlaneError> FlowDataPlane::publish_egress(const control::VipPair& pair, std::unique_ptr<TxSa> sa,
                                                     uint32_t spi, std::size_t host_port) {
  std::lock_guard<std::mutex> lock(mu_);
  if (const auto have = egress_ids_.find(pair); have != egress_ids_.kNone) {
    if (auto s = sas_.replace(egress_[have].id, std::move(sa)); !s) return Err{DataPlaneError::kRejected};
    egress_[have].spi = spi;
    return {};
  }
  auto id = sas_.install(std::move(sa));
  if (!id) return Err{id.error() == SaError::kFull ? DataPlaneError::kNoSpace : DataPlaneError::kRejected};
  auto entries = topo_.add_egress(pair.local, pair.remote, *id, host_port);
  if (!entries) {
    (void)sas_.remove(*id);
    return Err{from_flow(entries.error())};
  }
  const auto slot = egress_ids_.insert(pair).first;
  if (slot >= egress_.size()) egress_.resize(slot + 1);
  egress_[slot] = Egress{*id, spi, *entries};
  return {};
}

Status<DataPlaneError> FlowDataPlane::remove_egress(const control::VipPair& pair) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto slot = egress_ids_.find(pair);
  if (slot == egress_ids_.kNone) return Err{DataPlaneError::kNotFound};
  const Egress e = egress_[slot];
  (void)egress_ids_.erase(pair);
  auto s = topo_.remove_egress(e.entries);
  (void)sas_.remove(e.id);
  if (!s) return Err{from_flow(s.error())};
  return {};
}

void FlowDataPlane::publish_master_keys(std::shared_ptr<const psp::MasterKeySnapshot> keys) {
  keys_.publish(std::move(keys));
}

std::vector<FlowDataPlane::EgressView> FlowDataPlane::egress() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<EgressView> out;
  out.reserve(egress_ids_.size());
  for_each_egress([&](const control::VipPair& pair, const Egress& e) {
    auto hits = topo_.pipeline().entry_hits(e.entries.acl);
    out.push_back({pair, e.id, e.spi, hits ? *hits : 0});
  });
  std::sort(out.begin(), out.end(), [](const EgressView& a, const EgressView& b) { return a.pair < b.pair; });
  return out;
}

std::size_t FlowDataPlane::egress_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return egress_ids_.size();
}

std::vector<FlowDataPlane::TunnelCounters> FlowDataPlane::tunnel_counters() const {
  std::vector<std::pair<control::VipPair, Topology::EgressEntries>> eg;
  std::vector<std::pair<control::VipPair, flow::EntryHandle>> in;
  std::vector<uint32_t> spis;
  {
    std::lock_guard<std::mutex> lock(mu_);
    eg.reserve(egress_ids_.size());
    spis.reserve(egress_ids_.size());
    for_each_egress([&](const control::VipPair& pair, const Egress& e) {
      eg.emplace_back(pair, e.entries);
      spis.push_back(e.spi);
    });
    in.reserve(ingress_ids_.size());
    for_each_ingress(
        [&](const IngressKey& key, flow::EntryHandle handle) { in.emplace_back(key.pair, handle); });
  }
  // A handle removed meanwhile reads as no hits (entry handles carry a generation).
  std::map<control::VipPair, TunnelCounters> out;
  for (std::size_t i = 0; i < eg.size(); ++i) {
    auto& t = out[eg[i].first];
    t.pair = eg[i].first;
    t.spi = spis[i];
    t.egress = true;
    if (auto hits = topo_.pipeline().entry_hits(eg[i].second.acl)) t.tx_packets = *hits;
  }
  for (const auto& [pair, handle] : in) {
    auto& t = out[pair];
    t.pair = pair;
    if (auto hits = topo_.pipeline().entry_hits(handle)) t.rx_packets += *hits;
  }
  std::vector<TunnelCounters> list;
  list.reserve(out.size());
  for (auto& [pair, t] : out) list.push_back(t);
  return list;
}

control::ActivityMap FlowDataPlane::activity() const {
  std::lock_guard<std::mutex> lock(mu_);
  control::ActivityMap out;
  const flow::Pipeline& pl = topo_.pipeline();
  for_each_egress([&](const control::VipPair& pair, const Egress& e) {
    if (auto hits = pl.entry_hits(e.entries.acl)) out[pair] += *hits;
  });
  for_each_ingress([&](const IngressKey& key, flow::EntryHandle handle) {
    if (auto hits = pl.entry_hits(handle)) out[key.pair] += *hits;
  });
  return out;
}

}  // namespace pspgw::gateway
