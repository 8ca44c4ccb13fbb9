// Bounds-checked header parsing. Every length is validated against the bytes present before any field
// behind it is read; a failure names its reason. Used by PSP decap, the pipeline's field extraction and
// the slow path, so all of them agree on what a well-formed packet is.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "base/result.hpp"
#include "net/addr.hpp"

namespace pspgw::net {

enum class ParseError : uint8_t {
  kTooShort,      // fewer bytes than the header needs
  kNotIp,         // ethertype / version is not IPv4 or IPv6
  kBadIpHeader,   // IHL < 5, version mismatch, ...
  kBadIpLength,   // total/payload length beyond the bytes present or below the header
  kBadExtHeader,  // IPv6 extension chain truncated or longer than we walk
  kBadL4Header,   // TCP/UDP header truncated or inconsistent
};
std::string_view to_string(ParseError e);

struct IpInfo {
  IpFamily family = IpFamily::kNone;
  uint16_t l3_offset = 0;      // of the IP header, from the start of the span given to the parser
  uint16_t l3_header_len = 0;  // IPv4: IHL bytes; IPv6: 40 + extension headers walked
  uint16_t l3_total_len = 0;   // header + payload, as the IP header states (may be < bytes present)
  uint8_t l4_proto = 0;        // IPv4 protocol / IPv6 last next-header
  uint16_t l4_offset = 0;
  bool fragment = false;  // part of a fragmented datagram (ports unknown unless first fragment)
  uint16_t src_port = 0;  // host order; 0 unless TCP/UDP with the header present
  uint16_t dst_port = 0;
  IpAddr src;
  IpAddr dst;
};

struct FrameInfo {
  uint16_t ethertype = 0;  // after at most one VLAN tag
  uint16_t l2_len = 0;     // 14 or 18
  IpInfo ip;               // valid iff ethertype is IPv4/IPv6 and parsing succeeded
};

// Parses an IP packet starting at `offset` of `bytes` (IPv4 or IPv6 chosen by the version nibble).
Result<IpInfo, ParseError> parse_ip(std::span<const uint8_t> bytes, uint16_t offset = 0);
// Parses an Ethernet II frame. Non-IP ethertypes succeed with ip.family == kNone.
Result<FrameInfo, ParseError> parse_frame(std::span<const uint8_t> frame);
// The same into the caller's struct, for the per-packet paths (the flow engine's parsers): no copy of the
// result. On failure the struct's contents are unspecified (parse_frame: ip.family is kNone).
Status<ParseError> parse_ip(std::span<const uint8_t> bytes, uint16_t offset, IpInfo& out);
Status<ParseError> parse_frame(std::span<const uint8_t> frame, FrameInfo& out);

}  // namespace pspgw::net
