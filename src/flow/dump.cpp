// Introspection: the live pipeline as a Mermaid flowchart in the style of the seed diagrams (a node per
// pipe with "M:" match fields and "A:" actions; edges for fwd, miss (dotted) and mirror, with counts) and
// as JSON. Control plane only; takes the control mutex.
#include <bit>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "flow/pipe.hpp"
#include "flow/pipeline.hpp"

namespace pspgw::flow {
namespace {

constexpr std::string_view kBreak = "\n    ";  // a line break inside a Mermaid label, indented like the seeds

uint64_t as_uint(const uint8_t* b, unsigned width) {
  uint64_t v = 0;
  for (unsigned i = 0; i < width && i < 8; ++i) v = (v << 8) | b[i];
  return v;
}

// Appends item, after sep unless out is empty. (Also sidesteps GCC 12's -Wrestrict false positive on
// `"literal" + std::string`.)
void join(std::string& out, std::string_view sep, std::string_view item) {
  if (!out.empty()) out.append(sep);
  out.append(item);
}

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

bool is_full(const uint8_t* m, unsigned width) {
  for (unsigned i = 0; i < width; ++i)
    if (m[i] != 0xff) return false;
  return true;
}

// Leading ones of a mask, or -1 when it is not a prefix.
int prefix_len(const uint8_t* m, unsigned width) {
  int bits = 0;
  bool ended = false;
  for (unsigned i = 0; i < width; ++i) {
    const int ones = std::countl_one(m[i]);
    if (ended && m[i] != 0) return -1;
    if (ones < 8 && (static_cast<uint8_t>(m[i] << ones) != 0)) return -1;
    bits += ones;
    ended |= ones < 8;
  }
  return bits;
}

std::string value_text(Field f, const uint8_t* v, const uint8_t* m) {
  const unsigned width = field_info(f).width;
  const uint64_t u = as_uint(v, width);
  if (width == 4 || width == 16) {
    const bool v4 = f == Field::kIpv4Src || f == Field::kIpv4Dst || f == Field::kInnerIpv4Src ||
                    f == Field::kInnerIpv4Dst;
    const bool v6 = f == Field::kIpv6Src || f == Field::kIpv6Dst || f == Field::kInnerIpv6Src ||
                    f == Field::kInnerIpv6Dst;
    if (v4 || v6) {
      const net::IpAddr a = v4 ? net::IpAddr::v4(std::span<const uint8_t, 4>(v, 4))
                               : net::IpAddr::v6(std::span<const uint8_t, 16>(v, 16));
      const int len = prefix_len(m, width);
      if (is_full(m, width)) return a.to_string();
      std::string text = a.to_string();
      return text.append(len >= 0 ? "/" : "&")
          .append(len >= 0 ? std::to_string(len) : hex(as_uint(m, width)));
    }
  }
  if (f == Field::kEtherType) {
    if (u == 0x0800) return "ipv4";
    if (u == 0x86dd) return "ipv6";
    if (u == 0x0806) return "arp";
  }
  if (f == Field::kIpProto || f == Field::kInnerIpProto) {
    if (u == 6) return "tcp";
    if (u == 17) return "udp";
  }
  return std::to_string(u);
}

std::string target_node(const Pipeline& pl, Target t, const DumpOptions& o) {
  switch (t.kind) {
    case TargetKind::kPipe:
      return std::string(pl.pipe_name(PipeId(t.id)));
    case TargetKind::kPort:
      return o.port_name ? o.port_name(PortId(t.id)) : "port" + std::to_string(t.id);
    case TargetKind::kCpu:
      return o.cpu_name ? o.cpu_name(t.id) : t.id == 0 ? std::string("RSS") : "RSS" + std::to_string(t.id);
    case TargetKind::kKernel:
      return "kernel";
    case TargetKind::kDrop:
      return "drop";
    case TargetKind::kGroup:
      return "group" + std::to_string(t.id);
    case TargetKind::kNone:
      break;
  }
  return "none";
}

std::string node_decl(Target t, const std::string& name) {
  if (t.kind == TargetKind::kCpu || t.kind == TargetKind::kDrop) return "[[" + name + "]]";
  return "{{" + name + "}}";
}

std::string edge_label(std::vector<std::string> lines, const DumpOptions& o, uint64_t n) {
  if (o.counts) lines.push_back("n=" + std::to_string(n));
  if (lines.empty()) return {};
  std::string s;
  for (const auto& l : lines) join(s, kBreak, l);
  return "|\"" + s + "\"|";
}

std::string target_json_kind(TargetKind k) {
  switch (k) {
    case TargetKind::kPipe:
      return "pipe";
    case TargetKind::kPort:
      return "port";
    case TargetKind::kCpu:
      return "cpu";
    case TargetKind::kKernel:
      return "kernel";
    case TargetKind::kDrop:
      return "drop";
    case TargetKind::kGroup:
      return "group";
    case TargetKind::kNone:
      break;
  }
  return "none";
}

}  // namespace

std::string Pipeline::field_label(Field f, const FieldBytes& mask) const {
  const unsigned width = field_info(f).width;
  for (const Alias& a : aliases_)
    if (a.field == f && std::equal(mask.begin(), mask.begin() + width, a.mask.begin())) return a.name;
  if (is_full(mask.data(), width) || width > 8) return std::string(field_info(f).name);
  return std::string(field_info(f).name) + "&" + hex(as_uint(mask.data(), width));
}

// "port=1, ipv4, psp.S=1": the fields an entry matches (wildcards left out).
std::string Pipeline::entry_label(const Pipe& p, uint32_t rec) const {
  const Key& mask = p.tuple_of[rec]->mask;
  const uint8_t* key = reinterpret_cast<const uint8_t*>(p.records.key(rec));
  std::string out;
  for (std::size_t j = 0; j < p.layout.fields.size(); ++j) {
    if (((mask.w[0] >> j) & 1) == 0) continue;
    const Field f = p.layout.fields[j].field;
    const unsigned width = field_info(f).width;
    const uint8_t* m = mask.bytes() + p.layout.offset[j];
    const uint8_t* v = key + p.layout.offset[j];
    FieldBytes fm{};
    std::copy_n(m, width, fm.begin());
    std::string item;
    if (f == Field::kEtherType && is_full(m, width)) {
      item = value_text(f, v, m);
    } else if (width <= 8 && !is_full(m, width)) {
      const uint64_t mv = as_uint(m, width);
      item = field_label(f, fm) + "=" + std::to_string(as_uint(v, width) >> std::countr_zero(mv));
    } else {
      item = field_label(f, fm) + "=" + value_text(f, v, m);
    }
    join(out, ",\n    ", item);
  }
  return out.empty() ? "*" : out;
}

std::string Pipeline::node_label(const Pipe& p) const {
  std::string label = p.name;
  std::string fields;
  for (const FieldMask& fm : p.layout.fields) join(fields, ",", field_label(fm.field, fm.mask));
  if (!fields.empty()) label.append(kBreak).append("M:").append(fields);
  std::string acts;
  for (const ActionSpec& a : p.actions) {
    std::string s;
    if (a.kind == ActionSpec::Kind::kUser) {
      s = a.user->name();
    } else if (a.kind == ActionSpec::Kind::kSetMeta) {
      s = std::string(field_info(a.field).name) + "=" +
          (a.per_entry ? (a.label.empty() ? "arg" : a.label) : std::to_string(a.value));
    } else {
      const FieldBytes fm = field_bytes(a.field, a.mask);
      s = !a.label.empty()
              ? a.label
              : field_label(a.field, fm) + "=" + std::to_string(a.value >> std::countr_zero(a.mask));
    }
    join(acts, ",\n    ", s);
  }
  if (!acts.empty()) label.append(kBreak).append("A:").append(acts);
  return label;
}

std::string Pipeline::to_mermaid(const DumpOptions& o) const {
  std::lock_guard lock(ctl_);
  std::ostringstream nodes, edges;
  std::map<std::string, Target> terminals;
  const auto to = [&](Target t) {
    std::string n = target_node(*this, t, o);
    if (t.terminal()) terminals.emplace(n, t);
    return n;
  };
  nodes << "%%{init:{'flowchart':{'useMaxWidth':false}}}%%\nflowchart LR\n    ingress{{ingress}}\n";
  edges << "    ingress-->" << pipes_[root_.value()]->name << "\n";
  for (const auto& pp : pipes_) {
    const Pipe& p = *pp;
    nodes << "    " << p.name << "[\"" << node_label(p) << "\"]\n";
    uint64_t hits = 0, misses = 0, mirrored = 0;
    for (uint16_t w = 0; w < max_workers_; ++w) {
      hits += p.counters[w].hits.load(std::memory_order_relaxed);
      misses += p.counters[w].misses.load(std::memory_order_relaxed);
      mirrored += p.counters[w].mirrored.load(std::memory_order_relaxed);
    }
    // Hit edges: one per entry for small pipes (ROOT's rules), else one per distinct target.
    std::map<std::string, uint64_t> by_target;
    if (p.fwd.kind != TargetKind::kNone) by_target[to(p.fwd)] = 0;
    for (uint32_t rec = 0; rec < p.used_records(); ++rec) {
      if (!p.is_live(rec)) continue;
      const std::string dst = to(p.records.fwd(rec));
      if (p.live <= o.entry_edges) {
        edges << "    " << p.name << "-->" << edge_label({"M:" + entry_label(p, rec)}, o, p.hits_of(rec))
              << dst << "\n";
      } else {
        by_target[dst] += p.hits_of(rec);
      }
    }
    if (p.live > o.entry_edges || p.live == 0)
      for (const auto& [dst, n] : by_target)
        edges << "    " << p.name << "-->" << edge_label({}, o, n) << dst << "\n";
    edges << "    " << p.name << "-.->" << edge_label({"miss"}, o, misses) << to(p.miss) << "\n";
    if (p.mirror.kind != TargetKind::kNone)
      edges << "    " << p.name << "-->" << edge_label({"mirror"}, o, mirrored) << to(p.mirror) << "\n";
    (void)hits;
  }
  for (const auto& [name, t] : terminals) nodes << "    " << name << node_decl(t, name) << "\n";
  return nodes.str() + "\n" + edges.str();
}

std::string Pipeline::to_json(const DumpOptions& o) const {
  std::lock_guard lock(ctl_);
  using nlohmann::json;
  const auto target = [&](Target t) {
    json j{{"kind", target_json_kind(t.kind)}};
    if (t.kind != TargetKind::kNone && t.kind != TargetKind::kKernel) j["id"] = t.id;
    if (t.kind == TargetKind::kPipe) j["pipe"] = pipe_name(PipeId(t.id));
    if (t.terminal()) j["node"] = target_node(*this, t, o);
    return j;
  };
  json pipes = json::array();
  for (const auto& pp : pipes_) {
    const Pipe& p = *pp;
    json j{{"id", p.id.value()},
           {"name", p.name},
           {"lookup", p.lookup == LookupKind::kExact ? "exact" : "ternary"},
           {"max_entries", p.max_entries},
           {"entries", p.live},
           {"fwd", target(p.fwd)},
           {"miss", target(p.miss)}};
    if (p.mirror.kind != TargetKind::kNone) j["mirror"] = target(p.mirror);
    for (const FieldMask& fm : p.layout.fields)
      j["match"].push_back(
          {{"field", field_label(fm.field, fm.mask)}, {"mask", hex(as_uint(fm.mask.data(), 8))}});
    uint64_t hits = 0, misses = 0, mirrored = 0;
    json drops = json::object();
    for (uint16_t w = 0; w < max_workers_; ++w) {
      hits += p.counters[w].hits.load(std::memory_order_relaxed);
      misses += p.counters[w].misses.load(std::memory_order_relaxed);
      mirrored += p.counters[w].mirrored.load(std::memory_order_relaxed);
    }
    for (std::size_t r = 0; r < 256; ++r) {
      uint64_t n = 0;
      for (uint16_t w = 0; w < max_workers_; ++w) n += p.counters[w].drops[r].load(std::memory_order_relaxed);
      if (n != 0) drops[std::to_string(r)] = n;
    }
    j["counters"] = {{"hits", hits}, {"misses", misses}, {"mirrored", mirrored}, {"drops", drops}};
    if (p.live <= o.entry_edges) {
      j["entry_list"] = json::array();
      for (uint32_t rec = 0; rec < p.used_records(); ++rec)
        if (p.is_live(rec))
          j["entry_list"].push_back({{"match", entry_label(p, rec)},
                                     {"priority", p.records.priority(rec)},
                                     {"fwd", target(p.records.fwd(rec))},
                                     {"hits", p.hits_of(rec)}});
    }
    pipes.push_back(std::move(j));
  }
  return json{{"root", pipe_name(root_)}, {"pipes", std::move(pipes)}}.dump(2);
}

}  // namespace pspgw::flow
