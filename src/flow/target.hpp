// Forward targets: where a pipe sends a packet on hit, on miss, or a mirrored copy.
#pragma once

#include <cstdint>
#include <string>

#include "base/ids.hpp"

namespace pspgw::flow {

using PipeId = StrongId<struct PipeIdTag, uint16_t>;
// A select group (Pipeline::add_group): one of N targets, chosen per flow by the symmetric flow hash.
using GroupId = StrongId<struct GroupIdTag, uint16_t>;

enum class TargetKind : uint8_t {
  kNone,    // unset: a build error wherever a target is required
  kPipe,    // id = PipeId
  kPort,    // id = PortId
  kCpu,     // the slow-path queue ("RSS" in the seeds); id = reason code the CPU sees
  kKernel,  // the host stack (isolated mode's root miss)
  kDrop,    // id = drop reason (counted per pipe)
  kGroup,   // id = GroupId; an entry's target only, resolved per packet to one of the group's members
};

// Drop reasons the engine assigns itself. Actions own the codes 1..kFirstEngineDrop-1 (src/psp uses
// psp::DropReason); the engine never reuses them.
inline constexpr uint8_t kFirstEngineDrop = 0xf0;
inline constexpr uint8_t kDropByRule = 0xf0;          // a drop target named no reason
inline constexpr uint8_t kDropMirrorNoBuffer = 0xf1;  // a mirror copy was lost: packet pool empty

// A resolved target: 4 bytes, compared as a value on the data path.
struct Target {
  TargetKind kind = TargetKind::kNone;
  uint16_t id = 0;
  friend bool operator==(Target, Target) = default;
  bool terminal() const {
    return kind != TargetKind::kPipe && kind != TargetKind::kNone && kind != TargetKind::kGroup;
  }
};

// A target as the builder and the control plane name it: pipes by name or by id.
struct TargetRef {
  Target target;
  std::string pipe_name;  // kPipe by name; empty = by target.id

  static TargetRef pipe(std::string name) { return {{TargetKind::kPipe, 0}, std::move(name)}; }
  static TargetRef pipe(PipeId id) { return {{TargetKind::kPipe, id.value()}, {}}; }
  static TargetRef port(PortId p) { return {{TargetKind::kPort, p.value()}, {}}; }
  static TargetRef cpu(uint16_t reason) { return {{TargetKind::kCpu, reason}, {}}; }
  static TargetRef kernel() { return {{TargetKind::kKernel, 0}, {}}; }
  static TargetRef drop(uint8_t reason = kDropByRule) { return {{TargetKind::kDrop, reason}, {}}; }
  static TargetRef group(GroupId g) { return {{TargetKind::kGroup, g.value()}, {}}; }
  bool empty() const { return target.kind == TargetKind::kNone; }
};

}  // namespace pspgw::flow
