// The key-exchange messages as plain C++ values (spec §2), already validated: the gRPC adapter converts
// proto <-> these and rejects malformed fields, so the policy core never sees text addresses or proto types.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "net/addr.hpp"
#include "psp/key_ring.hpp"

namespace pspgw::control {

// A (local VIP, remote VIP) pair: the unit of a tunnel, of the config's allow list and of backoff.
struct VipPair {
  net::IpAddr local;
  net::IpAddr remote;
  friend auto operator<=>(const VipPair&, const VipPair&) = default;
};

struct VipPairHash {
  std::size_t operator()(const VipPair& p) const noexcept {
    std::hash<net::IpAddr> h;
    return h(p.local) * 31 ^ h(p.remote);
  }
};

// TunnelParameters: what the sender of these params accepts. The key is the receive key of `spi`.
struct TunnelParams {
  net::MacAddr mac;
  net::IpAddr outer_ip;  // encap_type on the wire is outer_ip's family
  psp::DerivedKey key;   // key.version is psp_version
  uint32_t spi = 0;
  uint64_t virt_cookie = 0;

  psp::PspVersion version() const { return key.version; }
};

// SingleTunnelRequest, seen from the requester: `local` is the requester's VIP (virt_src_ip).
struct TunnelRequest {
  net::IpAddr requester_vip;  // virt_src_ip
  net::IpAddr responder_vip;  // virt_dst_ip; inner_type on the wire is their family
  std::optional<TunnelParams> reverse_params;
};

struct MultiTunnelRequest {
  uint64_t request_id = 0;
  std::vector<uint32_t> versions_accepted;  // raw wire values, decreasing preference
  std::vector<TunnelRequest> tunnels;
};

struct MultiTunnelResponse {
  uint64_t request_id = 0;
  std::vector<TunnelParams> tunnels;  // one per request tunnel, same order
};

struct KeyRotationRequest {
  uint64_t request_id = 0;
  bool issue_new_keys = false;
};

struct KeyRotationResponse {
  uint64_t request_id = 0;
};

// CloseTunnels (psp-gateway's own RPC, proto/psp_gateway.proto): the requester closed these tunnels.
struct TunnelClose {
  net::IpAddr requester_vip;  // virt_src_ip
  net::IpAddr responder_vip;  // virt_dst_ip
};

struct CloseTunnelsRequest {
  uint64_t request_id = 0;
  std::vector<TunnelClose> tunnels;
};

struct CloseTunnelsResponse {
  uint64_t request_id = 0;
  uint32_t closed = 0;
};

}  // namespace pspgw::control
