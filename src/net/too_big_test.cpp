// ICMP "too big" builders (RFC 792/1191, RFC 4443) and IPv4 fragmentation (RFC 791).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "base/byteorder.hpp"
#include "net/checksum.hpp"
#include "net/headers.hpp"
#include "net/icmp_too_big.hpp"
#include "net/ipv4_fragment.hpp"
#include "net/packet.hpp"

namespace pspgw::net {
namespace {

constexpr uint8_t kVmMac[6] = {0x02, 0, 0, 0, 0, 0x01};
constexpr uint8_t kGwMac[6] = {0x02, 0x50, 0x53, 0x50, 0, 0x01};

// Ethernet (vm -> gateway) + IPv4 10.0.0.1 -> 10.0.0.2, protocol `proto`, `payload` bytes 0, 1, 2, ...
std::vector<uint8_t> ipv4_frame(uint32_t payload, uint16_t frag_off, uint8_t proto = kIpProtoUdp,
                                std::vector<uint8_t> options = {}) {
  const uint32_t ihl = 20 + static_cast<uint32_t>(options.size());
  std::vector<uint8_t> f(14 + ihl + payload);
  std::memcpy(f.data(), kGwMac, 6);
  std::memcpy(f.data() + 6, kVmMac, 6);
  store_be16(f.data() + 12, kEtherTypeIpv4);
  uint8_t* ip = f.data() + 14;
  ip[0] = static_cast<uint8_t>(0x40 | (ihl / 4));
  store_be16(ip + 2, static_cast<uint16_t>(ihl + payload));
  store_be16(ip + 4, 0x1234);
  store_be16(ip + 6, frag_off);
  ip[8] = 64;
  ip[9] = proto;
  const uint8_t src[4] = {10, 0, 0, 1};
  const uint8_t dst[4] = {10, 0, 0, 2};
  std::memcpy(ip + 12, src, 4);
  std::memcpy(ip + 16, dst, 4);
  if (!options.empty()) std::memcpy(ip + 20, options.data(), options.size());  // data() of none may be null
  ipv4_set_checksum(ip);
  for (uint32_t i = 0; i < payload; ++i) ip[ihl + i] = static_cast<uint8_t>(i);
  return f;
}

std::vector<uint8_t> ipv6_frame(uint32_t payload, uint8_t next = kIpProtoUdp) {
  std::vector<uint8_t> f(14 + 40 + payload);
  std::memcpy(f.data(), kGwMac, 6);
  std::memcpy(f.data() + 6, kVmMac, 6);
  store_be16(f.data() + 12, kEtherTypeIpv6);
  uint8_t* ip = f.data() + 14;
  store_be32(ip, 0x60000000);
  store_be16(ip + 4, static_cast<uint16_t>(payload));
  ip[6] = next;
  ip[7] = 64;
  ip[8] = 0xfd;
  ip[23] = 1;  // fd00::1
  ip[24] = 0xfd;
  ip[39] = 2;  // fd00::2
  for (uint32_t i = 0; i < payload; ++i) ip[40 + i] = static_cast<uint8_t>(i);
  return f;
}

struct Pool {
  PacketPool pool{8, 4096};
  Packet* load(const std::vector<uint8_t>& bytes) {
    Packet* p = pool.alloc();
    EXPECT_TRUE(p->assign(bytes));
    return p;
  }
};

TEST(FragNeeded, QuotesTheHeaderAndMtuWithValidChecksums) {
  Pool pool;
  const auto orig = ipv4_frame(1480, kIpv4FlagDf);  // a 1500-byte DF packet
  Packet* p = pool.load(orig);
  ASSERT_EQ(make_frag_needed(*p, 14, 1422), TooBigResult::kBuilt);
  // 576 bytes of IP in all (RFC 1812 §4.3.2.3): 20 + 8 + 548 quoted.
  ASSERT_EQ(p->size(), 14u + 576u);
  const uint8_t* d = p->data();
  EXPECT_EQ(0, std::memcmp(d, kVmMac, 6)) << "back to the sender's MAC";
  EXPECT_EQ(0, std::memcmp(d + 6, kGwMac, 6));
  EXPECT_EQ(load_be16(d + 12), kEtherTypeIpv4);
  const uint8_t* ip = d + 14;
  EXPECT_EQ(ip[0], 0x45);
  EXPECT_EQ(load_be16(ip + 2), 576);
  EXPECT_EQ(ip[9], kIpProtoIcmp);
  EXPECT_TRUE(ipv4_checksum_ok(ip));
  EXPECT_EQ(0, std::memcmp(ip + 12, orig.data() + 14 + 16, 4)) << "from the original destination";
  EXPECT_EQ(0, std::memcmp(ip + 16, orig.data() + 14 + 12, 4)) << "to the original source";
  const uint8_t* icmp = ip + 20;
  EXPECT_EQ(icmp[0], 3);
  EXPECT_EQ(icmp[1], 4);
  EXPECT_EQ(load_be16(icmp + 4), 0) << "unused";
  EXPECT_EQ(load_be16(icmp + 6), 1422) << "next-hop MTU (RFC 1191)";
  EXPECT_EQ(csum_fold(csum_partial({icmp, 8 + 548})), 0) << "ICMP checksum over header and quote";
  // The quote: the original IP header unchanged (its total length 1500, DF) and the first payload bytes.
  EXPECT_EQ(0, std::memcmp(icmp + 8, orig.data() + 14, 548));
  EXPECT_EQ(load_be16(icmp + 8 + 2), 1500);
}

TEST(FragNeeded, ShortPacketQuotedWhole) {
  Pool pool;
  const auto orig = ipv4_frame(12, kIpv4FlagDf);
  Packet* p = pool.load(orig);
  ASSERT_EQ(make_frag_needed(*p, 14, 1400), TooBigResult::kBuilt);
  EXPECT_EQ(p->size(), 14u + 28u + 32u);
  EXPECT_EQ(0, std::memcmp(p->data() + 14 + 28, orig.data() + 14, 32));
}

TEST(FragNeeded, KeepsTheVlanTag) {
  Pool pool;
  auto orig = ipv4_frame(100, kIpv4FlagDf);
  const uint8_t tag[4] = {0x81, 0x00, 0x00, 0x07};
  orig.insert(orig.begin() + 12, tag, tag + 4);
  Packet* p = pool.load(orig);
  ASSERT_EQ(make_frag_needed(*p, 18, 1400), TooBigResult::kBuilt);
  EXPECT_EQ(load_be16(p->data() + 12), kEtherTypeVlan);
  EXPECT_EQ(load_be16(p->data() + 14), 7);
  EXPECT_EQ(load_be16(p->data() + 16), kEtherTypeIpv4);
  EXPECT_TRUE(ipv4_checksum_ok(p->data() + 18));
}

TEST(FragNeeded, NeverAboutAnIcmpErrorOrALaterFragmentOrNonUnicast) {
  Pool pool;
  auto icmp_err = ipv4_frame(100, kIpv4FlagDf, kIpProtoIcmp);
  icmp_err[14 + 20] = 3;  // a Destination Unreachable
  Packet* p = pool.load(icmp_err);
  EXPECT_EQ(make_frag_needed(*p, 14, 1400), TooBigResult::kNotEligible);
  EXPECT_EQ(p->size(), icmp_err.size()) << "untouched";
  auto echo = ipv4_frame(100, kIpv4FlagDf, kIpProtoIcmp);
  echo[14 + 20] = 8;  // an Echo Request is answered
  EXPECT_EQ(make_frag_needed(*pool.load(echo), 14, 1400), TooBigResult::kBuilt);
  EXPECT_EQ(make_frag_needed(*pool.load(ipv4_frame(100, 185)), 14, 1400), TooBigResult::kNotEligible);
  auto mcast = ipv4_frame(100, kIpv4FlagDf);
  mcast[14 + 16] = 239;
  EXPECT_EQ(make_frag_needed(*pool.load(mcast), 14, 1400), TooBigResult::kNotEligible);
  auto bad = ipv4_frame(100, kIpv4FlagDf);
  store_be16(bad.data() + 14 + 2, 2000);  // longer than the frame
  EXPECT_EQ(make_frag_needed(*pool.load(bad), 14, 1400), TooBigResult::kMalformed);
}

TEST(PacketTooBig, QuotesUpTo1280AndChecksums) {
  Pool pool;
  const auto orig = ipv6_frame(1460);  // 1500 bytes of IPv6
  Packet* p = pool.load(orig);
  ASSERT_EQ(make_packet_too_big(*p, 14, 1402), TooBigResult::kBuilt);
  ASSERT_EQ(p->size(), 14u + 1280u) << "RFC 4443 §2.4 (c): no more than the minimum MTU";
  const uint8_t* d = p->data();
  EXPECT_EQ(0, std::memcmp(d, kVmMac, 6));
  const uint8_t* ip = d + 14;
  EXPECT_EQ(ip[0] >> 4, 6);
  EXPECT_EQ(load_be16(ip + 4), 1240);
  EXPECT_EQ(ip[6], kIpProtoIcmpv6);
  EXPECT_EQ(0, std::memcmp(ip + 8, orig.data() + 14 + 24, 16));
  EXPECT_EQ(0, std::memcmp(ip + 24, orig.data() + 14 + 8, 16));
  const uint8_t* icmp = ip + 40;
  EXPECT_EQ(icmp[0], 2);
  EXPECT_EQ(icmp[1], 0);
  EXPECT_EQ(load_be32(icmp + 4), 1402u);
  EXPECT_TRUE(l4_checksum_ok(ip, kIpProtoIcmpv6, {icmp, 1240}));
  EXPECT_EQ(0, std::memcmp(icmp + 8, orig.data() + 14, 1232));
}

TEST(PacketTooBig, NeverAboutAnIcmpv6ErrorOrMulticast) {
  Pool pool;
  auto err = ipv6_frame(100, kIpProtoIcmpv6);
  err[14 + 40] = 1;  // Destination Unreachable
  EXPECT_EQ(make_packet_too_big(*pool.load(err), 14, 1400), TooBigResult::kNotEligible);
  auto echo = ipv6_frame(100, kIpProtoIcmpv6);
  echo[14 + 40] = 128;
  EXPECT_EQ(make_packet_too_big(*pool.load(echo), 14, 1400), TooBigResult::kBuilt);
  auto mcast = ipv6_frame(100);
  mcast[14 + 24] = 0xff;
  EXPECT_EQ(make_packet_too_big(*pool.load(mcast), 14, 1400), TooBigResult::kNotEligible);
}

TEST(FragNeeded, NoHeadroomLeavesTheFrame) {
  PacketPool pool(1, 4096);
  Packet* p = pool.alloc();
  p->reset(8);
  const auto orig = ipv4_frame(100, kIpv4FlagDf);
  ASSERT_TRUE(p->assign(orig));
  EXPECT_EQ(make_frag_needed(*p, 14, 1400), TooBigResult::kNoRoom);
  EXPECT_EQ(p->size(), orig.size());
}

// Reassembles fragments (in order) into the payload, checking each fragment's header.
std::vector<uint8_t> reassemble(const PacketBatch& out, uint32_t mtu) {
  std::vector<uint8_t> payload;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const uint8_t* ip = out[i]->data() + 14;
    const uint32_t ihl = static_cast<uint32_t>(ip[0] & 0xf) * 4;
    const uint32_t total = load_be16(ip + 2);
    EXPECT_LE(total, mtu);
    EXPECT_EQ(out[i]->size(), 14 + total);
    EXPECT_TRUE(ipv4_checksum_ok(ip));
    EXPECT_EQ(load_be16(ip + 4), 0x1234) << "one datagram: one ID";
    const uint16_t frag = load_be16(ip + 6);
    EXPECT_EQ((frag & kIpv4FragOffsetMask) * 8u, payload.size());
    EXPECT_EQ((frag & kIpv4FlagMf) != 0, i + 1 < out.size());
    payload.insert(payload.end(), ip + ihl, ip + total);
  }
  return payload;
}

TEST(Ipv4Fragment, CutsIntoMtuSizedFragmentsOnEightByteBoundaries) {
  Pool pool;
  const auto orig = ipv4_frame(1480, 0);
  Packet* p = pool.load(orig);
  PacketBatch out;
  ASSERT_EQ(fragment_ipv4(*p, 14, 1422, pool.pool, out), FragmentResult::kDone);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(load_be16(out[0]->data() + 14 + 2), 20 + 1400) << "(1422 - 20) rounded down to 8";
  const auto payload = reassemble(out, 1422);
  EXPECT_EQ(payload, std::vector<uint8_t>(orig.begin() + 34, orig.end()));
  EXPECT_EQ(0, std::memcmp(out[1]->data(), orig.data(), 14)) << "the L2 header on every fragment";
}

TEST(Ipv4Fragment, LaterFragmentsCarryOnlyCopiedOptions) {
  Pool pool;
  // A NOP, a Record Route (7, not copied) of 7 bytes, a Security-like option (0x82, copied) of 4 bytes.
  const std::vector<uint8_t> opts = {1, 7, 7, 4, 0, 0, 0, 0, 0x82, 4, 0xaa, 0xbb};
  const auto orig = ipv4_frame(1000, 0, kIpProtoUdp, opts);
  Packet* p = pool.load(orig);
  PacketBatch out;
  ASSERT_EQ(fragment_ipv4(*p, 14, 576, pool.pool, out), FragmentResult::kDone);
  ASSERT_GE(out.size(), 2u);
  EXPECT_EQ(out[0]->data()[14] & 0xf, 8) << "the first keeps every option";
  const uint8_t* later = out[1]->data() + 14;
  EXPECT_EQ(later[0] & 0xf, 6) << "20 + the 4-byte copied option";
  EXPECT_EQ(later[20], 0x82);
  EXPECT_EQ(reassemble(out, 576), std::vector<uint8_t>(orig.begin() + 14 + 32, orig.end()));
}

TEST(Ipv4Fragment, AFragmentIsCutFurther) {
  Pool pool;
  const auto orig = ipv4_frame(1000, kIpv4FlagMf | 100);  // offset 800, more to come
  Packet* p = pool.load(orig);
  PacketBatch out;
  ASSERT_EQ(fragment_ipv4(*p, 14, 600, pool.pool, out), FragmentResult::kDone);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(load_be16(out[0]->data() + 14 + 6), kIpv4FlagMf | 100);
  EXPECT_EQ(load_be16(out[1]->data() + 14 + 6), kIpv4FlagMf | (100 + 576 / 8)) << "MF stays on the last";
}

TEST(Ipv4Fragment, AllOrNothing) {
  PacketPool pool(2, 4096);
  Packet* p = pool.alloc();
  ASSERT_TRUE(p->assign(ipv4_frame(3000, 0)));
  PacketBatch out;
  EXPECT_EQ(fragment_ipv4(*p, 14, 1400, pool, out), FragmentResult::kNoRoom) << "3 fragments, 1 buffer";
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(pool.available(), 1u);
  EXPECT_EQ(fragment_ipv4(*p, 14, 24, pool, out), FragmentResult::kMtuTooSmall);
}

}  // namespace
}  // namespace pspgw::net
