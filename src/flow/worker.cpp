// Data plane: one batch through the pipe graph. See pipeline.hpp for the stage list.
#include <bit>
#include <random>

#include "flow/extract.hpp"
#include "flow/pipe.hpp"
#include "flow/pipeline.hpp"

namespace pspgw::flow {
namespace {

constexpr std::size_t kMaxOutputs = 8;     // distinct terminal targets buffered per batch before a flush
constexpr uint32_t kProbe = kNoEntry - 1;  // lookup stage 2: the home bucket did not settle it

struct Item {
  net::Packet* pkt;
  uint16_t slot;  // index of the packet's parse cache
};

struct OutBuf {
  Target target;
  uint16_t n = 0;
  std::array<net::Packet*, net::kMaxBatch> pkts;
};

}  // namespace

struct Worker::Scratch {
  ActionContext ctx;
  uint64_t rng = 0;
  std::vector<std::array<Item, net::kMaxBatch>> queue;  // [pipe]
  std::vector<uint16_t> qlen;
  std::vector<PipeCounters*> counters;        // [pipe] this worker's block
  std::vector<std::atomic<uint64_t>*> ehits;  // [pipe] this worker's per-entry hits
  std::array<Parsed, net::kMaxBatch> parsed;
  std::array<OutBuf, kMaxOutputs> out;
  std::size_t n_out = 0;
  std::size_t last = 0;  // out[last]: the buffer emit() used last
  // One pipe stage. Keys: only the pipe's key words are written and read.
  Item* items = nullptr;  // the running pipe's queue
  std::array<Key, net::kMaxBatch> keys;
  std::array<Key, net::kMaxBatch> tkeys;
  std::array<uint32_t, net::kMaxBatch> hash, rec, cand, prio;
  std::array<uint16_t, net::kMaxBatch> hits, sel;
  std::array<net::Packet*, net::kMaxBatch> pkts;
  std::array<uint64_t, net::kMaxBatch> args;
  std::array<OuterL4, net::kMaxBatch> outer;
  std::array<uint16_t, net::kMaxBatch> inner;

  uint32_t random() {  // xorshift64*: sampling needs spread, not secrecy
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return static_cast<uint32_t>((rng * 0x2545f4914f6cdd1dULL) >> 32);
  }
  void flush(OutBuf& b, Sink& sink);
  OutBuf& open(Target t, Sink& sink);
  // Most packets of a batch leave by one target: try the buffer used last before searching.
  void emit(Target t, net::Packet* p, Sink& sink) {
    OutBuf& b = n_out != 0 && out[last].target == t ? out[last] : open(t, sink);
    b.pkts[b.n++] = p;
    if (b.n == b.pkts.size()) flush(b, sink);
  }
  void flush_all(Sink& sink) {
    for (std::size_t i = 0; i < n_out; ++i) flush(out[i], sink);
    n_out = 0;
  }
};

void Worker::Scratch::flush(OutBuf& b, Sink& sink) {
  if (b.n == 0) return;
  const std::span<net::Packet* const> pk(b.pkts.data(), b.n);
  switch (b.target.kind) {
    case TargetKind::kPort:
      sink.to_port(PortId(b.target.id), pk);
      break;
    case TargetKind::kCpu:
      sink.to_cpu(b.target.id, pk);
      break;
    case TargetKind::kKernel:
      sink.to_kernel(pk);
      break;
    default:  // kDrop; the builder lets no other kind reach an output
      sink.dropped(static_cast<uint8_t>(b.target.id), pk);
      break;
  }
  b.n = 0;
}

OutBuf& Worker::Scratch::open(Target t, Sink& sink) {
  std::size_t i = 0;
  while (i < n_out && !(out[i].target == t)) ++i;
  if (i == n_out) {
    if (n_out == kMaxOutputs) {
      flush_all(sink);
      i = 0;
    }
    out[i].target = t;
    out[i].n = 0;
    n_out = i + 1;
  }
  last = i;
  return out[i];
}

Worker::Worker(Pipeline& pl, uint16_t id, const WorkerOptions& opts)
    : pl_(pl), id_(id), s_(std::make_unique<Scratch>()) {
  s_->ctx = {id, opts.pool};
  s_->rng = opts.seed != 0 ? opts.seed : (static_cast<uint64_t>(std::random_device{}()) << 32) | 1;
  const std::size_t n = pl.pipes_.size();
  s_->queue.resize(n);
  s_->qlen.assign(n, 0);
  for (const auto& p : pl.pipes_) {
    s_->counters.push_back(&p->counters[id]);
    s_->ehits.push_back(p->entry_hits[id]->data());
  }
}

Worker::~Worker() {
  pl_.epoch_.offline(id_);
  std::lock_guard lock(pl_.ctl_);
  pl_.worker_taken_[id_] = false;
}

void Worker::process(net::PacketBatch& batch, PipeId start, Sink& sink) {
  Scratch& s = *s_;
  const auto n = static_cast<uint16_t>(batch.size());
  auto& q = s.queue[start.value()];
  for (uint16_t i = 0; i < n; ++i) {
    net::Packet* p = batch[i];
    __builtin_prefetch(p->data());  // the headers: parsed by the first pipe, after this loop
    p->meta.drop_reason = 0;
    if (pl_.uses_random_) p->meta.random = s.random();
    s.parsed[i].have = 0;
    q[i] = {p, i};
  }
  s.qlen[start.value()] = n;
  batch.clear();
  for (std::size_t id = start.value(); id < pl_.pipes_.size(); ++id)
    if (s.qlen[id] != 0) run_pipe(*pl_.pipes_[id], sink);
  s.flush_all(sink);
  pl_.epoch_.quiescent(id_);
}

namespace {

void parse_layers(const Pipe& p, const InnerLocator* locator, Worker::Scratch& s, uint16_t n);
void match(const Pipe& p, Worker::Scratch& s, uint16_t n);
uint16_t count_hits(const Pipe& p, Worker::Scratch& s, uint16_t n);
uint16_t run_actions(const Pipe& p, Worker::Scratch& s, uint16_t n_hits);
void mirror(const Pipe& p, Worker::Scratch& s, uint16_t n_hits, Sink& sink);

}  // namespace

namespace {

// A resolved entry names only live groups, and remove_group waits for the entries to go first.
Target select_member(const GroupSlot& g, const net::Packet& pkt, Parsed& ps) {
  if ((ps.have & Parsed::kOuter) == 0) parse_outer(pkt, ps);
  const GroupTable* t = g.table.load(std::memory_order_acquire);
  return t->slot[symmetric_flow_hash(pkt, ps.outer) % kGroupSlots];
}

}  // namespace

void Worker::run_pipe(const Pipe& p, Sink& sink) {
  Scratch& s = *s_;
  const uint16_t n = s.qlen[p.id.value()];
  s.qlen[p.id.value()] = 0;
  // A pipe forwards only downstream, so its own queue stays as it is while it runs: work on it in place.
  s.items = s.queue[p.id.value()].data();
  if (p.needs_outer) parse_layers(p, pl_.inner_.get(), s, n);
  match(p, s, n);
  uint16_t n_hits = count_hits(p, s, n);
  if (n_hits != 0 && !p.actions.empty()) n_hits = run_actions(p, s, n_hits);
  if (n_hits != 0 && p.mirror.kind != TargetKind::kNone) mirror(p, s, n_hits, sink);

  PipeCounters& c = *s.counters[p.id.value()];
  for (uint16_t i = 0; i < n; ++i) {
    const Item it = s.items[i];
    Target t = s.rec[i] != kNoEntry ? p.records.fwd(s.rec[i]) : p.miss;
    if (p.may_drop && it.pkt->meta.drop_reason != 0) t = {TargetKind::kDrop, it.pkt->meta.drop_reason};
    if (t.kind == TargetKind::kGroup) [[unlikely]]
      t = select_member(pl_.groups_[t.id], *it.pkt, s.parsed[it.slot]);
    if (t.kind == TargetKind::kPipe) {
      s.queue[t.id][s.qlen[t.id]++] = it;
      continue;
    }
    if (t.kind == TargetKind::kDrop) {
      it.pkt->meta.drop_reason = static_cast<uint8_t>(t.id);
      bump(c.drops[t.id]);
    }
    s.emit(t, it.pkt, sink);
  }
}

namespace {

void parse_layers(const Pipe& p, const InnerLocator* locator, Worker::Scratch& s, uint16_t n) {
  uint16_t need = 0;
  for (uint16_t i = 0; i < n; ++i) {
    const Item it = s.items[i];
    Parsed& ps = s.parsed[it.slot];
    if ((ps.have & Parsed::kOuter) == 0) parse_outer(*it.pkt, ps);
    if (p.needs_inner && (ps.have & Parsed::kInner) == 0) {
      s.pkts[need] = it.pkt;
      s.outer[need] = {ps.outer.udp_payload, ps.outer.dport};
      s.hits[need++] = it.slot;
    }
  }
  if (need == 0) return;
  if (locator != nullptr) {
    locator->locate({s.pkts.data(), need}, {s.outer.data(), need}, {s.inner.data(), need});
  } else {
    std::fill_n(s.inner.begin(), need, uint16_t{0});
  }
  for (uint16_t k = 0; k < need; ++k) parse_inner(*s.pkts[k], s.inner[k], s.parsed[s.hits[k]]);
}

// The stages below take the key width (p.layout.words) as a template argument: zeroing, masking, hashing and
// comparing keys unroll to straight-line code.

// Field-major: one field at a time over the batch keeps the switch in extract_field predictable. Only the
// fields the snapshot's tuples match (TupleSet::fields): the others stay zero.
template <uint32_t kWords>
void build_keys(const Pipe& p, uint64_t fields, Worker::Scratch& s, uint16_t n) {
  for (uint16_t i = 0; i < n; ++i)
    for (uint32_t w = 0; w < kWords; ++w) s.keys[i].w[w] = 0;
  for (; fields != 0; fields &= fields - 1) {
    const auto j = static_cast<std::size_t>(std::countr_zero(fields));
    const Field f = p.layout.fields[j].field;
    const uint8_t off = p.layout.offset[j];
    const uint64_t bit = 1ULL << j;
    switch (field_info(f).source) {
      case FieldSource::kMeta:
        for (uint16_t i = 0; i < n; ++i)
          if (detail::meta_field(f, s.items[i].pkt->meta, s.keys[i].bytes() + off)) s.keys[i].w[0] |= bit;
        break;
      case FieldSource::kOuter:
      case FieldSource::kInner:
        for (uint16_t i = 0; i < n; ++i) {
          const Item it = s.items[i];
          if (extract_field(f, *it.pkt, s.parsed[it.slot], s.keys[i].bytes() + off)) s.keys[i].w[0] |= bit;
        }
        break;
    }
  }
  if (!p.layout.partial) return;  // every field extracted whole, as its template mask asks
  const uint64_t* m = p.layout.mask.w.data();
  for (uint16_t i = 0; i < n; ++i)
    for (uint32_t w = 0; w < kWords; ++w) s.keys[i].w[w] &= m[w];
}

// Three passes so the memory accesses of n packets overlap: prefetch home buckets; pick a candidate by
// signature and prefetch its record; compare keys (full probe only on a collision or a displaced entry).
// out[i] := the record keys[i] found, or kNoEntry.
template <uint32_t kWords>
void lookup_index(const Tuple& t, const RecordArena& ra, const Key* keys, uint32_t* out, Worker::Scratch& s,
                  uint16_t n, const std::atomic<uint64_t>* hits = nullptr) {
  for (uint16_t i = 0; i < n; ++i) {
    s.hash[i] = hash_key(keys[i].w.data(), kWords);
    __builtin_prefetch(t.index.home(s.hash[i]));
  }
  for (uint16_t i = 0; i < n; ++i) {
    bool settled = false;
    const uint32_t c = t.index.home_candidate(s.hash[i], &settled);
    s.cand[i] = c != kNoEntry ? c : settled ? kNoEntry : kProbe;
    if (c != kNoEntry) {
      __builtin_prefetch(ra.line(c));
      if (hits != nullptr) __builtin_prefetch(&hits[c], 1);  // the entry's counter, bumped on a hit
    }
  }
  for (uint16_t i = 0; i < n; ++i) {
    const uint64_t* k = keys[i].w.data();
    const uint32_t c = s.cand[i];
    if (c == kNoEntry) {
      out[i] = kNoEntry;
    } else if (c != kProbe && keys_equal(ra.key(c), k, kWords)) {
      out[i] = c;
    } else {
      out[i] = t.index.find(s.hash[i], [&](uint32_t idx) { return keys_equal(ra.key(idx), k, kWords); });
    }
  }
}

// A small ternary pipe: the first rule (in priority order) the key matches under the rule's mask.
// Compares only the words some rule's mask covers (TupleSet::live): the others are zero in every mask.
template <uint32_t kWords>
void lookup_linear(const TupleSet& ts, Worker::Scratch& s, uint16_t n) {
  const uint32_t n_live = std::min(ts.n_live, kWords);
  for (uint16_t i = 0; i < n; ++i) {
    std::array<uint64_t, kWords> k{};
    for (uint32_t w = 0; w < n_live; ++w) k[w] = s.keys[i].w[ts.live[w]];
    uint32_t found = kNoEntry;
    for (uint32_t r = 0; r < ts.n_rules; ++r) {
      const uint64_t* vm = ts.rules[r].vm.data();
      uint64_t diff = 0;
      for (uint32_t w = 0; w < n_live; ++w) diff |= (k[w] & vm[2 * w + 1]) ^ vm[2 * w];
      if (diff == 0) {
        found = ts.rules[r].rec;
        break;
      }
    }
    s.rec[i] = found;
  }
}

// Tuple space: per tuple, only the packets that have every field the tuple matches and could still get a
// better (lower) priority from it; the lowest priority value wins, ties go to the earlier tuple.
template <uint32_t kWords>
void lookup_tuples(const Pipe& p, const TupleSet& ts, Worker::Scratch& s, uint16_t n) {
  std::fill_n(s.rec.begin(), n, kNoEntry);
  for (uint32_t ti = 0; ti < ts.n; ++ti) {
    const Tuple& t = *ts.t[ti];
    const uint32_t tmin = t.min_priority.load(std::memory_order_relaxed);
    const uint64_t present = t.mask.w[0];
    uint16_t m = 0;
    for (uint16_t i = 0; i < n; ++i) {
      if ((s.rec[i] != kNoEntry && s.prio[i] <= tmin) || (s.keys[i].w[0] & present) != present) continue;
      for (uint32_t w = 0; w < kWords; ++w) s.tkeys[m].w[w] = s.keys[i].w[w] & t.mask.w[w];
      s.sel[m++] = i;
    }
    lookup_index<kWords>(t, p.records, s.tkeys.data(), s.cand.data(), s, m);
    for (uint16_t k = 0; k < m; ++k) {
      const uint32_t c = s.cand[k];
      if (c == kNoEntry) continue;
      const uint16_t i = s.sel[k];
      const uint32_t pr = p.records.priority(c);
      if (s.rec[i] == kNoEntry || pr < s.prio[i]) {
        s.rec[i] = c;
        s.prio[i] = pr;
      }
    }
  }
}

template <uint32_t kWords>
void lookup(const Pipe& p, const TupleSet* ts, Worker::Scratch& s, uint16_t n) {
  if (p.lookup == LookupKind::kExact && p.layout.fields.empty()) {
    // A match-all pipe (no fields): every key is the same, one lookup serves the batch.
    lookup_index<kWords>(*ts->t[0], p.records, s.keys.data(), s.rec.data(), s, 1);
    std::fill_n(s.rec.begin(), n, s.rec[0]);
  } else if (ts->linear) {
    lookup_linear<kWords>(*ts, s, n);
  } else if (p.lookup == LookupKind::kTernary) {
    lookup_tuples<kWords>(p, *ts, s, n);
  } else {
    lookup_index<kWords>(*ts->t[0], p.records, s.keys.data(), s.rec.data(), s, n, s.ehits[p.id.value()]);
  }
}

// Keys and lookup from one snapshot of the pipe's tuples. An empty pipe (a sampling pipe with sampling off,
// SFC_HOP without chains) misses every packet without a key built.
template <uint32_t kWords>
void match(const Pipe& p, Worker::Scratch& s, uint16_t n) {
  const TupleSet* ts = p.tuples.load(std::memory_order_acquire);
  if (ts->linear && ts->n_rules == 0) {
    std::fill_n(s.rec.begin(), n, kNoEntry);
    return;
  }
  build_keys<kWords>(p, ts->fields, s, n);
  lookup<kWords>(p, ts, s, n);
}

// s.rec[i] := the entry items[i] hits, or kNoEntry.
void match(const Pipe& p, Worker::Scratch& s, uint16_t n) {
  static_assert(kMaxKeyWords == 8);
  switch (p.layout.words) {
    case 1:
      return match<1>(p, s, n);
    case 2:
      return match<2>(p, s, n);
    case 3:
      return match<3>(p, s, n);
    case 4:
      return match<4>(p, s, n);
    case 5:
      return match<5>(p, s, n);
    case 6:
      return match<6>(p, s, n);
    case 7:
      return match<7>(p, s, n);
    default:
      return match<8>(p, s, n);
  }
}

// Hit list and counters. Per-entry hits are added per run of packets on the same entry: a control pipe
// sends most packets to one entry, and one update per run avoids a store-to-load chain on its counter.
uint16_t count_hits(const Pipe& p, Worker::Scratch& s, uint16_t n) {
  std::atomic<uint64_t>* eh = s.ehits[p.id.value()];
  uint16_t n_hits = 0;
  uint32_t run_rec = kNoEntry;
  uint64_t run = 0;
  for (uint16_t i = 0; i < n; ++i) {
    const uint32_t r = s.rec[i];
    if (r == kNoEntry) continue;
    s.hits[n_hits++] = i;
    if (r != run_rec) {
      if (run != 0) bump(eh[run_rec], run);
      run_rec = r;
      run = 0;
    }
    ++run;
  }
  if (run != 0) bump(eh[run_rec], run);
  PipeCounters& c = *s.counters[p.id.value()];
  bump(c.hits, n_hits);
  bump(c.misses, n - n_hits);
  return n_hits;
}

void set_meta(net::Metadata& m, Field f, uint32_t v) {
  if (f == Field::kPktMeta) {
    m.pkt_meta = v;
  } else if (f == Field::kInPort) {
    m.in_port = PortId{static_cast<uint16_t>(v)};
  } else {
    m.regs[static_cast<std::size_t>(f) - static_cast<std::size_t>(Field::kReg0)] = v;
  }
}

// Keeps the hits no action has dropped (meta.drop_reason == 0).
uint16_t alive(Worker::Scratch& s, uint16_t n_hits) {
  uint16_t m = 0;
  for (uint16_t k = 0; k < n_hits; ++k)
    if (s.items[s.hits[k]].pkt->meta.drop_reason == 0) s.hits[m++] = s.hits[k];
  return m;
}

void set_bits(const ActionSpec& a, Worker::Scratch& s, uint16_t n_hits) {
  for (uint16_t k = 0; k < n_hits; ++k) {
    const Item it = s.items[s.hits[k]];
    Parsed& ps = s.parsed[it.slot];
    if ((ps.have & Parsed::kOuter) == 0) parse_outer(*it.pkt, ps);  // only the hits need the offsets
    write_field_bits(a.field, *it.pkt, ps, a.mask, a.value);
    ps.have &= static_cast<uint8_t>(~Parsed::kInner);  // a tunnel header bit may move the inner packet
  }
}

void call_user(const Pipe& p, const ActionSpec& a, uint32_t arg, Worker::Scratch& s, uint16_t n_hits) {
  for (uint16_t k = 0; k < n_hits; ++k) {
    const uint16_t i = s.hits[k];
    s.pkts[k] = s.items[i].pkt;
    s.args[k] = a.per_entry ? p.records.args(s.rec[i])[arg] : 0;
  }
  a.user->apply({s.pkts.data(), n_hits}, {s.args.data(), n_hits}, s.ctx);
  if (a.user->rewrites_packet())
    for (uint16_t k = 0; k < n_hits; ++k) s.parsed[s.items[s.hits[k]].slot].have = 0;
}

// Runs the pipe's actions on its hits in declaration order. A packet an action dropped
// (meta.drop_reason != 0) takes part in no later action; packets enter a pipe alive, and only user actions
// drop. The hits returned may include dropped packets (mirror and forward look at drop_reason).
uint16_t run_actions(const Pipe& p, Worker::Scratch& s, uint16_t n_hits) {
  uint32_t arg = 0;
  bool may_drop = false;
  for (const ActionSpec& a : p.actions) {
    const uint32_t my_arg = a.per_entry ? arg++ : 0;
    if (may_drop) n_hits = alive(s, n_hits);
    switch (a.kind) {
      case ActionSpec::Kind::kSetMeta:
        for (uint16_t k = 0; k < n_hits; ++k) {
          const uint16_t i = s.hits[k];
          set_meta(s.items[i].pkt->meta, a.field,
                   a.per_entry ? static_cast<uint32_t>(p.records.args(s.rec[i])[my_arg]) : a.value);
        }
        break;
      case ActionSpec::Kind::kSetBits:
        set_bits(a, s, n_hits);
        break;
      case ActionSpec::Kind::kUser:
        call_user(p, a, my_arg, s, n_hits);
        may_drop = true;
        break;
    }
  }
  return n_hits;
}

void mirror(const Pipe& p, Worker::Scratch& s, uint16_t n_hits, Sink& sink) {
  PipeCounters& c = *s.counters[p.id.value()];
  uint64_t copies = 0;
  for (uint16_t k = 0; k < n_hits; ++k) {
    const net::Packet* src = s.items[s.hits[k]].pkt;
    if (src->meta.drop_reason != 0) continue;
    net::Packet* copy = s.ctx.pool != nullptr ? s.ctx.pool->alloc() : nullptr;
    if (copy == nullptr || !copy->assign(src->bytes())) {
      if (copy != nullptr) s.ctx.pool->free(copy);
      bump(c.drops[kDropMirrorNoBuffer]);
      continue;
    }
    copy->meta = src->meta;
    s.emit(p.mirror, copy, sink);
    ++copies;
  }
  bump(c.mirrored, copies);
}

}  // namespace
}  // namespace pspgw::flow
