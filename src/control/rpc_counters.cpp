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

bool rpc_code_is_refusal(int code) {
  switch (code) {
    case 3:   // invalid_argument
    case 5:   // not_found
    case 6:   // already_exists
    case 7:   // permission_denied
    case 8:   // resource_exhausted
    case 9:   // failed_precondition
    case 10:  // aborted
    case 11:  // out_of_range
    case 12:  // unimplemented
    case 16:  // unauthenticated
      return true;
    default:
      return false;
  }
}

void RpcCounters::count(PeerIndex peer, RpcDirection direction, int code, std::string_view message) {
  const std::size_t c =
      code < 0 || static_cast<std::size_t>(code) >= kRpcCodes ? 2 : static_cast<std::size_t>(code);
  std::lock_guard lock(mu_);
  if (peer >= peers_.size()) peers_.resize(peer + 1);
  auto& row = direction == RpcDirection::kSent ? peers_[peer].sent : peers_[peer].received;
  ++row[c];
  if (c == 0) return;
  constexpr std::size_t kMaxError = 160;  // the peer writes part of it: bounded
  std::string& last = peers_[peer].last_error;
  last = std::string(direction == RpcDirection::kSent ? "sent " : "answered ") +
         std::string(rpc_code_name(code));
  if (!message.empty()) last += ": " + std::string(message.substr(0, kMaxError));
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
