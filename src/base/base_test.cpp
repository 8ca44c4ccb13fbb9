#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <unordered_map>

#include "base/byteorder.hpp"
#include "base/duration.hpp"
#include "base/hex.hpp"
#include "base/id_table.hpp"
#include "base/proc_status.hpp"
#include "base/result.hpp"
#include "base/secret.hpp"
#include "base/zero_pages.hpp"

namespace pspgw {
namespace {

TEST(ByteOrder, LoadStoreAreBigEndian) {
  uint8_t b[8] = {};
  store_be32(b, 0x11223344);
  EXPECT_EQ(b[0], 0x11);
  EXPECT_EQ(b[3], 0x44);
  EXPECT_EQ(load_be32(b), 0x11223344u);
  store_be64(b, 0x0102030405060708ULL);
  EXPECT_EQ(b[7], 0x08);
  EXPECT_EQ(load_be64(b), 0x0102030405060708ULL);
  EXPECT_EQ(Be16::from_host(0x1234).host(), 0x1234);
}

TEST(Hex, RoundTripAndRejects) {
  auto v = parse_hex("00ffA5");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(to_hex(*v), "00ffa5");
  EXPECT_FALSE(parse_hex("0").has_value());
  EXPECT_FALSE(parse_hex("zz").has_value());
}

TEST(Secret, MovedFromIsZeroed) {
  std::array<uint8_t, 4> raw = {1, 2, 3, 4};
  Secret<4> a{std::span<const uint8_t, 4>(raw)};
  Secret<4> b = std::move(a);
  EXPECT_EQ(b.reveal()[3], 4);
  for (uint8_t x : a.reveal()) EXPECT_EQ(x, 0);  // NOLINT(bugprone-use-after-move): checking the zeroing
  EXPECT_FALSE(a == b);
  EXPECT_TRUE(b == b.clone());
}

enum class E { kBad };
TEST(Result, ValueOrError) {
  Result<int, E> ok = 3;
  Result<int, E> bad = Err{E::kBad};
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 3);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.error(), E::kBad);
}

TEST(Duration, ParsesUnitsAndSums) {
  using std::chrono::milliseconds;
  EXPECT_EQ(*parse_duration("0"), milliseconds(0));
  EXPECT_EQ(*parse_duration("250ms"), milliseconds(250));
  EXPECT_EQ(*parse_duration("90s"), milliseconds(90'000));
  EXPECT_EQ(*parse_duration("10m"), milliseconds(600'000));
  EXPECT_EQ(*parse_duration("24h"), milliseconds(86'400'000));
  EXPECT_EQ(*parse_duration("1d"), milliseconds(86'400'000));
  EXPECT_EQ(*parse_duration("1h30m"), milliseconds(5'400'000));
  EXPECT_EQ(*parse_duration("1m500ms"), milliseconds(60'500));
  EXPECT_EQ(*parse_duration("0s"), milliseconds(0));
}

TEST(Duration, RejectsWhatItCannotRead) {
  for (const char* bad :
       {"", "5", "s", "1.5h", "-1s", "10x", "1h ", " 1h", "99999999999999999999s", "40000d"}) {
    auto d = parse_duration(bad);
    EXPECT_FALSE(d.ok()) << bad;
  }
  EXPECT_EQ(parse_duration("5").error(),
            "duration \"5\": a number needs a unit (ms, s, m, h or d), e.g. 90s, 10m, 24h");
}

TEST(Duration, FormatsWhatItParses) {
  for (const char* text : {"0", "250ms", "1m30s", "10m", "1d", "1h30m", "1m500ms"}) {
    auto d = parse_duration(text);
    ASSERT_TRUE(d.ok()) << text;
    EXPECT_EQ(format_duration(*d), text);
  }
  EXPECT_EQ(format_duration(std::chrono::hours(24)), "1d");
}

// Zeroes without anyone writing them, page-aligned, resident only where written.
TEST(ZeroPages, ReadAsZeroAndBecomeResidentOnlyWhereWritten) {
  const long before = proc_status_kib("VmRSS");
  ZeroPages<uint64_t> z(64U << 20 >> 3);  // 64 MB
  EXPECT_EQ(reinterpret_cast<uintptr_t>(z.get()) % 4096, 0U);
  z[0] = 1;
  z[(64U << 20 >> 3) - 1] = 2;
  EXPECT_EQ(z[0], 1U);
  EXPECT_EQ(z[12345], 0U);
  EXPECT_EQ(z[(64U << 20 >> 3) - 1], 2U);
  EXPECT_LT(proc_status_kib("VmRSS") - before, 4 * 1024);
  const ZeroPages<uint8_t> none(0);
  EXPECT_EQ(none.get(), nullptr);
}

// Huge pages are a hint: an advised mapping still reads as zeroes, keeps what is written, and its size is
// what was asked for (an empty one ignores the hint).
TEST(ZeroPages, HugePageAdviceChangesNoContent) {
  const std::size_t bytes = std::size_t{4} << 20;
  MappedZeroes m(bytes);
  m.advise_huge_pages();
  EXPECT_EQ(m.size(), bytes);
  auto* b = static_cast<uint8_t*>(m.get());
  b[bytes - 1] = 7;
  EXPECT_EQ(b[0], 0U);
  EXPECT_EQ(b[bytes - 1], 7U);
  MappedZeroes none(0);
  none.advise_huge_pages();
  EXPECT_EQ(none.get(), nullptr);
}

// Against std::unordered_map: random inserts and erases over a small key range (long probe runs, ids
// reused), every key checked after each step; ids stay the key's until it is erased.
TEST(IdTable, MatchesAMapThroughInsertsAndErases) {
  // A hash with few distinct values: runs of colliding keys exercise the backward shift.
  struct PoorHash {
    std::size_t operator()(uint32_t k) const { return k % 7; }
  };
  IdTable<uint32_t, PoorHash> t;
  std::unordered_map<uint32_t, uint32_t> ref;
  std::mt19937 rng(7);
  for (int step = 0; step < 20000; ++step) {
    const uint32_t k = rng() % 300;
    if (rng() % 3 == 0) {
      EXPECT_EQ(t.erase(k), ref.erase(k) == 1);
    } else {
      const auto [id, fresh] = t.insert(k);
      auto [it, was_new] = ref.emplace(k, id);
      EXPECT_EQ(fresh, was_new);
      EXPECT_EQ(id, it->second);
    }
    ASSERT_EQ(t.size(), ref.size());
    if (step % 97 != 0) continue;
    for (uint32_t q = 0; q < 300; ++q) {
      auto it = ref.find(q);
      const auto id = t.find(q);
      ASSERT_EQ(id == t.kNone, it == ref.end()) << q;
      if (it == ref.end()) continue;
      EXPECT_EQ(id, it->second);
      EXPECT_TRUE(t.live(id));
      EXPECT_EQ(t.key(id), q);
    }
  }
  std::size_t live = 0;
  for (uint32_t id = 0; id < t.id_limit(); ++id) live += t.live(id) ? 1 : 0;
  EXPECT_EQ(live, ref.size());
  EXPECT_LE(t.id_limit(), 300U);  // freed ids are reused
  t.clear();
  EXPECT_EQ(t.find(1), t.kNone);
  EXPECT_TRUE(t.insert(1).second);
}

}  // namespace
}  // namespace pspgw
