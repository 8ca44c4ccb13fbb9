#include "sfc/chains.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "sfc/compile.hpp"

namespace pspgw::sfc {
namespace {

Err<SfcError> fail(SfcError::Code c, std::string msg) {
  return Err{SfcError{c, std::move(msg)}};
}
std::string q(const std::string& s) {
  return "'" + s + "'";
}
Err<SfcError> unknown(const char* kind, const std::string& name) {
  return fail(SfcError::Code::kUnknownObject, std::string("no ") + kind + " " + q(name));
}
Err<SfcError> duplicate(const char* kind, const std::string& name) {
  return fail(SfcError::Code::kDuplicateName, std::string(kind) + " " + q(name) + " already exists");
}
Status<SfcError> check_name(const std::string& name) {
  if (name.empty() || name.size() > 64)
    return fail(SfcError::Code::kBadArgument, "a name has 1..64 characters");
  return {};
}

// The (direction, match) pairs a classifier steers: its own, and for bi-directional ones the return traffic.
std::vector<std::pair<Direction, Match>> steered(const FlowClassifier& c) {
  std::vector<std::pair<Direction, Match>> out = {{c.direction, c.match}};
  if (c.symmetric)
    out.emplace_back(c.direction == Direction::kEntry ? Direction::kExit : Direction::kEntry,
                     reversed(c.match));
  return out;
}

}  // namespace

std::string_view to_string(Direction d) {
  return d == Direction::kEntry ? "entry-lport" : "exit-lport";
}
std::string_view to_string(FailMode f) {
  return f == FailMode::kClose ? "close" : "open";
}
std::optional<Direction> parse_direction(std::string_view s) {
  if (s == "entry-lport") return Direction::kEntry;
  if (s == "exit-lport") return Direction::kExit;
  return std::nullopt;
}
std::optional<FailMode> parse_fail_mode(std::string_view s) {
  if (s == "close") return FailMode::kClose;
  if (s == "open") return FailMode::kOpen;
  return std::nullopt;
}
std::optional<bool> parse_symmetric(std::string_view s) {
  if (s == "bi-directional") return true;
  if (s == "uni-directional") return false;
  return std::nullopt;
}

std::string_view to_string(SfcError::Code c) {
  switch (c) {
    case SfcError::Code::kUnknownObject:
      return "unknown-object";
    case SfcError::Code::kDuplicateName:
      return "duplicate-name";
    case SfcError::Code::kInUse:
      return "in-use";
    case SfcError::Code::kBadPort:
      return "bad-port";
    case SfcError::Code::kBadMatch:
      return "bad-match";
    case SfcError::Code::kOverlap:
      return "overlap";
    case SfcError::Code::kBadArgument:
      return "bad-argument";
  }
  return "unknown";
}

Match reversed(const Match& m) {
  Match r = m;
  for (Conjunction& c : r.any_of) {
    std::swap(c.src, c.dst);
    std::swap(c.sport, c.dport);
  }
  return r;
}

Status<SfcError> ServiceChains::check_port(const std::string& port, PortRole want) const {
  if (!ports_) return {};
  const auto role = ports_(port);
  if (!role) return fail(SfcError::Code::kBadPort, "no host port " + q(port));
  if (*role != want)
    return fail(SfcError::Code::kBadPort,
                "port " + q(port) + " is not a " + (want == PortRole::kVnf ? "vnf" : "workload") + " port");
  return {};
}

Status<SfcError> ServiceChains::pair_add(const std::string& in, const std::string& out,
                                         const std::string& name) {
  if (auto s = check_name(name); !s) return s;
  if (pairs_.contains(name)) return duplicate("port pair", name);
  if (auto s = check_port(in, PortRole::kVnf); !s) return s;
  if (auto s = check_port(out, PortRole::kVnf); !s) return s;
  for (const auto& [n, p] : pairs_)
    for (const std::string* port : {&in, &out})
      if (*port == p.in || *port == p.out)
        return fail(SfcError::Code::kInUse, "port " + q(*port) + " already belongs to port pair " + q(n));
  pairs_[name] = {name, in, out};  // in == out: a one-armed VNF
  return {};
}

Status<SfcError> ServiceChains::pair_del(const std::string& name) {
  if (!pairs_.contains(name)) return unknown("port pair", name);
  if (auto g = group_of_pair(name))
    return fail(SfcError::Code::kInUse, "port pair " + q(name) + " is in port pair group " + q(*g));
  pairs_.erase(name);
  return {};
}

Status<SfcError> ServiceChains::chain_add(const std::string& name) {
  if (auto s = check_name(name); !s) return s;
  if (chains_.contains(name)) return duplicate("port chain", name);
  chains_[name] = {name, {}};
  return {};
}

Status<SfcError> ServiceChains::chain_del(const std::string& name) {
  const auto it = chains_.find(name);
  if (it == chains_.end()) return unknown("port chain", name);
  for (const auto& [n, c] : classifiers_)
    if (c.chain == name)
      return fail(SfcError::Code::kInUse, "port chain " + q(name) + " is used by classifier " + q(n));
  if (!it->second.groups.empty())
    return fail(SfcError::Code::kInUse,
                "port chain " + q(name) + " still has port pair group " + q(it->second.groups.front()));
  chains_.erase(it);
  return {};
}

Status<SfcError> ServiceChains::group_add(const std::string& chain, const std::string& name,
                                          FailMode fail_mode) {
  if (auto s = check_name(name); !s) return s;
  const auto c = chains_.find(chain);
  if (c == chains_.end()) return unknown("port chain", chain);
  if (groups_.contains(name)) return duplicate("port pair group", name);
  groups_[name] = {name, chain, fail_mode, {}};
  c->second.groups.push_back(name);
  return {};
}

Status<SfcError> ServiceChains::group_del(const std::string& name) {
  const auto it = groups_.find(name);
  if (it == groups_.end()) return unknown("port pair group", name);
  if (!it->second.pairs.empty())
    return fail(SfcError::Code::kInUse,
                "port pair group " + q(name) + " still has port pair " + q(it->second.pairs.front()));
  std::erase(chains_.at(it->second.chain).groups, name);
  groups_.erase(it);
  return {};
}

std::optional<std::string> ServiceChains::group_of_pair(const std::string& pair) const {
  for (const auto& [n, g] : groups_)
    if (std::find(g.pairs.begin(), g.pairs.end(), pair) != g.pairs.end()) return n;
  return std::nullopt;
}

Status<SfcError> ServiceChains::group_pair_add(const std::string& group, const std::string& pair) {
  const auto g = groups_.find(group);
  if (g == groups_.end()) return unknown("port pair group", group);
  if (!pairs_.contains(pair)) return unknown("port pair", pair);
  if (auto other = group_of_pair(pair))
    return fail(SfcError::Code::kInUse,
                "port pair " + q(pair) + " is already in port pair group " + q(*other));
  g->second.pairs.push_back(pair);
  return {};
}

Status<SfcError> ServiceChains::group_pair_del(const std::string& group, const std::string& pair) {
  const auto g = groups_.find(group);
  if (g == groups_.end()) return unknown("port pair group", group);
  auto& ps = g->second.pairs;
  const auto it = std::find(ps.begin(), ps.end(), pair);
  if (it == ps.end())
    return fail(SfcError::Code::kUnknownObject,
                "port pair " + q(pair) + " is not in port pair group " + q(group));
  ps.erase(it);
  return {};
}

Status<SfcError> ServiceChains::check_overlap(const FlowClassifier& c) const {
  for (const auto& [n, o] : classifiers_) {
    if (o.port != c.port) continue;
    for (const auto& [d1, m1] : steered(c))
      for (const auto& [d2, m2] : steered(o))
        if (d1 == d2 && overlaps(m1, m2))
          return fail(SfcError::Code::kOverlap, "classifier " + q(c.name) + " overlaps classifier " + q(n) +
                                                    " on port " + q(c.port) + " " +
                                                    std::string(to_string(d1)));
  }
  return {};
}

Status<SfcError> ServiceChains::classifier_add(const std::string& chain, const std::string& port,
                                               Direction dir, bool symmetric, const std::string& name,
                                               const std::string& match) {
  if (auto s = check_name(name); !s) return s;
  if (classifiers_.contains(name)) return duplicate("flow classifier", name);
  if (!chains_.contains(chain)) return unknown("port chain", chain);
  if (auto s = check_port(port, PortRole::kWorkload); !s) return s;
  auto m = parse_match(match);
  if (!m)
    return fail(SfcError::Code::kBadMatch, "match of classifier " + q(name) + ": " + m.error().to_string());
  if (!compile(*m))
    return fail(SfcError::Code::kBadMatch, "match of classifier " + q(name) + " needs too many entries");
  FlowClassifier c{name, chain, port, dir, symmetric, match, std::move(*m)};
  if (auto s = check_overlap(c); !s) return s;
  classifiers_[name] = std::move(c);
  return {};
}

Status<SfcError> ServiceChains::classifier_del(const std::string& name) {
  if (classifiers_.erase(name) == 0) return unknown("flow classifier", name);
  return {};
}

nlohmann::json ServiceChains::to_json() const {
  nlohmann::json j = {{"pairs", nlohmann::json::array()},
                      {"groups", nlohmann::json::array()},
                      {"chains", nlohmann::json::array()},
                      {"classifiers", nlohmann::json::array()}};
  for (const auto& [n, p] : pairs_) j["pairs"].push_back({{"name", n}, {"in", p.in}, {"out", p.out}});
  for (const auto& [n, g] : groups_)
    j["groups"].push_back(
        {{"name", n}, {"chain", g.chain}, {"fail_mode", to_string(g.fail_mode)}, {"pairs", g.pairs}});
  for (const auto& [n, c] : chains_) j["chains"].push_back({{"name", n}, {"groups", c.groups}});
  for (const auto& [n, c] : classifiers_)
    j["classifiers"].push_back({{"name", n},
                                {"chain", c.chain},
                                {"port", c.port},
                                {"direction", to_string(c.direction)},
                                {"symmetric", c.symmetric},
                                {"match", c.match_text},
                                {"normalized", to_string(c.match)}});
  return j;
}

}  // namespace pspgw::sfc
