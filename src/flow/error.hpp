// Typed errors of the flow engine: building a pipeline, adding and removing entries, attaching workers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pspgw::flow {

enum class FlowError : uint8_t {
  // Building.
  kNoPipes,          // a pipeline needs at least one pipe
  kDuplicatePipe,    // two pipes with one name
  kUnknownPipe,      // a name or PipeId that names no pipe
  kDanglingTarget,   // a forward / miss target names no pipe
  kNoMissTarget,     // every pipe needs an explicit miss target
  kNoHitTarget,      // a pipe without a default hit target whose entry has none either
  kBadMirrorTarget,  // mirrors go to a port, the CPU or the kernel (never a pipe: a batch never grows)
  kCycle,            // the pipe graph has a loop (resubmission goes through the CPU instead)
  kBadTemplate,      // a field twice in a template, or a zero mask
  kKeyTooLong,       // the template's fields do not fit kMaxKeyBytes
  kBadAction,        // set_meta on a non-register field, set_bits on a field the engine cannot write
  kTooManyWorkers,   // attach_worker beyond max_workers
  // Entries.
  kFieldNotInTemplate,   // an entry matches a field its pipe does not
  kMissingField,         // an exact-match entry leaves a template field out
  kMaskNotAllowed,       // an exact-match entry gives its own mask
  kMaskOutsideTemplate,  // a ternary entry's mask has bits the template masks off
  kValueOutsideMask,     // value bits where the mask is 0 (a typo more often than intent)
  kWrongArgCount,        // entry arguments != the per-entry actions of the pipe
  kTargetNotDownstream,  // an entry forwards to a pipe that is not after its own (would allow a loop)
  kDuplicateEntry,       // the same (masked) key is already in the pipe
  kTableFull,            // max_entries reached
  kTooManyMasks,         // a ternary pipe holds at most kMaxTuples distinct masks
  kReclaimPending,       // every free slot is waiting for a grace period: retry after synchronize()
  kStaleHandle,          // the entry was removed (possibly twice) or the handle belongs to another pipe
  // Select groups.
  kTooManyGroups,   // kMaxGroups groups exist
  kUnknownGroup,    // a GroupId that names no group
  kBadGroupMember,  // a member that is a group, none, or a pipe not downstream of the group's `after` pipe
  kGroupNotAfter,   // an entry targets a group from a pipe after the group's `after` pipe
  kGroupInUse,      // remove_group while entries still target it
};
std::string_view to_string(FlowError e);

// A build error with the name of the pipe / field it concerns.
struct BuildError {
  FlowError code;
  std::string detail;
};

}  // namespace pspgw::flow
