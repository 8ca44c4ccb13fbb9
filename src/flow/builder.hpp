// PipelineBuilder: topology as data. Pipes are declared with names; build() resolves every target,
// checks that every pipe has a miss target, that mirrors end the path, that the graph has no cycle, lays
// out each pipe's key, and returns an immutable Pipeline whose pipes are numbered in topological order.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "flow/action.hpp"
#include "flow/error.hpp"
#include "flow/field.hpp"
#include "flow/pipeline.hpp"
#include "flow/target.hpp"

namespace pspgw::flow {

enum class LookupKind : uint8_t {
  kExact,    // one hash table under the template mask: every entry gives every field
  kTernary,  // per-entry masks and priorities: tuple space (one hash table per distinct mask, BESS)
};

struct PipeSpec {
  std::string name;
  LookupKind lookup = LookupKind::kExact;
  std::vector<FieldMask> match;     // the template; empty: one match-all entry
  std::vector<ActionSpec> actions;  // run on hits, in order
  TargetRef fwd;                    // hit target; an entry may name its own
  TargetRef miss;                   // required
  TargetRef mirror;                 // optional copy of each hit after the actions: port / CPU / kernel
  uint32_t max_entries = 1024;      // sizes the tables (DOCA's nb_flows); memory is allocated at build
};

class PipelineBuilder {
 public:
  PipelineBuilder& add_pipe(PipeSpec spec);
  // A static entry (ROOT's classification rules): added at build, its target part of the graph check.
  PipelineBuilder& add_entry(std::string pipe, EntrySpec entry);
  PipelineBuilder& root(std::string name);  // where process() starts; default: the first pipe added
  PipelineBuilder& max_workers(uint16_t n);
  PipelineBuilder& inner_locator(std::shared_ptr<const InnerLocator> locator);
  // A dump name for a field under a mask, e.g. (kUdpPayload0, 0x80, "psp.S"), (kSyndrome, 0xff, "psp.synd").
  PipelineBuilder& alias(Field f, uint64_t mask, std::string name);

  Result<std::unique_ptr<Pipeline>, BuildError> build();

 private:
  std::vector<PipeSpec> specs_;
  std::vector<std::pair<std::string, EntrySpec>> entries_;
  std::string root_;
  uint16_t max_workers_ = 16;
  std::shared_ptr<const InnerLocator> inner_;
  std::vector<Pipeline::Alias> aliases_;
};

}  // namespace pspgw::flow
