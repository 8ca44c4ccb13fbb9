// The proto -> core converters (src/control/grpc_convert.hpp) on whatever protobuf parses from the bytes,
// as a MultiTunnelRequest and as a MultiTunnelResponse: no crash; what converts is well-formed (spec §2)
// and survives to_proto -> from_proto unchanged; wipe_keys leaves no key bytes behind. A request that
// converts is then served by a TunnelManager (fake data plane, one configured peer that
// already holds a session): a refused request leaves every session and the data plane as they were; an
// accepted one answers every tunnel, with the request's id.
#include <google/protobuf/stubs/logging.h>

#include <algorithm>
#include <sstream>
#include <string>

#include "control/fake_data_plane.hpp"
#include "control/grpc_convert.hpp"
#include "control/tunnel_manager.hpp"
#include "fuzz/fuzz_target.hpp"
#include "psp/key_ring.hpp"

namespace {

using namespace pspgw;
namespace gc = control::grpc_convert;

bool same(const control::TunnelParams& a, const control::TunnelParams& b) {
  return a.mac == b.mac && a.outer_ip == b.outer_ip && a.version() == b.version() && a.spi == b.spi &&
         a.virt_cookie == b.virt_cookie && std::ranges::equal(a.key.view(), b.key.view());
}

void check_params(const control::TunnelParams& p) {
  PSPGW_FUZZ_CHECK(p.outer_ip.family != net::IpFamily::kNone);
  PSPGW_FUZZ_CHECK((p.spi & 0x7fffffffu) != 0);
  PSPGW_FUZZ_CHECK(p.key.view().size() == (p.version() == psp::PspVersion::kAesGcm128 ? 16u : 32u));
}

// Everything a request could change: each configured pair's session and data-plane state.
std::string state(const control::TunnelManager& tm, const control::FakeDataPlane& dp,
                  const std::vector<control::VipPair>& pairs) {
  std::ostringstream out;
  out << dp.ingress_count() << ' ' << dp.egress_count() << '\n';
  for (const auto& s : tm.sessions()) {
    out << s.pair.local.to_string() << '>' << s.pair.remote.to_string() << ' ' << s.peer << ' '
        << control::to_string(s.state) << ' ' << s.rekey_due << ' ' << s.retry_at.time_since_epoch().count();
    for (uint32_t spi : s.ingress_spis) out << " i" << spi;
    if (s.egress_spi) out << " e" << *s.egress_spi << ' ' << s.egress_outer_ip->to_string();
    out << '\n';
  }
  for (const auto& p : pairs) {
    for (uint32_t spi : dp.ingress_spis(p)) out << "ingress " << spi << '\n';
    if (auto e = dp.egress(p)) out << "egress " << e->spi << ' ' << e->outer_ip.to_string() << '\n';
  }
  return out.str();
}

// Our side answers the seeds' requester (192.168.1.1 / fd00::1, fuzz_make_corpus) as peer 0.
void serve(const control::MultiTunnelRequest& req) {
  const auto ip = [](const char* text) { return *net::IpAddr::parse(text); };
  const std::vector<control::VipPair> pairs = {{ip("192.168.2.2"), ip("192.168.1.1")},
                                               {ip("192.168.2.3"), ip("192.168.1.1")},
                                               {ip("fd00::2"), ip("fd00::1")}};
  control::FakeDataPlane dp;
  control::TunnelManagerOptions o;
  o.local = control::LocalIdentity{*net::MacAddr::parse("02:00:00:00:00:0b"), ip("10.0.0.2")};
  o.now = [] { return control::Clock::time_point{} + std::chrono::hours(1); };
  o.log = [](std::string_view) {};
  o.max_tunnels = 8;
  o.max_tunnels_per_request = 16;
  control::TunnelManager tm(psp::KeyRing::with_random_key(), {control::PeerPolicy{"peer", pairs, {}, {}}}, dp,
                            std::move(o));
  const control::Caller caller{{0}, "fuzz"};
  // A session that exists before: the fuzzed request must not disturb it when refused.
  control::MultiTunnelRequest first;
  first.request_id = 1;
  first.versions_accepted = {1};
  first.tunnels.push_back({ip("192.168.1.1"), ip("192.168.2.3"), std::nullopt});
  PSPGW_FUZZ_CHECK(tm.handle_tunnel_request(caller, first).ok());

  const std::string before = state(tm, dp, pairs);
  auto r = tm.handle_tunnel_request(caller, req);
  if (!r) {
    PSPGW_FUZZ_CHECK(!r.error().message.empty());
    PSPGW_FUZZ_CHECK(state(tm, dp, pairs) == before);
    return;
  }
  PSPGW_FUZZ_CHECK(r->request_id == req.request_id && r->tunnels.size() == req.tunnels.size());
}

void request(const uint8_t* data, std::size_t size) {
  psp_gateway::MultiTunnelRequest msg;
  if (!msg.ParseFromArray(data, static_cast<int>(size))) return;
  auto r = gc::from_proto(msg);
  gc::wipe_keys(&msg);
  for (const auto& t : msg.tunnels()) PSPGW_FUZZ_CHECK(t.reverse_params().encryption_key().empty());
  if (!r) return;
  PSPGW_FUZZ_CHECK(r->tunnels.size() == static_cast<std::size_t>(msg.tunnels_size()));
  serve(*r);
  psp_gateway::MultiTunnelRequest again;
  gc::to_proto(*r, &again);
  auto back = gc::from_proto(again);
  PSPGW_FUZZ_CHECK(back.ok() && back->request_id == r->request_id &&
                   back->tunnels.size() == r->tunnels.size());
  PSPGW_FUZZ_CHECK(back->versions_accepted == r->versions_accepted);
  for (std::size_t i = 0; i < r->tunnels.size(); ++i) {
    const auto& t = r->tunnels[i];
    PSPGW_FUZZ_CHECK(t.requester_vip.family == t.responder_vip.family);
    PSPGW_FUZZ_CHECK(back->tunnels[i].requester_vip == t.requester_vip &&
                     back->tunnels[i].responder_vip == t.responder_vip);
    PSPGW_FUZZ_CHECK(back->tunnels[i].reverse_params.has_value() == t.reverse_params.has_value());
    if (t.reverse_params) {
      check_params(*t.reverse_params);
      PSPGW_FUZZ_CHECK(same(*back->tunnels[i].reverse_params, *t.reverse_params));
    }
  }
  gc::wipe_keys(&again);
}

void response(const uint8_t* data, std::size_t size) {
  psp_gateway::MultiTunnelResponse msg;
  if (!msg.ParseFromArray(data, static_cast<int>(size))) return;
  auto r = gc::from_proto(msg);
  gc::wipe_keys(&msg);
  for (const auto& p : msg.tunnels_params()) PSPGW_FUZZ_CHECK(p.encryption_key().empty());
  if (!r) return;
  psp_gateway::MultiTunnelResponse again;
  gc::to_proto(*r, &again);
  auto back = gc::from_proto(again);
  PSPGW_FUZZ_CHECK(back.ok() && back->tunnels.size() == r->tunnels.size());
  for (std::size_t i = 0; i < r->tunnels.size(); ++i) {
    check_params(r->tunnels[i]);
    PSPGW_FUZZ_CHECK(same(back->tunnels[i], r->tunnels[i]));
  }
  gc::wipe_keys(&again);
}

}  // namespace

PSPGW_FUZZ_TARGET(grpc_convert) {
  // protobuf logs every string field with invalid UTF-8 it refuses; that is expected input here.
  const google::protobuf::LogSilencer quiet;
  request(data, size);
  response(data, size);
  return 0;
}
