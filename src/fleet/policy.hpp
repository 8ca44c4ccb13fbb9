// The optional fleet policy document (key PREFIX policy): which VIP prefixes may reach which.
//
//   {"allow": [ {"from": ["10.0.0.0/24"], "to": ["10.0.1.0/24", "10.0.2.7/32"]} ]}
//
// A tunnel carries both directions, so a rule lets `from` reach `to` and the answers come back: the pair
// (a, b) is allowed when some rule has a in from and b in to, or b in from and a in to. Without a policy
// document every registered VIP may reach every other; a document with an empty "allow" allows nothing.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "fleet/error.hpp"
#include "net/addr.hpp"

namespace pspgw::fleet {

inline constexpr std::size_t kMaxPolicyRules = 4096;
inline constexpr std::size_t kMaxPolicyBytes = 1u << 20;

struct IpPrefix {
  net::IpAddr addr;  // host bits cleared
  uint8_t length = 0;
  bool contains(const net::IpAddr& a) const;
};
// "a.b.c.d/len", "v6/len", or a bare address (a host prefix).
std::optional<IpPrefix> parse_prefix(std::string_view text);

struct PolicyRule {
  std::vector<IpPrefix> from;
  std::vector<IpPrefix> to;
};

struct Policy {
  std::vector<PolicyRule> allow;
  bool allows(const net::IpAddr& a, const net::IpAddr& b) const;
};

FResult<Policy> decode_policy(std::string_view text);

}  // namespace pspgw::fleet
