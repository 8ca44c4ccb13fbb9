// The coalescer's invariant as a function, for unit tests and fuzzing: every write plan_coalesced_writes
// makes, cut back by GsoSegmenter (Linux's segmentation rules), gives back exactly the frames it took.
// Not on the data path (it allocates a pool per call).
#pragma once

#include <cstdint>
#include <span>

#include "ports/coalesce.hpp"

namespace pspgw::ports {

// True iff each planned write of `frames` round-trips, the writes cover every frame once, in order, and
// every multi-frame write carries a checksum the kernel can finish (NEEDS_CSUM offsets inside the header).
bool coalesce_round_trips(std::span<const std::span<const uint8_t>> frames, const CoalesceOptions& opt);

// Fuzz entry point: data = [options byte: bit 0 tcp, bit 1 udp] then frames as [2-byte big-endian
// length][bytes] (a short tail is one last frame; at most kMaxBatch frames). Returns
// coalesce_round_trips of them; a fuzzer aborts when it is false.
bool coalesce_round_trips(std::span<const uint8_t> data);

}  // namespace pspgw::ports
