// Internal: one pipe as the data plane sees it (template, key layout, actions, targets, tables,
// per-worker counters) and the writer-only bookkeeping of its entries. Not part of the public API.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "flow/builder.hpp"
#include "flow/table.hpp"

namespace pspgw::flow {

inline constexpr std::size_t kMaxTemplateFields = 16;
inline constexpr std::size_t kMaxTuples = 32;

struct KeyLayout {
  std::vector<FieldMask> fields;
  std::array<uint8_t, kMaxTemplateFields> offset{};  // byte offset of field j in the key (>= 8)
  uint32_t words = 1;
  Key mask;              // presence bits of every template field + the template's masks
  bool partial = false;  // some field's template mask is not all ones: extracted keys need masking
};

struct Tuple {
  Tuple(const Key& m, uint32_t max_keys) : mask(m), index(max_keys) {}
  Key mask;
  HashIndex index;
  std::atomic<uint32_t> min_priority{~0u};  // a lower bound: lets lookup skip tuples that cannot win
  uint32_t entries = 0;                     // writer only
};

// A small pipe is searched by one pass over its entries in priority order (mask, compare, first match wins)
// instead of a hash probe per mask: ROOT's handful of rules over 2-3 masks, or EGR_SAMP's single entry,
// cost a few instructions per entry and packet that way, no hashing, no bucket scan.
inline constexpr uint32_t kLinearMaxTernary = 16;
inline constexpr uint32_t kLinearMaxExact = 4;  // one probe of an L1-resident hash table costs about as much
inline constexpr uint32_t kLinearMax = std::max(kLinearMaxTernary, kLinearMaxExact);

struct LinearRule {
  // Key word TupleSet::live[i] at [2i], its mask at [2i + 1], for i < TupleSet::n_live.
  std::array<uint64_t, 2 * kMaxKeyWords> vm;
  uint32_t rec;
};

// What a worker searches in a ternary pipe: its tuples, and while the pipe is small its entries in search
// order. Immutable once published; the writer publishes a new one (copy-on-write) when it changes.
struct TupleSet {
  uint32_t n = 0;  // exact pipes: one tuple, the template's mask
  std::array<Tuple*, kMaxTuples> t{};
  // The template fields some tuple matches (bit j: layout field j), the only ones a worker extracts into
  // its keys for this snapshot: every other field's key bytes stay zero, and every tuple's mask is zero
  // there too, so no lookup can tell. Exact pipes: all of them. A ternary pipe's rules often name a few of
  // its template's fields (SFC_EXIT's three without a service chain, of ten, IPv6 addresses among them).
  uint64_t fields = 0;
  bool linear = false;  // search `rules`, not the tuples
  uint32_t n_rules = 0;
  // The key words some rule's mask is not zero on, the only ones the linear search compares (ROOT's rules
  // use 2 of its 4 words, SFC_EXIT's 3 of 8 without a chain).
  uint32_t n_live = 0;
  std::array<uint8_t, kMaxKeyWords> live{};
  // Ascending priority, ties in tuple order: exactly the entry tuple space search picks.
  std::array<LinearRule, kLinearMax> rules;
};

// One worker's counters of one pipe. Written by that worker only, with relaxed load + store (no locked
// instruction); read by the control plane with relaxed loads.
struct alignas(64) PipeCounters {
  std::atomic<uint64_t> hits{0};
  std::atomic<uint64_t> misses{0};
  std::atomic<uint64_t> mirrored{0};
  std::array<std::atomic<uint64_t>, 256> drops{};
};
inline void bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// One worker's per-entry hit counters, indexed by record: room for every record of the pipe, each counter
// constructed (zero) when its record first comes into use (Pipe::take_record), so capacity that no entry
// has used yet is never written and never becomes resident memory.
class EntryHits {
 public:
  explicit EntryHits(uint32_t capacity) : c_(capacity) {}

  void start(uint32_t rec) { std::construct_at(&c_[rec], 0); }
  std::atomic<uint64_t>* data() const { return c_.get(); }
  std::atomic<uint64_t>& operator[](uint32_t rec) const { return c_[rec]; }

 private:
  ZeroPages<std::atomic<uint64_t>> c_;  // counters need no destruction
};

class Pipe {
 public:
  Pipe(PipeSpec spec, KeyLayout layout, uint16_t max_workers);
  ~Pipe();
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;

  // Immutable after build.
  std::string name;
  LookupKind lookup;
  KeyLayout layout;
  std::vector<ActionSpec> actions;
  uint32_t n_args = 0;  // per-entry arguments
  Target fwd, miss, mirror;
  uint32_t max_entries;
  bool needs_outer = false;  // the template matches header fields (set_bits parses its hits on its own)
  bool needs_inner = false;
  bool may_drop = false;  // a user action may drop hits (meta.drop_reason)
  PipeId id{};
  std::vector<TargetRef> spec_targets;  // fwd/miss/mirror as declared (resolved at build)

  // Shared with workers.
  RecordArena records;
  std::atomic<const TupleSet*> tuples{nullptr};
  std::unique_ptr<PipeCounters[]> counters;            // [worker]
  std::vector<std::unique_ptr<EntryHits>> entry_hits;  // [worker][record]

  // Writer only (under Pipeline::ctl_). Records are handed out in index order, released ones first (last
  // released, first reused); the per-record vectors below grow with the records used so far, and the arena,
  // index and counters (zero pages, table.hpp) are written only where an entry lives or lived: memory
  // becomes resident with the entries, not with max_entries.
  std::vector<uint32_t> generation;    // [record], odd = live
  std::vector<Tuple*> tuple_of;        // [record] -> its tuple
  std::vector<uint32_t> free_records;  // released records
  std::vector<Tuple*> live_tuples;
  std::size_t live = 0;

  uint32_t used_records() const { return static_cast<uint32_t>(generation.size()); }
  bool is_live(uint32_t rec) const { return rec < used_records() && (generation[rec] & 1) != 0; }
  // The record the next entry gets (the caller checks has_free_record); ready_record starts its hit
  // counters (before the entry is published), take_record takes it once the entry is in.
  bool has_free_record() const { return !free_records.empty() || used_records() < records.capacity(); }
  uint32_t next_record() const { return free_records.empty() ? used_records() : free_records.back(); }
  void ready_record(uint32_t rec);
  void take_record(uint32_t rec);
  uint32_t linear_max() const { return lookup == LookupKind::kTernary ? kLinearMaxTernary : kLinearMaxExact; }
  uint64_t hits_of(uint32_t rec) const;
  // Grace period over: zero the record's counters and make it allocatable.
  void release_record(uint32_t rec);
};

}  // namespace pspgw::flow
