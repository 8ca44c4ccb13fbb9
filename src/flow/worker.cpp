// Data plane: one batch through the pipe graph. See pipeline.hpp for the stage list.
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
  // One pipe stage.
  std::array<Item, net::kMaxBatch> items;
  std::array<Key, net::kMaxBatch> keys;
  std::array<Key, net::kMaxBatch> tkeys;
  std::array<uint32_t, net::kMaxBatch> hash, rec, cand, prio;
  std::array<uint16_t, net::kMaxBatch> hits;
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
  void emit(Target t, net::Packet* p, Sink& sink);
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

void Worker::Scratch::emit(Target t, net::Packet* p, Sink& sink) {
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
  OutBuf& b = out[i];
  b.pkts[b.n++] = p;
  if (b.n == b.pkts.size()) flush(b, sink);
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
    s_->ehits.push_back(p->entry_hits[id].get());
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
void build_keys(const Pipe& p, Worker::Scratch& s, uint16_t n);
void lookup(const Pipe& p, Worker::Scratch& s, uint16_t n);
uint16_t run_actions(const Pipe& p, Worker::Scratch& s, uint16_t n_hits);
void mirror(const Pipe& p, Worker::Scratch& s, uint16_t n_hits, Sink& sink);

}  // namespace

void Worker::run_pipe(const Pipe& p, Sink& sink) {
  Scratch& s = *s_;
  const uint16_t n = s.qlen[p.id.value()];
  s.qlen[p.id.value()] = 0;
  std::copy_n(s.queue[p.id.value()].begin(), n, s.items.begin());
  if (p.needs_outer) parse_layers(p, pl_.inner_.get(), s, n);
  build_keys(p, s, n);
  lookup(p, s, n);

  PipeCounters& c = *s.counters[p.id.value()];
  std::atomic<uint64_t>* eh = s.ehits[p.id.value()];
  uint16_t n_hits = 0;
  for (uint16_t i = 0; i < n; ++i) {
    if (s.rec[i] == kNoEntry) continue;
    bump(eh[s.rec[i]]);
    s.hits[n_hits++] = i;
  }
  bump(c.hits, n_hits);
  bump(c.misses, n - n_hits);
  if (n_hits != 0 && !p.actions.empty()) n_hits = run_actions(p, s, n_hits);
  if (n_hits != 0 && p.mirror.kind != TargetKind::kNone) mirror(p, s, n_hits, sink);

  for (uint16_t i = 0; i < n; ++i) {
    const Item it = s.items[i];
    Target t = p.miss;
    if (s.rec[i] != kNoEntry) t = p.records.fwd(s.rec[i]);
    if (it.pkt->meta.drop_reason != 0) t = {TargetKind::kDrop, it.pkt->meta.drop_reason};
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

// Field-major: one field at a time over the batch keeps the switch in extract_field predictable.
void build_keys(const Pipe& p, Worker::Scratch& s, uint16_t n) {
  const uint32_t words = p.layout.words;
  for (uint16_t i = 0; i < n; ++i) s.keys[i].w = {};  // constant size: inline stores, no memset call
  for (std::size_t j = 0; j < p.layout.fields.size(); ++j) {
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
  const uint64_t* m = p.layout.mask.w.data();
  for (uint16_t i = 0; i < n; ++i)
    for (uint32_t w = 0; w < words; ++w) s.keys[i].w[w] &= m[w];
}

// Three passes so the memory accesses of 64 packets overlap: prefetch home buckets; pick a candidate by
// signature and prefetch its record; compare keys (full probe only on a collision or a displaced entry).
void lookup_index(const Tuple& t, const RecordArena& ra, uint32_t words, const Key* keys, Worker::Scratch& s,
                  uint16_t n, const std::atomic<uint64_t>* hits = nullptr) {
  for (uint16_t i = 0; i < n; ++i) {
    s.hash[i] = hash_key(keys[i].w.data(), words);
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
      s.cand[i] = kNoEntry;
    } else if (c != kProbe && keys_equal(ra.key(c), k, words)) {
      s.cand[i] = c;
    } else {
      s.cand[i] = t.index.find(s.hash[i], [&](uint32_t idx) { return keys_equal(ra.key(idx), k, words); });
    }
  }
}

void lookup(const Pipe& p, Worker::Scratch& s, uint16_t n) {
  const TupleSet* ts = p.tuples.load(std::memory_order_acquire);
  const uint32_t words = p.layout.words;
  if (p.lookup == LookupKind::kExact) {
    // A match-all pipe (no fields): every key is the same, one lookup serves the batch.
    const uint16_t distinct = p.layout.fields.empty() ? uint16_t{1} : n;
    lookup_index(*ts->t[0], p.records, words, s.keys.data(), s, distinct, s.ehits[p.id.value()]);
    if (distinct == 1) std::fill_n(s.cand.begin(), n, s.cand[0]);
    std::copy_n(s.cand.begin(), n, s.rec.begin());
    return;
  }
  // Tuple space: every tuple whose best priority could still win; the lowest priority value wins.
  std::fill_n(s.rec.begin(), n, kNoEntry);
  std::fill_n(s.prio.begin(), n, ~0u);
  for (uint32_t ti = 0; ti < ts->n; ++ti) {
    const Tuple& t = *ts->t[ti];
    const uint32_t tmin = t.min_priority.load(std::memory_order_relaxed);
    for (uint16_t i = 0; i < n; ++i)
      for (uint32_t w = 0; w < words; ++w) s.tkeys[i].w[w] = s.keys[i].w[w] & t.mask.w[w];
    lookup_index(t, p.records, words, s.tkeys.data(), s, n);
    for (uint16_t i = 0; i < n; ++i) {
      const uint32_t c = s.cand[i];
      if (c == kNoEntry || (s.rec[i] != kNoEntry && s.prio[i] <= tmin)) continue;
      const uint32_t pr = p.records.priority(c);
      if (s.rec[i] == kNoEntry || pr < s.prio[i]) {
        s.rec[i] = c;
        s.prio[i] = pr;
      }
    }
  }
}

void set_meta(net::Metadata& m, Field f, uint32_t v) {
  if (f == Field::kPktMeta) {
    m.pkt_meta = v;
  } else {
    m.regs[static_cast<std::size_t>(f) - static_cast<std::size_t>(Field::kReg0)] = v;
  }
}

// Runs the pipe's actions on its hits in declaration order. A packet an action dropped
// (meta.drop_reason != 0) takes part in no later action. Returns the hits still alive.
uint16_t run_actions(const Pipe& p, Worker::Scratch& s, uint16_t n_hits) {
  uint32_t arg = 0;
  for (const ActionSpec& a : p.actions) {
    const uint32_t my_arg = a.per_entry ? arg++ : 0;
    uint16_t m = 0;
    for (uint16_t k = 0; k < n_hits; ++k) {
      const uint16_t i = s.hits[k];
      if (s.items[i].pkt->meta.drop_reason != 0) continue;
      s.hits[m++] = i;
    }
    n_hits = m;
    for (uint16_t k = 0; k < n_hits; ++k) {
      const uint16_t i = s.hits[k];
      s.pkts[k] = s.items[i].pkt;
      s.args[k] = a.per_entry ? p.records.args(s.rec[i])[my_arg] : 0;
    }
    switch (a.kind) {
      case ActionSpec::Kind::kSetMeta:
        for (uint16_t k = 0; k < n_hits; ++k)
          set_meta(s.pkts[k]->meta, a.field, a.per_entry ? static_cast<uint32_t>(s.args[k]) : a.value);
        break;
      case ActionSpec::Kind::kSetBits:
        for (uint16_t k = 0; k < n_hits; ++k) {
          Parsed& ps = s.parsed[s.items[s.hits[k]].slot];
          write_field_bits(a.field, *s.pkts[k], ps, a.mask, a.value);
          ps.have &= static_cast<uint8_t>(~Parsed::kInner);  // a tunnel header bit may move the inner packet
        }
        break;
      case ActionSpec::Kind::kUser:
        a.user->apply({s.pkts.data(), n_hits}, {s.args.data(), n_hits}, s.ctx);
        if (a.user->rewrites_packet())
          for (uint16_t k = 0; k < n_hits; ++k) s.parsed[s.items[s.hits[k]].slot].have = 0;
        break;
    }
  }
  uint16_t m = 0;
  for (uint16_t k = 0; k < n_hits; ++k)
    if (s.items[s.hits[k]].pkt->meta.drop_reason == 0) s.hits[m++] = s.hits[k];
  return m;
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
