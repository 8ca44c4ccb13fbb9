// PSP as a UDP payload, for a gateway that sends and receives PSP through a kernel UDP socket (port 1000)
// and so never builds the outer IP/UDP headers itself (shared/spec/psp-protocol.md §1).
//
//   tunnel:    [inner IPv4/IPv6 packet]         <->  [PSP hdr, NH 4/41][inner packet][ICV]
//   transport: [L4 segment of protocol `nh`]   <->  [PSP hdr, NH nh][L4 segment][ICV]
// (transport: the caller strips the IP header before sealing and rebuilds it from the socket's addresses
// after opening). All in place: the packet needs headroom for the header (16/24) and tailroom 16.
// Batch versions: batch.hpp (seal_payload_batch / open_payload_batch).
#pragma once

#include <cstdint>

#include "base/result.hpp"
#include "crypto/aead.hpp"
#include "net/packet.hpp"
#include "psp/encap.hpp"

namespace pspgw::psp {

// kBadInnerPacket if pkt is not an IPv4/IPv6 packet (bytes past its IP length are dropped first).
Status<DropReason> seal_tunnel_payload(net::Packet& pkt, const SealParams& params, const crypto::AeadKey& key,
                                       const crypto::AeadBackend& aead);
Status<DropReason> seal_transport_payload(net::Packet& pkt, uint8_t next_header, const SealParams& params,
                                          const crypto::AeadKey& key, const crypto::AeadBackend& aead);
// The reverse of both: Next Header 4/41 = tunnel (the inner packet must parse as that family, else
// kBadInnerPacket), anything else = transport (OpenInfo.header.next_header is the segment's protocol).
Result<OpenInfo, DropReason> open_payload(net::Packet& pkt, KeyResolver& keys,
                                          const crypto::AeadBackend& aead);

}  // namespace pspgw::psp
