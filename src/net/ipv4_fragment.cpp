#include "net/ipv4_fragment.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include "base/byteorder.hpp"
#include "net/checksum.hpp"
#include "net/headers.hpp"

namespace pspgw::net {
namespace {

constexpr uint32_t kMaxIhl = 60;
constexpr uint8_t kOptEnd = 0;
constexpr uint8_t kOptNop = 1;
constexpr uint8_t kOptCopied = 0x80;  // RFC 791: the copy flag, set on options every fragment carries

// The header of fragments after the first: the fixed 20 bytes and the options with the copy flag, padded
// with End of Option List to a multiple of 4. Returns its length.
uint32_t later_header(const uint8_t* ip, uint32_t ihl, std::array<uint8_t, kMaxIhl>& out) {
  std::memcpy(out.data(), ip, sizeof(Ipv4Hdr));
  uint32_t len = sizeof(Ipv4Hdr);
  for (uint32_t i = sizeof(Ipv4Hdr); i < ihl;) {
    const uint8_t type = ip[i];
    if (type == kOptEnd) break;
    if (type == kOptNop) {
      ++i;
      continue;
    }
    if (i + 1 >= ihl || ip[i + 1] < 2 || i + ip[i + 1] > ihl) break;  // malformed: keep what came before
    const uint32_t olen = ip[i + 1];
    if ((type & kOptCopied) != 0) {
      std::memcpy(out.data() + len, ip + i, olen);
      len += olen;
    }
    i += olen;
  }
  while (len % 4 != 0) out[len++] = kOptEnd;
  out[0] = static_cast<uint8_t>(0x40 | (len / 4));
  return len;
}

uint32_t chunk(uint32_t mtu, uint32_t hdr) {
  return mtu > hdr ? ((mtu - hdr) & ~7U) : 0;
}

}  // namespace

FragmentResult fragment_ipv4(const Packet& frame, uint32_t l3_offset, uint32_t mtu, PacketPool& pool,
                             PacketBatch& out) {
  if (frame.size() < l3_offset + sizeof(Ipv4Hdr)) return FragmentResult::kMalformed;
  const uint8_t* ip = frame.data() + l3_offset;
  const uint32_t ihl = static_cast<uint32_t>(ip[0] & 0x0f) * 4;
  const uint32_t total = load_be16(ip + 2);
  if ((ip[0] >> 4) != 4 || ihl < sizeof(Ipv4Hdr) || total < ihl || total > frame.size() - l3_offset)
    return FragmentResult::kMalformed;
  std::array<uint8_t, kMaxIhl> later{};
  const uint32_t later_len = later_header(ip, ihl, later);
  const uint32_t first_chunk = chunk(mtu, ihl);
  const uint32_t later_chunk = chunk(mtu, later_len);
  if (first_chunk == 0 || later_chunk == 0) return FragmentResult::kMtuTooSmall;
  const uint32_t payload = total - ihl;
  const uint32_t count =
      payload <= first_chunk ? 1 : 1 + (payload - first_chunk + later_chunk - 1) / later_chunk;
  if (net::kMaxBatch - out.size() < count || pool.available() < count) return FragmentResult::kNoRoom;

  const uint16_t frag = load_be16(ip + 6);
  const uint32_t base_units = frag & kIpv4FragOffsetMask;  // already a fragment: cut it further
  const bool last_mf = (frag & kIpv4FlagMf) != 0;
  const uint8_t* data = ip + ihl;
  for (uint32_t off = 0; off < payload || off == 0;) {
    const bool first = off == 0;
    const uint32_t hdr_len = first ? ihl : later_len;
    const uint32_t len = std::min(payload - off, first ? first_chunk : later_chunk);
    const bool last = off + len >= payload;
    Packet* p = pool.alloc();  // available() was checked: never nullptr
    p->meta = frame.meta;
    uint8_t* d = p->data();
    std::memcpy(d, frame.data(), l3_offset);
    uint8_t* h = d + l3_offset;
    std::memcpy(h, first ? ip : later.data(), hdr_len);
    std::memcpy(h + hdr_len, data + off, len);
    store_be16(h + 2, static_cast<uint16_t>(hdr_len + len));
    const uint16_t mf = (!last || last_mf) ? kIpv4FlagMf : 0;
    store_be16(h + 6, static_cast<uint16_t>((frag & ~(kIpv4FlagMf | kIpv4FragOffsetMask)) | mf |
                                            (base_units + off / 8)));
    ipv4_set_checksum(h);
    p->set_size(l3_offset + hdr_len + len);
    out.push(p);
    off += len;
    if (len == 0) break;  // an empty payload: one fragment (the packet itself)
  }
  return FragmentResult::kDone;
}

}  // namespace pspgw::net
