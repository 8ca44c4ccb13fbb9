#include "ports/gso.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "net/parse.hpp"
#include "ports/test_frames.hpp"

namespace pspgw::ports {
namespace {

using test::build_frame;
using test::L4Spec;

constexpr uint8_t kFin = 0x01;
constexpr uint8_t kPsh = 0x08;
constexpr uint8_t kAck = 0x10;
constexpr uint8_t kCwr = 0x80;

struct Segmented {
  std::vector<std::vector<uint8_t>> frames;
};

// Segments `frame` through batches of at most `batch_room` packets, as a caller that encrypts and sends
// between calls would.
Segmented segment_all(const std::vector<uint8_t>& frame, uint16_t mss,
                      std::size_t batch_room = net::kMaxBatch) {
  net::PacketPool pool(64, 4096);
  auto seg = GsoSegmenter::start(frame, mss);
  EXPECT_TRUE(seg.ok());
  Segmented out;
  if (!seg.ok()) return out;
  net::Metadata meta;
  meta.flow_hash = 0xabcd;
  meta.gso_size = mss;
  for (int guard = 0; !seg->done() && guard < 1000; ++guard) {
    net::PacketBatch batch;
    for (std::size_t i = batch_room; i < net::kMaxBatch; ++i) batch.push(nullptr);  // pre-filled room
    auto n = seg->next(pool, batch, meta);
    EXPECT_TRUE(n.ok());
    for (std::size_t i = net::kMaxBatch - batch_room; i < batch.size(); ++i) {
      net::Packet* p = batch[i];
      EXPECT_EQ(p->meta.flow_hash, 0xabcdU);
      EXPECT_EQ(p->meta.gso_size, 0);
      out.frames.emplace_back(p->data(), p->data() + p->size());
      pool.free(p);
    }
  }
  EXPECT_TRUE(seg->done());
  return out;
}

// Checks every segment against the super-packet it came from; returns the concatenated payload.
std::vector<uint8_t> check_segments(const Segmented& s, const L4Spec& spec, uint16_t mss) {
  const std::size_t count = (spec.payload + mss - 1) / mss;
  EXPECT_EQ(s.frames.size(), count);
  std::vector<uint8_t> payload;
  for (std::size_t i = 0; i < s.frames.size(); ++i) {
    const auto& f = s.frames[i];
    const bool last = i + 1 == s.frames.size();
    const uint32_t want = last ? spec.payload - mss * static_cast<uint32_t>(i) : mss;
    auto info = net::parse_frame(f);
    EXPECT_TRUE(info.ok());
    if (!info.ok()) return {};
    const net::IpInfo& ip = info->ip;
    const uint8_t* iph = f.data() + ip.l3_offset;
    const uint8_t* l4 = f.data() + ip.l4_offset;
    const std::size_t l4_hdr = spec.proto == net::kIpProtoTcp ? 20 + spec.tcp_options : 8;
    EXPECT_EQ(f.size(), ip.l4_offset + l4_hdr + want) << "segment " << i;
    EXPECT_EQ(ip.l3_total_len, f.size() - ip.l3_offset);
    if (!spec.v6) {
      EXPECT_EQ(load_be16(iph + 4), static_cast<uint16_t>(spec.ip_id + i));
      EXPECT_TRUE(net::ipv4_checksum_ok(iph));
    } else {
      EXPECT_EQ(load_be16(iph + 4), l4_hdr + want);
    }
    EXPECT_TRUE(net::l4_checksum_ok(iph, spec.proto, {l4, f.size() - ip.l4_offset})) << "segment " << i;
    if (spec.proto == net::kIpProtoTcp) {
      EXPECT_EQ(load_be32(l4 + 4), spec.seq + mss * static_cast<uint32_t>(i));
      uint8_t flags = spec.tcp_flags;
      if (!last) flags = static_cast<uint8_t>(flags & ~(kFin | kPsh));
      if (i != 0) flags = static_cast<uint8_t>(flags & ~kCwr);
      EXPECT_EQ(l4[13], flags) << "segment " << i;
    } else {
      EXPECT_EQ(load_be16(l4 + 4), 8 + want);
    }
    payload.insert(payload.end(), l4 + l4_hdr, f.data() + f.size());
  }
  return payload;
}

std::vector<uint8_t> expected_payload(uint32_t n) {
  std::vector<uint8_t> v(n);
  for (uint32_t i = 0; i < n; ++i) v[i] = test::pattern(i);
  return v;
}

class GsoTest : public ::testing::TestWithParam<L4Spec> {};

TEST_P(GsoTest, SegmentsSuperPacket) {
  const L4Spec spec = GetParam();
  const uint16_t mss = 1448;
  const auto frame = build_frame(spec);
  ASSERT_LE(frame.size(), 65535U + 14);
  const auto segs = segment_all(frame, mss);
  EXPECT_EQ(check_segments(segs, spec, mss), expected_payload(spec.payload));
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, GsoTest,
    ::testing::Values(
        // 64 KB TCPv4 with timestamps-sized options, seq wrapping past 2^32, FIN|PSH|CWR on the super-packet.
        L4Spec{false, net::kIpProtoTcp, 65535 - 20 - 32, 0xffff0000, kAck | kPsh | kFin | kCwr, 12, 0xfffe,
               true},
        L4Spec{true, net::kIpProtoTcp, 65535 - 32 - 40, 0x10, kAck | kPsh, 12, 0, true},
        L4Spec{false, net::kIpProtoUdp, 60000, 0, 0, 0, 7, true},
        L4Spec{true, net::kIpProtoUdp, 64000, 0, 0, 0, 0, true}));

TEST(Gso, ResumesAcrossSmallBatches) {
  // 64 KB at MSS 536 is 123 segments: more than a batch. Feed it 5 packets of room at a time.
  const L4Spec spec{false, net::kIpProtoTcp, 65000, 1000, kAck | kPsh, 0, 1, true};
  const auto frame = build_frame(spec);
  const auto segs = segment_all(frame, 536, 5);
  EXPECT_EQ(check_segments(segs, spec, 536), expected_payload(spec.payload));
}

TEST(Gso, StopsWhenPoolIsEmptyAndResumes) {
  const L4Spec spec{true, net::kIpProtoUdp, 10000, 0, 0, 0, 0, true};
  const auto frame = build_frame(spec);
  net::PacketPool pool(3, 2048);
  auto seg = GsoSegmenter::start(frame, 1000);
  ASSERT_TRUE(seg.ok());
  EXPECT_EQ(seg->segment_count(), 10U);
  std::size_t total = 0;
  while (!seg->done()) {
    net::PacketBatch batch;
    auto n = seg->next(pool, batch, net::Metadata{});
    ASSERT_TRUE(n.ok());
    ASSERT_EQ(*n, std::min<std::size_t>(3, 10 - total));
    total += *n;
    for (net::Packet* p : batch) pool.free(p);
  }
  EXPECT_EQ(total, 10U);
}

TEST(Gso, RejectsBadInput) {
  auto frame = build_frame(L4Spec{});
  EXPECT_EQ(GsoSegmenter::start(frame, 0).error(), GsoError::kBadGsoSize);
  auto arp = frame;
  store_be16(arp.data() + 12, net::kEtherTypeArp);
  EXPECT_EQ(GsoSegmenter::start(arp, 100).error(), GsoError::kBadHeaders);
  auto frag = frame;  // IPv4 fragment (MF)
  store_be16(frag.data() + 14 + 6, net::kIpv4FlagMf);
  net::ipv4_set_checksum(frag.data() + 14);
  EXPECT_EQ(GsoSegmenter::start(frag, 100).error(), GsoError::kBadHeaders);
  auto icmp = frame;
  icmp[14 + 9] = net::kIpProtoIcmp;
  EXPECT_EQ(GsoSegmenter::start(icmp, 100).error(), GsoError::kBadHeaders);
  auto bad_doff = frame;  // TCP data offset 4 words (< 20 bytes)
  bad_doff[14 + 20 + 12] = 0x40;
  EXPECT_EQ(GsoSegmenter::start(bad_doff, 100).error(), GsoError::kBadHeaders);
  auto truncated = frame;
  truncated.resize(frame.size() - 1);  // shorter than the IPv4 total length
  EXPECT_FALSE(GsoSegmenter::start(truncated, 100).ok());

  net::PacketPool small(4, 512);  // headroom 128 + 54 header + 1000 does not fit
  auto seg = GsoSegmenter::start(frame, 1000);
  ASSERT_TRUE(seg.ok());
  net::PacketBatch batch;
  EXPECT_EQ(seg->next(small, batch, net::Metadata{}).error(), GsoError::kSegmentTooBig);
  EXPECT_EQ(small.available(), 4U);
}

TEST(Gso, CompletesPartialChecksum) {
  for (uint8_t proto : {net::kIpProtoTcp, net::kIpProtoUdp}) {
    for (bool v6 : {false, true}) {
      auto frame = build_frame(L4Spec{v6, proto, 777, 5, kAck, 0, 1, false});
      const std::size_t l4 = 14 + (v6 ? 40 : 20);
      const std::size_t field = proto == net::kIpProtoTcp ? 16 : 6;
      // What the kernel leaves in the field with NEEDS_CSUM: the folded pseudo-header sum, not inverted.
      const std::size_t len = frame.size() - l4;
      uint32_t sum =
          v6 ? net::csum_partial({frame.data() + 14 + 8, 32}) : net::csum_partial({frame.data() + 26, 8});
      sum += proto + static_cast<uint32_t>(len);
      store_be16(frame.data() + l4 + field, static_cast<uint16_t>(~net::csum_fold(sum)));
      ASSERT_TRUE(complete_checksum(frame, static_cast<uint16_t>(l4), static_cast<uint16_t>(field)));
      EXPECT_TRUE(net::l4_checksum_ok(frame.data() + 14, proto, {frame.data() + l4, len}))
          << "proto " << int{proto} << " v6 " << v6;
    }
  }
  std::vector<uint8_t> tiny(40);
  EXPECT_FALSE(complete_checksum(tiny, 30, 9));  // field ends at 41 > 40
  EXPECT_TRUE(complete_checksum(tiny, 30, 8));
}

}  // namespace
}  // namespace pspgw::ports
