#include "gateway/gateway.hpp"

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <iostream>
#include <map>
#include <sstream>
#include <unordered_set>

#include "admin/commands.hpp"
#include "admin/stats_json.hpp"
#include "base/unique_fd.hpp"
#include "control/tls.hpp"
#include "crypto/aead.hpp"
#include "gateway/fleet_mode.hpp"
#include "gateway/path_mtu.hpp"
#include "gateway/reload.hpp"
#include "ports/steering.hpp"
#include "ports/tap_port.hpp"
#include "ports/udp_port.hpp"

namespace pspgw::gateway {
namespace {

using nlohmann::json;

// Each worker's cache of prepared receive keys (psp/key_cache.hpp): one key per tunnel it receives on,
// so it is sized for -x tunnels (every flow of every tunnel may land on any worker), within bounds. With
// 100,000 active SPIs a 4096-key cache derived a key for almost every packet (24% of the 1-SPI decrypt rate
// at 64 B, bench_spi_scale); sized for them, 84%. Keys are made on first use (~1.1 KB each with
// intel-ipsec-mb): idle tunnels cost an empty slot (24 bytes), not a key.
constexpr std::size_t kKeyCacheEntries = 4096;
constexpr std::size_t kMaxKeyCacheEntries = std::size_t{1} << 17;
std::size_t key_cache_entries(uint32_t max_tunnels) {
  return std::clamp<std::size_t>(std::bit_ceil(std::size_t{max_tunnels}), kKeyCacheEntries,
                                 kMaxKeyCacheEntries);
}
constexpr auto kStatPrintPeriod = std::chrono::seconds(1);
constexpr auto kStaticRecheck = std::chrono::seconds(1);
// Host ports at once (slots: a reload may add ports up to this many; removed ones free their slot).
constexpr std::size_t kMaxHostPorts = 64;
// pspctl sample on with no rate given, none in use before and no --sample-rate: 1 in 1024 packets.
constexpr uint32_t kDefaultSampleRate = 10;

// SA ids of removed SAs are reused after a grace period: spare ids so that closing and re-making tunnels
// at the limit (idle aging, lost tunnels) never waits for one (the flow engine's record slack, alike).
uint32_t sa_capacity(uint32_t max_tunnels) {
  return max_tunnels + std::max<uint32_t>(64, max_tunnels / 2);
}

// Idle aging reads the flow counters a few times per timeout, not more often than every 100 ms.
std::chrono::steady_clock::duration idle_check_period(std::chrono::milliseconds timeout) {
  return std::clamp<std::chrono::steady_clock::duration>(timeout / 4, std::chrono::milliseconds(100),
                                                         std::chrono::seconds(10));
}
const char* const kVersion = "0.1.0";

// Locally administered MACs the gateway answers with when the config names none.
net::MacAddr default_gateway_mac(std::size_t host_port) {
  return net::MacAddr{{0x02, 0x50, 0x53, 0x50, 0x00, static_cast<uint8_t>(host_port + 1)}};
}
net::MacAddr default_local_mac() {
  return net::MacAddr{{0x02, 0x50, 0x53, 0x00, 0x00, 0x01}};
}

// The MAC of a network interface by name (the workload's side of a TAP we just created).
std::optional<net::MacAddr> interface_mac(const std::string& name) {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s.valid() || name.size() >= IFNAMSIZ) return std::nullopt;
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  if (::ioctl(s.get(), SIOCGIFHWADDR, &ifr) != 0) return std::nullopt;
  net::MacAddr m;
  std::memcpy(m.bytes.data(), ifr.ifr_hwaddr.sa_data, 6);
  return m;
}

std::string key(std::string_view name) {
  std::string k(name);
  std::replace(k.begin(), k.end(), '-', '_');
  return k;
}

// The PSP counters in the admin JSON's key order and names (tools/pspctl/render.cpp reads them).
std::vector<admin::NamedCount> psp_counts(const psp::Counters& c) {
  return {{"rx_packets", c.rx_packets},       {"rx_bytes", c.rx_bytes},
          {"tx_packets", c.tx_packets},       {"tx_bytes", c.tx_bytes},
          {"auth_failures", c.auth_failures}, {"framing_errors", c.framing_errors},
          {"bad_version", c.bad_version},     {"unknown_key", c.unknown_key},
          {"unissued_spi", c.unissued_spi},   {"key_rotations", c.key_rotations},
          {"stale_keys", c.stale_keys}};
}

std::vector<admin::NamedCount> psp_drop_counts(const psp::Counters& c) {
  std::vector<admin::NamedCount> out;
  for (std::size_t r = static_cast<std::size_t>(psp::DropReason::kNone) + 1; r < c.drops.size(); ++r)
    out.push_back({key(psp::to_string(static_cast<psp::DropReason>(r))), c.drops[r]});
  return out;
}

std::string drop_label(uint8_t code) {
  if (code == static_cast<uint8_t>(PipeDrop::kRootMiss)) return "root_miss";
  if (code == static_cast<uint8_t>(PipeDrop::kIngressAclMiss)) return "acl_miss";
  if (code == static_cast<uint8_t>(PipeDrop::kSfcNoHop)) return "sfc_no_hop";
  if (code == static_cast<uint8_t>(PipeDrop::kSfcNoInstance)) return "sfc_no_instance";
  if (code == flow::kDropByRule) return "rule";
  if (code == flow::kDropMirrorNoBuffer) return "mirror_no_buffer";
  const std::string_view n = drop_name(code);
  return n.empty() ? "code_" + std::to_string(code) : key(n);
}

psp::Mode psp_mode(EncapMode m) {
  return m == EncapMode::kTransport ? psp::Mode::kTransport : psp::Mode::kTunnel;
}

// Transport mode sends through a kernel UDP socket, which writes the outer IP header from the socket's
// addresses: a packet's own addresses must be the hosts' outer ones (psp_actions.hpp). So every local VIP is
// config.local-pip (and remote VIPs are the peers' PIPs, checked when their SAs arrive: data_plane.hpp).
Status<std::string> check_transport_addresses(const GatewayConfig& config,
                                              const std::vector<HostPortConfig>& host_ports,
                                              const GatewayFlags& flags) {
  if (flags.inner_ip_type != flags.outer_ip_type) {
    return Err{
        std::string("--mode transport: --inner-ip-type must equal --outer-ip-type (the packet's own "
                    "IP header is the outer one)")};
  }
  auto check = [&](const net::IpAddr& vip) -> Status<std::string> {
    if (vip == *config.local_pip) return {};
    return Err{config.source + ": --mode transport: local VIP " + vip.to_string() +
               " must be config.local-pip " + config.local_pip->to_string() +
               " (the UDP socket sends from the host's own address)"};
  };
  for (const auto& vip : config.local_vips()) {
    if (auto s = check(vip); !s) return s;
  }
  for (const auto& hp : host_ports) {
    for (const auto& vip : hp.local_vips) {
      if (auto s = check(vip); !s) return s;
    }
  }
  return {};
}

// The TLS files: each flag overrides its x-sw.grpc-tls key.
control::TlsFiles tls_files(const GatewayFlags& flags, const GrpcTlsConfig& config) {
  auto pick = [](const std::string& flag, const std::string& key) { return flag.empty() ? key : flag; };
  return {pick(flags.grpc_tls_cert, config.cert), pick(flags.grpc_tls_key, config.key),
          pick(flags.grpc_tls_ca, config.ca)};
}

const char* const kNoTlsHelp =
    "the key exchange runs over mutual TLS, and no TLS material is given. Give all three of "
    "--grpc-tls-cert FILE --grpc-tls-key FILE --grpc-tls-ca FILE (or x-sw.grpc-tls {\"cert\", \"key\", "
    "\"ca\"} in the config; README.md \"Security: TLS and authorisation\" shows how to make a CA and "
    "certificates with openssl), or start with --grpc-insecure to run plaintext and unauthenticated (for "
    "peering with DOCA hardware gateways; requests are then accepted only from configured peers' addresses)";

// What start checks beyond the parser, and a reload again (the same error for the same config): the
// facts that need the flags.
Status<std::string> check_config(const GatewayConfig& config, const GatewayFlags& flags) {
  if (!config.local_pip) {
    return Err{config.source +
               ": config.local-pip is required: the outer address the PSP/UDP socket binds to"};
  }
  if (config.local_pip->family != flags.outer_ip_type) {
    return Err{config.source + ": config.local-pip " + config.local_pip->to_string() +
               " is not of --outer-ip-type " + (flags.outer_ip_type == net::IpFamily::kV4 ? "ipv4" : "ipv6")};
  }
  const std::vector<HostPortConfig> host_ports = effective_host_ports(config, flags.vf_name);
  if (flags.mode == EncapMode::kTransport) {
    if (auto s = check_transport_addresses(config, host_ports, flags); !s) return s;
  }
  for (const auto& vip : config.local_vips()) {
    if (vip.family != flags.inner_ip_type) {
      return Err{config.source + ": local VIP " + vip.to_string() + " is not of --inner-ip-type"};
    }
  }
  return {};
}

// The control core's view of the config's peers (config order).
std::vector<control::PeerPolicy> peer_policies(const GatewayConfig& config, net::IpFamily outer) {
  std::vector<control::PeerPolicy> peers;
  for (const auto& p : config.peers) {
    control::PeerPolicy policy;
    policy.name = p.remote_grpc_address.to_string();
    policy.pip = p.pip;
    // Until its SAs say otherwise, a peer's data-plane address is taken to be its gRPC host: it maps a
    // worker's stale-SPI report (a restarted peer) to the peer even before any exchange.
    if (auto pip = net::IpAddr::parse(p.remote_grpc_address.host); pip && pip->family == outer)
      policy.outer_hint = *pip;
    for (const auto& s : p.sessions) {
      for (const auto& r : s.remote_vips) policy.pairs.push_back({s.local_vip, r});
    }
    peers.push_back(std::move(policy));
  }
  return peers;
}

// Proxy ARP/NA and DHCP answers per host port: the remote VIPs of the sessions of its local VIPs.
std::vector<ResponderPolicy> responders(const GatewayConfig& config,
                                        const std::vector<HostPortConfig>& host_ports,
                                        const std::vector<std::unique_ptr<HostPortInfo>>& infos) {
  std::vector<ResponderPolicy> out;
  for (std::size_t i = 0; i < host_ports.size(); ++i) {
    ResponderPolicy rp;
    rp.gateway_mac = infos[i]->gateway_mac;
    const std::unordered_set<net::IpAddr> vips(host_ports[i].local_vips.begin(),
                                               host_ports[i].local_vips.end());
    for (const auto& peer : config.peers) {
      for (const auto& s : peer.sessions) {
        if (!vips.contains(s.local_vip)) continue;
        rp.proxied.insert(rp.proxied.end(), s.remote_vips.begin(), s.remote_vips.end());
      }
    }
    std::sort(rp.proxied.begin(), rp.proxied.end());
    rp.proxied.erase(std::unique(rp.proxied.begin(), rp.proxied.end()), rp.proxied.end());
    if (!host_ports[i].local_vips.empty()) rp.dhcp_address = host_ports[i].local_vips.front();
    rp.mtu = static_cast<uint16_t>(host_ports[i].mtu);
    out.push_back(std::move(rp));
  }
  return out;
}

// The local VIPs and their host-port index (FlowDataPlane::set_vip_ports).
std::vector<std::pair<net::IpAddr, std::size_t>> vip_ports(const std::vector<HostPortConfig>& host_ports) {
  std::vector<std::pair<net::IpAddr, std::size_t>> out;
  for (std::size_t i = 0; i < host_ports.size(); ++i) {
    for (const auto& vip : host_ports[i].local_vips) out.emplace_back(vip, i);
  }
  return out;
}

}  // namespace

PortFactory system_ports(bool udp_zero_checksum, bool whole_super_packets, uint32_t tap_queue_len) {
  PortFactory f;
  // Both directions of a flow on one worker (ports/steering.hpp): queue w of each TAP and socket w of the
  // UDP reuseport group are worker w's, and both are chosen from the flow hash's low bits. Where the kernel
  // refuses a program, its own choice stays (each direction still on one worker) and the log says why.
  auto steering = std::make_shared<std::vector<std::string>>();
  f.steering = [steering] {
    std::string s =
        "workers: both directions of a flow on one worker (TAP queue and UDP socket by flow hash)";
    if (!steering->empty()) s = "workers: flows not steered by hash (kernel refused:";
    for (const std::string& why : *steering) s += " " + why;
    return steering->empty() ? s : s + "); each direction still stays on one worker";
  };
  f.host = [steering, whole_super_packets, tap_queue_len](
               uint16_t worker, uint16_t workers, std::size_t /*index*/, const HostPortConfig& cfg,
               PortId id) -> Result<std::unique_ptr<ports::Port>, std::string> {
    ports::TapConfig tc;
    tc.name = cfg.name;
    tc.id = id;
    tc.segment_on_rx = !whole_super_packets;
    tc.mtu = cfg.mtu;
    tc.tx_queue_len = tap_queue_len;
    tc.multi_queue = workers > 1;  // one queue per worker: the kernel keeps each flow on one queue
    // GSO frames suit a workload's kernel stack; a VNF may read its port raw (AF_PACKET) and forward what
    // it reads, which a 64 KiB frame would not survive: VNF ports get one frame per write.
    tc.coalesce_tx = cfg.role == HostPortRole::kWorkload;
    auto tap = ports::TapPort::open(tc);
    if (!tap) return Err{"TAP " + tc.name + ": " + tap.error().message()};
    if (workers > 1 && worker == 0) {  // the program is the device's: one attach serves every queue
      if (auto s = ports::attach_tap_steering((*tap)->fd()); !s)
        steering->push_back("TAP " + tc.name + ": " + s.error().message());
    }
    return std::unique_ptr<ports::Port>(std::move(*tap));
  };
  // Every worker sends from the same source ports (worker 0's), so a flow's source port follows its hash
  // only.
  auto shared_source_ports = std::make_shared<std::vector<uint16_t>>();
  f.network = [udp_zero_checksum, shared_source_ports, steering](
                  uint16_t worker, uint16_t workers, const net::IpAddr& local_pip,
                  PortId id) -> Result<std::unique_ptr<ports::Port>, std::string> {
    ports::UdpConfig uc;
    uc.local = local_pip;
    uc.id = id;
    uc.reuse_port = workers > 1;
    if (worker > 0) uc.source_port_numbers = *shared_source_ports;
    // Valid UDP checksums and UDP GSO/GRO by default: the kernel refuses GSO on a zero-checksum socket, and
    // every PSP receiver (Linux, DOCA's NIC) accepts a valid checksum where spec §1 says 0. The spec's zero
    // checksum is --udp-zero-checksum (README "Speed": why not the default).
    uc.zero_checksum_tx = udp_zero_checksum;
    uc.gso = !udp_zero_checksum;
    uc.gro = true;
    auto udp = ports::UdpPort::open(uc);
    if (!udp) return Err{"UDP " + local_pip.to_string() + ":1000: " + udp.error().message()};
    if (workers > 1 && worker == 0) {  // the program is the reuseport group's: the later sockets join it
      if (auto s = ports::attach_reuseport_steering((*udp)->fd(), local_pip.family, workers); !s)
        steering->push_back("UDP: " + s.error().message());
    }
    if (worker == 0) *shared_source_ports = (*udp)->source_ports();
    return std::unique_ptr<ports::Port>(std::move(*udp));
  };
  return f;
}

Gateway::Gateway(GatewayFlags flags, GatewayConfig config, PortFactory ports)
    : flags_(std::move(flags)),
      config_(std::move(config)),
      logger_(LoggerOptions{flags_.log_level, default_timestamps()}),
      port_factory_(std::move(ports)),
      started_(std::chrono::steady_clock::now()) {}

Gateway::~Gateway() {
  stop();
}

void Gateway::log(std::string_view line, LogLevel level) const {
  logger_.log(level, line);
}

void Gateway::log_limited(std::string_view line) {
  logger_.limited(LogLevel::kInfo, line);
}

Result<std::unique_ptr<Gateway>, std::string> Gateway::create(GatewayFlags flags, GatewayConfig config,
                                                              PortFactory ports) {
  std::unique_ptr<Gateway> g(new Gateway(std::move(flags), std::move(config), std::move(ports)));
  if (auto s = g->build(); !s) return Err{s.error()};
  return g;
}

Status<std::string> Gateway::build() {
  if (auto s = check_config(config_, flags_); !s) return s;
  local_pip_ = *config_.local_pip;
  local_mac_ = config_.sw.local_mac.value_or(default_local_mac());
  admin_path_ =
      flags_.admin_socket.empty() ? "/run/psp-gateway/" + flags_.vf_name + ".sock" : flags_.admin_socket;
  host_port_cfg_ = effective_host_ports(config_, flags_.vf_name);
  resolve_mtus();
  for (std::size_t i = 0; i < std::max(kMaxHostPorts, host_port_cfg_.size()); ++i) {
    auto info = std::make_unique<HostPortInfo>();
    info->gateway_mac = default_gateway_mac(i);
    if (i < host_port_cfg_.size()) {
      info->gateway_mac = host_port_cfg_[i].mac.value_or(default_gateway_mac(i));
      info->vnf = host_port_cfg_[i].role == HostPortRole::kVnf;
    }
    host_ports_.push_back(std::move(info));
  }

  const uint16_t nworkers = static_cast<uint16_t>(std::max<uint32_t>(1, flags_.workers));
  for (uint16_t w = 0; w < nworkers; ++w) {
    auto backend = crypto::make_default_backend();
    if (!backend) return Err{std::string("no AES-GCM backend available")};
    worker_psp_.push_back(
        std::make_unique<WorkerPsp>(w, std::move(backend), key_cache_entries(flags_.max_tunnels)));
  }
  sa_epoch_ = std::make_unique<flow::EpochDomain>(nworkers);
  sas_ = std::make_unique<SaTable>(sa_capacity(flags_.max_tunnels), *sa_epoch_);

  PspContext ctx;
  ctx.sas = sas_.get();
  ctx.master_keys = &master_keys_;
  ctx.workers = &worker_psp_;
  ctx.host_ports = &host_ports_;
  ctx.local_mac = local_mac_;
  ctx.nexthop_mac = flags_.nexthop_dmac.value_or(net::MacAddr{});
  if (flags_.decap_dmac) ctx.decap_dmac = HostPortInfo::pack_mac(flags_.decap_dmac->bytes.data());
  TopologyOptions topo;
  topo.network_port = PortId{0};
  for (std::size_t i = 0; i < host_port_cfg_.size(); ++i) {
    topo.host_ports.push_back(PortId{static_cast<uint16_t>(i + 1)});
    topo.vnf.push_back(host_port_cfg_[i].role == HostPortRole::kVnf);
  }
  topo.max_host_ports = host_ports_.size();
  topo.inner = flags_.inner_ip_type;
  topo.outer = flags_.outer_ip_type;
  topo.mode = psp_mode(flags_.mode);
  topo.sample_rate = flags_.sample_rate;
  topo.sampling_pipes = true;  // pspctl sample on without --sample-rate at start: the pipes wait, empty
  topo.ingress_acl = !flags_.disable_ingress_acl;
  topo.max_tunnels = flags_.max_tunnels;
  topo.ingress_per_tunnel = static_cast<uint32_t>(control::kMaxIngressPerSession);
  topo.workers = nworkers;
  auto t = Topology::build(topo, ctx);
  if (!t) return Err{"pipeline: " + t.error()};
  topo_ = std::move(*t);
  chains_ = std::make_unique<ServiceChaining>(*topo_, host_port_cfg_, config_.sw.sfc,
                                              [this](std::string_view line) { log(line); });
  if (auto c = chains_->load(config_.sw.sfc); !c) return Err{config_.source + ": " + c.error()};

  DataPlaneOptions dpo;
  dpo.local_outer = local_pip_;
  dpo.send_vc = flags_.cookie;
  dpo.crypt_offset = flags_.effective_crypt_offset();
  dpo.mode = topo.mode;
  dpo.vip_ports = vip_ports(host_port_cfg_);
  if (flags_.perf_print.key_gen || flags_.perf_print.insertion) {
    dpo.perf = [this](std::string_view what, std::chrono::nanoseconds took, const control::VipPair& pair) {
      if ((what == "key-gen" && !flags_.perf_print.key_gen) ||
          (what == "insertion" && !flags_.perf_print.insertion)) {
        return;
      }
      log("perf: " + std::string(what) + " " + pair.local.to_string() + " -> " + pair.remote.to_string() +
          ": " + std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(took).count()) + " us");
    };
  }
  dp_ = std::make_unique<FlowDataPlane>(*topo_, *sas_, *sa_epoch_, master_keys_, worker_psp_, dpo);
  if (auto s = dp_->set_vip_ports(dpo.vip_ports); !s) return s;  // with -a: INGR_ACL's per-VIP entries

  std::vector<control::PeerPolicy> peers = peer_policies(config_, flags_.outer_ip_type);
  std::vector<std::string> addresses;
  addresses.reserve(peers.size());
  for (const auto& p : peers) addresses.push_back(p.name);
  control::TunnelManagerOptions tmo;
  tmo.local = {local_mac_, local_pip_, config_.sw.virt_cookie};
  tmo.version = flags_.psp_version;
  tmo.max_tunnels = flags_.max_tunnels;
  tmo.client_request_chunk = config_.sw.tunnels_per_request;
  tmo.debug_keys = flags_.debug_keys;
  tmo.rotation_interval = flags_.key_rotation_interval;
  tmo.log = [this](std::string_view line) { log(line); };
  tmo.on_rekey_due = [this] {
    if (slow_) slow_->schedule_rekeys();
  };
  tmo.on_refresh_due = [this] {
    if (slow_) slow_->schedule_refresh();
  };
  tm_ =
      std::make_unique<control::TunnelManager>(psp::KeyRing::with_random_key(), std::move(peers), *dp_, tmo);
  control::GrpcClientOptions gco;
  gco.deadline = config_.sw.rpc_deadline;
  gco.counters = &rpc_counters_;
  if (logger_.enabled(LogLevel::kDebug))
    gco.debug = [this](std::string_view line) { log(line, LogLevel::kDebug); };
  if (flags_.dump_pipeline.empty()) {  // --dump-pipeline opens nothing and needs no TLS
    if (auto s = build_grpc_security(gco); !s) return s;
  }
  // A channel that came back may lead to a restarted peer; a channel that came up may let a waiting
  // static connect proceed now rather than after its backoff.
  gco.on_ready = [this](control::PeerIndex peer, bool after_loss) {
    if (after_loss) (void)tm_->note_stale_peer(peer, "its gRPC channel reconnected");
    wake_static();
  };
  transport_ = std::make_unique<control::GrpcPeerClient>(std::move(addresses), gco);
  return {};
}

// No fragmentation by default (path_mtu.hpp): the tunnel's payload MTU from the uplink's, and every host
// port without a configured MTU gets it, so workloads send nothing the tunnel cannot carry whole.
void Gateway::resolve_mtus() {
  std::optional<uint32_t> uplink = config_.sw.uplink_mtu;
  std::string from = "x-sw.uplink-mtu";
  if (!uplink) {
    uplink = interface_mtu_of(local_pip_);
    from = "the interface holding " + local_pip_.to_string();
  }
  if (!uplink) {
    uplink = kDefaultUplinkMtu;
    from = "a default: no interface holds " + local_pip_.to_string() + "; x-sw.uplink-mtu sets it";
  }
  const psp::Mode mode = psp_mode(flags_.mode);
  payload_mtu_ = tunnel_payload_mtu(*uplink, mode, flags_.outer_ip_type, flags_.cookie);
  std::string ports;
  for (auto& hp : host_port_cfg_) {
    if (hp.mtu == 0) hp.mtu = payload_mtu_;
    ports += (ports.empty() ? "" : ", ") + hp.name + " " + std::to_string(hp.mtu);
  }
  log("MTU: uplink " + std::to_string(*uplink) + " (" + from + "), PSP overhead " +
      std::to_string(psp_overhead(mode, flags_.outer_ip_type, flags_.cookie)) + ": inner packets up to " +
      std::to_string(payload_mtu_) + " bytes; host port MTU " + ports);
  if (flags_.inner_ip_type == net::IpFamily::kV6 && payload_mtu_ < 1280) {
    log("MTU: " + std::to_string(payload_mtu_) + " is below IPv6's minimum of 1280: raise the uplink MTU",
        LogLevel::kWarn);
  }
}

// Mutual TLS (the default) or, with --grpc-insecure, plaintext with callers identified by source address.
// Neither given: refuse to start, saying how to fix it.
Status<std::string> Gateway::build_grpc_security(control::GrpcClientOptions& client) {
  std::vector<std::string> hosts;
  for (const auto& p : config_.peers) hosts.push_back(p.remote_grpc_address.host);
  grpc_peers_ = control::PeerDirectory(std::move(hosts));
  const control::TlsFiles files = tls_files(flags_, config_.sw.grpc_tls);
  if (flags_.grpc_insecure) {
    if (files.any()) {
      return Err{
          std::string("--grpc-insecure and TLS material (--grpc-tls-* or x-sw.grpc-tls) exclude each "
                      "other: drop one")};
    }
    if (auto ok = grpc_peers_.resolve(); !ok) return Err{"--grpc-insecure: " + ok.error().message};
    log("--grpc-insecure: the key exchange is plaintext and unauthenticated; requests are "
        "accepted from configured peers' addresses only",
        LogLevel::kWarn);
    return {};
  }
  if (!files.any()) return Err{std::string(kNoTlsHelp)};
  auto tls = load_grpc_tls(files);
  if (!tls) return Err{tls.error()};
  grpc_server_tls_ = tls->server;
  client.credentials = tls->channel;
  tls_digest_ = tls->digest;
  log("gRPC: mutual TLS with certificate " + files.cert + ", peers verified against " + files.ca);
  return {};
}

// The three files, checked (tls.hpp), as server and channel credentials; the digest of their contents
// tells a reload whether they changed.
Result<Gateway::GrpcTls, std::string> Gateway::load_grpc_tls(const control::TlsFiles& files) {
  if (!files.complete()) {
    const char* missing = files.cert.empty()  ? "--grpc-tls-cert"
                          : files.key.empty() ? "--grpc-tls-key"
                                              : "--grpc-tls-ca";
    return Err{std::string("incomplete TLS material: ") + missing +
               " is missing (cert, key and CA go together; or use --grpc-insecure)"};
  }
  auto tls = control::load_tls(files);
  if (!tls) return Err{"gRPC TLS: " + tls.error().message};
  const std::hash<std::string> h;
  const std::size_t digest = h(tls->cert_pem) ^ (h(tls->key_pem) * 31) ^ (h(tls->ca_pem) * 131);
  return GrpcTls{control::tls_server_credentials(*tls), control::tls_channel_credentials(*tls), digest};
}

Status<std::string> Gateway::open_workers() {
  const uint16_t nworkers = static_cast<uint16_t>(worker_psp_.size());
  for (uint16_t w = 0; w < nworkers; ++w) {
    WorkerConfig wc;
    wc.index = w;
    for (std::size_t i = 0; i < host_port_cfg_.size(); ++i) {
      const PortId id{static_cast<uint16_t>(i + 1)};
      auto port = port_factory_.host(w, nworkers, i, host_port_cfg_[i], id);
      if (!port) return Err{port.error()};
      wc.hosts.push_back(std::move(*port));
      if (w == 0 && !host_ports_[i]->vnf) {
        // The workload's MAC until its own traffic says otherwise: the TAP's (the VM's side of the link).
        if (auto mac = interface_mac(host_port_cfg_[i].name))
          host_ports_[i]->workload_mac.store(HostPortInfo::pack_mac(mac->bytes.data()));
      }
    }
    auto udp = port_factory_.network(w, nworkers, local_pip_, PortId{0});
    if (!udp) return Err{udp.error()};
    wc.network = std::move(*udp);
    wc.outer = {local_pip_, psp::kPspUdpPort, local_mac_};
    wc.sas = sas_.get();
    wc.payload_mtu = payload_mtu_;
    workers_.push_back(
        std::make_unique<PacketWorker>(std::move(wc), *topo_, *sa_epoch_, *worker_psp_[w], host_ports_));
  }
  if (nworkers > 1 && port_factory_.steering) log(port_factory_.steering(), LogLevel::kInfo);
  return {};
}

Status<std::string> Gateway::start() {
  if (auto s = open_workers(); !s) return s;

  SlowPathOptions so;
  so.responders = responders(config_, host_port_cfg_, host_ports_);
  so.host_port_of = [dp = dp_.get()](const net::IpAddr& vip) { return dp->host_port_of(vip); };
  so.pending_pairs = flags_.max_tunnels;
  so.sample_pcap = flags_.sample_pcap;
  so.show_rss_packets = flags_.show_rss_rx_packets;
  so.log = [this](std::string_view line) { log_limited(line); };  // packets trigger these
  so.tick = [this] { tick(); };
  so.on_sfc_probe = [this](std::span<const uint8_t> frame, PortId port) { chains_->on_probe(frame, port); };
  std::vector<PacketWorker*> ws;
  for (auto& w : workers_) ws.push_back(w.get());
  slow_ = std::make_unique<SlowPath>(ws, *tm_, *transport_, so);
  if (auto s = slow_->start(); !s) return s;
  for (auto& w : workers_) {
    if (auto s = w->start(); !s) return s;
  }

  auto grpc = control::GrpcServer::start(config_.local_grpc_address.to_string(), *tm_, grpc_options());
  if (!grpc) return Err{"gRPC on " + config_.local_grpc_address.to_string() + ": " + grpc.error().message};
  grpc_ = std::move(*grpc);

  admin::AdminServerOptions ao;
  ao.path = admin_path_;
  ao.log = [this](std::string_view line) { log(line); };
  admin_ = std::make_unique<admin::AdminServer>(ao, *this);
  if (auto s = admin_->start(); !s) return Err{"admin socket " + admin_path_ + ": " + s.error().message};

  if (auto s = start_metrics(); !s) return s;
  if (auto s = start_fleet(); !s) return s;

  transport_->connect_ahead();  // the first exchange pays no connection set-up
  if (flags_.static_tunnels) static_thread_ = std::thread([this] { run_static(); });
  log("started: " + std::to_string(workers_.size()) + " worker(s), PSP on " + local_pip_.to_string() +
      ":1000, gRPC on " + config_.local_grpc_address.to_string() +
      (grpc_server_tls_ ? " (mutual TLS)" : " (plaintext, unauthenticated: --grpc-insecure)") + ", admin " +
      admin_path_);
  if (flags_.maintain_order) log(std::string(kMaintainOrderNote));
  return {};
}

control::GrpcServerOptions Gateway::grpc_options() {
  control::GrpcServerOptions gso;
  gso.tls = grpc_server_tls_;
  gso.peers = grpc_peers_;
  gso.log = [this](std::string_view line) { log(line); };
  gso.counters = &rpc_counters_;
  if (logger_.enabled(LogLevel::kDebug))
    gso.debug = [this](std::string_view line) { log(line, LogLevel::kDebug); };
  return gso;
}

// Prometheus /metrics: --metrics-address, else x-sw.metrics-address, else off.
Status<std::string> Gateway::start_metrics() {
  std::optional<GrpcAddress> addr = config_.sw.metrics_address;
  if (!flags_.metrics_address.empty()) addr = parse_listen_address(flags_.metrics_address);
  if (!addr) return {};
  admin::MetricsServerOptions mo;
  mo.host = addr->host;
  mo.port = addr->port;
  mo.max_tunnels = flags_.metrics_max_tunnels;
  mo.snapshot = [this] { return snapshot(); };
  metrics_ = std::make_unique<admin::MetricsServer>(std::move(mo));
  if (auto s = metrics_->start(); !s) return Err{"--metrics-address: " + s.error()};
  log("metrics on http://" + GrpcAddress{addr->host, metrics_->port()}.to_string() + "/metrics");
  return {};
}

// Static mode (-z): connect every peer (retrying with backoff, woken early when a channel comes up), then
// keep watching: a tunnel that is gone later (closed, aged out, lost) is connected again within a second.
// Restarted peers are refreshed by the slow path (note_stale_peer).
void Gateway::run_static() {
  control::StaticOptions opts;
  opts.should_stop = [this] { return stopping_.load(); };
  opts.sleep = [this](control::Clock::duration d) { wait_static(d); };
  bool reported = false;
  while (!stopping_.load()) {
    const auto start = std::chrono::steady_clock::now();
    auto report = tm_->connect_all_static(*transport_, opts);
    if (!reported && report.failed.empty() && !stopping_.load()) {
      reported = true;
      const auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
      log("static tunnels: " + std::to_string(tm_->peer_count()) + " peer(s) connected in " +
          std::to_string(report.rounds) + " round(s), " + std::to_string(ms.count()) + " ms");
    }
    slow_->wake();
    wait_static(kStaticRecheck);
  }
}

void Gateway::wait_static(std::chrono::steady_clock::duration d) {
  std::unique_lock lock(static_mu_);
  static_cv_.wait_for(lock, d, [this] { return static_wake_ || stopping_.load(); });
  static_wake_ = false;
}

void Gateway::wake_static() {
  {
    std::lock_guard lock(static_mu_);
    static_wake_ = true;
  }
  static_cv_.notify_all();
}

void Gateway::stop() {
  if (stopping_.exchange(true)) return;
  if (fleet_) fleet_->stop();  // first: our record goes (lease revoked), no directory change arrives after
  if (transport_) transport_->stop_watching();  // its callbacks reach into the parts stopped below
  wake_static();
  if (metrics_) metrics_->stop();
  if (admin_) admin_->stop();
  if (grpc_) grpc_->shutdown();
  if (static_thread_.joinable()) static_thread_.join();
  if (slow_) slow_->stop();
  for (auto& w : workers_) w->stop();
}

void Gateway::tick() {
  dp_->reclaim();
  chains_->tick(std::chrono::steady_clock::now(),
                [this](PortId port, std::span<const uint8_t> frame) { return slow_->transmit(port, frame); });
  (void)tm_->maintain_rotation();  // the slow path starts the re-keys it makes due right after this tick
  expire_idle_tunnels();
  report_gone_ports();
  if (!flags_.stat_print) return;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_stat_print_) return;
  next_stat_print_ = now + kStatPrintPeriod;
  print_stats();
}

void Gateway::expire_idle_tunnels() {
  if (flags_.tunnel_idle_timeout.count() == 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_idle_check_) return;
  next_idle_check_ = now + idle_check_period(flags_.tunnel_idle_timeout);
  (void)tm_->expire_idle(dp_->activity(), flags_.tunnel_idle_timeout);
}

// A TAP deleted under the gateway (ip link del): its worker stopped polling it and counts what it can no
// longer deliver as device_gone. One clear line, not one per frame; the rest of the gateway runs on.
void Gateway::report_gone_ports() {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_gone_check_) return;
  next_gone_check_ = now + std::chrono::seconds(1);
  const auto names = port_names();
  gone_reported_.resize(names.size(), false);
  for (const auto& w : worker_stats()) {
    for (std::size_t i = 0; i < w.ports.size() && i < names.size(); ++i) {
      if (gone_reported_[i] || w.ports[i].dropped(ports::DropReason::kDeviceGone) == 0) continue;
      gone_reported_[i] = true;
      log("port " + names[i] +
              ": the device was removed under the gateway; its frames are dropped (counted as device_gone) "
              "until the gateway is restarted",
          LogLevel::kError);
    }
  }
}

void Gateway::print_stats() {
  std::ostringstream out;
  const admin::StatsSnapshot snap = snapshot();
  for (const auto& p : snap.pipes) {
    out << "  " << p.name << ": hits " << p.hits << " misses " << p.misses;
    if (!p.drops.empty()) {
      json reasons = json::object();
      for (const auto& d : p.drops) reasons[d.name] = d.value;
      out << " drops " << reasons.dump();
    }
    out << '\n';
  }
  for (const auto& t : snap.tunnels) {
    out << "  tunnel " << t.local_vip << " -> " << t.remote_vip << ": tx " << t.tx_packets << " packets\n";
  }
  for (const auto& p : snap.peers) {
    out << "  peer " << p.name << ": rpcs ok " << p.rpcs_ok << " refused " << p.rpcs_refused << " failed "
        << p.rpcs_failed << '\n';
  }
  const std::string text = out.str();
  if (text == last_stats_) return;  // DOCA's --stat-print: only when something changed
  last_stats_ = text;
  std::cout << "== counters\n" << text << std::flush;
}

std::vector<WorkerStats> Gateway::worker_stats() const {
  std::vector<WorkerStats> out;
  for (const auto& w : workers_) out.push_back(w->stats());
  return out;
}

std::vector<std::string> Gateway::port_names() const {
  std::vector<std::string> names{"network"};
  std::lock_guard lock(port_cfg_mu_);                              // a reload changes the slots
  for (const auto& hp : host_port_cfg_) names.push_back(hp.name);  // "" for a free slot
  return names;
}

json Gateway::status_json() const {
  std::lock_guard lock(reload_mu_);  // config_
  const auto up =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_);
  return {{"instance", flags_.vf_name},
          {"version", kVersion},
          {"pid", ::getpid()},
          {"uptime_s", up.count()},
          {"mode", flags_.mode == EncapMode::kTunnel ? "tunnel" : "transport"},
          {"psp_version", psp::to_string(flags_.psp_version)},
          {"local_pip", local_pip_.to_string()},
          {"grpc_address", config_.local_grpc_address.to_string()},
          {"workers", workers_.size()},
          {"tunnels", dp_->egress_count()},
          {"peers", config_.peers.size() + fleet_peers_.size()},
          {"fleet", fleet_json()},
          {"key_generation", master_keys_.generation()},
          {"sample_rate", topo_->sample_rate()},
          {"rekeys_pending", tm_->rekeys_pending()}};
}

json Gateway::tunnels_json() const {
  std::map<control::VipPair, FlowDataPlane::TunnelCounters> counters;
  for (const auto& t : dp_->tunnel_counters()) counters.emplace(t.pair, t);
  json list = json::array();
  std::vector<std::string> names;  // one lookup per peer, not per session
  for (std::size_t i = 0; i < tm_->peer_count(); ++i) names.push_back(tm_->peer_name(i));
  for (const auto& s : tm_->sessions()) {
    json t = {{"local_vip", s.pair.local.to_string()},
              {"remote_vip", s.pair.remote.to_string()},
              {"peer", s.peer < names.size() ? names[s.peer] : "?"},
              {"state", std::string(control::to_string(s.state))},
              {"rx_spis", s.ingress_spis}};
    if (s.egress_spi) t["tx_spi"] = *s.egress_spi;
    if (s.egress_outer_ip) t["remote_pip"] = s.egress_outer_ip->to_string();
    const auto it = counters.find(s.pair);
    if (it != counters.end() && it->second.egress) t["tx_packets"] = it->second.tx_packets;
    t["rx_packets"] = it != counters.end() ? it->second.rx_packets : 0;
    list.push_back(std::move(t));
  }
  return {{"tunnels", list}};
}

// The one place statistics are gathered: pspctl's counters/peers, --stat-print and /metrics render this.
admin::StatsSnapshot Gateway::snapshot() const {
  admin::StatsSnapshot snap;
  snap.uptime_s = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_).count());
  snap.key_generation = master_keys_.generation();
  if (fleet_) {
    const fleet::FleetStatus f = fleet_->status();
    snap.fleet = {true,
                  f.store.state == fleet::StoreState::kConnected,
                  f.registration.registered,
                  f.store.revision,
                  f.store.hosts,
                  f.store.vips,
                  f.store.resyncs,
                  f.store.reconnects,
                  f.store.bad_records};
  }
  snap.pipes = pipe_snapshots();
  const auto stats = worker_stats();
  snap.ports = port_snapshots(stats);
  fill_psp_snapshot(stats, snap);
  for (const auto& t : dp_->tunnel_counters()) {
    if (!t.egress) continue;  // as before: a tunnel is a pair with an egress SA
    snap.tunnels.push_back(
        {t.pair.local.to_string(), t.pair.remote.to_string(), t.spi, t.tx_packets, t.rx_packets});
  }
  snap.peers = peer_snapshots();
  snap.sfc = chains_->snapshot(snap.ports);
  snap.rpcs_unattributed = rpc_counters_.unattributed();
  return snap;
}

std::vector<admin::PipeSnapshot> Gateway::pipe_snapshots() const {
  std::vector<admin::PipeSnapshot> pipes;
  const flow::Pipeline& pl = topo_->pipeline();
  for (std::size_t i = 0; i < pl.pipe_count(); ++i) {
    const flow::PipeId id{static_cast<uint16_t>(i)};
    auto st = pl.pipe_stats(id);
    if (!st) continue;
    admin::PipeSnapshot p{
        std::string(pl.pipe_name(id)), st->entries, st->hits, st->misses, st->mirrored, {}, {}};
    for (const auto& [code, n] : st->drops) p.drops.push_back({drop_label(code), n});
    if (p.name == "SYND_STATS") {  // every syndrome, zeros included, so scripts can diff counts
      std::map<std::string, uint64_t> synd{{drop_label(static_cast<uint8_t>(PipeDrop::kIngressAclMiss)), 0}};
      for (uint8_t r = static_cast<uint8_t>(psp::DropReason::kNone) + 1;
           r < static_cast<uint8_t>(psp::DropReason::kCount); ++r) {
        synd[drop_label(r)] = 0;
      }
      for (const auto& d : p.drops) synd[d.name] = d.value;
      for (const auto& [name, n] : synd) p.syndromes.push_back({name, n});
    }
    pipes.push_back(std::move(p));
  }
  return pipes;
}

std::vector<admin::PortSnapshot> Gateway::port_snapshots(const std::vector<WorkerStats>& stats) const {
  std::vector<admin::PortSnapshot> out;
  const auto names = port_names();
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i].empty()) continue;  // a free slot: its port was removed by a reload
    ports::PortStats sum;
    for (const auto& w : stats) {
      if (i >= w.ports.size()) continue;
      sum.rx_packets += w.ports[i].rx_packets;
      sum.rx_bytes += w.ports[i].rx_bytes;
      sum.tx_packets += w.ports[i].tx_packets;
      sum.tx_bytes += w.ports[i].tx_bytes;
      for (std::size_t r = 0; r < sum.drops.size(); ++r) sum.drops[r] += w.ports[i].drops[r];
    }
    out.push_back({names[i], sum.rx_packets, sum.rx_bytes, sum.tx_packets, sum.tx_bytes, sum.total_drops()});
  }
  return out;
}

void Gateway::fill_psp_snapshot(const std::vector<WorkerStats>& stats, admin::StatsSnapshot& snap) const {
  psp::Counters psp_sum;
  psp::KeyCacheStats cache;
  uint64_t cpu_drops = 0, pool_empty = 0, resubmit_waits = 0, unwrap_failed = 0, segment_failed = 0;
  TooBigCounters too_big;
  for (const auto& w : stats) {
    pool_empty += w.pool_empty;
    resubmit_waits += w.resubmit_waits;
    unwrap_failed += w.unwrap_failures;
    segment_failed += w.segment_failures;
    too_big.icmp_sent += w.too_big.icmp_sent;
    too_big.fragmented += w.too_big.fragmented;
    too_big.rate_limited += w.too_big.rate_limited;
    too_big.dropped += w.too_big.dropped;
    psp_sum += w.psp;
    cache.hits += w.key_cache.hits;
    cache.misses += w.key_cache.misses;
    cache.stale += w.key_cache.stale;
    cache.unknown += w.key_cache.unknown;
    cache.unissued += w.key_cache.unissued;
    cache.reused += w.key_cache.reused;
    cpu_drops += w.cpu_queue_drops;
  }
  snap.psp = psp_counts(psp_sum);
  snap.psp.insert(snap.psp.end(), {{"key_cache_hits", cache.hits},
                                   {"key_cache_misses", cache.misses},
                                   {"key_cache_stale", cache.stale},
                                   {"key_cache_unissued", cache.unissued},
                                   {"key_cache_reused", cache.reused}});
  snap.psp_drops = psp_drop_counts(psp_sum);
  const SlowPathStats sp = slow_ ? slow_->stats() : SlowPathStats{};
  snap.slow_path = {{"held", sp.held},
                    {"resubmitted", sp.resubmitted},
                    {"dropped_no_route", sp.dropped_no_route},
                    {"dropped_wrong_port", sp.dropped_wrong_port},
                    {"dropped_backoff", sp.dropped_backoff},
                    {"dropped_hold_full", sp.dropped_hold_full},
                    {"dropped_exchange_failed", sp.dropped_exchange_failed},
                    {"dropped_ring_full", sp.dropped_ring_full},
                    {"pending_full", sp.pending_full},
                    {"dropped_cpu_queue_full", cpu_drops},
                    {"dropped_pool_empty", pool_empty},
                    {"resubmit_pool_waits", resubmit_waits},
                    {"dropped_unwrap_failed", unwrap_failed},
                    {"dropped_segment_failed", segment_failed},
                    {"exchanges_started", sp.exchanges_started},
                    {"exchanges_ok", sp.exchanges_ok},
                    {"exchanges_failed", sp.exchanges_failed},
                    {"exceptions_answered", sp.exceptions_answered},
                    {"exceptions_ignored", sp.exceptions_ignored},
                    {"samples", sp.samples},
                    {"samples_not_written", sp.samples_not_written},
                    {"rekeys", sp.rekeys},
                    {"stale_peer_reports", sp.stale_peer_reports},
                    {"refreshes", sp.refreshes},
                    {"rekeys_failed", sp.rekeys_failed}};
  // Workload packets larger than the tunnel carries (mtu_guard.hpp), answered by the workers themselves.
  snap.slow_path.insert(snap.slow_path.end(), {{"too_big_icmp_sent", too_big.icmp_sent},
                                               {"too_big_fragmented", too_big.fragmented},
                                               {"too_big_rate_limited", too_big.rate_limited},
                                               {"too_big_dropped", too_big.dropped}});
}

namespace {

// One peer's RPC outcomes: per code (non-zero only), and summed as ok / refused / failed.
void fill_rpc_snapshot(const control::PeerRpcCounts& c, admin::PeerSnapshot& p) {
  auto add = [&](const std::array<uint64_t, control::kRpcCodes>& by_code,
                 std::vector<admin::NamedCount>& out) {
    for (std::size_t code = 0; code < by_code.size(); ++code) {
      if (by_code[code] == 0) continue;
      out.push_back({std::string(control::rpc_code_name(static_cast<int>(code))), by_code[code]});
      if (code == 0) {
        p.rpcs_ok += by_code[code];
      } else if (control::rpc_code_is_refusal(static_cast<int>(code))) {
        p.rpcs_refused += by_code[code];
      } else {
        p.rpcs_failed += by_code[code];
      }
    }
  };
  add(c.sent, p.rpcs_sent);
  add(c.received, p.rpcs_received);
  p.last_error = c.last_error;
}

}  // namespace

// Peers with their tunnels counted in one pass over the sessions (not one pass per peer).
std::vector<admin::PeerSnapshot> Gateway::peer_snapshots() const {
  std::vector<admin::PeerSnapshot> out(tm_->peer_count());
  for (const auto& s : tm_->sessions()) {
    if (s.peer >= out.size()) continue;
    out[s.peer].tunnels += s.state == control::PairState::kConnected ? 1 : 0;
    out[s.peer].pending += s.state == control::PairState::kInFlight ? 1 : 0;
  }
  const std::vector<control::PeerRpcCounts> rpcs = rpc_counters_.snapshot();
  std::vector<admin::PeerSnapshot> configured;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (tm_->removed(i)) continue;  // reloaded away: its slot stays, empty (tunnel_manager.hpp)
    if (i < rpcs.size()) fill_rpc_snapshot(rpcs[i], out[i]);
    const control::PeerPolicy policy = tm_->peer(i);
    out[i].name = policy.name;
    out[i].state = out[i].tunnels == policy.pairs.size() ? "connected"
                   : out[i].tunnels > 0                  ? "partial"
                                                         : "idle";
    if (auto pip = tm_->bound_pip(i)) out[i].pip = pip->to_string();  // README: PIP binding
    configured.push_back(std::move(out[i]));
  }
  return configured;
}

std::string Gateway::dump_pipeline(std::string_view format) const {
  const auto opts = topo_->dump_options(port_names());
  return format == "json" ? topo_->pipeline().to_json(opts) : topo_->pipeline().to_mermaid(opts);
}

// pspctl sample on|off [--rate N]: {"on": bool, "rate": N}. On without a rate: the last rate in use, else
// --sample-rate's, else kDefaultSampleRate. The same pipes and semantics as --sample-rate
// (Topology::set_sampling).
admin::AdminResult Gateway::sample(const json& args) {
  if (!args.contains("on") || !args["on"].is_boolean())
    return admin::admin_fail(admin::AdminErrc::kBadArgs, "sample: \"on\" (true or false) is required");
  const bool on = args["on"].get<bool>();
  uint32_t rate = 0;
  if (on) {
    rate = last_sample_rate_.load() != 0 ? last_sample_rate_.load()
           : flags_.sample_rate != 0     ? flags_.sample_rate
                                         : kDefaultSampleRate;
    if (args.contains("rate")) {
      const json& r = args["rate"];
      if (!r.is_number_integer() || r.get<int64_t>() < 1 || r.get<int64_t>() > kMaxSampleRateLog2) {
        return admin::admin_fail(
            admin::AdminErrc::kBadArgs,
            "sample: rate is N in \"1 in 2^N packets\", 1.." + std::to_string(kMaxSampleRateLog2));
      }
      rate = args["rate"].get<uint32_t>();
    }
  }
  if (auto s = topo_->set_sampling(rate); !s) return admin::admin_fail(admin::AdminErrc::kFailed, s.error());
  if (rate != 0) last_sample_rate_.store(rate);
  log(rate == 0 ? std::string("sampling off")
                : "sampling on: 1 in " + std::to_string(uint64_t{1} << rate) + " packets (rate " +
                      std::to_string(rate) + ")");
  return json{{"sampling", rate != 0}, {"rate", rate}};
}

// ---------------------------------------------------------------------------------------------------
// Live reload (reload.hpp says what changes live and what needs a restart).

Result<std::string, std::string> Gateway::reload() {
  auto next = load_config(flags_.config_path, {});
  if (!next) {
    std::string line = "reload refused, the running config stays: " + next.error().message;
    log(line, LogLevel::kError);
    return Err{std::move(line)};
  }
  return reload(std::move(*next));
}

Result<std::string, std::string> Gateway::reload(GatewayConfig next) {
  std::lock_guard lock(reload_mu_);
  auto refuse = [this](const std::string& why) -> Result<std::string, std::string> {
    std::string line = "reload refused, the running config stays: " + why;
    log(line, LogLevel::kError);
    return Err{std::move(line)};
  };
  if (auto s = check_config(next, flags_); !s) return refuse(s.error());
  // Fleet mode: the directory's peers are paired with the new config's local VIPs.
  std::vector<PeerConfig> next_fleet =
      fleet_ ? fleet_peers(fleet_view_, next, flags_.outer_ip_type) : std::vector<PeerConfig>{};
  const ConfigDiff diff =
      diff_config(with_peers(config_, fleet_peers_), with_peers(next, next_fleet), flags_);
  if (!diff.restart.empty()) {
    std::string keys;
    for (const auto& k : diff.restart) keys += (keys.empty() ? "" : "; ") + k;
    return refuse(next.source + ": needs a restart (systemctl restart): " + keys);
  }
  // Everything that can fail is checked before anything changes: the TLS files, the peers' addresses.
  std::optional<GrpcTls> tls;
  if (grpc_server_tls_) {
    const control::TlsFiles files = tls_files(flags_, next.sw.grpc_tls);
    if (!files.any()) return refuse(kNoTlsHelp);
    auto loaded = load_grpc_tls(files);
    if (!loaded) return refuse(loaded.error());
    if (diff.tls || loaded->digest != tls_digest_) tls = std::move(*loaded);
  }
  if (!grpc_server_tls_ && tls_files(flags_, next.sw.grpc_tls).any()) {
    return refuse(
        "--grpc-insecure and TLS material (--grpc-tls-* or x-sw.grpc-tls) exclude each other: drop one");
  }
  std::vector<std::string> hosts;
  for (const auto& p : next.peers) hosts.push_back(p.remote_grpc_address.host);
  if (!grpc_server_tls_) {
    control::PeerDirectory check(hosts);
    if (auto ok = check.resolve(); !ok) return refuse("--grpc-insecure: " + ok.error().message);
  }
  for (const auto& name : diff.ports.removed) {
    if (const std::string users = chains_->port_users(name); !users.empty()) {
      std::string why = next.source;
      why += ": host port '";
      why += name;
      why += "' is removed but service chains use it (";
      why += users;
      why += "): delete them with pspctl sfc first";
      return refuse(why);
    }
  }
  if (diff.empty() && !tls) return std::string("reloaded " + next.source + ": no change");
  auto added = open_host_ports(next, diff);
  if (!added) return refuse(added.error());
  apply_reload(with_peers(next, next_fleet), diff, std::move(*added));
  fleet_peers_ = std::move(next_fleet);
  if (tls) apply_tls(*tls);
  config_ = std::move(next);
  if (fleet_) {  // our VIPs may have moved: the fleet learns it from our record
    fleet_->update_self(own_record(fleet_host_, config_, effective_host_ports(config_, flags_.vf_name),
                                   local_pip_, static_cast<uint16_t>(grpc_port())));
  }
  const std::string line =
      "reloaded " + config_.source + ": " + diff.summary() + (tls && !diff.tls ? ", TLS material" : "");
  log(line);
  wake_static();  // -z: new peers are connected now, not at the next recheck
  return line;
}

Result<std::vector<Gateway::NewHostPort>, std::string> Gateway::open_host_ports(const GatewayConfig& next,
                                                                                const ConfigDiff& diff) {
  std::vector<NewHostPort> out;
  if (diff.ports.added.empty()) return out;
  std::vector<std::size_t> free;
  for (std::size_t i = 0; i < host_port_cfg_.size(); ++i) {
    if (host_port_cfg_[i].name.empty()) free.push_back(i);
  }
  for (std::size_t i = host_port_cfg_.size(); i < host_ports_.size(); ++i) free.push_back(i);
  if (free.size() < diff.ports.added.size()) {
    return Err{next.source + ": x-sw.host-ports: " + std::to_string(diff.ports.added.size()) +
               " new port(s), room for " + std::to_string(free.size()) + " (at most " +
               std::to_string(host_ports_.size()) + " host ports at once)"};
  }
  const auto next_ports = effective_host_ports(next, flags_.vf_name);
  const uint16_t nworkers = static_cast<uint16_t>(workers_.size());
  for (const auto& name : diff.ports.added) {
    NewHostPort np;
    np.slot = free[out.size()];
    np.cfg = *std::find_if(next_ports.begin(), next_ports.end(),
                           [&](const HostPortConfig& p) { return p.name == name; });
    if (np.cfg.mtu == 0) np.cfg.mtu = payload_mtu_;
    const PortId id{static_cast<uint16_t>(np.slot + 1)};
    for (uint16_t w = 0; w < nworkers; ++w) {
      auto port = port_factory_.host(w, nworkers, np.slot, np.cfg, id);
      if (!port) return Err{"x-sw.host-ports '" + name + "': " + port.error()};  // out closes the others
      np.queues.push_back(std::move(*port));
    }
    out.push_back(std::move(np));
  }
  return out;
}

// New ports: served (their HostPortInfo, the workers' queues, ROOT/SFC_ENTRY entries) before any VIP is
// behind them; their VIPs follow in apply_reload.
void Gateway::add_host_ports(std::vector<NewHostPort> ports) {
  for (auto& np : ports) {
    HostPortInfo& info = *host_ports_[np.slot];
    info.gateway_mac = np.cfg.mac.value_or(default_gateway_mac(np.slot));
    info.vnf = np.cfg.role == HostPortRole::kVnf;
    info.workload_mac.store(0);
    if (!info.vnf) {
      if (auto mac = interface_mac(np.cfg.name))
        info.workload_mac.store(HostPortInfo::pack_mac(mac->bytes.data()));
    }
    for (std::size_t w = 0; w < workers_.size(); ++w) {
      if (!workers_[w]->set_host_port(np.slot, std::move(np.queues[w])))
        log("reload: worker " + std::to_string(w) + " is slow to take port " + np.cfg.name, LogLevel::kWarn);
    }
    {
      std::lock_guard lock(port_cfg_mu_);
      if (host_port_cfg_.size() <= np.slot) host_port_cfg_.resize(np.slot + 1);
      host_port_cfg_[np.slot] = np.cfg;
      host_port_cfg_[np.slot].local_vips.clear();  // apply_reload puts them behind it
    }
    const PortId id{static_cast<uint16_t>(np.slot + 1)};
    if (auto s = topo_->add_host_port(np.slot, id, info.vnf); !s)
      log("reload: host port " + np.cfg.name + ": " + s.error(), LogLevel::kError);
    log("reload: host port " + np.cfg.name + " added (port " + std::to_string(id.value()) + ", MTU " +
        std::to_string(np.cfg.mtu) + ")");
  }
}

// Removed ports (their tunnels already closed): out of the pipeline, then out of every worker (each
// closes its queue: the TAP goes with the last), and once no batch can still be on their entries, their
// slot is free for a later reload.
void Gateway::remove_host_ports(const std::vector<std::string>& names) {
  for (const auto& name : names) {
    auto it = std::find_if(host_port_cfg_.begin(), host_port_cfg_.end(),
                           [&](const HostPortConfig& p) { return p.name == name; });
    if (it == host_port_cfg_.end()) continue;
    const auto slot = static_cast<std::size_t>(it - host_port_cfg_.begin());
    topo_->remove_host_port(slot);
    for (std::size_t w = 0; w < workers_.size(); ++w) {
      if (!workers_[w]->set_host_port(slot, nullptr))
        log("reload: worker " + std::to_string(w) + " is slow to close port " + name, LogLevel::kWarn);
    }
    topo_->pipeline().synchronize();
    host_ports_[slot]->workload_mac.store(0);
    std::lock_guard lock(port_cfg_mu_);
    *it = HostPortConfig{};
    log("reload: host port " + name + " removed");
  }
}

std::vector<HostPortConfig> Gateway::by_slot(const std::vector<HostPortConfig>& ports) const {
  std::vector<HostPortConfig> out(host_port_cfg_.size());
  for (std::size_t i = 0; i < host_port_cfg_.size(); ++i) {
    if (host_port_cfg_[i].name.empty()) continue;
    auto it = std::find_if(ports.begin(), ports.end(),
                           [&](const HostPortConfig& p) { return p.name == host_port_cfg_[i].name; });
    if (it == ports.end()) continue;  // being removed
    out[i] = host_port_cfg_[i];       // its resolved MTU (role, MTU and MAC are the same: reload.hpp)
    out[i].local_vips = it->local_vips;
  }
  return out;
}

// Make before break: new ports are served and new VIPs reach their ports before the control core may
// install their tunnels; removed VIPs and ports leave only after their tunnels are closed. Tunnels the
// diff does not name are not touched.
void Gateway::apply_reload(const GatewayConfig& next, const ConfigDiff& diff,
                           std::vector<NewHostPort> added) {
  add_host_ports(std::move(added));
  const auto next_ports = by_slot(effective_host_ports(next, flags_.vf_name));
  auto both = vip_ports(host_port_cfg_);
  for (const auto& vp : vip_ports(next_ports)) {
    if (std::find(diff.vips.added.begin(), diff.vips.added.end(), vp.first) != diff.vips.added.end())
      both.push_back(vp);
  }
  if (auto s = dp_->set_vip_ports(both); !s) log("reload: " + s.error(), LogLevel::kError);
  const control::ReconfigureReport r =
      tm_->reconfigure(peer_policies(next, flags_.outer_ip_type), diff.vips.moved);
  if (auto s = dp_->set_vip_ports(vip_ports(next_ports)); !s) log("reload: " + s.error(), LogLevel::kError);
  if (slow_) slow_->set_responders(responders(next, next_ports, host_ports_));
  remove_host_ports(diff.ports.removed);
  // Both sides: the peers (removed ones too, before their channels go) close their halves.
  for (const auto& line : tm_->notify_closed(r.closed, *transport_)) log("reload: " + line, LogLevel::kWarn);
  {
    std::lock_guard lock(port_cfg_mu_);
    host_port_cfg_ = next_ports;
  }
  chains_->set_ports(next_ports);

  // The gRPC sides index peers as the tunnel manager does (removed slots stay, empty).
  std::vector<std::optional<std::string>> addresses(r.peer_count);
  std::vector<std::string> hosts(r.peer_count);
  for (std::size_t i = 0; i < next.peers.size(); ++i) {
    addresses[r.index[i]] = next.peers[i].remote_grpc_address.to_string();
    hosts[r.index[i]] = peer_identity(next.peers[i]);
  }
  transport_->set_peers(addresses);
  grpc_peers_ = control::PeerDirectory(std::move(hosts));
  if (!grpc_server_tls_) (void)grpc_peers_.resolve();  // checked above
  if (grpc_) grpc_->set_peers(grpc_peers_);
  if (r.sessions_closed > 0) {
    log("reload: closed " + std::to_string(r.sessions_closed) +
        " tunnel(s) of removed peers, sessions or VIPs, on both sides where the peer answers CloseTunnels");
  }
}

// ---------------------------------------------------------------------------------------------------
// Fleet mode (fleet_mode.hpp, README "Fleet mode").

Status<std::string> Gateway::start_fleet() {
  auto settings = fleet_settings(flags_, config_);
  if (!settings) return Err{settings.error()};
  if (!*settings) return {};
  fleet::FleetOptions fo;
  fo.etcd = (*settings)->etcd;
  fo.prefix = (*settings)->prefix;
  fleet_host_ = (*settings)->host;
  fo.self = own_record(fleet_host_, config_, host_port_cfg_, local_pip_, static_cast<uint16_t>(grpc_port()));
  fo.vip_family = flags_.inner_ip_type;
  fo.log = [this](std::string_view line) { log(line); };
  fo.on_change = [this](const fleet::FleetView& v) { apply_fleet(v); };
  auto f = fleet::Fleet::create(std::move(fo));
  if (!f) return Err{"fleet mode: " + f.error().message};
  fleet_ = std::move(*f);
  fleet_->start();
  log("fleet mode: host " + fleet_host_ + ", store " + (*settings)->etcd.endpoints.front() +
      ((*settings)->etcd.endpoints.size() > 1
           ? " (+" + std::to_string((*settings)->etcd.endpoints.size() - 1) + ")"
           : "") +
      ", prefix " + (*settings)->prefix);
  return {};
}

// A directory change: its peers replace the previous ones, applied like a reload (tunnels of pairs that
// moved to another host are closed; the next packet re-creates them with the new host).
void Gateway::apply_fleet(const fleet::FleetView& view) {
  std::lock_guard lock(reload_mu_);
  if (stopping_) return;
  std::vector<PeerConfig> peers = fleet_peers(view, config_, flags_.outer_ip_type);
  for (const auto& p : view.peers) {
    if (auto a = parse_grpc_address(p.record.grpc_address, false))
      fleet_identity_[a->to_string()] = p.record.effective_identity();
  }
  const GatewayConfig before = with_peers(config_, fleet_peers_);
  const GatewayConfig after = with_peers(config_, peers);
  const ConfigDiff diff = diff_config(before, after, flags_);
  fleet_peers_ = std::move(peers);
  fleet_view_ = view;
  if (diff.empty()) return;
  apply_reload(after, diff, {});  // peers only: no host port is added
  log("fleet: directory at revision " + std::to_string(view.revision) + ": " +
      std::to_string(fleet_peers_.size()) + " peer host(s); " + diff.summary());
}

std::string Gateway::peer_identity(const PeerConfig& peer) const {
  const auto it = fleet_identity_.find(peer.remote_grpc_address.to_string());
  const bool from_fleet = std::any_of(fleet_peers_.begin(), fleet_peers_.end(), [&](const PeerConfig& p) {
    return p.remote_grpc_address == peer.remote_grpc_address;
  });
  return from_fleet && it != fleet_identity_.end() ? it->second : peer.remote_grpc_address.host;
}

json Gateway::fleet_json() const {
  if (!fleet_) return json{{"enabled", false}};
  const fleet::FleetStatus s = fleet_->status();
  return json{{"enabled", true},
              {"host", s.host},
              {"store", std::string(fleet::to_string(s.store.state))},
              {"endpoint", s.endpoint},
              {"registered", s.registration.registered},
              {"revision", s.store.revision},
              {"directory_hosts", s.store.hosts},
              {"directory_vips", s.store.vips},
              {"bad_records", s.store.bad_records},
              {"resyncs", s.store.resyncs},
              {"reconnects", s.store.reconnects},
              {"last_error", s.store.last_error.empty() ? s.registration.last_error : s.store.last_error}};
}

// New TLS material: the client's channels are remade, and a second gRPC server with the new credentials
// starts on the same address (SO_REUSEPORT) before the old one stops (make before break: a peer's
// request is always answered by one of them).
void Gateway::apply_tls(const GrpcTls& tls) {
  grpc_server_tls_ = tls.server;
  tls_digest_ = tls.digest;
  transport_->set_credentials(tls.channel);
  if (!grpc_) return;
  control::GrpcServerOptions gso = grpc_options();
  const std::string address =
      GrpcAddress{config_.local_grpc_address.host, static_cast<uint16_t>(grpc_->port())}.to_string();
  auto fresh = control::GrpcServer::start(address, *tm_, std::move(gso));
  if (!fresh) {
    log("reload: gRPC with the new TLS material on " + address + ": " + fresh.error().message +
            "; the old material stays in use for incoming requests",
        LogLevel::kError);
    return;
  }
  std::swap(grpc_, *fresh);
  (*fresh)->shutdown();
  log("reload: gRPC uses the new TLS material");
}

admin::AdminResult Gateway::handle(std::string_view cmd, const json& args) {
  if (cmd == admin::cmd::kStatus) return status_json();
  if (cmd == admin::cmd::kTunnels) return tunnels_json();
  if (cmd == admin::cmd::kCounters) return admin::counters_json(snapshot());
  if (cmd == admin::cmd::kSample) return sample(args);
  if (cmd == admin::cmd::kReload) {
    auto r = reload();
    if (!r) return admin::admin_fail(admin::AdminErrc::kFailed, r.error());
    return json{{"reloaded", true}, {"summary", *r}};
  }
  if (cmd == admin::cmd::kPeers) return admin::peers_json(snapshot());
  if (cmd == admin::cmd::kSfc) return chains_->handle(args, port_snapshots(worker_stats()));
  if (cmd == admin::cmd::kPipeline) {
    const std::string format = args.value("format", "mermaid");
    if (format == "mermaid") return json(dump_pipeline(format));
    if (format == "json") return json::parse(dump_pipeline(format));
    return admin::admin_fail(admin::AdminErrc::kBadArgs, "format must be mermaid or json");
  }
  if (cmd == admin::cmd::kRotateKeys) {
    // Re-keys follow every rotation (the slow path's next tick); issue_new_keys starts them now. A
    // rotation while re-keys of the previous one are pending is deferred (tunnel_manager.hpp).
    const bool issue = args.value("issue_new_keys", false);
    const control::RotationOutcome r = tm_->request_rotation();
    if (issue && !r.deferred) slow_->schedule_rekeys();
    return json{{"generation", r.report.generation},  {"deferred", r.deferred},
                {"rekeys_pending", r.rekeys_pending}, {"closed_ingress", r.report.closed_ingress},
                {"rekey_due", r.report.rekey_due},    {"lost", r.report.lost},
                {"closed", r.report.closed},          {"issued_new_keys", issue}};
  }
  return admin::admin_fail(admin::AdminErrc::kUnknownCommand, "unknown command: " + std::string(cmd));
}

}  // namespace pspgw::gateway
