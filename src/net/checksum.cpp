#include "net/checksum.hpp"

#include "base/byteorder.hpp"
#include "net/headers.hpp"

namespace pspgw::net {

uint32_t csum_partial(std::span<const uint8_t> bytes, uint32_t sum) {
  uint64_t s = sum;
  std::size_t i = 0;
  for (; i + 1 < bytes.size(); i += 2) s += static_cast<uint32_t>(bytes[i] << 8 | bytes[i + 1]);
  if (i < bytes.size()) s += static_cast<uint32_t>(bytes[i] << 8);
  while (s >> 32) s = (s & 0xffffffff) + (s >> 32);
  return static_cast<uint32_t>(s);
}

uint16_t csum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xffff);
}

void ipv4_set_checksum(uint8_t* h) {
  const std::size_t ihl = static_cast<std::size_t>(h[0] & 0x0f) * 4;
  h[10] = 0;
  h[11] = 0;
  store_be16(h + 10, csum_fold(csum_partial({h, ihl})));
}

bool ipv4_checksum_ok(const uint8_t* h) {
  const std::size_t ihl = static_cast<std::size_t>(h[0] & 0x0f) * 4;
  return csum_fold(csum_partial({h, ihl})) == 0;
}

namespace {

uint32_t pseudo_header_sum(const uint8_t* ip, uint8_t proto, std::size_t length) {
  uint32_t sum = 0;
  if ((ip[0] >> 4) == 4) {
    sum = csum_partial({ip + 12, 8});  // src + dst
  } else {
    sum = csum_partial({ip + 8, 32});
  }
  const uint32_t len = static_cast<uint32_t>(length);
  sum += proto;
  sum += len & 0xffff;
  sum += len >> 16;
  return sum;
}

}  // namespace

uint16_t l4_checksum(const uint8_t* ip, uint8_t proto, std::span<const uint8_t> segment) {
  const uint32_t sum = csum_partial(segment, pseudo_header_sum(ip, proto, segment.size()));
  uint16_t c = csum_fold(sum);
  if (proto == kIpProtoUdp && c == 0) c = 0xffff;  // RFC 768: a computed 0 is sent as all ones
  return c;
}

bool l4_checksum_ok(const uint8_t* ip, uint8_t proto, std::span<const uint8_t> segment) {
  return csum_fold(csum_partial(segment, pseudo_header_sum(ip, proto, segment.size()))) == 0;
}

}  // namespace pspgw::net
