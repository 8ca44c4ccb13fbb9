#include "gateway/topology.hpp"

#include <algorithm>

#include "flow/builder.hpp"
#include "psp/drop_reason.hpp"
#include "psp/header.hpp"
#include "sfc/compile.hpp"

namespace pspgw::gateway {
namespace {

using flow::ActionSpec;
using flow::EntrySpec;
using flow::Field;
using flow::PipeSpec;
using flow::TargetRef;

// PSP header bits as the generic UDP-payload words see them (big-endian, header bytes 0..3 and 4..7).
constexpr uint32_t kPspSampleBit = 0x00000080;  // byte 3, bit 7: S

// EGR_SAMP's match on meta.random: 1 in 2^rate packets have the low `rate` bits zero.
uint64_t sample_mask(uint32_t rate) {
  return rate >= 32 ? 0xffffffffULL : (uint64_t{1} << rate) - 1;
}
constexpr uint8_t kSyndromeOk = static_cast<uint8_t>(psp::DropReason::kNone);

bool has_sampling(const TopologyOptions& o) {
  return o.sample_rate > 0 || o.sampling_pipes;
}

TargetRef cpu(CpuReason r) {
  return TargetRef::cpu(static_cast<uint16_t>(r));
}
TargetRef drop(PipeDrop d) {
  return TargetRef::drop(static_cast<uint8_t>(d));
}

bool v4(net::IpFamily f) {
  return f == net::IpFamily::kV4;
}
uint16_t ethertype(net::IpFamily f) {
  return v4(f) ? net::kEtherTypeIpv4 : net::kEtherTypeIpv6;
}
Field src_field(net::IpFamily f) {
  return v4(f) ? Field::kIpv4Src : Field::kIpv6Src;
}
Field dst_field(net::IpFamily f) {
  return v4(f) ? Field::kIpv4Dst : Field::kIpv6Dst;
}
Field inner_src(net::IpFamily f) {
  return v4(f) ? Field::kInnerIpv4Src : Field::kInnerIpv6Src;
}
Field inner_dst(net::IpFamily f) {
  return v4(f) ? Field::kInnerIpv4Dst : Field::kInnerIpv6Dst;
}
// Where INGR_ACL finds the VIPs of a decrypted packet: the inner header (tunnel), or the outer one
// (transport, where the VIPs are the outer addresses).
Field ingress_src(const TopologyOptions& o) {
  return o.mode == psp::Mode::kTunnel ? inner_src(o.inner) : src_field(o.outer);
}
Field ingress_dst(const TopologyOptions& o) {
  return o.mode == psp::Mode::kTunnel ? inner_dst(o.inner) : dst_field(o.outer);
}

void build_root(flow::PipelineBuilder& b, const TopologyOptions& o) {
  PipeSpec root;
  root.name = "ROOT";
  root.lookup = flow::LookupKind::kTernary;
  root.match = {flow::match(Field::kInPort), flow::match(Field::kEtherType), flow::match(Field::kIpProto),
                flow::match(Field::kL4Dst), flow::match(Field::kIpv6Dst)};
  root.miss = drop(PipeDrop::kRootMiss);
  root.max_entries = 8 + 8 * static_cast<uint32_t>(std::max(o.max_host_ports, o.host_ports.size()));
  b.add_pipe(root);
  EntrySpec psp;
  psp.match = {flow::eq(Field::kInPort, o.network_port.value()),
               flow::eq(Field::kEtherType, ethertype(o.outer)), flow::eq(Field::kIpProto, net::kIpProtoUdp),
               flow::eq(Field::kL4Dst, psp::kPspUdpPort)};
  psp.fwd = TargetRef::pipe("PSP_DECRYPT");
  psp.priority = 10;
  b.add_entry("ROOT", psp);
}

void build_egress(flow::PipelineBuilder& b, const TopologyOptions& o, const PspContext& ctx) {
  const std::string after_acl = has_sampling(o) ? "EGR_SAMP" : "PSP_ENCRYPT";
  PipeSpec acl;
  acl.name = "EGR_ACL";
  // The in-port too: a workload may send only as the VIPs behind its own host port. A frame from port 1
  // with port 2's VIP as source misses and is dropped by the slow path (dropped_wrong_port).
  acl.match = {flow::match(Field::kInPort), flow::match(src_field(o.inner)), flow::match(dst_field(o.inner))};
  acl.actions = {ActionSpec::call(make_encap_action(ctx, o.mode), true),
                 ActionSpec::set_meta_from_entry(Field::kPktMeta, "crypto_id")};
  acl.fwd = TargetRef::pipe(after_acl);
  acl.miss = cpu(CpuReason::kEgressMiss);
  acl.max_entries = o.max_tunnels;
  b.add_pipe(acl);

  if (has_sampling(o)) {
    PipeSpec samp;
    samp.name = "EGR_SAMP";
    // Ternary: the entry carries the rate as its own mask (random & (2^N - 1) == 0), so pspctl sample
    // changes it live (Topology::set_sampling). Two entries: the new one is in before the old one goes.
    samp.lookup = flow::LookupKind::kTernary;
    samp.match = {flow::match(Field::kRandom, sample_mask(kMaxSampleRateLog2))};
    samp.actions = {ActionSpec::set_bits(Field::kUdpPayload0, kPspSampleBit, kPspSampleBit, "psp.S=1")};
    samp.fwd = TargetRef::pipe("PSP_ENCRYPT");
    samp.miss = TargetRef::pipe("PSP_ENCRYPT");
    samp.mirror = cpu(CpuReason::kSampleEgress);
    samp.max_entries = 2;
    b.add_pipe(samp);
  }

  PipeSpec enc;
  enc.name = "PSP_ENCRYPT";
  enc.match = {flow::match(Field::kPktMeta)};
  enc.actions = {ActionSpec::call(make_encrypt_action(ctx), true)};
  enc.fwd = TargetRef::port(o.network_port);
  enc.miss = TargetRef::drop(static_cast<uint8_t>(GatewayDrop::kNoSa));
  enc.max_entries = o.max_tunnels;
  b.add_pipe(enc);
}

void build_ingress(flow::PipelineBuilder& b, const TopologyOptions& o, const PspContext& ctx) {
  const std::string after_decrypt = has_sampling(o) ? "INGR_SAMP" : "INGR_ACL";
  PipeSpec dec;
  dec.name = "PSP_DECRYPT";
  dec.actions = {ActionSpec::call(make_decrypt_action(ctx))};
  dec.fwd = TargetRef::pipe(after_decrypt);
  dec.miss = TargetRef::drop(flow::kDropByRule);  // never: its one entry matches everything
  dec.max_entries = 1;
  b.add_pipe(dec);
  b.add_entry("PSP_DECRYPT", {{}, {}, {}, 0});  // one entry: one master key pair serves every peer

  if (has_sampling(o)) {
    PipeSpec samp;
    samp.name = "INGR_SAMP";
    // Authenticated packets only (syndrome OK): a forged packet with the S bit set must not reach the log.
    samp.match = {flow::match(Field::kSyndrome), flow::match(Field::kUdpPayload0, kPspSampleBit)};
    samp.fwd = TargetRef::pipe("INGR_ACL");
    samp.miss = TargetRef::pipe("INGR_ACL");
    samp.mirror = cpu(CpuReason::kSampleIngress);
    samp.max_entries = 1;
    b.add_pipe(samp);  // its entry: Topology::set_sampling
  }

  PipeSpec acl;
  acl.name = "INGR_ACL";
  if (o.ingress_acl) {
    acl.match = {flow::match(Field::kSyndrome), flow::match(Field::kUdpPayload4), flow::match(ingress_src(o)),
                 flow::match(ingress_dst(o))};
  } else {
    acl.match = {flow::match(Field::kSyndrome), flow::match(ingress_dst(o))};
  }
  // reg0 = the workload's port: SFC_ENTRY chains the packet or delivers it there.
  acl.actions = {ActionSpec::call(make_decap_action(ctx, o.mode), true),
                 ActionSpec::set_meta_from_entry(Field::kReg0, "port")};
  acl.fwd = TargetRef::pipe("SFC_ENTRY");
  acl.miss = TargetRef::pipe("SYND_STATS");
  // Every tunnel holds two SPIs through a rotation (more while exchanges cross): TopologyOptions. The flow
  // engine adds room for records waiting out a grace period (pipeline.cpp record_capacity: +50%), so a
  // mass re-key's removals cannot make its inserts fail.
  acl.max_entries = o.max_tunnels * o.ingress_per_tunnel + 16;
  b.add_pipe(acl);

  // One entry per syndrome, so each is counted on its own (DOCA's SYND_STATS); syndrome OK here means
  // "authenticated, but no ACL entry".
  PipeSpec stats;
  stats.name = "SYND_STATS";
  stats.match = {flow::match(Field::kSyndrome)};
  stats.miss = TargetRef::drop(flow::kDropByRule);
  stats.max_entries = static_cast<uint32_t>(psp::DropReason::kCount);
  b.add_pipe(stats);
  b.add_entry("SYND_STATS",
              {{flow::eq(Field::kSyndrome, kSyndromeOk)}, {}, drop(PipeDrop::kIngressAclMiss), 0});
  for (uint8_t r = kSyndromeOk + 1; r < static_cast<uint8_t>(psp::DropReason::kCount); ++r) {
    b.add_entry("SYND_STATS", {{flow::eq(Field::kSyndrome, r)}, {}, TargetRef::drop(r), 0});
  }
}

// One host port's entries, (pipe, entry), added and removed with the port (Topology::add_host_port).
using PortEntries = std::vector<std::pair<std::string, EntrySpec>>;

// Broadcast and multicast are never steered (issue 8): entries above every classifier's that forward them
// on as if no chain were there. `extra` narrows them (SFC_ENTRY: the workload's port).
void add_unsteered(PortEntries& out, const std::string& pipe, const std::vector<flow::FieldMatch>& extra,
                   const TargetRef& to) {
  const std::vector<flow::FieldMatch> groups = {
      flow::prefix(Field::kIpv4Dst, *net::IpAddr::parse("224.0.0.0"), 4),
      flow::eq(Field::kIpv4Dst, *net::IpAddr::parse("255.255.255.255")),
      flow::prefix(Field::kIpv6Dst, *net::IpAddr::parse("ff00::"), 8)};
  for (const auto& g : groups) {
    EntrySpec e;
    e.match = extra;
    e.match.push_back(
        flow::eq(Field::kEtherType, g.field == Field::kIpv6Dst ? net::kEtherTypeIpv6 : net::kEtherTypeIpv4));
    e.match.push_back(g);
    e.fwd = to;
    e.priority = 0;
    out.emplace_back(pipe, e);
  }
}
void add_unsteered(flow::PipelineBuilder& b, const std::string& pipe,
                   const std::vector<flow::FieldMatch>& extra, const TargetRef& to) {
  PortEntries entries;
  add_unsteered(entries, pipe, extra, to);
  for (auto& [p, e] : entries) b.add_entry(p, std::move(e));
}

constexpr uint32_t kLowest = ~0u;

// A VNF port: its health probes to the CPU, IP back into the chain (SFC_HOP); nothing else (ARP, ND,
// DHCP) is answered or steered: the ROOT miss drops it.
void vnf_port_entries(PortEntries& out, const flow::FieldMatch& port) {
  out.emplace_back(
      "ROOT",
      EntrySpec{{port, flow::eq(Field::kEtherType, kSfcProbeEtherType)}, {}, cpu(CpuReason::kSfcProbe), 5});
  for (uint16_t type : {net::kEtherTypeIpv4, net::kEtherTypeIpv6})
    out.emplace_back(
        "ROOT", EntrySpec{{port, flow::eq(Field::kEtherType, type)}, {}, TargetRef::pipe("SFC_HOP"), 20});
}

// A host port's entries: ROOT's (exceptions to the CPU, its inner family on to SFC_EXIT; a VNF port's
// own) and, for a workload, SFC_ENTRY's delivery to it (never-steered traffic first, then the rest).
PortEntries host_port_entries(const TopologyOptions& o, PortId hp, bool vnf) {
  PortEntries out;
  const auto port = flow::eq(Field::kInPort, hp.value());
  if (vnf) {
    vnf_port_entries(out, port);
    return out;
  }
  // Exceptions first (lower priority value wins): ARP, IPv6 multicast (Neighbor Solicitation to the
  // solicited-node group, router solicitations, MLD), DHCP.
  out.emplace_back(
      "ROOT",
      EntrySpec{{port, flow::eq(Field::kEtherType, net::kEtherTypeArp)}, {}, cpu(CpuReason::kException), 5});
  auto mcast = flow::prefix(Field::kIpv6Dst, *net::IpAddr::parse("ff00::"), 8);
  out.emplace_back("ROOT", EntrySpec{{port, flow::eq(Field::kEtherType, net::kEtherTypeIpv6), mcast},
                                     {},
                                     cpu(CpuReason::kException),
                                     5});
  out.emplace_back("ROOT",
                   EntrySpec{{port, flow::eq(Field::kEtherType, net::kEtherTypeIpv4),
                              flow::eq(Field::kIpProto, net::kIpProtoUdp), flow::eq(Field::kL4Dst, 67)},
                             {},
                             cpu(CpuReason::kException),
                             5});
  out.emplace_back(
      "ROOT",
      EntrySpec{
          {port, flow::eq(Field::kEtherType, ethertype(o.inner))}, {}, TargetRef::pipe("SFC_EXIT"), 20});
  const auto reg = flow::eq(Field::kReg0, hp.value());
  add_unsteered(out, "SFC_ENTRY", {reg}, TargetRef::port(hp));
  out.emplace_back("SFC_ENTRY", EntrySpec{{reg}, {}, TargetRef::port(hp), kLowest});
  return out;
}

// The chain pipes' templates: `key`, then `fields`, then reg3 (sfc::Placement::bank_field: never set, the
// second mask a replaced entry's successor takes).
std::vector<flow::FieldMask> with_key(Field key, std::vector<flow::FieldMask> fields) {
  fields.insert(fields.begin(), flow::match(key));
  fields.push_back(flow::match(Field::kReg3));
  return fields;
}

// The chain pipes; their entries and groups come from src/sfc's program at run time. Classifier entries
// take priorities 1.. (0: the never-steered traffic, kLowest: the per-port delivery: host_port_entries).
void build_chains(flow::PipelineBuilder& b, const TopologyOptions& o) {
  PipeSpec entry;
  entry.name = "SFC_ENTRY";
  entry.lookup = flow::LookupKind::kTernary;
  entry.match = with_key(Field::kReg0, sfc::classifier_template());
  entry.miss = TargetRef::drop(flow::kDropByRule);  // never: every workload port has its delivery entry
  entry.max_entries = kSfcClassifierEntries;
  b.add_pipe(entry);

  PipeSpec exit;
  exit.name = "SFC_EXIT";
  exit.lookup = flow::LookupKind::kTernary;
  exit.match = with_key(Field::kInPort, sfc::classifier_template());
  exit.fwd = TargetRef::pipe("EGR_ACL");
  exit.miss = TargetRef::pipe("EGR_ACL");
  exit.max_entries = kSfcClassifierEntries;
  b.add_pipe(exit);
  add_unsteered(b, "SFC_EXIT", {}, TargetRef::pipe("EGR_ACL"));

  PipeSpec hop;
  hop.name = "SFC_HOP";
  hop.lookup = flow::LookupKind::kTernary;
  hop.match = with_key(Field::kInPort, {flow::match(Field::kEtherType), flow::match(src_field(o.inner)),
                                        flow::match(dst_field(o.inner))});
  hop.actions = {ActionSpec::set_meta_from_entry(Field::kInPort, "workload_port")};
  hop.fwd = TargetRef::pipe("EGR_ACL");  // entries name their own; this one orders SFC_HOP before EGR_ACL
  hop.miss = drop(PipeDrop::kSfcNoHop);
  hop.max_entries = kSfcHopEntries;
  b.add_pipe(hop);
}

}  // namespace

std::string_view to_string(CpuReason r) {
  switch (r) {
    case CpuReason::kEgressMiss:
      return "egress-miss";
    case CpuReason::kException:
      return "exception";
    case CpuReason::kSampleEgress:
      return "sample-egress";
    case CpuReason::kSampleIngress:
      return "sample-ingress";
    case CpuReason::kStalePeer:
      return "stale-peer";
    case CpuReason::kSfcProbe:
      return "sfc-probe";
  }
  return "unknown";
}

Result<std::unique_ptr<Topology>, std::string> Topology::build(const TopologyOptions& opts,
                                                               const PspContext& ctx) {
  flow::PipelineBuilder b;
  build_root(b, opts);
  build_egress(b, opts, ctx);
  build_ingress(b, opts, ctx);
  build_chains(b, opts);
  b.root("ROOT");
  b.max_workers(opts.workers);
  // PSP's tunnel layout: 16 header bytes after UDP port 1000, 8 more when the V bit (byte 3, 0x02) is set.
  // Transport packets hold no inner IP header: no pipe of that topology matches inner fields.
  if (opts.mode == psp::Mode::kTunnel) {
    b.inner_locator(std::make_shared<flow::UdpTunnelLocator>(psp::kPspUdpPort, psp::kPspHeaderSize, 3, 0x02,
                                                             psp::kPspVcSize));
  }
  b.alias(Field::kUdpPayload0, kPspSampleBit, "psp.S");
  b.alias(Field::kUdpPayload4, 0xffffffff, "psp.spi");
  b.alias(Field::kSyndrome, 0xff, "psp.synd");
  auto pl = b.build();
  if (!pl) return Err{std::string(flow::to_string(pl.error().code)) + ": " + pl.error().detail};
  std::unique_ptr<Topology> t(new Topology());
  t->opts_ = opts;
  t->pipeline_ = std::move(*pl);
  t->egr_acl_ = *t->pipeline_->find_pipe("EGR_ACL");
  t->psp_encrypt_ = *t->pipeline_->find_pipe("PSP_ENCRYPT");
  t->ingr_acl_ = *t->pipeline_->find_pipe("INGR_ACL");
  ChainPipes& c = t->chains_;
  c.entry = *t->pipeline_->find_pipe("SFC_ENTRY");
  c.exit = *t->pipeline_->find_pipe("SFC_EXIT");
  c.hop = *t->pipeline_->find_pipe("SFC_HOP");
  c.egr_acl = t->egr_acl_;
  c.group_after = std::max({c.entry, c.exit, c.hop},
                           [](flow::PipeId x, flow::PipeId y) { return x.value() < y.value(); });
  for (std::size_t i = 0; i < opts.host_ports.size(); ++i) {
    if (auto s = t->add_host_port(i, opts.host_ports[i], i < opts.vnf.size() && opts.vnf[i]); !s)
      return Err{"host port " + std::to_string(i) + ": " + s.error()};
  }
  if (has_sampling(opts)) {
    t->egr_samp_ = t->pipeline_->find_pipe("EGR_SAMP");
    t->ingr_samp_ = t->pipeline_->find_pipe("INGR_SAMP");
    if (auto s = t->set_sampling(opts.sample_rate); !s) return Err{"sampling: " + s.error()};
  }
  return t;
}

Status<std::string> Topology::set_sampling(uint32_t rate) {
  if (!egr_samp_ || !ingr_samp_) {
    return Err{std::string(
        "this pipeline was built without the EGR_SAMP/INGR_SAMP pipes (TopologyOptions::sampling_pipes)")};
  }
  if (rate > kMaxSampleRateLog2) {
    return Err{"rate " + std::to_string(rate) + " is above " + std::to_string(kMaxSampleRateLog2) +
               " (1 in 2^N packets)"};
  }
  std::lock_guard lock(sample_mu_);
  if (rate == sample_rate_) return {};
  // Egress: the new rate's entry first, then the old one goes (the pipe holds two), so no batch runs
  // without one. Ingress: on while any rate is set.
  std::optional<flow::EntryHandle> egress;
  if (rate > 0) {
    auto h =
        pipeline_->add_entry(*egr_samp_, {{flow::masked(Field::kRandom, 0, sample_mask(rate))}, {}, {}, 0});
    if (!h) return Err{"EGR_SAMP: " + std::string(flow::to_string(h.error()))};
    egress = *h;
  }
  if (egr_samp_entry_) (void)pipeline_->remove_entry(*egr_samp_entry_);
  egr_samp_entry_ = egress;
  if (rate > 0 && !ingr_samp_entry_) {
    auto h = pipeline_->add_entry(
        *ingr_samp_,
        {{flow::eq(Field::kSyndrome, kSyndromeOk), flow::eq(Field::kUdpPayload0, kPspSampleBit)}, {}, {}, 0});
    if (!h) return Err{"INGR_SAMP: " + std::string(flow::to_string(h.error()))};
    ingr_samp_entry_ = *h;
  } else if (rate == 0 && ingr_samp_entry_) {
    (void)pipeline_->remove_entry(*ingr_samp_entry_);
    ingr_samp_entry_.reset();
  }
  sample_rate_ = rate;
  return {};
}

uint32_t Topology::sample_rate() const {
  std::lock_guard lock(sample_mu_);
  return sample_rate_;
}

Result<Topology::EgressEntries, flow::FlowError> Topology::add_egress(const net::IpAddr& local_vip,
                                                                      const net::IpAddr& remote_vip,
                                                                      CryptoId id, std::size_t host_port) {
  EntrySpec enc;
  enc.match = {flow::eq(Field::kPktMeta, id)};
  enc.args = {id};
  auto e = pipeline_->add_entry(psp_encrypt_, enc);
  if (!e) return Err{e.error()};
  EntrySpec acl;
  acl.match = {flow::eq(Field::kInPort, port_of(host_port).value()),
               flow::eq(src_field(opts_.inner), local_vip), flow::eq(dst_field(opts_.inner), remote_vip)};
  acl.args = {id, id};
  auto a = pipeline_->add_entry(egr_acl_, acl);
  if (!a) {
    (void)pipeline_->remove_entry(*e);
    return Err{a.error()};
  }
  return EgressEntries{*a, *e};
}

Status<flow::FlowError> Topology::remove_egress(const EgressEntries& e) {
  auto a = pipeline_->remove_entry(e.acl);  // the ACL first: no new packet gets the crypto id
  auto b = pipeline_->remove_entry(e.encrypt);
  if (!a) return a;
  return b;
}

Result<flow::EntryHandle, flow::FlowError> Topology::add_ingress(uint32_t spi, const net::IpAddr& remote_vip,
                                                                 const net::IpAddr& local_vip,
                                                                 std::size_t host_port) {
  EntrySpec acl;
  acl.match = {flow::eq(Field::kSyndrome, kSyndromeOk), flow::eq(Field::kUdpPayload4, spi),
               flow::eq(ingress_src(opts_), remote_vip), flow::eq(ingress_dst(opts_), local_vip)};
  acl.args = {host_port, port_of(host_port).value()};
  return pipeline_->add_entry(ingr_acl_, acl);
}

Result<flow::EntryHandle, flow::FlowError> Topology::add_ingress_any(const net::IpAddr& local_vip,
                                                                     std::size_t host_port) {
  EntrySpec acl;
  acl.match = {flow::eq(Field::kSyndrome, kSyndromeOk), flow::eq(ingress_dst(opts_), local_vip)};
  acl.args = {host_port, port_of(host_port).value()};
  return pipeline_->add_entry(ingr_acl_, acl);
}

PortId Topology::port_of(std::size_t host_port) const {
  std::lock_guard lock(ports_mu_);
  return opts_.host_ports.at(host_port);
}

bool Topology::is_vnf(std::size_t host_port) const {
  std::lock_guard lock(ports_mu_);
  return host_port < opts_.vnf.size() && opts_.vnf[host_port];
}

Status<std::string> Topology::add_host_port(std::size_t index, PortId id, bool vnf) {
  std::lock_guard lock(ports_mu_);
  if (index < port_entries_.size() && !port_entries_[index].empty())
    return Err{"host port " + std::to_string(index) + " is in use"};
  if (opts_.host_ports.size() <= index) opts_.host_ports.resize(index + 1);
  if (opts_.vnf.size() <= index) opts_.vnf.resize(index + 1);
  if (port_entries_.size() <= index) port_entries_.resize(index + 1);
  opts_.host_ports[index] = id;
  opts_.vnf[index] = vnf;
  std::vector<flow::EntryHandle>& handles = port_entries_[index];
  for (const auto& [pipe, spec] : host_port_entries(opts_, id, vnf)) {
    auto h = pipeline_->add_entry(*pipeline_->find_pipe(pipe), spec);
    if (!h) {
      for (const auto& added : handles) (void)pipeline_->remove_entry(added);
      handles.clear();
      return Err{pipe + ": " + std::string(flow::to_string(h.error()))};
    }
    handles.push_back(*h);
  }
  return {};
}

void Topology::remove_host_port(std::size_t index) {
  std::lock_guard lock(ports_mu_);
  if (index >= port_entries_.size()) return;
  for (const auto& h : port_entries_[index]) (void)pipeline_->remove_entry(h);
  port_entries_[index].clear();
}

flow::DumpOptions Topology::dump_options(std::vector<std::string> port_names) const {
  flow::DumpOptions d;
  d.port_name = [names = std::move(port_names)](PortId p) {
    return p.value() < names.size() ? names[p.value()] : "port" + std::to_string(p.value());
  };
  // Mermaid node names take no spaces or dashes: "RSS_egress_miss".
  d.cpu_name = [](uint16_t r) {
    std::string name = "RSS_" + std::string(to_string(static_cast<CpuReason>(r)));
    std::replace(name.begin(), name.end(), '-', '_');
    return name;
  };
  return d;
}

}  // namespace pspgw::gateway
