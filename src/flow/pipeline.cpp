// Control plane of the pipeline: entries in and out, counters, workers. Data plane: worker.cpp.
#include "flow/pipeline.hpp"

#include <algorithm>

#include "flow/pipe.hpp"

namespace pspgw::flow {
namespace {

constexpr std::chrono::microseconds kReclaimWait{10000};

// Slack records for entries removed but not yet past their grace period.
uint32_t record_capacity(uint32_t max_entries) {
  return max_entries + std::max<uint32_t>(64, max_entries / 2);
}

int template_index(const Pipe& p, Field f) {
  for (std::size_t j = 0; j < p.layout.fields.size(); ++j)
    if (p.layout.fields[j].field == f) return static_cast<int>(j);
  return -1;
}

// Builds an entry's key and mask (both in key layout) from its match list.
Status<FlowError> entry_key(const Pipe& p, const EntrySpec& spec, Key& key, Key& mask) {
  uint64_t seen = 0;
  for (const FieldMatch& m : spec.match) {
    const int j = template_index(p, m.field);
    if (j < 0) return Err{FlowError::kFieldNotInTemplate};
    if ((seen >> j) & 1) return Err{FlowError::kBadTemplate};
    seen |= 1ULL << j;
    if (m.has_mask && p.lookup == LookupKind::kExact) return Err{FlowError::kMaskNotAllowed};
    const FieldBytes& tmask = p.layout.fields[j].mask;
    const FieldBytes& emask = m.has_mask ? m.mask : tmask;
    const unsigned width = field_info(m.field).width;
    bool any = false;
    for (unsigned b = 0; b < width; ++b) {
      if ((emask[b] & ~tmask[b]) != 0) return Err{FlowError::kMaskOutsideTemplate};
      if ((m.value[b] & ~emask[b]) != 0) return Err{FlowError::kValueOutsideMask};
      any |= emask[b] != 0;
    }
    if (!any) continue;  // mask 0: a wildcard, the field need not even be present
    const uint8_t off = p.layout.offset[j];
    for (unsigned b = 0; b < width; ++b) {
      key.bytes()[off + b] = m.value[b];
      mask.bytes()[off + b] = emask[b];
    }
    key.w[0] |= 1ULL << j;
    mask.w[0] |= 1ULL << j;
  }
  if (p.lookup == LookupKind::kExact && seen != (1ULL << p.layout.fields.size()) - 1)
    return Err{FlowError::kMissingField};
  return {};
}

// The search order of a small ternary pipe: ascending priority, ties in tuple order (tuple space search
// keeps the first tuple's entry on a tie), so both searches pick the same entry.
void fill_linear(const Pipe& p, TupleSet& set) {
  std::array<std::pair<uint64_t, uint32_t>, kLinearMax> order;  // (priority << 32 | tuple position, record)
  uint32_t n = 0;
  for (uint32_t rec = 0; rec < p.tuple_of.size() && n < kLinearMax; ++rec) {
    const Tuple* t = p.tuple_of[rec];
    if (t == nullptr) continue;
    const auto pos =
        static_cast<uint64_t>(std::find(set.t.begin(), set.t.begin() + set.n, t) - set.t.begin());
    order[n++] = {(static_cast<uint64_t>(p.records.priority(rec)) << 32) | pos, rec};
  }
  std::sort(order.begin(), order.begin() + n);
  const uint32_t words = p.layout.words;
  set.n_live = 0;
  for (uint32_t w = 0; w < words; ++w) {
    const bool live = std::any_of(order.begin(), order.begin() + n,
                                  [&](const auto& o) { return p.tuple_of[o.second]->mask.w[w] != 0; });
    if (live) set.live[set.n_live++] = static_cast<uint8_t>(w);
  }
  for (uint32_t r = 0; r < n; ++r) {
    LinearRule& rule = set.rules[r];
    const uint32_t rec = order[r].second;
    for (uint32_t i = 0; i < set.n_live; ++i) {
      rule.vm[2 * i] = p.records.key(rec)[set.live[i]];
      rule.vm[2 * i + 1] = p.tuple_of[rec]->mask.w[set.live[i]];
    }
    rule.rec = rec;
  }
  set.n_rules = n;
  set.linear = true;
}

// Publishes a new snapshot of the tuple list (and of the entries, while the pipe is small) with one release
// store; the old one is freed after a grace period. Not needed when a big pipe gains or loses an entry in
// an existing tuple.
void publish_tuples(Pipe& p, EpochDomain& epoch) {
  const TupleSet* old = p.tuples.load(std::memory_order_relaxed);
  auto* set = new TupleSet{};
  for (Tuple* t : p.live_tuples) {
    set->t[set->n++] = t;
    set->fields |= t->mask.w[0];  // a tuple's presence bits: the fields its mask is not zero on
  }
  if (p.live <= p.linear_max()) fill_linear(p, *set);
  p.tuples.store(set, std::memory_order_release);
  epoch.retire([old] { delete old; });
}

}  // namespace

Pipe::Pipe(PipeSpec spec, KeyLayout kl, uint16_t max_workers)
    : name(std::move(spec.name)),
      lookup(spec.lookup),
      layout(std::move(kl)),
      actions(std::move(spec.actions)),
      max_entries(spec.max_entries),
      records(record_capacity(spec.max_entries), layout.words,
              static_cast<uint32_t>(std::count_if(actions.begin(), actions.end(),
                                                  [](const ActionSpec& a) { return a.per_entry; }))),
      counters(std::make_unique<PipeCounters[]>(max_workers)),
      entry_hits(max_workers) {
  n_args = static_cast<uint32_t>(
      std::count_if(actions.begin(), actions.end(), [](auto& a) { return a.per_entry; }));
  if (lookup == LookupKind::kExact) {
    auto* set = new TupleSet{};
    set->t[0] = new Tuple(layout.mask, max_entries);
    set->n = 1;
    set->fields = layout.mask.w[0];  // the presence bits of every template field
    set->linear = true;              // no entries yet
    live_tuples.push_back(set->t[0]);
    tuples.store(set, std::memory_order_release);
  } else {
    auto* set = new TupleSet{};
    set->linear = true;  // no entries yet
    tuples.store(set, std::memory_order_release);
  }
}

Pipe::~Pipe() {
  delete tuples.load(std::memory_order_relaxed);
  for (Tuple* t : live_tuples) delete t;
}

uint64_t Pipe::hits_of(uint32_t rec) const {
  uint64_t sum = 0;
  for (const auto& w : entry_hits)
    if (w) sum += (*w)[rec].load(std::memory_order_relaxed);
  return sum;
}

void Pipe::release_record(uint32_t rec) {
  for (auto& w : entry_hits)
    if (w) (*w)[rec].store(0, std::memory_order_relaxed);
  free_records.push_back(rec);
}

void Pipe::ready_record(uint32_t rec) {
  if (rec < used_records()) return;  // a released one: release_record zeroed its counters
  for (auto& w : entry_hits)
    if (w) w->start(rec);
}

void Pipe::take_record(uint32_t rec) {
  if (rec < used_records()) {
    free_records.pop_back();
    return;
  }
  generation.push_back(0);
  tuple_of.push_back(nullptr);
}

Pipeline::Pipeline(std::vector<std::unique_ptr<Pipe>> pipes, PipeId root, uint16_t max_workers,
                   std::shared_ptr<const InnerLocator> inner, std::vector<Alias> aliases)
    : pipes_(std::move(pipes)),
      root_(root),
      max_workers_(max_workers),
      inner_(std::move(inner)),
      aliases_(std::move(aliases)),
      worker_taken_(max_workers, false),
      groups_(std::make_unique<GroupSlot[]>(kMaxGroups)),
      epoch_(max_workers) {
  for (const auto& p : pipes_)
    for (const auto& fm : p->layout.fields) uses_random_ |= fm.field == Field::kRandom;
}

Pipeline::~Pipeline() {
  // Workers are gone (each holds a reference). A removed group's table belongs to its pending retire
  // callback, which epoch_'s destructor runs after this body.
  for (uint16_t g = 0; g < kMaxGroups; ++g)
    if (groups_[g].live) delete groups_[g].table.load(std::memory_order_relaxed);
}

std::optional<PipeId> Pipeline::find_pipe(std::string_view name) const {
  for (const auto& p : pipes_)
    if (p->name == name) return p->id;
  return std::nullopt;
}

std::string_view Pipeline::pipe_name(PipeId id) const {
  return id.value() < pipes_.size() ? std::string_view(pipes_[id.value()]->name) : std::string_view();
}

Result<Target, FlowError> Pipeline::resolve(const Pipe& from, const TargetRef& ref) const {
  if (ref.empty()) return Err{FlowError::kNoHitTarget};
  if (ref.target.kind == TargetKind::kGroup) {
    if (ref.target.id >= kMaxGroups || !groups_[ref.target.id].live) return Err{FlowError::kUnknownGroup};
    if (groups_[ref.target.id].after < from.id) return Err{FlowError::kGroupNotAfter};
    return ref.target;
  }
  if (ref.target.kind != TargetKind::kPipe) return ref.target;
  std::optional<PipeId> id =
      ref.pipe_name.empty() ? std::optional<PipeId>(PipeId(ref.target.id)) : find_pipe(ref.pipe_name);
  if (!id || id->value() >= pipes_.size()) return Err{FlowError::kUnknownPipe};
  if (id->value() <= from.id.value()) return Err{FlowError::kTargetNotDownstream};
  return Target{TargetKind::kPipe, id->value()};
}

Result<EntryHandle, FlowError> Pipeline::add_entry(PipeId pipe, const EntrySpec& spec) {
  std::lock_guard lock(ctl_);
  if (pipe.value() >= pipes_.size()) return Err{FlowError::kUnknownPipe};
  Pipe& p = *pipes_[pipe.value()];
  epoch_.poll();
  if (p.live >= p.max_entries) return Err{FlowError::kTableFull};
  Key key, mask;
  if (auto s = entry_key(p, spec, key, mask); !s) return Err{s.error()};
  if (spec.args.size() != p.n_args) return Err{FlowError::kWrongArgCount};
  auto fwd = resolve(p, spec.fwd.empty() ? TargetRef{p.fwd, {}} : spec.fwd);
  if (!fwd) return Err{fwd.error()};

  // The tuple of this mask (ternary), created unpublished if new.
  const uint32_t words = p.layout.words;
  Tuple* tuple = nullptr;
  for (Tuple* t : p.live_tuples)
    if (keys_equal(t->mask.w.data(), mask.w.data(), words) || p.lookup == LookupKind::kExact) tuple = t;
  std::unique_ptr<Tuple> fresh;
  if (tuple == nullptr) {
    if (p.live_tuples.size() == kMaxTuples) return Err{FlowError::kTooManyMasks};
    fresh = std::make_unique<Tuple>(mask, p.max_entries);
    tuple = fresh.get();
  }
  const uint32_t hash = hash_key(key.w.data(), words);
  const auto same = [&](uint32_t idx) { return keys_equal(p.records.key(idx), key.w.data(), words); };
  if (tuple->index.find(hash, same) != kNoEntry) return Err{FlowError::kDuplicateEntry};
  // Every free record waits for a grace period: give the workers one or two batches (bounded, so an
  // online worker that stopped reporting cannot hang the control plane).
  if (!p.has_free_record() && !epoch_.wait_reclaim(kReclaimWait)) return Err{FlowError::kReclaimPending};

  const uint32_t rec = p.next_record();
  p.ready_record(rec);  // its counters, before any worker can find it
  p.records.write(rec, *fwd, spec.priority, key.w.data(), spec.args.data(), p.n_args);
  // The bound first, so no reader skips the tuple once it can see the entry. Lowering it early is safe.
  if (spec.priority < tuple->min_priority.load(std::memory_order_relaxed))
    tuple->min_priority.store(spec.priority, std::memory_order_relaxed);
  if (!tuple->index.insert(hash, rec)) return Err{FlowError::kTableFull};
  p.take_record(rec);
  if (fwd->kind == TargetKind::kGroup) ++groups_[fwd->id].refs;
  const bool fresh_tuple = fresh != nullptr;
  if (fresh) p.live_tuples.push_back(fresh.release());
  ++tuple->entries;
  ++p.live;
  p.tuple_of[rec] = tuple;
  if (fresh_tuple || p.tuples.load(std::memory_order_relaxed)->linear) publish_tuples(p, epoch_);
  return EntryHandle{pipe, rec, ++p.generation[rec]};
}

Status<FlowError> Pipeline::remove_entry(EntryHandle h) {
  std::lock_guard lock(ctl_);
  if (h.pipe.value() >= pipes_.size()) return Err{FlowError::kStaleHandle};
  Pipe& p = *pipes_[h.pipe.value()];
  if (h.slot >= p.used_records() || p.generation[h.slot] != h.generation || !p.is_live(h.slot))
    return Err{FlowError::kStaleHandle};
  Tuple* t = p.tuple_of[h.slot];
  if (const Target fwd = p.records.fwd(h.slot); fwd.kind == TargetKind::kGroup) --groups_[fwd.id].refs;
  t->index.erase(hash_key(p.records.key(h.slot), p.layout.words), h.slot);
  ++p.generation[h.slot];
  --p.live;
  p.tuple_of[h.slot] = nullptr;
  // A ternary pipe's empty tuple goes, after the grace period (retired after the last snapshot listing it).
  const bool drop_tuple = --t->entries == 0 && p.lookup == LookupKind::kTernary;
  if (drop_tuple) std::erase(p.live_tuples, t);
  if (drop_tuple || p.live <= p.linear_max()) publish_tuples(p, epoch_);
  if (drop_tuple) epoch_.retire([t] { delete t; });
  epoch_.retire([&p, slot = h.slot] { p.release_record(slot); });
  epoch_.poll();
  return {};
}

Result<uint64_t, FlowError> Pipeline::entry_hits(EntryHandle h) const {
  std::lock_guard lock(ctl_);
  if (h.pipe.value() >= pipes_.size()) return Err{FlowError::kStaleHandle};
  const Pipe& p = *pipes_[h.pipe.value()];
  if (h.slot >= p.used_records() || p.generation[h.slot] != h.generation || !p.is_live(h.slot))
    return Err{FlowError::kStaleHandle};
  return p.hits_of(h.slot);
}

Result<PipeStats, FlowError> Pipeline::pipe_stats(PipeId pipe) const {
  std::lock_guard lock(ctl_);
  if (pipe.value() >= pipes_.size()) return Err{FlowError::kUnknownPipe};
  const Pipe& p = *pipes_[pipe.value()];
  PipeStats st;
  st.entries = p.live;
  std::array<uint64_t, 256> drops{};
  for (uint16_t w = 0; w < max_workers_; ++w) {
    const PipeCounters& c = p.counters[w];
    st.hits += c.hits.load(std::memory_order_relaxed);
    st.misses += c.misses.load(std::memory_order_relaxed);
    st.mirrored += c.mirrored.load(std::memory_order_relaxed);
    for (std::size_t r = 0; r < drops.size(); ++r) drops[r] += c.drops[r].load(std::memory_order_relaxed);
  }
  for (std::size_t r = 0; r < drops.size(); ++r)
    if (drops[r] != 0) st.drops.emplace_back(static_cast<uint8_t>(r), drops[r]);
  return st;
}

Result<std::vector<Target>, FlowError> Pipeline::resolve_members(PipeId after,
                                                                 std::span<const TargetRef> members,
                                                                 const TargetRef& if_empty,
                                                                 Target& empty) const {
  if (after.value() >= pipes_.size()) return Err{FlowError::kUnknownPipe};
  const Pipe& from = *pipes_[after.value()];
  const auto one = [&](const TargetRef& m) -> Result<Target, FlowError> {
    if (m.target.kind == TargetKind::kGroup || m.empty()) return Err{FlowError::kBadGroupMember};
    auto t = resolve(from, m);
    if (!t) return Err{t.error() == FlowError::kUnknownPipe ? t.error() : FlowError::kBadGroupMember};
    return *t;
  };
  if (members.size() > kMaxGroupMembers) return Err{FlowError::kBadGroupMember};
  std::vector<Target> out;
  for (const TargetRef& m : members) {
    auto t = one(m);
    if (!t) return Err{t.error()};
    if (std::find(out.begin(), out.end(), *t) != out.end()) return Err{FlowError::kBadGroupMember};
    out.push_back(*t);
  }
  auto e = one(if_empty);
  if (!e) return Err{e.error()};
  empty = *e;
  return out;
}

void Pipeline::publish_group(GroupSlot& g, std::vector<Target> members, Target if_empty) {
  const GroupTable* old = g.table.load(std::memory_order_relaxed);
  g.table.store(new GroupTable(rebalance(old, members, if_empty)), std::memory_order_release);
  if (old != nullptr) epoch_.retire([old] { delete old; });
  g.members = std::move(members);
  g.if_empty = if_empty;
  epoch_.poll();
}

Result<GroupId, FlowError> Pipeline::add_group(PipeId after, std::span<const TargetRef> members,
                                               const TargetRef& if_empty) {
  std::lock_guard lock(ctl_);
  Target empty;
  auto m = resolve_members(after, members, if_empty, empty);
  if (!m) return Err{m.error()};
  uint16_t id = 0;
  epoch_.poll();
  while (id < kMaxGroups && !groups_[id].free) ++id;
  if (id == kMaxGroups) return Err{FlowError::kTooManyGroups};
  groups_[id].after = after;
  groups_[id].refs = 0;
  groups_[id].live = true;
  groups_[id].free = false;
  publish_group(groups_[id], std::move(*m), empty);
  return GroupId(id);
}

Status<FlowError> Pipeline::set_group(GroupId g, std::span<const TargetRef> members,
                                      const TargetRef& if_empty) {
  std::lock_guard lock(ctl_);
  if (g.value() >= kMaxGroups || !groups_[g.value()].live) return Err{FlowError::kUnknownGroup};
  GroupSlot& slot = groups_[g.value()];
  Target empty;
  auto m = resolve_members(slot.after, members, if_empty, empty);
  if (!m) return Err{m.error()};
  publish_group(slot, std::move(*m), empty);
  return {};
}

Status<FlowError> Pipeline::remove_group(GroupId g) {
  std::lock_guard lock(ctl_);
  if (g.value() >= kMaxGroups || !groups_[g.value()].live) return Err{FlowError::kUnknownGroup};
  GroupSlot& slot = groups_[g.value()];
  if (slot.refs != 0) return Err{FlowError::kGroupInUse};
  // A worker may still run a removed entry that names the group: the table stays until the grace period.
  slot.live = false;
  slot.members.clear();
  epoch_.retire([&slot] {
    delete slot.table.load(std::memory_order_relaxed);
    slot.table.store(nullptr, std::memory_order_relaxed);
    slot.free = true;
  });
  epoch_.poll();
  return {};
}

Result<GroupTable, FlowError> Pipeline::group_table(GroupId g) const {
  std::lock_guard lock(ctl_);
  if (g.value() >= kMaxGroups || !groups_[g.value()].live) return Err{FlowError::kUnknownGroup};
  return *groups_[g.value()].table.load(std::memory_order_relaxed);
}

void Pipeline::synchronize() {
  std::lock_guard lock(ctl_);
  epoch_.synchronize();
}

Result<std::unique_ptr<Worker>, FlowError> Pipeline::attach_worker(const WorkerOptions& opts) {
  std::lock_guard lock(ctl_);
  uint16_t id = 0;
  while (id < max_workers_ && worker_taken_[id]) ++id;
  if (id == max_workers_) return Err{FlowError::kTooManyWorkers};
  worker_taken_[id] = true;
  for (auto& p : pipes_) {
    if (p->entry_hits[id]) continue;
    p->entry_hits[id] = std::make_unique<EntryHits>(p->records.capacity());
    for (uint32_t rec = 0; rec < p->used_records(); ++rec) p->entry_hits[id]->start(rec);
  }
  std::unique_ptr<Worker> w(new Worker(*this, id, opts));
  epoch_.online(id);
  return w;
}

}  // namespace pspgw::flow
