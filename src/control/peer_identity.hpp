// Peer identity: which configured peer sent a server-side request. No gRPC types: the service hands in
// what the connection proves, and gets back a Caller that TunnelManager authorises against.
//
// * Mutual TLS (the default): the peer's certificate chains to our CA (checked by the TLS handshake) and
//   one of its subjectAltNames (IP or DNS) names the host of that peer's remote-grpc-address. An IP SAN
//   matches an IP host as an address ("::1" == "0:0::1"); a DNS SAN matches a DNS host ignoring case.
// * --grpc-insecure (plaintext, for DOCA hardware peers): the connection's source address equals the
//   host of the peer's remote-grpc-address (DNS hosts are resolved once, at start).
//
// Peers that share a host (two gateways on one machine, "127.0.0.1:3001" and "127.0.0.1:3002") cannot be
// told apart by a certificate or an address: the Caller then holds all of them and may act for each (the
// union of their VIP pairs). Each pair's PIP binding still applies (tunnel_manager.hpp). Give peers
// distinct hosts (or DNS names) where that matters.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "control/error.hpp"
#include "control/peer_transport.hpp"
#include "net/addr.hpp"

namespace pspgw::control {

// The configured peers a request may act for, as the transport authenticated them. Never empty for a
// request that reached TunnelManager.
struct Caller {
  std::vector<PeerIndex> peers;  // ascending
  std::string proof;             // what identified it, for logs: "certificate 127.0.0.1" or "source 10.0.0.2"

  bool may_act_for(PeerIndex p) const;
};

class PeerDirectory {
 public:
  PeerDirectory() = default;
  // hosts[i]: the host of peer i's remote-grpc-address (an IP literal or a DNS name); "" for the slot of
  // a peer a reload removed (matches nothing).
  explicit PeerDirectory(std::vector<std::string> hosts);

  // Resolves the DNS hosts for by_address (insecure mode). kUnavailable naming the host if one fails.
  CStatus resolve();

  // Mutual TLS: the peers whose host one of the certificate's subjectAltNames names.
  Caller by_names(std::span<const std::string> names) const;
  // Insecure: the peers whose host is (or resolves to) the source address.
  Caller by_address(const net::IpAddr& source) const;

  std::size_t size() const { return hosts_.size(); }

 private:
  struct Host {
    std::string name;                    // as configured
    std::vector<net::IpAddr> addresses;  // the literal, or what the DNS name resolved to
  };
  std::vector<Host> hosts_;
};

// The source address in gRPC's peer string: "ipv4:1.2.3.4:5", "ipv6:[::1]:5" (an IPv4-mapped IPv6
// address becomes IPv4). nullopt for anything else (e.g. "unix:").
std::optional<net::IpAddr> parse_grpc_peer(std::string_view peer);

}  // namespace pspgw::control
