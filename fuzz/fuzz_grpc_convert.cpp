// The proto -> core converters (src/control/grpc_convert.hpp) on whatever protobuf parses from the bytes,
// as a MultiTunnelRequest and as a MultiTunnelResponse: no crash; what converts is well-formed (spec §2)
// and survives to_proto -> from_proto unchanged; wipe_keys leaves no key bytes behind.
#include <google/protobuf/stubs/logging.h>

#include <algorithm>

#include "control/grpc_convert.hpp"
#include "fuzz/fuzz_target.hpp"

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

void request(const uint8_t* data, std::size_t size) {
  psp_gateway::MultiTunnelRequest msg;
  if (!msg.ParseFromArray(data, static_cast<int>(size))) return;
  auto r = gc::from_proto(msg);
  gc::wipe_keys(&msg);
  for (const auto& t : msg.tunnels()) PSPGW_FUZZ_CHECK(t.reverse_params().encryption_key().empty());
  if (!r) return;
  PSPGW_FUZZ_CHECK(r->tunnels.size() == static_cast<std::size_t>(msg.tunnels_size()));
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
