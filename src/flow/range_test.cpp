// Range expansion: exact covers (every value of the field checked against the range), minimality of the
// classic cover, the shared mask set, and ranges with prefixes through a real ternary pipe, IPv4 and IPv6.
#include <gtest/gtest.h>

#include <set>

#include "flow/builder.hpp"
#include "flow/range.hpp"
#include "flow/testing.hpp"

namespace pspgw::flow {
namespace {

bool covered(const std::vector<Prefix>& ps, uint64_t v, unsigned bits) {
  for (const Prefix& p : ps) {
    const unsigned low = bits - p.len;
    if (low == 64 || (v >> low) == (p.value >> low)) return true;
  }
  return false;
}

void check_exact(uint64_t lo, uint64_t hi, unsigned stride) {
  const auto ps = range_to_prefixes(lo, hi, 16, stride);
  ASSERT_FALSE(ps.empty());
  std::size_t total = 0;
  for (const Prefix& p : ps) {
    EXPECT_TRUE(p.len == 16 || p.len % stride == 0) << p.len;
    total += std::size_t{1} << (16 - p.len);
  }
  EXPECT_EQ(total, hi - lo + 1) << "prefixes overlap: " << lo << ".." << hi;
  for (uint64_t v = 0; v <= 0xffff; ++v) ASSERT_EQ(covered(ps, v, 16), v >= lo && v <= hi) << v;
}

TEST(Range, EveryValueInsideAndOutside) {
  const std::pair<uint64_t, uint64_t> cases[] = {{0, 0},       {0, 65535},    {65535, 65535}, {1, 65534},
                                                 {80, 80},     {1024, 65535}, {5000, 5100},   {0, 1023},
                                                 {4095, 4096}, {12345, 54321}};
  for (auto [lo, hi] : cases)
    for (unsigned stride : {1U, 2U, 4U, 8U}) check_exact(lo, hi, stride);
}

TEST(Range, ClassicCoverIsMinimalAndStridedCoverIsBounded) {
  EXPECT_EQ(range_to_prefixes(1, 65534, 16).size(), 30U);  // the textbook worst case: 2w - 2
  EXPECT_EQ(range_to_prefixes(0, 65535, 16).size(), 1U);
  EXPECT_EQ(range_to_prefixes(1024, 2047, 16).size(), 1U);
  EXPECT_LE(range_to_prefixes(1, 65534, 16, kPortStride).size(), 120U);
  EXPECT_TRUE(range_to_prefixes(5, 4, 16).empty());
  EXPECT_TRUE(range_to_prefixes(0, 65536, 16).empty());
  // Full 64-bit field: no overflow at the top.
  EXPECT_EQ(range_to_prefixes(0, ~0ULL, 64).size(), 1U);
  EXPECT_EQ(range_to_prefixes(~0ULL - 1, ~0ULL, 64).size(), 1U);
}

TEST(Range, SharedMaskSetHasFiveMasksPerPortField) {
  std::set<unsigned> lens;
  for (uint64_t lo = 0; lo < 65535; lo += 997)
    for (const Prefix& p : range_to_prefixes(lo, std::min<uint64_t>(65535, lo * 3 + 7), 16, kPortStride))
      lens.insert(p.len);
  EXPECT_TRUE(std::includes(std::set<unsigned>{0, 4, 8, 12, 16}.begin(),
                            std::set<unsigned>{0, 4, 8, 12, 16}.end(), lens.begin(), lens.end()));
}

struct RangePipe : ::testing::Test {
  net::PacketPool pool{512, 2048};
  testing::CollectSink sink{pool};
  std::unique_ptr<Pipeline> pl;
  PipeId id{};
  void SetUp() override {
    auto r = PipelineBuilder{}
                 .add_pipe({.name = "CLS",
                            .lookup = LookupKind::kTernary,
                            .match = {match(Field::kIpv4Src), match(Field::kIpv6Src), match(Field::kIpProto),
                                      match(Field::kL4Src), match(Field::kL4Dst)},
                            .fwd = TargetRef::port(PortId(1)),
                            .miss = TargetRef::port(PortId(2)),
                            .max_entries = 4096})
                 .build();
    ASSERT_TRUE(r.ok());
    pl = std::move(r).value();
    id = *pl->find_pipe("CLS");
  }
  // One entry per prefix of the dst range (and of the src range: the cross product).
  void add(std::vector<FieldMatch> base, std::pair<uint16_t, uint16_t> dst,
           std::pair<uint16_t, uint16_t> src = {0, 65535}) {
    for (const FieldMatch& d : range_matches(Field::kL4Dst, dst.first, dst.second))
      for (const FieldMatch& s : range_matches(Field::kL4Src, src.first, src.second)) {
        EntrySpec e{.match = base};
        e.match.push_back(d);
        e.match.push_back(s);
        ASSERT_TRUE(pl->add_entry(id, e).ok());
      }
  }
  bool hit(const char* src, uint8_t proto, uint16_t sport, uint16_t dport) {
    testing::FrameSpec f;
    f.src = *net::IpAddr::parse(src);
    f.dst = *net::IpAddr::parse(f.src.is_v4() ? "10.9.9.9" : "fd99::9");
    f.proto = proto;
    f.sport = sport;
    f.dport = dport;
    auto w = pl->attach_worker();
    auto b = testing::make_batch(pool, {testing::frame(f)});
    (*w)->process(b, sink);
    const bool h = sink.out.at(0).target == Target{TargetKind::kPort, 1};
    sink.clear();
    return h;
  }
};

TEST_F(RangePipe, Ipv4PrefixAndRangeBoundaries) {
  add({prefix(Field::kIpv4Src, *net::IpAddr::parse("10.1.0.0"), 16), eq(Field::kIpProto, 6)}, {5000, 5100});
  for (uint16_t p : {5000, 5001, 5050, 5099, 5100}) EXPECT_TRUE(hit("10.1.2.3", 6, 999, p)) << p;
  for (uint16_t p : {0, 4999, 5101, 65535}) EXPECT_FALSE(hit("10.1.2.3", 6, 999, p)) << p;
  EXPECT_FALSE(hit("10.2.2.3", 6, 999, 5000));  // outside the prefix
  EXPECT_TRUE(hit("10.1.255.255", 6, 999, 5000));
  EXPECT_FALSE(hit("10.1.2.3", 17, 999, 5000));  // udp
}

TEST_F(RangePipe, Ipv6PrefixAndBothPortRanges) {
  add({prefix(Field::kIpv6Src, *net::IpAddr::parse("fd00::"), 64), eq(Field::kIpProto, 17)}, {1, 65534},
      {1024, 65535});
  EXPECT_TRUE(hit("fd00::1", 17, 1024, 1));
  EXPECT_TRUE(hit("fd00::1", 17, 65535, 65534));
  EXPECT_FALSE(hit("fd00::1", 17, 1023, 80));
  EXPECT_FALSE(hit("fd00::1", 17, 2000, 0));
  EXPECT_FALSE(hit("fd00::1", 17, 2000, 65535));
  EXPECT_FALSE(hit("fd00:0:0:1::1", 17, 2000, 80));
}

TEST_F(RangePipe, ManyRangesStayWithinTheMaskBudget) {
  // Twenty classifiers with arbitrary dst ranges on one pipe: never kTooManyMasks.
  for (uint16_t i = 0; i < 20; ++i) {
    const auto lo = static_cast<uint16_t>(i * 3001 + 7);
    add({eq(Field::kIpProto, i % 2 == 0 ? 6 : 17)}, {lo, static_cast<uint16_t>(lo + 1000 + i)});
  }
  EXPECT_TRUE(hit("10.0.0.1", 6, 1, 7));
  EXPECT_FALSE(hit("10.0.0.1", 6, 1, 6));
}

}  // namespace
}  // namespace pspgw::flow
