// The service-chaining object model (OpenStack networking-sfc's, as issue 8 and the seed name it) and the
// registry the `pspctl sfc` verbs change: port pairs (a VNF instance: ingress and egress port), port pair
// groups (interchangeable instances, one hop of a chain, with a fail mode), port chains (ordered groups) and
// flow classifiers (which traffic of a workload port enters which chain). The registry checks every
// reference and refuses overlapping classifiers; it knows nothing of the data path (the gateway compiles
// it into chain pipes, compile.hpp).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/result.hpp"
#include "sfc/match.hpp"

namespace pspgw::sfc {

enum class PortRole : uint8_t { kWorkload, kVnf };
enum class Direction : uint8_t { kEntry, kExit };  // entry-lport: traffic to the port; exit-lport: from it
enum class FailMode : uint8_t { kClose, kOpen };   // no live instance: drop / bypass the hop

std::string_view to_string(Direction d);  // "entry-lport" | "exit-lport"
std::string_view to_string(FailMode f);   // "close" | "open"
std::optional<Direction> parse_direction(std::string_view s);
std::optional<FailMode> parse_fail_mode(std::string_view s);
// "bi-directional" -> true, "uni-directional" -> false.
std::optional<bool> parse_symmetric(std::string_view s);

struct PortPair {
  std::string name, in, out;
};
struct PortPairGroup {
  std::string name, chain;
  FailMode fail_mode = FailMode::kClose;
  std::vector<std::string> pairs;  // in the order added
};
struct PortChain {
  std::string name;
  std::vector<std::string> groups;  // hop order
};
struct FlowClassifier {
  std::string name, chain, port;
  Direction direction = Direction::kEntry;
  bool symmetric = false;  // bi-directional: return traffic crosses the chain in reverse
  std::string match_text;
  Match match;
};

struct SfcError {
  enum class Code : uint8_t {
    kUnknownObject,  // a name that names nothing of its kind
    kDuplicateName,  // a name already taken by an object of its kind
    kInUse,          // deleting or reusing something another object still references
    kBadPort,        // a port that does not exist or has the wrong role
    kBadMatch,       // the MATCH does not parse (message has the column) or compiles to too many entries
    kOverlap,        // a classifier intersecting another on the same port and direction
    kBadArgument,    // an empty name, a pair whose ports are equal, ...
  };
  Code code;
  std::string message;
};
std::string_view to_string(SfcError::Code c);

class ServiceChains {
 public:
  // The role of a host port by name, nullopt = no such port. Without a lookup ports are not checked.
  using PortLookup = std::function<std::optional<PortRole>(std::string_view)>;
  explicit ServiceChains(PortLookup ports = {}) : ports_(std::move(ports)) {}

  Status<SfcError> pair_add(const std::string& in, const std::string& out, const std::string& name);
  Status<SfcError> pair_del(const std::string& name);
  Status<SfcError> chain_add(const std::string& name);
  Status<SfcError> chain_del(const std::string& name);
  Status<SfcError> group_add(const std::string& chain, const std::string& name,
                             FailMode fail = FailMode::kClose);
  Status<SfcError> group_del(const std::string& name);
  Status<SfcError> group_pair_add(const std::string& group, const std::string& pair);
  Status<SfcError> group_pair_del(const std::string& group, const std::string& pair);
  Status<SfcError> classifier_add(const std::string& chain, const std::string& port, Direction dir,
                                  bool symmetric, const std::string& name, const std::string& match = {});
  Status<SfcError> classifier_del(const std::string& name);

  const std::map<std::string, PortPair>& pairs() const { return pairs_; }
  const std::map<std::string, PortPairGroup>& groups() const { return groups_; }
  const std::map<std::string, PortChain>& chains() const { return chains_; }
  const std::map<std::string, FlowClassifier>& classifiers() const { return classifiers_; }
  // The group a pair is in, if any.
  std::optional<std::string> group_of_pair(const std::string& pair) const;

  // pspctl sfc show --json: {"pairs": [...], "groups": [...], "chains": [...], "classifiers": [...]}.
  nlohmann::json to_json() const;

 private:
  Status<SfcError> check_port(const std::string& port, PortRole want) const;
  Status<SfcError> check_overlap(const FlowClassifier& c) const;

  PortLookup ports_;
  std::map<std::string, PortPair> pairs_;
  std::map<std::string, PortPairGroup> groups_;
  std::map<std::string, PortChain> chains_;
  std::map<std::string, FlowClassifier> classifiers_;
};

// The match with source and destination swapped (addresses and ports): what the return traffic of a
// bi-directional classifier looks like.
Match reversed(const Match& m);

}  // namespace pspgw::sfc
