// The live pipeline: an immutable graph of pipes (built and validated by PipelineBuilder) whose entries
// the control plane changes while workers forward.
//
// Stage list of one batch (Worker::process):
//   1. draw meta.random (if any pipe matches it), clear drop reasons, queue the batch at the start pipe;
//   2. pipes run in topological order, each once per batch on the packets queued for it:
//      extract keys -> lookup: a linear pass over the entries of a small pipe, else batched hash lookup
//      (prefetch buckets, then records; one per mask in a ternary pipe) -> count hits / misses ->
//      actions in declaration order on the hits -> mirror copies -> forward: next pipe's queue, or an
//      output buffer for a port / the CPU / the kernel / drop;
//   3. hand every output buffer to the Sink (one call per target), report a quiescent state.
// Control plane: add_entry / remove_entry, serialized by a mutex among control threads, never blocking a
// worker; publication and reclamation as in epoch.hpp and docs/architecture.md.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "flow/action.hpp"
#include "flow/epoch.hpp"
#include "flow/error.hpp"
#include "flow/field.hpp"
#include "flow/group.hpp"
#include "flow/target.hpp"
#include "net/packet.hpp"

namespace pspgw::flow {

class Pipe;
class Worker;
struct GroupSlot;

struct EntrySpec {
  std::vector<FieldMatch> match;
  std::vector<uint64_t> args;  // one per per-entry action, in the pipe's action order
  TargetRef fwd;               // empty: the pipe's hit target
  uint32_t priority = 0;       // ternary pipes: the lowest value wins
};

// Generational handle (bmv2): a removed entry's handle fails with kStaleHandle, even once the slot is reused.
struct EntryHandle {
  PipeId pipe{};
  uint32_t slot = kInvalidSlot;
  uint32_t generation = 0;
  static constexpr uint32_t kInvalidSlot = ~0u;
  friend bool operator==(const EntryHandle&, const EntryHandle&) = default;
};

struct PipeStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t mirrored = 0;
  std::size_t entries = 0;
  std::vector<std::pair<uint8_t, uint64_t>> drops;  // (reason, packets), non-zero only
};

// Where packets leave the pipeline. One call per target per batch; the callee owns the packets after it.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void to_port(PortId port, std::span<net::Packet* const> pkts) = 0;
  virtual void to_cpu(uint16_t reason, std::span<net::Packet* const> pkts) = 0;
  virtual void to_kernel(std::span<net::Packet* const> pkts) = 0;
  virtual void dropped(uint8_t reason, std::span<net::Packet* const> pkts) = 0;
};

struct WorkerOptions {
  net::PacketPool* pool = nullptr;  // mirror copies come from here; null: copies are counted as lost
  uint64_t seed = 0;                // meta.random generator; 0 = from std::random_device
};

struct DumpOptions {
  bool counts = true;                            // hit / miss counts on the edges
  std::size_t entry_edges = 4;                   // pipes with at most this many entries get an edge per entry
  std::function<std::string(PortId)> port_name;  // default "port<N>"
  std::function<std::string(uint16_t)> cpu_name;  // default "RSS" (reason 0) / "RSS<reason>"
};

class Pipeline {
 public:
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  std::size_t pipe_count() const { return pipes_.size(); }
  std::optional<PipeId> find_pipe(std::string_view name) const;
  std::string_view pipe_name(PipeId id) const;
  PipeId root() const { return root_; }

  // Control plane. Thread-safe among control threads; workers never wait on these. A new entry is
  // visible to every worker from its next batch; a removed entry's slot is reused after a grace period.
  Result<EntryHandle, FlowError> add_entry(PipeId pipe, const EntrySpec& spec);
  Status<FlowError> remove_entry(EntryHandle h);
  Result<uint64_t, FlowError> entry_hits(EntryHandle h) const;
  Result<PipeStats, FlowError> pipe_stats(PipeId pipe) const;
  // Waits until every worker has finished the batches it had begun; reclaims removed entries.
  void synchronize();

  // Select groups (group.hpp): an entry whose target is TargetRef::group(g) sends each packet to one of g's
  // members, chosen by the symmetric flow hash of the packet as it is now; `if_empty` while it has none
  // (a drop, or a bypass target). Members and if_empty: ports, CPU, kernel, drop, or pipes after `after`;
  // only entries of `after` or earlier pipes may target the group. set_group keeps flows on the members
  // that stay (see rebalance); remove_group refuses while entries target the group.
  Result<GroupId, FlowError> add_group(PipeId after, std::span<const TargetRef> members,
                                       const TargetRef& if_empty);
  Status<FlowError> set_group(GroupId g, std::span<const TargetRef> members, const TargetRef& if_empty);
  Status<FlowError> remove_group(GroupId g);
  // The group's current slot table (tests, dump); kUnknownGroup if none.
  Result<GroupTable, FlowError> group_table(GroupId g) const;

  // Data plane: one Worker per forwarding thread (at most max_workers at a time).
  Result<std::unique_ptr<Worker>, FlowError> attach_worker(const WorkerOptions& opts = {});

  // Introspection (control plane).
  std::string to_mermaid(const DumpOptions& opts = {}) const;
  std::string to_json(const DumpOptions& opts = {}) const;

 private:
  friend class PipelineBuilder;
  friend class Worker;
  struct Alias {
    Field field;
    FieldBytes mask;
    std::string name;
  };
  Pipeline(std::vector<std::unique_ptr<Pipe>> pipes, PipeId root, uint16_t max_workers,
           std::shared_ptr<const InnerLocator> inner, std::vector<Alias> aliases);
  Result<Target, FlowError> resolve(const Pipe& from, const TargetRef& ref) const;
  Result<std::vector<Target>, FlowError> resolve_members(PipeId after, std::span<const TargetRef> members,
                                                         const TargetRef& if_empty, Target& empty) const;
  void publish_group(GroupSlot& g, std::vector<Target> members, Target if_empty);
  std::string field_label(Field f, const FieldBytes& mask) const;
  std::string entry_label(const Pipe& p, uint32_t rec) const;
  std::string node_label(const Pipe& p) const;

  std::vector<std::unique_ptr<Pipe>> pipes_;  // index = PipeId = topological order
  PipeId root_;
  uint16_t max_workers_;
  std::shared_ptr<const InnerLocator> inner_;
  std::vector<Alias> aliases_;
  bool uses_random_ = false;
  mutable std::mutex ctl_;  // control-plane writers; never taken by a worker
  std::vector<bool> worker_taken_;
  std::unique_ptr<GroupSlot[]> groups_;  // [GroupId], kMaxGroups
  EpochDomain epoch_;  // declared after pipes_: destroyed first, its pending callbacks still see the pipes
};

class Worker {
 public:
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Runs the batch from the root (or from `start`, e.g. a slow-path resubmission to EGR_ACL). Every
  // packet ends in exactly one Sink call; the batch is empty afterwards. Ends with a quiescent state.
  void process(net::PacketBatch& batch, Sink& sink) { process(batch, pl_.root(), sink); }
  void process(net::PacketBatch& batch, PipeId start, Sink& sink);
  // Between batches: report a quiescent state without traffic (an idle poll loop), or leave the epoch
  // domain while blocked (so the control plane never waits on a sleeping worker).
  void quiescent() { pl_.epoch_.quiescent(id_); }
  void offline() { pl_.epoch_.offline(id_); }
  void online() { pl_.epoch_.online(id_); }
  uint16_t id() const { return id_; }

  struct Scratch;  // per-batch working memory (opaque; worker.cpp)

 private:
  friend class Pipeline;
  Worker(Pipeline& pl, uint16_t id, const WorkerOptions& opts);
  void run_pipe(const Pipe& p, Sink& sink);

  Pipeline& pl_;
  uint16_t id_;
  std::unique_ptr<Scratch> s_;
};

}  // namespace pspgw::flow
