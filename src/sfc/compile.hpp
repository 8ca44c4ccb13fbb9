// A classifier's match as flow-engine entries: one ternary entry per (conjunction x IP family x source
// port prefix x destination port prefix), over the fixed classifier template below. Address prefixes are
// entry masks; port ranges are strided prefix covers (flow/range.hpp), so however many classifiers share a
// pipe, its masks come from a small shared set.
#pragma once

#include <cstddef>
#include <vector>

#include "base/result.hpp"
#include "flow/field.hpp"
#include "sfc/match.hpp"

namespace pspgw::sfc {

// At most this many engine entries per classifier (a wide range on both ports multiplies).
inline constexpr std::size_t kMaxEntriesPerMatch = 1024;

// The template of a chain-classifier pipe: eth.type, IPv4/IPv6 source and destination, ip.proto, l4 ports.
std::vector<flow::FieldMask> classifier_template();

// One entry's match list per element; every list uses only classifier_template() fields. Error: the
// expansion exceeds kMaxEntriesPerMatch.
enum class CompileError : uint8_t { kTooManyEntries };
Result<std::vector<std::vector<flow::FieldMatch>>, CompileError> compile(const Match& m);

}  // namespace pspgw::sfc
