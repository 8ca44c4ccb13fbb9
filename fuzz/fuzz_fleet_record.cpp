// The fleet's parsers of what other hosts and the operator write into etcd (src/fleet/record.hpp,
// policy.hpp) on arbitrary text: decoding never crashes or throws and an error says what; a record that
// decodes re-encodes to text that decodes to the same record, keeps its bounds, and its VIPs are its ports'
// VIPs; a policy that decodes keeps its bounds and answers allows() symmetrically for the VIPs it names.
#include <string_view>

#include "fleet/policy.hpp"
#include "fleet/record.hpp"
#include "fuzz/fuzz_target.hpp"

namespace {

void check_record(std::string_view text) {
  using namespace pspgw::fleet;
  auto r = decode_record(text);
  if (!r) {
    PSPGW_FUZZ_CHECK(!r.error().message.empty());
    return;
  }
  PSPGW_FUZZ_CHECK(valid_host_name(r->host));
  std::size_t vips = 0;
  for (const auto& port : r->ports) vips += port.vips.size();
  PSPGW_FUZZ_CHECK(vips <= kMaxVipsPerRecord && r->vips().size() == vips);
  auto back = decode_record(encode_record(*r));
  PSPGW_FUZZ_CHECK(back.ok() && *back == *r);
}

void check_policy(std::string_view text) {
  using namespace pspgw::fleet;
  auto p = decode_policy(text);
  if (!p) {
    PSPGW_FUZZ_CHECK(!p.error().message.empty());
    return;
  }
  PSPGW_FUZZ_CHECK(p->allow.size() <= kMaxPolicyRules);
  for (const auto& rule : p->allow) {
    if (rule.from.empty() || rule.to.empty()) continue;
    const auto& a = rule.from.front().addr;
    const auto& b = rule.to.front().addr;
    PSPGW_FUZZ_CHECK(p->allows(a, b) && p->allows(b, a));  // a rule lets the pair talk both ways
  }
}

}  // namespace

PSPGW_FUZZ_TARGET(fleet_record) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_record(text);
  check_policy(text);
  return 0;
}
