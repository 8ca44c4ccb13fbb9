#include "sfc/compile.hpp"

#include <algorithm>

#include "flow/range.hpp"

namespace pspgw::sfc {
namespace {

using flow::Field;
using flow::FieldMatch;

constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherIpv6 = 0x86dd;

bool same_entry(const std::vector<FieldMatch>& a, const std::vector<FieldMatch>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].field != b[i].field || a[i].value != b[i].value || a[i].mask != b[i].mask) return false;
  return true;
}

}  // namespace

std::vector<flow::FieldMask> classifier_template() {
  return {flow::match(Field::kEtherType), flow::match(Field::kIpv4Src), flow::match(Field::kIpv4Dst),
          flow::match(Field::kIpv6Src),   flow::match(Field::kIpv6Dst), flow::match(Field::kIpProto),
          flow::match(Field::kL4Src),     flow::match(Field::kL4Dst)};
}

Result<std::vector<std::vector<FieldMatch>>, CompileError> compile(const Match& m) {
  std::vector<std::vector<FieldMatch>> out;
  for (const Conjunction& c : m.any_of) {
    // "ip" / "tcp" without a family: one entry per family (never ARP or other non-IP frames).
    std::vector<uint8_t> families;
    if (c.family != 6) families.push_back(4);
    if (c.family != 4) families.push_back(6);
    const auto sports = flow::range_matches(Field::kL4Src, c.sport.lo, c.sport.hi);
    const auto dports = flow::range_matches(Field::kL4Dst, c.dport.lo, c.dport.hi);
    for (uint8_t fam : families) {
      std::vector<FieldMatch> base = {flow::eq(Field::kEtherType, fam == 4 ? kEtherIpv4 : kEtherIpv6)};
      if (c.proto != 0) base.push_back(flow::eq(Field::kIpProto, c.proto));
      const Field src = fam == 4 ? Field::kIpv4Src : Field::kIpv6Src;
      const Field dst = fam == 4 ? Field::kIpv4Dst : Field::kIpv6Dst;
      if (c.src && c.src->len != 0) base.push_back(flow::prefix(src, c.src->addr, c.src->len));
      if (c.dst && c.dst->len != 0) base.push_back(flow::prefix(dst, c.dst->addr, c.dst->len));
      for (const FieldMatch& sp : sports)
        for (const FieldMatch& dp : dports) {
          std::vector<FieldMatch> e = base;
          // A wildcard port (mask 0) stays out of the entry: fragments and protocols without ports match.
          if (!c.sport.any()) e.push_back(sp);
          if (!c.dport.any()) e.push_back(dp);
          // Two conjunctions may expand to one entry ("ip || ip4"): the engine refuses duplicates.
          if (std::any_of(out.begin(), out.end(), [&](const auto& o) { return same_entry(o, e); })) continue;
          if (out.size() == kMaxEntriesPerMatch) return Err{CompileError::kTooManyEntries};
          out.push_back(std::move(e));
        }
    }
  }
  return out;
}

}  // namespace pspgw::sfc
