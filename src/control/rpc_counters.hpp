// Per-peer RPC outcomes: requests we sent to each peer and requests each peer sent us, by the gRPC status
// they ended with (OK, a refusal such as PERMISSION_DENIED, or a failure such as UNAVAILABLE). Filled by
// the gRPC adapters (GrpcPeerClient, GrpcService), read into the stats snapshot (pspctl peers, --stat-print,
// /metrics). The table grows with the peer table (a reload adds peers); counts of a removed peer stay in
// its slot. A mutex per count: RPCs are control-plane events, a few per tunnel at most.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "control/peer_transport.hpp"

namespace pspgw::control {

inline constexpr std::size_t kRpcCodes = 17;  // gRPC status codes 0 (OK) .. 16 (UNAUTHENTICATED)

// "ok", "cancelled", ..., "unauthenticated" (lower-case gRPC code names); "unknown" outside 0..16.
std::string_view rpc_code_name(int code);

enum class RpcDirection : uint8_t { kSent, kReceived };

// Whether a status is a refusal (the other side answered, saying no) or a failure (no answer: the
// channel, the deadline, or a fault on the other side). OK is neither.
bool rpc_code_is_refusal(int code);

struct PeerRpcCounts {
  std::array<uint64_t, kRpcCodes> sent{};      // by status code
  std::array<uint64_t, kRpcCodes> received{};  // by the status we answered with
  std::string last_error;                      // "sent unavailable: ..." (at most 160 characters)
};

class RpcCounters {
 public:
  // `message`: the status message of a call that was not OK, kept as the peer's last error.
  void count(PeerIndex peer, RpcDirection direction, int code, std::string_view message = {});
  // Requests refused before they could be attributed to a peer (unknown caller).
  void count_unattributed();
  std::vector<PeerRpcCounts> snapshot() const;
  uint64_t unattributed() const;

 private:
  mutable std::mutex mu_;
  std::vector<PeerRpcCounts> peers_;
  uint64_t unattributed_ = 0;
};

}  // namespace pspgw::control
