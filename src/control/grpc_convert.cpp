#include "control/grpc_convert.hpp"

#include "base/secret.hpp"

namespace pspgw::control::grpc_convert {

namespace {

Err<Error> invalid(const std::string& where, const std::string& what) {
  return fail(ControlError::kInvalidArgument, where + ": " + what);
}

// encap_type / inner_type: 4 or 6, the family of the address(es) it describes. DOCA releases that
// predate the field leave it 0; then the address text decides.
bool family_matches(uint32_t type, net::IpFamily family) {
  return type == 0 || type == static_cast<uint32_t>(family);
}

void wipe(std::string* s) {
  if (!s->empty()) secure_zero(s->data(), s->size());
  s->clear();
}

void wipe_params(psp_gateway::TunnelParameters* p) {
  wipe(p->mutable_encryption_key());
}

}  // namespace

CResult<TunnelParams> from_proto(const psp_gateway::TunnelParameters& p, const std::string& where) {
  auto mac = net::MacAddr::parse(p.mac_addr());
  if (!mac) return invalid(where + ".mac_addr", "'" + p.mac_addr() + "' is not a MAC address");
  auto ip = net::IpAddr::parse(p.ip_addr());
  if (!ip) return invalid(where + ".ip_addr", "'" + p.ip_addr() + "' is not an IP address");
  if (!family_matches(p.encap_type(), ip->family)) {
    return invalid(where + ".encap_type",
                   std::to_string(p.encap_type()) + " does not match ip_addr " + p.ip_addr());
  }
  if (p.psp_version() > psp::kPspMaxVersion) {
    return invalid(where + ".psp_version", std::to_string(p.psp_version()) +
                                               " is not 0 (AES-GCM-128), 1 (AES-GCM-256), 2 (AES-GMAC-128) "
                                               "or 3 (AES-GMAC-256)");
  }
  psp::DerivedKey key;
  key.version = static_cast<psp::PspVersion>(p.psp_version());
  if (p.encryption_key().size() != key.size()) {
    return invalid(where + ".encryption_key", std::to_string(p.encryption_key().size()) + " bytes, version " +
                                                  std::to_string(p.psp_version()) + " needs " +
                                                  std::to_string(key.size()));
  }
  if ((p.spi() & ~psp::kSpiSlotBit) == 0)
    return invalid(where + ".spi", "SPI with zero low 31 bits is reserved");
  auto dst = key.bytes.mutable_bytes();
  for (std::size_t i = 0; i < key.size(); ++i) dst[i] = static_cast<uint8_t>(p.encryption_key()[i]);
  return TunnelParams{*mac, *ip, std::move(key), p.spi(), p.virt_cookie()};
}

CResult<TunnelRequest> from_proto(const psp_gateway::SingleTunnelRequest& t, const std::string& where) {
  auto src = net::IpAddr::parse(t.virt_src_ip());
  if (!src) return invalid(where + ".virt_src_ip", "'" + t.virt_src_ip() + "' is not an IP address");
  auto dst = net::IpAddr::parse(t.virt_dst_ip());
  if (!dst) return invalid(where + ".virt_dst_ip", "'" + t.virt_dst_ip() + "' is not an IP address");
  if (src->family != dst->family)
    return invalid(where, "virt_src_ip and virt_dst_ip are of different families");
  if (!family_matches(t.inner_type(), src->family)) {
    return invalid(where + ".inner_type",
                   std::to_string(t.inner_type()) + " does not match " + t.virt_src_ip());
  }
  TunnelRequest out{*src, *dst, std::nullopt};
  if (t.has_reverse_params()) {
    auto params = from_proto(t.reverse_params(), where + ".reverse_params");
    if (!params) return Err{params.error()};
    out.reverse_params = std::move(params.value());
  }
  return out;
}

CResult<MultiTunnelRequest> from_proto(const psp_gateway::MultiTunnelRequest& r) {
  MultiTunnelRequest out;
  out.request_id = r.request_id();
  out.versions_accepted.assign(r.psp_versions_accepted().begin(), r.psp_versions_accepted().end());
  out.tunnels.reserve(static_cast<std::size_t>(r.tunnels_size()));
  for (int i = 0; i < r.tunnels_size(); ++i) {
    auto t = from_proto(r.tunnels(i), "tunnels[" + std::to_string(i) + "]");
    if (!t) return Err{t.error()};
    out.tunnels.push_back(std::move(t.value()));
  }
  return out;
}

CResult<MultiTunnelResponse> from_proto(const psp_gateway::MultiTunnelResponse& r) {
  MultiTunnelResponse out;
  out.request_id = r.request_id();
  out.tunnels.reserve(static_cast<std::size_t>(r.tunnels_params_size()));
  for (int i = 0; i < r.tunnels_params_size(); ++i) {
    auto p = from_proto(r.tunnels_params(i), "tunnels_params[" + std::to_string(i) + "]");
    if (!p) return Err{p.error()};
    out.tunnels.push_back(std::move(p.value()));
  }
  return out;
}

void to_proto(const TunnelParams& p, psp_gateway::TunnelParameters* out) {
  out->set_mac_addr(p.mac.to_string());
  out->set_ip_addr(p.outer_ip.to_string());
  out->set_psp_version(static_cast<uint32_t>(p.version()));
  out->set_spi(p.spi);
  auto key = p.key.view();
  out->set_encryption_key(key.data(), key.size());
  out->set_virt_cookie(p.virt_cookie);
  out->set_encap_type(static_cast<uint32_t>(p.outer_ip.family));
}

void to_proto(const MultiTunnelRequest& r, psp_gateway::MultiTunnelRequest* out) {
  out->set_request_id(r.request_id);
  for (uint32_t v : r.versions_accepted) out->add_psp_versions_accepted(v);
  for (const TunnelRequest& t : r.tunnels) {
    auto* pt = out->add_tunnels();
    pt->set_virt_src_ip(t.requester_vip.to_string());
    pt->set_virt_dst_ip(t.responder_vip.to_string());
    pt->set_inner_type(static_cast<uint32_t>(t.requester_vip.family));
    if (t.reverse_params) to_proto(*t.reverse_params, pt->mutable_reverse_params());
  }
}

void to_proto(const MultiTunnelResponse& r, psp_gateway::MultiTunnelResponse* out) {
  out->set_request_id(r.request_id);
  for (const TunnelParams& p : r.tunnels) to_proto(p, out->add_tunnels_params());
}

void wipe_keys(psp_gateway::MultiTunnelRequest* r) {
  for (auto& t : *r->mutable_tunnels()) {
    if (t.has_reverse_params()) wipe_params(t.mutable_reverse_params());
  }
}

void wipe_keys(psp_gateway::MultiTunnelResponse* r) {
  for (auto& p : *r->mutable_tunnels_params()) wipe_params(&p);
}

}  // namespace pspgw::control::grpc_convert
