#include "sfc/program.hpp"

#include <algorithm>

#include "sfc/compile.hpp"

namespace pspgw::sfc {

using flow::Field;
using flow::FieldMatch;
using flow::Target;
using flow::TargetKind;

namespace {

constexpr uint32_t kClassifierPriority = 1;  // below the never-steered entries (0), above delivery (~0)
constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherIpv6 = 0x86dd;

// Where an entry sends its packets: a plain target, or one of the program's groups by key.
struct Dest {
  Target plain;
  std::string group;  // non-empty: this group
  friend bool operator==(const Dest&, const Dest&) = default;
};

struct Wanted {
  flow::PipeId pipe;
  std::vector<FieldMatch> match;
  uint32_t priority = kClassifierPriority;
  Dest dest;
  std::vector<uint64_t> args;
  std::string tag;    // counter: "c:NAME", "r:NAME" (return traffic), "h:CHAIN:HOP"
  std::string owner;  // the classifier it serves (messages)
};

std::string entry_key(flow::PipeId pipe, const std::vector<FieldMatch>& match) {
  std::string k = std::to_string(pipe.value());
  for (const FieldMatch& m : match) {
    const auto w = flow::field_info(m.field).width;
    k.push_back('|');
    k.push_back(static_cast<char>(m.field));
    k.append(reinterpret_cast<const char*>(m.value.data()), w);
    if (m.has_mask) k.append(reinterpret_cast<const char*>(m.mask.data()), w);
  }
  return k;
}

std::string group_key(const std::string& group, bool reverse) {
  return group + (reverse ? "/rev" : "/fwd");
}

SfcError fail(SfcError::Code c, std::string msg) {
  return SfcError{c, std::move(msg)};
}

// One classifier's view of its chain: which hop goes where, healthy instances considered.
class Walk {
 public:
  Walk(const ServiceChains& chains, const FlowClassifier& c, const ProgramPort& port, const Placement& place,
       const std::map<std::string, std::vector<std::string>>& live_pairs)
      : chains_(chains), c_(c), port_(port), place_(place), live_(live_pairs) {
    hops_ = chains.chains().at(c.chain).groups;
  }
  std::size_t hops() const { return hops_.size(); }
  const std::string& group(std::size_t h) const { return hops_[h]; }

  // Forward: entering hop h (h == hops(): past the last). Reverse: entering hop h going back (h < 0: done).
  Dest forward(std::size_t h) const {
    for (; h < hops_.size(); ++h) {
      if (!live_.at(hops_[h]).empty()) return {{}, group_key(hops_[h], false)};
      if (chains_.groups().at(hops_[h]).fail_mode == FailMode::kClose) return drop();
    }
    return final_dest(c_.direction == Direction::kEntry);
  }
  Dest reverse(std::ptrdiff_t h) const {
    for (; h >= 0; --h) {
      const auto& g = hops_[static_cast<std::size_t>(h)];
      if (!live_.at(g).empty()) return {{}, group_key(g, true)};
      if (chains_.groups().at(g).fail_mode == FailMode::kClose) return drop();
    }
    return final_dest(c_.direction != Direction::kEntry);
  }

 private:
  Dest drop() const { return {{TargetKind::kDrop, place_.drop_no_instance}, {}}; }
  // Traffic to the workload ends at its port; traffic from it goes on at EGR_ACL (in_port = its port).
  Dest final_dest(bool to_workload) const {
    if (to_workload) return {{TargetKind::kPort, port_.id.value()}, {}};
    return {{TargetKind::kPipe, place_.egr_acl.value()}, {}};
  }

  const ServiceChains& chains_;
  const FlowClassifier& c_;
  const ProgramPort& port_;
  const Placement& place_;
  const std::map<std::string, std::vector<std::string>>& live_;
  std::vector<std::string> hops_;
};

flow::TargetRef to_ref(const Target& t) {
  if (t.kind == TargetKind::kPipe) return flow::TargetRef::pipe(flow::PipeId{t.id});
  return flow::TargetRef{t, {}};
}

}  // namespace

struct ChainProgram::Installed {
  flow::EntryHandle handle;
  Dest dest;
  std::vector<uint64_t> args;
  std::string tag;
  bool banked = false;  // matches bank_field == 0 (a replacement's mask), else leaves it out
};

struct ChainProgram::GroupState {
  flow::GroupId id;
  std::vector<Target> members;
};

namespace {

// Everything the registry asks for, as wanted entries and group memberships.
class Planner {
 public:
  Planner(const ServiceChains& chains, const std::map<std::string, ProgramPort>& ports,
          const Placement& place, const ChainProgram::Live& live)
      : chains_(chains), ports_(ports), place_(place) {
    for (const auto& [name, g] : chains.groups()) {
      auto& l = live_[name];
      for (const auto& p : g.pairs)
        if (!live || live(p)) l.push_back(p);
    }
  }

  Status<SfcError> plan() {
    for (const auto& [name, g] : chains_.groups()) {
      for (bool rev : {false, true}) {
        auto& members = groups[group_key(name, rev)];
        for (const auto& p : live_.at(name)) {
          const PortPair& pair = chains_.pairs().at(p);
          members.push_back({TargetKind::kPort, port(rev ? pair.out : pair.in).id.value()});
        }
      }
    }
    for (const auto& [name, c] : chains_.classifiers()) {
      if (auto s = plan_classifier(c); !s) return s;
    }
    return {};
  }

  std::map<std::string, std::vector<Target>> groups;
  std::map<std::string, Wanted> entries;

 private:
  const ProgramPort& port(const std::string& name) const { return ports_.at(name); }

  Status<SfcError> want(Wanted w) {
    const std::string k = entry_key(w.pipe, w.match);
    auto [it, fresh] = entries.emplace(k, w);
    if (fresh || (it->second.dest == w.dest && it->second.args == w.args)) return {};
    return Err{fail(SfcError::Code::kInUse,
                    "classifier '" + w.owner + "' needs a VNF port to continue one way where '" +
                        it->second.owner +
                        "' needs it the other (a one-armed instance serving one workload both ways)")};
  }

  Status<SfcError> plan_classifier(const FlowClassifier& c) {
    if (!ports_.contains(c.port))
      return Err{fail(SfcError::Code::kBadPort, "classifier '" + c.name + "': no port '" + c.port + "'")};
    const ProgramPort& wp = port(c.port);
    const Walk walk(chains_, c, wp, place_, live_);
    const bool entry = c.direction == Direction::kEntry;
    if (auto s = plan_match(c, c.match, entry, walk.forward(0), "c:"); !s) return s;
    if (c.symmetric) {
      if (auto s = plan_match(c, reversed(c.match), !entry,
                              walk.reverse(static_cast<std::ptrdiff_t>(walk.hops()) - 1), "r:");
          !s)
        return s;
    }
    for (std::size_t h = 0; h < walk.hops(); ++h) {
      const std::string tag = "h:" + c.chain + ":" + std::to_string(h);
      for (const auto& p : chains_.groups().at(walk.group(h)).pairs) {
        const PortPair& pair = chains_.pairs().at(p);
        // Forward traffic comes back out of the egress port; to the workload it carries the VIP as
        // destination, from it as source.
        if (auto s = plan_hop(c, port(pair.out).id, entry, walk.forward(h + 1), tag); !s) return s;
        if (c.symmetric) {
          const Dest back = walk.reverse(static_cast<std::ptrdiff_t>(h) - 1);
          if (auto s = plan_hop(c, port(pair.in).id, !entry, back, tag); !s) return s;
        }
      }
    }
    return {};
  }

  // to_workload: SFC_ENTRY keyed by the workload's port in reg0; else SFC_EXIT keyed by in-port.
  Status<SfcError> plan_match(const FlowClassifier& c, const Match& m, bool to_workload, const Dest& dest,
                              const std::string& tag) {
    auto elems = compile(m);
    if (!elems) return Err{fail(SfcError::Code::kBadMatch, "classifier '" + c.name + "': too many entries")};
    const PortId wp = port(c.port).id;
    for (auto& e : *elems) {
      Wanted w;
      w.pipe = to_workload ? place_.entry : place_.exit;
      w.match = {flow::eq(to_workload ? Field::kReg0 : Field::kInPort, wp.value())};
      w.match.insert(w.match.end(), e.begin(), e.end());
      w.dest = dest;
      w.tag = tag + c.name;
      w.owner = c.name;
      if (auto s = want(std::move(w)); !s) return s;
    }
    return {};
  }

  Status<SfcError> plan_hop(const FlowClassifier& c, PortId from, bool to_workload, const Dest& dest,
                            const std::string& tag) {
    const ProgramPort& wp = port(c.port);
    for (const net::IpAddr& vip : wp.vips) {
      Wanted w;
      w.pipe = place_.hop;
      const bool v4 = vip.family == net::IpFamily::kV4;
      const Field f =
          to_workload ? (v4 ? Field::kIpv4Dst : Field::kIpv6Dst) : (v4 ? Field::kIpv4Src : Field::kIpv6Src);
      w.match = {flow::eq(Field::kInPort, from.value()),
                 flow::eq(Field::kEtherType, v4 ? kEtherIpv4 : kEtherIpv6), flow::eq(f, vip)};
      w.dest = dest;
      w.args = {wp.id.value()};
      w.tag = tag;
      w.owner = c.name;
      if (auto s = want(std::move(w)); !s) return s;
    }
    return {};
  }

  const ServiceChains& chains_;
  const std::map<std::string, ProgramPort>& ports_;
  const Placement& place_;
  std::map<std::string, std::vector<std::string>> live_;  // group -> its live pairs, in group order
};

}  // namespace

ChainProgram::ChainProgram(flow::Pipeline& pipeline, Placement place,
                           std::map<std::string, ProgramPort> ports)
    : pl_(pipeline), place_(place), ports_(std::move(ports)) {}

ChainProgram::~ChainProgram() = default;

Status<SfcError> ChainProgram::apply(const ServiceChains& chains, const Live& live) {
  Planner plan(chains, ports_, place_, live);
  if (auto s = plan.plan(); !s) return s;
  const auto flow_fail = [](const std::string& what, flow::FlowError e) {
    return fail(SfcError::Code::kBadArgument, what + ": " + std::string(flow::to_string(e)));
  };
  const Target no_instance{TargetKind::kDrop, place_.drop_no_instance};
  // 1. Groups: new ones, and new members of kept ones (forward and reverse alike, same order).
  for (const auto& [key, members] : plan.groups) {
    std::vector<flow::TargetRef> refs;
    for (const Target& t : members) refs.push_back(to_ref(t));
    auto it = groups_.find(key);
    if (it == groups_.end()) {
      auto g = pl_.add_group(place_.group_after, refs, to_ref(no_instance));
      if (!g) return Err{flow_fail("group " + key, g.error())};
      groups_.emplace(key, GroupState{*g, members});
    } else if (it->second.members != members) {
      if (auto s = pl_.set_group(it->second.id, refs, to_ref(no_instance)); !s)
        return Err{flow_fail("group " + key, s.error())};
      it->second.members = members;
    }
  }
  const auto retire = [&](const Installed& i) {
    if (auto h = pl_.entry_hits(i.handle)) retired_[i.tag] += *h;
    (void)pl_.remove_entry(i.handle);
  };
  // 2. New entries in. An entry whose target changed is replaced make-before-break: the engine holds one
  // entry per (mask, key), so the new one goes in with the other bank's mask (Placement::bank_field: `== 0`,
  // or left out — the field is always 0, both match the same packets), then the old one out; its packets
  // always meet one of the two and never fall through to delivery unchained.
  for (const auto& [key, w] : plan.entries) {
    auto it = installed_.find(key);
    const bool replace = it != installed_.end();
    if (replace && it->second.dest == w.dest && it->second.args == w.args) continue;
    const bool banked = replace && !it->second.banked;
    flow::EntrySpec e;
    e.match = w.match;
    if (banked) e.match.push_back(flow::eq(place_.bank_field, 0));
    e.priority = w.priority;
    e.args = w.args;
    e.fwd = w.dest.group.empty() ? to_ref(w.dest.plain) : flow::TargetRef::group(groups_.at(w.dest.group).id);
    auto h = pl_.add_entry(w.pipe, e);
    if (!h) return Err{flow_fail("entry of " + w.tag.substr(2), h.error())};
    const Installed fresh{*h, w.dest, w.args, w.tag, banked};
    if (replace) {
      retire(it->second);
      it->second = fresh;
    } else {
      installed_.emplace(key, fresh);
    }
  }
  // 3. Stale entries out, then the groups nothing targets any more.
  std::vector<std::string> stale;
  for (const auto& [key, i] : installed_)
    if (!plan.entries.contains(key)) stale.push_back(key);
  for (const auto& key : stale) {
    retire(installed_.at(key));
    installed_.erase(key);
  }
  for (auto it = groups_.begin(); it != groups_.end();) {
    if (plan.groups.contains(it->first)) {
      ++it;
      continue;
    }
    if (auto s = pl_.remove_group(it->second.id); !s) return Err{flow_fail("group " + it->first, s.error())};
    it = groups_.erase(it);
  }
  return {};
}

ProgramCounts ChainProgram::counts() const {
  std::map<std::string, uint64_t> by_tag = retired_;
  for (const auto& [key, i] : installed_)
    if (auto h = pl_.entry_hits(i.handle)) by_tag[i.tag] += *h;
  ProgramCounts c;
  for (const auto& [tag, n] : by_tag) {
    const std::string rest = tag.substr(2);
    if (tag[0] == 'c') {
      c.classifier[rest] += n;
    } else if (tag[0] == 'r') {
      c.classifier_return[rest] += n;
    } else {
      const auto colon = rest.rfind(':');
      c.hop[{rest.substr(0, colon), std::stoul(rest.substr(colon + 1))}] += n;
    }
  }
  return c;
}

}  // namespace pspgw::sfc
