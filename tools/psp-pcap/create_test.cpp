#include "create.hpp"

#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "base/byteorder.hpp"
#include "net/checksum.hpp"
#include "net/parse.hpp"

namespace pspgw::psp_pcap {
namespace {

std::vector<uint8_t> frame(net::IpFamily f, bool empty, uint32_t n) {
  std::vector<uint8_t> buf(kCreateFrameSize + 16, 0xee);
  const std::size_t len = build_test_frame({f, empty}, n, buf);
  buf.resize(len);
  return buf;
}

// The reference's first IPv4 frame, as tcpdump -xx prints it (google/psp pcap/v4_cleartext_pcap.txt).
TEST(CreateFrames, Ipv4MatchesTheReferenceDump) {
  const auto f = frame(net::IpFamily::kV4, false, 0);
  ASSERT_EQ(f.size(), 1434u);
  const std::vector<uint8_t> head = {0x00, 0x88, 0x99, 0xaa, 0xbb, 0x00, 0x00, 0x22, 0x33, 0x44, 0x55, 0x00,
                                     0x08, 0x00, 0x45, 0x00, 0x05, 0x8c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                                     0x21, 0x5f, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0x2b, 0x67,
                                     0x56, 0xce, 0x05, 0x78, 0x89, 0x3b, 0x00, 0x01, 0x02, 0x03};
  EXPECT_EQ(std::vector<uint8_t>(f.begin(), f.begin() + static_cast<long>(head.size())), head);
  EXPECT_EQ(f.back(), static_cast<uint8_t>((1434 - 42 - 1) & 0xff));  // last dump word "6e6f"
}

TEST(CreateFrames, LayoutAndPayloadPattern) {
  for (auto fam : {net::IpFamily::kV4, net::IpFamily::kV6}) {
    for (uint32_t n : {0u, 1u, 255u, 256u, 1000u}) {
      const auto f = frame(fam, false, n);
      auto info = net::parse_frame(f);
      ASSERT_TRUE(info.ok());
      EXPECT_EQ(info->ip.family, fam);
      EXPECT_EQ(info->ip.l4_proto, net::kIpProtoUdp);
      EXPECT_EQ(info->ip.src_port, 11111);
      EXPECT_EQ(info->ip.dst_port, 22222);
      EXPECT_EQ(info->ip.l3_total_len, f.size() - 14);
      const std::size_t payload = info->ip.l4_offset + 8;
      EXPECT_EQ(load_be16(f.data() + info->ip.l4_offset + 4), f.size() - info->ip.l4_offset);
      for (std::size_t i = 0; i < f.size() - payload; ++i) {
        ASSERT_EQ(f[payload + i], static_cast<uint8_t>((n + i) & 0xff)) << "packet " << n << " byte " << i;
      }
      const uint8_t* ip = f.data() + 14;
      EXPECT_TRUE(net::l4_checksum_ok(ip, net::kIpProtoUdp,
                                      {f.data() + info->ip.l4_offset, f.size() - info->ip.l4_offset}));
      EXPECT_NE(load_be16(f.data() + info->ip.l4_offset + 6), 0);
      if (fam == net::IpFamily::kV4) {
        EXPECT_TRUE(net::ipv4_checksum_ok(ip));
        EXPECT_EQ(load_be16(ip + 6), net::kIpv4FlagDf);
        EXPECT_EQ(ip[8], 64);
        EXPECT_EQ(load_be16(ip + 2), 1420);
      } else {
        EXPECT_EQ(load_be32(ip), 0x60000000u);
        EXPECT_EQ(ip[7], 64);
        EXPECT_EQ(ip[8], 0x0a);  // a00::1
        EXPECT_EQ(ip[23], 1);
        EXPECT_EQ(ip[39], 2);
        EXPECT_EQ(load_be16(ip + 4), 1434 - 54);
      }
    }
  }
}

TEST(CreateFrames, EmptyFramesCarryOnlyTheUdpHeader) {
  const auto v4 = frame(net::IpFamily::kV4, true, 3);
  const auto v6 = frame(net::IpFamily::kV6, true, 3);
  ASSERT_EQ(v4.size(), 42u);
  ASSERT_EQ(v6.size(), 62u);
  EXPECT_EQ(load_be16(v4.data() + 14 + 2), 28);  // IPv4 total length
  EXPECT_EQ(load_be16(v4.data() + 34 + 4), 8);   // UDP length
  EXPECT_EQ(load_be16(v6.data() + 14 + 4), 8);   // IPv6 payload length
  EXPECT_TRUE(net::l4_checksum_ok(v4.data() + 14, net::kIpProtoUdp, {v4.data() + 34, 8}));
  EXPECT_TRUE(net::l4_checksum_ok(v6.data() + 14, net::kIpProtoUdp, {v6.data() + 54, 8}));
  EXPECT_EQ(test_frame_size({net::IpFamily::kV6, true}), 62u);
  EXPECT_EQ(test_frame_size({net::IpFamily::kV6, false}), kCreateFrameSize);
}

}  // namespace
}  // namespace pspgw::psp_pcap
