// Fleet records: what each gateway publishes about itself, and where in etcd.
//
// Keys (PREFIX is --etcd-prefix, default "/psp-gateway/"):
//   PREFIX hosts/HOST   one host record (JSON below), written by HOST under its lease
//   PREFIX policy       optional policy document (policy.hpp), written by the operator
//
// A host record (JSON object; unknown keys are refused so a typo is not silently ignored):
//   {"host": "hostA",                       // = the key's last component
//    "grpc-address": "192.0.2.1:3000",      // where its key-exchange gRPC server listens (host:port)
//    "pip": "192.0.2.1",                    // its data-plane (outer) address: PSP packets go there
//    "identity": "hostA.example",           // the subjectAltName its gRPC certificate carries
//                                           //   ("" = the host of grpc-address)
//    "ports": [{"name": "psp0", "vips": ["10.0.0.1"]}]}  // the VIPs behind each of its host ports
//
// decode_record is the one parser of what a remote party writes into the store: bounded (kMaxRecordBytes,
// kMaxVipsPerRecord) and total (any input gives a record or a kBadRecord error, never an exception).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fleet/error.hpp"
#include "net/addr.hpp"

namespace pspgw::fleet {

inline constexpr std::size_t kMaxRecordBytes = 4u << 20;    // 4 MiB: ~100k VIPs of text
inline constexpr std::size_t kMaxVipsPerRecord = 1u << 17;  // 131072
inline constexpr std::size_t kMaxHostNameBytes = 253;       // a DNS name's limit
inline constexpr std::string_view kDefaultPrefix = "/psp-gateway/";

struct PortVips {
  std::string name;
  std::vector<net::IpAddr> vips;
  friend bool operator==(const PortVips&, const PortVips&) = default;
};

struct HostRecord {
  std::string host;
  std::string grpc_address;  // "host:port" / "[v6]:port"
  net::IpAddr pip;
  std::string identity;  // "" = the host of grpc_address
  std::vector<PortVips> ports;

  // Every VIP of every port, in record order.
  std::vector<net::IpAddr> vips() const;
  // identity, or the host part of grpc_address when identity is empty.
  std::string effective_identity() const;
  friend bool operator==(const HostRecord&, const HostRecord&) = default;
};

// JSON text -> record; kBadRecord naming the field for anything else.
FResult<HostRecord> decode_record(std::string_view text);
std::string encode_record(const HostRecord& record);

// A host name usable as the last component of a key: 1..253 of [A-Za-z0-9._-].
bool valid_host_name(std::string_view host);

// Key layout (header comment). The prefix always ends in '/' (normalise_prefix).
std::string normalise_prefix(std::string_view prefix);
std::string hosts_prefix(std::string_view prefix);
std::string host_key(std::string_view prefix, std::string_view host);
std::string policy_key(std::string_view prefix);
// The host a key under hosts_prefix names; nullopt for any other key.
std::optional<std::string> host_of_key(std::string_view prefix, std::string_view key);

}  // namespace pspgw::fleet
