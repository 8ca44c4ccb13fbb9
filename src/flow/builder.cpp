#include "flow/builder.hpp"

#include <algorithm>
#include <map>

#include "flow/extract.hpp"
#include "flow/pipe.hpp"

namespace pspgw::flow {
namespace {

BuildError fail(FlowError e, std::string detail) {
  return {e, std::move(detail)};
}

Result<KeyLayout, BuildError> layout_of(const PipeSpec& spec) {
  KeyLayout kl;
  if (spec.match.size() > kMaxTemplateFields) return Err{fail(FlowError::kKeyTooLong, spec.name)};
  std::size_t off = 8;  // word 0: presence bits
  for (std::size_t j = 0; j < spec.match.size(); ++j) {
    const FieldMask& fm = spec.match[j];
    const unsigned width = field_info(fm.field).width;
    const bool dup = std::any_of(spec.match.begin(), spec.match.begin() + static_cast<std::ptrdiff_t>(j),
                                 [&](const FieldMask& o) { return o.field == fm.field; });
    const bool zero = std::all_of(fm.mask.begin(), fm.mask.begin() + width, [](uint8_t b) { return b == 0; });
    if (dup || zero)
      return Err{fail(FlowError::kBadTemplate, spec.name + ": " + std::string(field_info(fm.field).name))};
    if (off + width > kMaxKeyBytes) return Err{fail(FlowError::kKeyTooLong, spec.name)};
    kl.offset[j] = static_cast<uint8_t>(off);
    std::copy_n(fm.mask.begin(), width, kl.mask.bytes() + off);
    kl.partial |= std::any_of(fm.mask.begin(), fm.mask.begin() + width, [](uint8_t b) { return b != 0xff; });
    kl.mask.w[0] |= 1ULL << j;
    off += width;
  }
  kl.fields = spec.match;
  kl.words = static_cast<uint32_t>((off + 7) / 8);
  return kl;
}

Status<BuildError> check_actions(const PipeSpec& spec) {
  for (const ActionSpec& a : spec.actions) {
    // kInPort too: a packet back from a service chain goes on as if from its original port (src/sfc).
    const bool reg = a.field == Field::kPktMeta || a.field == Field::kInPort ||
                     (a.field >= Field::kReg0 && a.field <= Field::kReg3);
    const bool ok = (a.kind == ActionSpec::Kind::kSetMeta && reg) ||
                    (a.kind == ActionSpec::Kind::kSetBits && writable_field(a.field) && !a.per_entry) ||
                    (a.kind == ActionSpec::Kind::kUser && a.user != nullptr);
    if (!ok) return Err{fail(FlowError::kBadAction, spec.name)};
  }
  return {};
}

// Every pipe target names a pipe; every pipe has a miss target; mirrors end the path.
Status<BuildError> check_targets(const PipeSpec& spec, const std::map<std::string, std::size_t>& index) {
  const auto dangling = [&](const TargetRef& t) {
    return t.target.kind == TargetKind::kPipe && (t.pipe_name.empty() || !index.contains(t.pipe_name));
  };
  if (spec.miss.empty()) return Err{fail(FlowError::kNoMissTarget, spec.name)};
  // Groups are created on a built pipeline (Pipeline::add_group): only entries can name them.
  for (const TargetRef* t : {&spec.fwd, &spec.miss, &spec.mirror})
    if (t->target.kind == TargetKind::kGroup) return Err{fail(FlowError::kUnknownGroup, spec.name)};
  if (dangling(spec.fwd) || dangling(spec.miss))
    return Err{fail(FlowError::kDanglingTarget,
                    spec.name + " -> " + (dangling(spec.fwd) ? spec.fwd : spec.miss).pipe_name)};
  const TargetKind m = spec.mirror.target.kind;
  if (m == TargetKind::kPipe || m == TargetKind::kDrop)
    return Err{fail(FlowError::kBadMirrorTarget, spec.name)};
  return {};
}

// Kahn's algorithm, ties broken by declaration order: the order pipes are numbered and run in.
Result<std::vector<std::size_t>, BuildError> topo_order(const std::vector<PipeSpec>& specs,
                                                        const std::vector<std::vector<std::size_t>>& edges) {
  const std::size_t n = specs.size();
  std::vector<std::size_t> indegree(n, 0), order;
  for (const auto& out : edges)
    for (std::size_t to : out) ++indegree[to];
  std::vector<bool> done(n, false);
  while (order.size() < n) {
    std::size_t next = n;
    for (std::size_t i = 0; i < n && next == n; ++i)
      if (!done[i] && indegree[i] == 0) next = i;
    if (next == n) {
      const auto it = std::find(done.begin(), done.end(), false);
      return Err{fail(FlowError::kCycle, specs[static_cast<std::size_t>(it - done.begin())].name)};
    }
    done[next] = true;
    order.push_back(next);
    for (std::size_t to : edges[next]) --indegree[to];
  }
  return order;
}

Target resolved(const TargetRef& t, const std::map<std::string, std::size_t>& index,
                const std::vector<std::size_t>& rank) {
  if (t.target.kind != TargetKind::kPipe) return t.target;
  return {TargetKind::kPipe, static_cast<uint16_t>(rank[index.at(t.pipe_name)])};
}

}  // namespace

PipelineBuilder& PipelineBuilder::add_pipe(PipeSpec spec) {
  specs_.push_back(std::move(spec));
  return *this;
}
PipelineBuilder& PipelineBuilder::add_entry(std::string pipe, EntrySpec entry) {
  entries_.emplace_back(std::move(pipe), std::move(entry));
  return *this;
}
PipelineBuilder& PipelineBuilder::root(std::string name) {
  root_ = std::move(name);
  return *this;
}
PipelineBuilder& PipelineBuilder::max_workers(uint16_t n) {
  max_workers_ = n;
  return *this;
}
PipelineBuilder& PipelineBuilder::inner_locator(std::shared_ptr<const InnerLocator> locator) {
  inner_ = std::move(locator);
  return *this;
}
PipelineBuilder& PipelineBuilder::alias(Field f, uint64_t mask, std::string name) {
  aliases_.push_back({f, field_bytes(f, mask), std::move(name)});
  return *this;
}

Result<std::unique_ptr<Pipeline>, BuildError> PipelineBuilder::build() {
  if (specs_.empty()) return Err{fail(FlowError::kNoPipes, {})};
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < specs_.size(); ++i)
    if (!index.emplace(specs_[i].name, i).second) return Err{fail(FlowError::kDuplicatePipe, specs_[i].name)};
  const std::string root = root_.empty() ? specs_[0].name : root_;
  if (!index.contains(root)) return Err{fail(FlowError::kUnknownPipe, root)};

  std::vector<std::vector<std::size_t>> edges(specs_.size());
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    const PipeSpec& s = specs_[i];
    if (auto st = check_targets(s, index); !st) return Err{st.error()};
    if (auto st = check_actions(s); !st) return Err{st.error()};
    for (const TargetRef* t : {&s.fwd, &s.miss})
      if (t->target.kind == TargetKind::kPipe) edges[i].push_back(index.at(t->pipe_name));
  }
  for (const auto& [pipe, e] : entries_) {
    if (!index.contains(pipe)) return Err{fail(FlowError::kUnknownPipe, pipe)};
    if (e.fwd.target.kind != TargetKind::kPipe) continue;
    if (e.fwd.pipe_name.empty() || !index.contains(e.fwd.pipe_name))
      return Err{fail(FlowError::kDanglingTarget, pipe + " -> " + e.fwd.pipe_name)};
    edges[index.at(pipe)].push_back(index.at(e.fwd.pipe_name));
  }
  auto order = topo_order(specs_, edges);
  if (!order) return Err{order.error()};
  std::vector<std::size_t> rank(specs_.size());
  for (std::size_t r = 0; r < order->size(); ++r) rank[(*order)[r]] = r;

  std::vector<std::unique_ptr<Pipe>> pipes;
  for (std::size_t r = 0; r < order->size(); ++r) {
    PipeSpec s = specs_[(*order)[r]];
    auto kl = layout_of(s);
    if (!kl) return Err{kl.error()};
    const Target fwd = resolved(s.fwd, index, rank), miss = resolved(s.miss, index, rank);
    const Target mirror = s.mirror.target;
    auto p = std::make_unique<Pipe>(std::move(s), std::move(*kl), max_workers_);
    p->id = PipeId(static_cast<uint16_t>(r));
    p->fwd = fwd;
    p->miss = miss;
    p->mirror = mirror;
    for (const auto& fm : p->layout.fields) {
      p->needs_outer |= field_info(fm.field).source != FieldSource::kMeta;
      p->needs_inner |= field_info(fm.field).source == FieldSource::kInner;
    }
    for (const auto& a : p->actions) p->may_drop |= a.kind == ActionSpec::Kind::kUser;
    pipes.push_back(std::move(p));
  }
  std::unique_ptr<Pipeline> pl(new Pipeline(
      std::move(pipes), PipeId(static_cast<uint16_t>(rank[index.at(root)])), max_workers_, inner_, aliases_));
  for (const auto& [pipe, e] : entries_) {
    auto h = pl->add_entry(*pl->find_pipe(pipe), e);
    if (!h) return Err{fail(h.error(), "static entry of " + pipe)};
  }
  return pl;
}

}  // namespace pspgw::flow
