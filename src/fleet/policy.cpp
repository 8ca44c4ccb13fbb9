#include "fleet/policy.hpp"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

namespace pspgw::fleet {

namespace {

using nlohmann::json;

bool any_contains(const std::vector<IpPrefix>& prefixes, const net::IpAddr& a) {
  return std::any_of(prefixes.begin(), prefixes.end(), [&](const IpPrefix& p) { return p.contains(a); });
}

FResult<std::vector<IpPrefix>> prefixes_of(const json& rule, const char* key, const std::string& path) {
  const auto it = rule.find(key);
  if (it == rule.end() || !it->is_array()) return fail(FleetError::kBadRecord, path + key + ": not an array");
  std::vector<IpPrefix> out;
  for (const json& p : *it) {
    auto prefix = p.is_string() ? parse_prefix(p.get_ref<const std::string&>()) : std::nullopt;
    if (!prefix) return fail(FleetError::kBadRecord, path + key + ": '" + p.dump() + "' is not an IP prefix");
    out.push_back(*prefix);
  }
  return out;
}

}  // namespace

bool IpPrefix::contains(const net::IpAddr& a) const {
  if (a.family != addr.family) return false;
  const std::size_t full = length / 8;
  if (!std::equal(addr.bytes.begin(), addr.bytes.begin() + static_cast<std::ptrdiff_t>(full),
                  a.bytes.begin()))
    return false;
  const unsigned rest = length % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff00u >> rest);
  return (a.bytes[full] & mask) == addr.bytes[full];
}

std::optional<IpPrefix> parse_prefix(std::string_view text) {
  const auto slash = text.find('/');
  auto ip = net::IpAddr::parse(text.substr(0, slash));
  if (!ip) return std::nullopt;
  const unsigned max = static_cast<unsigned>(ip->size() * 8);
  unsigned len = max;
  if (slash != std::string_view::npos) {
    const std::string_view l = text.substr(slash + 1);
    if (l.empty() || std::from_chars(l.data(), l.data() + l.size(), len).ptr != l.data() + l.size() ||
        len > max)
      return std::nullopt;
  }
  IpPrefix p{*ip, static_cast<uint8_t>(len)};
  for (unsigned bit = len; bit < max; ++bit)
    p.addr.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  return p;
}

bool Policy::allows(const net::IpAddr& a, const net::IpAddr& b) const {
  return std::any_of(allow.begin(), allow.end(), [&](const PolicyRule& r) {
    return (any_contains(r.from, a) && any_contains(r.to, b)) ||
           (any_contains(r.from, b) && any_contains(r.to, a));
  });
}

FResult<Policy> decode_policy(std::string_view text) {
  if (text.size() > kMaxPolicyBytes) return fail(FleetError::kBadRecord, "policy: too large");
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return fail(FleetError::kBadRecord, "policy: not a JSON object");
  for (const auto& [k, v] : j.items()) {
    if (k != "allow") return fail(FleetError::kBadRecord, "policy: " + k + ": unknown key");
  }
  const auto allow = j.find("allow");
  if (allow == j.end() || !allow->is_array())
    return fail(FleetError::kBadRecord, "policy: allow: not an array");
  if (allow->size() > kMaxPolicyRules) return fail(FleetError::kBadRecord, "policy: allow: too many rules");
  Policy p;
  for (std::size_t i = 0; i < allow->size(); ++i) {
    const json& rule = (*allow)[i];
    const std::string path = "policy: allow[" + std::to_string(i) + "].";
    if (!rule.is_object()) return fail(FleetError::kBadRecord, path + ": not an object");
    for (const auto& [k, v] : rule.items()) {
      if (k != "from" && k != "to") return fail(FleetError::kBadRecord, path + k + ": unknown key");
    }
    auto from = prefixes_of(rule, "from", path);
    if (!from) return Err{from.error()};
    auto to = prefixes_of(rule, "to", path);
    if (!to) return Err{to.error()};
    p.allow.push_back({std::move(*from), std::move(*to)});
  }
  return p;
}

}  // namespace pspgw::fleet
