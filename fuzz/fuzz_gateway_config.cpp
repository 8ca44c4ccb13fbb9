// gateway::parse_config on arbitrary text: never throws or crashes; every error names the file; whatever
// parses satisfies the invariants the topology builder relies on (spec: doca-psp-gateway.md §3).
#include <string_view>

#include "fuzz/fuzz_target.hpp"
#include "gateway/config.hpp"

namespace {

using namespace pspgw;

void check_parsed(const gateway::GatewayConfig& c) {
  PSPGW_FUZZ_CHECK(c.source == "fuzz.json");
  PSPGW_FUZZ_CHECK(c.local_grpc_address.port != 0);
  for (const auto& peer : c.peers) {
    PSPGW_FUZZ_CHECK(!peer.remote_grpc_address.host.empty() && peer.remote_grpc_address.port != 0);
    PSPGW_FUZZ_CHECK(!peer.sessions.empty());
    for (const auto& s : peer.sessions) {
      PSPGW_FUZZ_CHECK(!s.remote_vips.empty());
      for (const auto& r : s.remote_vips)
        PSPGW_FUZZ_CHECK(r.family == s.local_vip.family && r != s.local_vip);
    }
  }
  for (const auto& port : c.sw.host_ports) {
    PSPGW_FUZZ_CHECK(!port.name.empty() && port.name.size() <= 15);
    PSPGW_FUZZ_CHECK(port.mtu >= 576 && port.mtu <= 65535);
  }
  PSPGW_FUZZ_CHECK(c.sw.rpc_deadline.count() >= 50 && c.sw.rpc_deadline.count() <= 60000);
}

void parse_one(std::string_view text, const gateway::ConfigInputs& inputs) {
  // No try/catch: an escaping exception is the bug this target looks for (libFuzzer reports the abort,
  // the replay test reports the exception).
  auto r = gateway::parse_config(text, "fuzz.json", inputs);
  if (r) {
    check_parsed(*r);
  } else {
    PSPGW_FUZZ_CHECK(r.error().message.starts_with("fuzz.json: "));
  }
}

}  // namespace

PSPGW_FUZZ_TARGET(gateway_config) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  parse_one(text, {});
  // With the unsecured port's address known, sessions without "local-vip" parse too.
  parse_one(text, {net::IpAddr::parse("192.168.1.1")});
  return 0;
}
