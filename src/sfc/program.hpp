// The chain pipes' contents: a ServiceChains registry (and which instances are healthy) compiled into
// flow-engine entries and select groups, and brought onto the live pipeline as a difference, so a change
// touches only the entries it changes and other traffic never misses a beat (docs/architecture.md,
// "Service chaining").
//
// What it programs (the gateway's topology.hpp builds the pipes):
//   classifier pipes  SFC_ENTRY (key: the workload's port in reg0) and SFC_EXIT (key: in-port), one entry
//                     per compiled match element -> the first hop's group (the last hop's reverse group for
//                     a bi-directional classifier's return traffic);
//   SFC_HOP           (VNF port the packet came back from, the workload's VIP as destination (traffic to
//                     the workload) or source (from it)) -> the next hop's group, or after the last hop the
//                     workload's port / EGR_ACL; its action sets in_port = the workload's port, so the rest
//                     of the pipeline sees the packet as if it came from there (the seed's MAC-learning
//                     rule);
//   groups            per hop and way: forward (members: the live instances' ingress ports) and reverse
//                     (their egress ports), changed together in the same member order, so both directions
//                     of a flow pick the same instance (the symmetric hash indexes identical slot tables).
// A hop with no live instance: fail-mode close sends its traffic to the drop, open to the hop after it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/ids.hpp"
#include "base/result.hpp"
#include "flow/pipeline.hpp"
#include "net/addr.hpp"
#include "sfc/chains.hpp"

namespace pspgw::sfc {

// Where the chain pipes sit, and the drop codes the program targets.
struct Placement {
  flow::PipeId entry, exit, hop, egr_acl;
  flow::PipeId group_after;      // the last chain pipe (Pipeline::add_group's `after`)
  uint8_t drop_no_instance = 0;  // fail-mode close, no live instance
  // A metadata field the chain pipes' templates hold and nothing ever sets (always 0): a replaced entry's
  // successor matches it `== 0` or leaves it out, another mask for the same packets (make-before-break).
  flow::Field bank_field = flow::Field::kReg3;
};

// A host port as the program needs it.
struct ProgramPort {
  PortId id;
  PortRole role = PortRole::kWorkload;
  std::vector<net::IpAddr> vips;  // workloads: the VIPs behind the port
};

// Packets counted by the program's entries (flow-engine entry hits, kept across entry replacements).
struct ProgramCounts {
  std::map<std::string, uint64_t> classifier;         // classifier name -> packets steered into its chain
  std::map<std::string, uint64_t> classifier_return;  // bi-directional: its return traffic steered
  std::map<std::pair<std::string, std::size_t>, uint64_t> hop;  // (chain, hop) -> packets back from it
};

class ChainProgram {
 public:
  ChainProgram(flow::Pipeline& pipeline, Placement place, std::map<std::string, ProgramPort> ports);
  ~ChainProgram();
  ChainProgram(const ChainProgram&) = delete;
  ChainProgram& operator=(const ChainProgram&) = delete;

  using Live = std::function<bool(const std::string& pair)>;
  // Brings the pipeline to what `chains` says with the instances `live` names: groups first, then new
  // entries (a changed one make-before-break), then stale entries out. Error (a table full, a one-armed
  // instance asked to serve one VIP both ways): the pipeline may be part-way; apply the previous registry
  // again to go back.
  Status<SfcError> apply(const ServiceChains& chains, const Live& live);
  // The host ports changed (a reload): takes effect at the next apply().
  void set_ports(std::map<std::string, ProgramPort> ports) { ports_ = std::move(ports); }

  ProgramCounts counts() const;
  std::size_t entries() const { return installed_.size(); }
  std::size_t groups() const { return groups_.size(); }

  struct Installed;
  struct GroupState;

 private:
  flow::Pipeline& pl_;
  Placement place_;
  std::map<std::string, ProgramPort> ports_;
  std::map<std::string, Installed> installed_;  // by key (pipe, match)
  std::map<std::string, GroupState> groups_;    // by "GROUP/fwd" | "GROUP/rev"
  std::map<std::string, uint64_t> retired_;     // counter tag -> hits of removed entries
};

}  // namespace pspgw::sfc
