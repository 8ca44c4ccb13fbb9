#include <gtest/gtest.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "net/addr.hpp"
#include "net/checksum.hpp"
#include "net/packet.hpp"
#include "net/parse.hpp"

namespace pspgw::net {
namespace {

// Ethernet + IPv4 + UDP 1234 -> 5678, 9 bytes of payload (the spec's AEAD vector inner packet).
std::vector<uint8_t> udp4_frame() {
  return {0,    1,    2,    3,    4,    5,    6,    7,    8,    9,    10,   11,   0x08,
          0x00, 0x45, 0x00, 0x00, 0x25, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0x7c, 0xc5,
          0x7f, 0x00, 0x00, 0x01, 0x7f, 0x00, 0x00, 0x01, 0x04, 0xd2, 0x16, 0x2e, 0x00,
          0x11, 0xa0, 0xc4, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41};
}

TEST(Parse, Ipv4Udp) {
  auto f = udp4_frame();
  auto r = parse_frame(f);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ip.family, IpFamily::kV4);
  EXPECT_EQ(r->ip.l4_proto, 17);
  EXPECT_EQ(r->ip.src_port, 1234);
  EXPECT_EQ(r->ip.dst_port, 5678);
  EXPECT_EQ(r->ip.l4_offset, 34);
  EXPECT_EQ(r->ip.src.to_string(), "127.0.0.1");
  EXPECT_TRUE(ipv4_checksum_ok(&f[14]));
}

TEST(Parse, EveryTruncationFailsWithoutReadingPastTheEnd) {
  auto f = udp4_frame();
  for (std::size_t n = 0; n < f.size(); ++n) {
    std::vector<uint8_t> t(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_FALSE(parse_frame(t).ok()) << n;
  }
}

TEST(Parse, BadIhlAndLength) {
  auto f = udp4_frame();
  f[14] = 0x44;
  EXPECT_EQ(parse_frame(f).error(), ParseError::kBadIpHeader);
  f = udp4_frame();
  f[17] = 0xff;
  EXPECT_EQ(parse_frame(f).error(), ParseError::kBadIpLength);
}

TEST(Checksum, UdpOverIpv4MatchesKnownValue) {
  auto f = udp4_frame();
  std::vector<uint8_t> seg(f.begin() + 34, f.end());
  seg[6] = seg[7] = 0;
  EXPECT_EQ(l4_checksum(&f[14], 17, seg), 0xa0c4);
}

// RFC 1071's definition, 16 bits at a time in network order: what the word-at-a-time sum must equal.
uint16_t reference_fold(std::span<const uint8_t> bytes, uint32_t start) {
  uint64_t s = start;
  for (std::size_t i = 0; i < bytes.size(); i += 2) {
    s += static_cast<uint32_t>(bytes[i] << 8 | (i + 1 < bytes.size() ? bytes[i + 1] : 0));
  }
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

TEST(Checksum, WordSumEqualsRfc1071ForEveryLengthAndAlignment) {
  std::vector<uint8_t> buf(600);
  uint32_t x = 12345;
  for (auto& b : buf) b = static_cast<uint8_t>((x = x * 1103515245 + 12345) >> 16);
  for (std::size_t off = 0; off < 8; ++off) {
    for (std::size_t len = 0; len + off <= buf.size(); len += (len < 80 ? 1 : 37)) {
      const std::span<const uint8_t> bytes(buf.data() + off, len);
      for (uint32_t start : {0u, 0x1234u, 0xffffffffu}) {
        ASSERT_EQ(csum_fold(csum_partial(bytes, start)), reference_fold(bytes, start))
            << "offset " << off << " length " << len << " start " << start;
      }
    }
  }
  for (std::size_t len : {0, 1, 7, 16, 17, 33, 599}) {  // the copying sum: same sum, same bytes
    std::vector<uint8_t> dst(len + 1, 0xee);
    const std::span<const uint8_t> src(buf.data() + 1, len);
    EXPECT_EQ(csum_fold(csum_copy(dst.data(), src, 7)), reference_fold(src, 7)) << len;
    EXPECT_TRUE(std::equal(src.begin(), src.end(), dst.begin())) << len;
    EXPECT_EQ(dst[len], 0xee) << "wrote past the copy, length " << len;
  }
  const std::vector<uint8_t> ones(64, 0xff);  // sums that carry on every add
  EXPECT_EQ(csum_fold(csum_partial(ones)), reference_fold(ones, 0));
}

// The 64-byte vector steps: segment and super-packet sizes, all-ones bytes (every 16-bit lane at its
// largest), and inputs past the 1 MiB run after which the lanes are folded, copying and not.
TEST(Checksum, VectorStepsEqualRfc1071OnLongInputs) {
  std::vector<uint8_t> buf((std::size_t{1} << 21) + 200);
  uint32_t x = 777;
  for (auto& b : buf) b = static_cast<uint8_t>((x = x * 1103515245 + 12345) >> 16);
  const std::vector<uint8_t> ones(buf.size(), 0xff);
  for (const std::vector<uint8_t>* data : {&std::as_const(buf), &ones}) {
    for (std::size_t len : {std::size_t{63}, std::size_t{64}, std::size_t{65}, std::size_t{1448},
                            std::size_t{65535}, (std::size_t{1} << 20) + 64, (std::size_t{1} << 21) + 131}) {
      for (std::size_t off : {0, 1, 2}) {
        const std::span<const uint8_t> bytes(data->data() + off, len);
        ASSERT_EQ(csum_fold(csum_partial(bytes, 0x1234)), reference_fold(bytes, 0x1234)) << len << "+" << off;
        std::vector<uint8_t> dst(len);
        ASSERT_EQ(csum_fold(csum_copy(dst.data(), bytes)), reference_fold(bytes, 0)) << len << "+" << off;
        ASSERT_TRUE(std::equal(bytes.begin(), bytes.end(), dst.begin())) << len << "+" << off;
      }
    }
  }
}

TEST(Addr, ParseFormat) {
  EXPECT_EQ(IpAddr::parse("10.1.2.3")->to_string(), "10.1.2.3");
  EXPECT_EQ(IpAddr::parse("fd00::1")->to_string(), "fd00::1");
  EXPECT_FALSE(IpAddr::parse("10.1.2").has_value());
  EXPECT_FALSE(IpAddr::parse(std::string_view("10.0.0.1\0junk", 13)).has_value());
  EXPECT_EQ(MacAddr::parse("00:22:33:44:55:0a")->to_string(), "00:22:33:44:55:0A");
  EXPECT_FALSE(MacAddr::parse("00:22:33:44:55").has_value());
}

TEST(Packet, HeadroomAndTailroom) {
  PacketPool pool(2, 256);
  Packet* p = pool.alloc();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->headroom(), kDefaultHeadroom);
  ASSERT_NE(p->push_back(10), nullptr);
  ASSERT_NE(p->push_front(20), nullptr);
  EXPECT_EQ(p->size(), 30u);
  EXPECT_EQ(p->push_front(200), nullptr);
  EXPECT_EQ(p->push_back(200), nullptr);
  EXPECT_TRUE(p->pull_front(20));
  EXPECT_EQ(p->size(), 10u);
  pool.alloc();
  EXPECT_EQ(pool.alloc(), nullptr);
  pool.free(p);
  EXPECT_EQ(pool.available(), 1u);
}

// reframe moves the start either way and sets the length in one step, within the buffer's edges exactly,
// and leaves the packet as it was when the window would leave the buffer.
TEST(Packet, ReframeStaysInsideTheBuffer) {
  PacketPool pool(1, 256);
  Packet* p = pool.alloc();
  ASSERT_NE(p, nullptr);
  ASSERT_NE(p->push_back(100), nullptr);
  uint8_t* start = p->data();
  start[7] = 0x5a;
  EXPECT_TRUE(p->reframe(7, 20));  // forward: [7, 27) of the old bytes
  EXPECT_EQ(p->data(), start + 7);
  EXPECT_EQ(p->data()[0], 0x5a);
  EXPECT_EQ(p->size(), 20u);
  const uint32_t head = p->headroom();
  EXPECT_TRUE(p->reframe(-static_cast<int32_t>(head), 256));  // the whole buffer: both edges reached
  EXPECT_EQ(p->headroom(), 0u);
  EXPECT_EQ(p->tailroom(), 0u);
  EXPECT_FALSE(p->reframe(-1, 10));  // before the buffer
  EXPECT_FALSE(p->reframe(0, 257));  // past its end
  EXPECT_FALSE(p->reframe(200, 57));
  EXPECT_FALSE(p->reframe(257, 0));
  EXPECT_EQ(p->headroom(), 0u);  // unchanged by the refusals
  EXPECT_EQ(p->size(), 256u);
  EXPECT_TRUE(p->reframe(256, 0));  // an empty packet at the very end
  EXPECT_EQ(p->tailroom(), 0u);
  pool.free(p);
}

}  // namespace
}  // namespace pspgw::net
