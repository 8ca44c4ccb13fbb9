#include "flow/error.hpp"

namespace pspgw::flow {

std::string_view to_string(FlowError e) {
  switch (e) {
    case FlowError::kNoPipes:
      return "no-pipes";
    case FlowError::kDuplicatePipe:
      return "duplicate-pipe";
    case FlowError::kUnknownPipe:
      return "unknown-pipe";
    case FlowError::kDanglingTarget:
      return "dangling-target";
    case FlowError::kNoMissTarget:
      return "no-miss-target";
    case FlowError::kNoHitTarget:
      return "no-hit-target";
    case FlowError::kBadMirrorTarget:
      return "bad-mirror-target";
    case FlowError::kCycle:
      return "cycle";
    case FlowError::kBadTemplate:
      return "bad-template";
    case FlowError::kKeyTooLong:
      return "key-too-long";
    case FlowError::kBadAction:
      return "bad-action";
    case FlowError::kTooManyWorkers:
      return "too-many-workers";
    case FlowError::kFieldNotInTemplate:
      return "field-not-in-template";
    case FlowError::kMissingField:
      return "missing-field";
    case FlowError::kMaskNotAllowed:
      return "mask-not-allowed";
    case FlowError::kMaskOutsideTemplate:
      return "mask-outside-template";
    case FlowError::kValueOutsideMask:
      return "value-outside-mask";
    case FlowError::kWrongArgCount:
      return "wrong-arg-count";
    case FlowError::kTargetNotDownstream:
      return "target-not-downstream";
    case FlowError::kDuplicateEntry:
      return "duplicate-entry";
    case FlowError::kTableFull:
      return "table-full";
    case FlowError::kTooManyMasks:
      return "too-many-masks";
    case FlowError::kReclaimPending:
      return "reclaim-pending";
    case FlowError::kStaleHandle:
      return "stale-handle";
    case FlowError::kTooManyGroups:
      return "too-many-groups";
    case FlowError::kUnknownGroup:
      return "unknown-group";
    case FlowError::kBadGroupMember:
      return "bad-group-member";
    case FlowError::kGroupNotAfter:
      return "group-not-after";
    case FlowError::kGroupInUse:
      return "group-in-use";
  }
  return "unknown";
}

}  // namespace pspgw::flow
