// The MATCH expression of a flow classifier, in the spirit of OVN's logical-flow matches:
//
//   expr  := conj ( "||" conj )*
//   conj  := term ( "&&" term )*
//   term  := "(" expr ")" | proto | field op value
//   proto := "ip" | "ip4" | "ip6" | "tcp" | "udp" | "icmp4" | "icmp6"
//   field := "ip4.src" | "ip4.dst" | "ip6.src" | "ip6.dst" | "tcp.src" | "tcp.dst" | "udp.src" | "udp.dst"
//   op    := "==" | "!=" | "<" | "<=" | ">" | ">="   (addresses: "==" only)
//   value := decimal 0..65535 (ports) | a.b.c.d[/len] (ip4.*) | IPv6 text[/len] (ip6.*)
//
// The empty expression (or "ip") is all IP traffic (IPv4 and IPv6, never ARP). A field implies its
// protocol (tcp.dst implies tcp, ip6.src implies ip6). The parse is normalized into disjunctive form: a
// short list of conjunctions, each (family, protocol, source prefix, destination prefix, source port range,
// destination port range), with contradictory conjunctions dropped. That is what the compiler turns into
// flow-engine entries (compile.hpp) and what the overlap check intersects.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "net/addr.hpp"

namespace pspgw::sfc {

inline constexpr std::size_t kMaxMatchLength = 1024;
inline constexpr std::size_t kMaxConjunctions = 32;  // after normalization ("||", "!=")

struct AddrPrefix {
  net::IpAddr addr;  // host bits zero
  unsigned len = 0;
  friend bool operator==(const AddrPrefix&, const AddrPrefix&) = default;
};

struct PortRange {
  uint16_t lo = 0;
  uint16_t hi = 65535;
  bool any() const { return lo == 0 && hi == 65535; }
  friend bool operator==(const PortRange&, const PortRange&) = default;
};

// One conjunction. family 0 = IPv4 or IPv6; proto 0 = any.
struct Conjunction {
  uint8_t family = 0;
  uint8_t proto = 0;
  std::optional<AddrPrefix> src, dst;
  PortRange sport, dport;
  friend bool operator==(const Conjunction&, const Conjunction&) = default;
};

// A parsed match: the packets that satisfy any of the conjunctions.
struct Match {
  std::vector<Conjunction> any_of;  // never empty after a successful parse
  friend bool operator==(const Match&, const Match&) = default;
};

struct MatchError {
  std::size_t column = 0;  // 1-based position in the expression
  std::string message;
  std::string to_string() const;  // "column N: message"
};

Result<Match, MatchError> parse_match(std::string_view text);
// Text that parse_match turns back into an equal Match.
std::string to_string(const Match& m);
std::string to_string(const Conjunction& c);

// The conjunction of a and b; nullopt if no packet satisfies both.
std::optional<Conjunction> intersect(const Conjunction& a, const Conjunction& b);
// True if some packet satisfies both matches (the overlap check of classifiers).
bool overlaps(const Match& a, const Match& b);

}  // namespace pspgw::sfc
