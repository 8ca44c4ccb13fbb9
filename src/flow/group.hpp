// Select groups: an entry's forward target that picks one of N member targets per flow (a VNF instance,
// a next pipe, a port), by the symmetric flow hash, so both directions of a flow pick the same member.
//
// A group is a fixed table of kGroupSlots targets: the data path indexes it by the hash (one load, no
// branch on the member count). A membership change computes a new table from the old one moving as few
// slots as it can: slots of remaining members stay where they are unless a member holds more than its fair
// share, removed members' slots go to the members below their share, and a new member takes its share
// from the members above theirs. So a flow moves only if its member left or its slot went to a new member
// (about 1/N of the flows when one of N joins). The table is published like a TupleSet: a new immutable
// table, one release store, the old one freed after a grace period (epoch.hpp).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

#include "flow/target.hpp"

namespace pspgw::flow {

inline constexpr uint32_t kGroupSlots = 256;  // fair to within 1/256 of the flows for any member count
inline constexpr uint16_t kMaxGroups = 256;
inline constexpr std::size_t kMaxGroupMembers = 64;

struct GroupTable {
  std::array<Target, kGroupSlots> slot{};
};

// The new slot table for `members` (distinct targets), keeping as many of `old`'s slots as a fair split
// allows (old == nullptr: a fresh table). No members: every slot is `if_empty`.
GroupTable rebalance(const GroupTable* old, std::span<const Target> members, Target if_empty);

// Internal: one group as the pipeline keeps it.
struct GroupSlot {
  std::atomic<const GroupTable*> table{nullptr};  // non-null while live and during the removal's grace period
  // Writer only (under Pipeline::ctl_).
  bool live = false;  // entries may target it
  bool free = true;   // reusable by add_group: not live, and no reader can still see its table
  PipeId after{};     // members that are pipes come after it; entries targeting it are in or before it
  uint32_t refs = 0;  // live entries that forward to the group
  std::vector<Target> members;  // in the caller's order
  Target if_empty{};
};

}  // namespace pspgw::flow
