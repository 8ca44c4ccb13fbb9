#include "ports/coalesce.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "base/byteorder.hpp"
#include "net/packet.hpp"
#include "ports/coalesce_check.hpp"
#include "ports/gso.hpp"
#include "ports/test_frames.hpp"

namespace pspgw::ports {
namespace {

using test::build_frame;
using test::L4Spec;

constexpr uint8_t kPsh = 0x08;
constexpr uint8_t kAck = 0x10;
constexpr uint8_t kSyn = 0x02;
constexpr uint8_t kCwr = 0x80;
constexpr CoalesceOptions kTcpUdp{.tcp = true, .udp = true};

using Frames = std::vector<std::vector<uint8_t>>;

// Kernel-style segmentation of a super-packet (GsoSegmenter follows tcp_gso_segment / __udp_gso_segment).
Frames segment(const std::vector<uint8_t>& super, uint16_t mss) {
  net::PacketPool pool(64, 4096);
  auto seg = GsoSegmenter::start(super, mss);
  EXPECT_TRUE(seg.ok());
  Frames out;
  while (seg.ok() && !seg->done()) {
    net::PacketBatch batch;
    EXPECT_TRUE(seg->next(pool, batch, net::Metadata{}).ok());
    for (net::Packet* p : batch) {
      out.emplace_back(p->data(), p->data() + p->size());
      pool.free(p);
    }
  }
  return out;
}

std::vector<std::span<const uint8_t>> views(const Frames& frames) {
  return {frames.begin(), frames.end()};
}

std::vector<CoalescedWrite> plan(const Frames& frames, const CoalesceOptions& opt = kTcpUdp) {
  std::vector<CoalescedWrite> w(frames.size());
  w.resize(plan_coalesced_writes(views(frames), opt, w));
  return w;
}

std::vector<uint8_t> flatten(const CoalescedWrite& w, const Frames& frames) {
  std::vector<uint8_t> out(kMaxCoalescedHeader + 65536);
  out.resize(flatten_write(w, views(frames), out));
  return out;
}

struct Case {
  bool v6;
  uint8_t proto;
  uint8_t options;
};

class CoalesceRoundTrip : public ::testing::TestWithParam<Case> {};

// Segments of one super-packet merge back into one GSO frame: the virtio header says what the kernel
// needs, finishing its partial checksum gives back the super-packet byte for byte, and cutting it again
// gives back the same segments.
TEST_P(CoalesceRoundTrip, SegmentsOfOneSuperPacketBecomeItAgain) {
  const Case c = GetParam();
  const L4Spec spec{
      .v6 = c.v6, .proto = c.proto, .payload = 20000, .tcp_flags = kAck | kPsh, .tcp_options = c.options};
  const auto super = build_frame(spec);
  const Frames segs = segment(super, 1400);
  ASSERT_EQ(segs.size(), 15U);
  const auto writes = plan(segs);
  ASSERT_EQ(writes.size(), 1U);
  const CoalescedWrite& w = writes[0];
  EXPECT_EQ(w.count, segs.size());
  EXPECT_EQ(w.vnet.flags, kVnetFlagNeedsCsum);
  EXPECT_EQ(w.vnet.gso_size, 1400);
  const uint8_t want_type = c.proto == net::kIpProtoUdp ? kVnetGsoUdpL4
                            : c.v6                      ? kVnetGsoTcpV6
                                                        : kVnetGsoTcpV4;
  EXPECT_EQ(w.vnet.gso_type, want_type);
  const uint16_t l4 = c.v6 ? 14 + 40 : 14 + 20;
  EXPECT_EQ(w.vnet.csum_start, l4);
  EXPECT_EQ(w.vnet.csum_offset, c.proto == net::kIpProtoTcp ? 16 : 6);
  EXPECT_EQ(w.vnet.hdr_len, w.hdr_len);

  auto flat = flatten(w, segs);
  ASSERT_TRUE(complete_checksum(flat, w.vnet.csum_start, w.vnet.csum_offset));
  EXPECT_EQ(flat, super);
  EXPECT_TRUE(coalesce_round_trips(views(segs), kTcpUdp));
}

INSTANTIATE_TEST_SUITE_P(Families, CoalesceRoundTrip,
                         ::testing::Values(Case{false, net::kIpProtoTcp, 0}, Case{true, net::kIpProtoTcp, 0},
                                           Case{false, net::kIpProtoTcp, 12},
                                           Case{true, net::kIpProtoTcp, 12}, Case{false, net::kIpProtoUdp, 0},
                                           Case{true, net::kIpProtoUdp, 0}));

TEST(Coalesce, CwrStaysOnTheFirstAndSetsEcn) {
  const auto super = build_frame({.payload = 5000, .tcp_flags = kAck | kCwr});
  const Frames segs = segment(super, 1000);
  const auto writes = plan(segs);
  ASSERT_EQ(writes.size(), 1U);
  EXPECT_EQ(writes[0].vnet.gso_type, kVnetGsoTcpV4 | kVnetGsoEcn);
  EXPECT_TRUE(coalesce_round_trips(views(segs), kTcpUdp));
}

TEST(Coalesce, AtMost64KiBOfIpPerWrite) {
  const Frames segs = segment(build_frame({.payload = 60000}), 1400);  // 43 segments
  Frames twice = segs;
  const Frames more = segment(build_frame({.payload = 30000, .seq = 60001, .ip_id = 0x1234 + 43}), 1400);
  twice.insert(twice.end(), more.begin(), more.end());
  const auto writes = plan(twice);
  ASSERT_EQ(writes.size(), 2U);  // 90 kB of one flow: two GSO frames, each under 64 KiB
  EXPECT_EQ(writes[0].count + writes[1].count, twice.size());
  EXPECT_TRUE(coalesce_round_trips(views(twice), kTcpUdp));
}

// Runs end where segmentation could not give the same bytes back; nothing is reordered.
TEST(Coalesce, RunsEndAtAnythingSegmentationWouldNotReproduce) {
  Frames f = segment(build_frame({.payload = 4200}), 1400);                   // 3 frames, seq 1, 1401, 2801
  f.push_back(build_frame({.payload = 1400, .seq = 9999, .ip_id = 0x1237}));  // a gap in the sequence
  f.push_back(build_frame({.payload = 100, .seq = 11399, .ip_id = 0x1238}));  // short: ends its run
  f.push_back(build_frame({.payload = 1400, .seq = 11499, .ip_id = 0x1239}));
  f.push_back(build_frame({.payload = 1400, .seq = 12899, .tcp_flags = kAck | kSyn, .ip_id = 0x123a}));
  const auto writes = plan(f);
  ASSERT_EQ(writes.size(), 4U);
  EXPECT_EQ(writes[0].count, 3);  // the super-packet's segments
  EXPECT_EQ(writes[1].count, 2);  // the gap starts a run, the short one ends it
  EXPECT_EQ(writes[2].count, 1);  // the next one cannot join a SYN
  EXPECT_EQ(writes[3].count, 1);  // SYN: alone
  EXPECT_EQ(writes[3].vnet.gso_type, kVnetGsoNone);
  EXPECT_TRUE(coalesce_round_trips(views(f), kTcpUdp));
}

TEST(Coalesce, PshEndsARun) {
  Frames f;
  f.push_back(build_frame({.payload = 1000, .seq = 1, .ip_id = 1}));
  f.push_back(build_frame({.payload = 1000, .seq = 1001, .tcp_flags = kAck | kPsh, .ip_id = 2}));
  f.push_back(build_frame({.payload = 1000, .seq = 2001, .ip_id = 3}));
  const auto writes = plan(f);
  ASSERT_EQ(writes.size(), 2U);
  EXPECT_EQ(writes[0].count, 2);
  EXPECT_EQ(writes[1].count, 1);
  EXPECT_TRUE(coalesce_round_trips(views(f), kTcpUdp));
}

TEST(Coalesce, FramesThatDifferOrAreBrokenAreWrittenAlone) {
  const Frames segs = segment(build_frame({.payload = 3000}), 1000);
  Frames bad_ipv4_sum = segs;
  bad_ipv4_sum[1][14 + 10] ^= 1;
  Frames other_ttl = segs;
  other_ttl[1][14 + 8] = 63;
  net::ipv4_set_checksum(other_ttl[1].data() + 14);
  Frames id_jump = segs;
  store_be16(id_jump[1].data() + 14 + 4, 0x9999);
  net::ipv4_set_checksum(id_jump[1].data() + 14);
  for (const Frames* f : {&bad_ipv4_sum, &other_ttl, &id_jump}) {
    EXPECT_EQ(plan(*f).size(), 3U);  // the odd one out splits the run, and nothing joins it
    EXPECT_TRUE(coalesce_round_trips(views(*f), kTcpUdp));
  }
  // UDP only where the TAP has USO; a zero UDP checksum (IPv4: none) would come back computed.
  const Frames udp = segment(build_frame({.proto = net::kIpProtoUdp, .payload = 3000}), 1000);
  EXPECT_EQ(plan(udp, {.tcp = true, .udp = false}).size(), 3U);
  Frames udp_no_sum = udp;
  for (auto& fr : udp_no_sum) store_be16(fr.data() + 14 + 20 + 6, 0);
  EXPECT_EQ(plan(udp_no_sum).size(), 3U);
}

TEST(Coalesce, InterleavedFlowsKeepTheirOrder) {
  const Frames a = segment(build_frame({.payload = 2800}), 1400);
  const Frames b = segment(build_frame({.v6 = true, .payload = 2800}), 1400);
  const Frames f = {a[0], a[1], b[0], b[1], a[0]};
  const auto writes = plan(f);
  ASSERT_EQ(writes.size(), 3U);
  EXPECT_EQ(writes[0].count, 2);
  EXPECT_EQ(writes[1].first, 2);
  EXPECT_EQ(writes[1].count, 2);
  EXPECT_EQ(writes[2].first, 4);
  EXPECT_TRUE(coalesce_round_trips(views(f), kTcpUdp));
}

TEST(Coalesce, FuzzEntryPointTakesAnyBytes) {
  EXPECT_TRUE(coalesce_round_trips(std::span<const uint8_t>{}));
  const std::vector<uint8_t> junk = {3, 0, 5, 1, 2, 3, 4, 5, 0xff, 0xff, 7};
  EXPECT_TRUE(coalesce_round_trips(junk));
  // Two segments of one flow in the fuzz input format: they must merge and round-trip.
  const Frames segs = segment(build_frame({.payload = 2000}), 1000);
  std::vector<uint8_t> in = {1};
  for (const auto& s : segs) {
    in.push_back(static_cast<uint8_t>(s.size() >> 8));
    in.push_back(static_cast<uint8_t>(s.size()));
    in.insert(in.end(), s.begin(), s.end());
  }
  EXPECT_TRUE(coalesce_round_trips(in));
}

}  // namespace
}  // namespace pspgw::ports
