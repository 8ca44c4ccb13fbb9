#include "control/rpc_counters.hpp"

namespace pspgw::control {

std::string_view rpc_code_name(int code) {
  static constexpr std::array<std::string_view, kRpcCodes> kNames{
      "ok",        "cancelled",      "unknown",           "invalid_argument",   "deadline_exceeded",
      "not_found", "already_exists", "permission_denied", "resource_exhausted", "failed_precondition",
      "aborted",   "out_of_range",   "unimplemented",     "internal",           "unavailable",
      "data_loss", "unauthenticated"};
  if (code < 0 || static_cast<std::size_t>(code) >= kRpcCodes) return "unknown";
  return kNames[static_cast<std::size_t>(code)];
}

void RpcCounters::count(PeerIndex peer, RpcDirection direction, int code) {
  const std::size_t c =
      code < 0 || static_cast<std::size_t>(code) >= kRpcCodes ? 2 : static_cast<std::size_t>(code);
  std::lock_guard lock(mu_);
  if (peer >= peers_.size()) peers_.resize(peer + 1);
  auto& row = direction == RpcDirection::kSent ? peers_[peer].sent : peers_[peer].received;
  ++row[c];
}

void RpcCounters::count_unattributed() {
  std::lock_guard lock(mu_);
  ++unattributed_;
}

std::vector<PeerRpcCounts> RpcCounters::snapshot() const {
  std::lock_guard lock(mu_);
  return peers_;
}

uint64_t RpcCounters::unattributed() const {
  std::lock_guard lock(mu_);
  return unattributed_;
}

}  // namespace pspgw::control
