#include <gtest/gtest.h>

#include <array>
#include <set>
#include <string>

#include "psp/drop_reason.hpp"
#include "psp/header.hpp"

namespace pspgw::psp {
namespace {

PspHeaderFields fields(uint8_t version, bool vc) {
  PspHeaderFields f;
  f.next_header = 4;
  f.crypt_offset = 5;
  f.version = version;
  f.has_vc = vc;
  f.spi = 0x11223344;
  f.iv = 0x0102030405060708;
  f.vc = 0xa1a2a3a4a5a6a7a8;
  return f;
}

std::array<uint8_t, 24> encoded(const PspHeaderFields& f) {
  std::array<uint8_t, 24> b{};
  encode_header(f, b);
  return b;
}

TEST(PspHeader, EncodesTheSpecByteLayout) {
  const auto b = encoded(fields(0, false));
  const std::array<uint8_t, 16> want = {0x04, 0x01, 0x05, 0x01, 0x11, 0x22, 0x33, 0x44,
                                        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
  EXPECT_TRUE(std::equal(want.begin(), want.end(), b.begin()));
  const auto bvc = encoded(fields(1, true));
  EXPECT_EQ(bvc[1], 2);  // Hdr Ext Len with VC
  EXPECT_EQ(bvc[16], 0xa1);
  EXPECT_EQ(bvc[23], 0xa8);
}

TEST(PspHeader, Byte3ExamplesFromTheSpec) {
  EXPECT_EQ(encoded(fields(0, false))[3], 0x01);
  EXPECT_EQ(encoded(fields(1, false))[3], 0x05);
  EXPECT_EQ(encoded(fields(0, true))[3], 0x03);
  EXPECT_EQ(encoded(fields(1, true))[3], 0x07);
  auto s = fields(1, false);
  s.sample = true;
  EXPECT_EQ(encoded(s)[3], 0x85);
  auto d = fields(0, false);
  d.drop = true;
  EXPECT_EQ(encoded(d)[3], 0x41);
}

TEST(PspHeader, RoundTripsEveryFieldCombination) {
  for (uint8_t version = 0; version < 16; ++version) {
    for (int bits = 0; bits < 16; ++bits) {
      for (uint8_t off : {0, 1, 5, 10, 63}) {
        PspHeaderFields f = fields(version, (bits & 1) != 0);
        f.sample = (bits & 2) != 0;
        f.drop = (bits & 4) != 0;
        f.reserved = (bits & 8) != 0 ? 3 : 1;
        f.crypt_offset = off;
        const auto b = encoded(f);
        auto d = decode_header(std::span<const uint8_t>(b).first(f.size()));
        ASSERT_TRUE(d.ok());
        EXPECT_EQ(d->next_header, f.next_header);
        EXPECT_EQ(d->crypt_offset, off);
        EXPECT_EQ(d->reserved, f.reserved);
        EXPECT_EQ(d->sample, f.sample);
        EXPECT_EQ(d->drop, f.drop);
        EXPECT_EQ(d->version, version);  // raw: the codec does not judge versions
        EXPECT_EQ(d->has_vc, f.has_vc);
        EXPECT_EQ(d->spi, f.spi);
        EXPECT_EQ(d->iv, f.iv);
        EXPECT_EQ(d->vc, f.has_vc ? f.vc : 0);
        EXPECT_EQ(d->size(), f.has_vc ? 24u : 16u);
      }
    }
  }
}

TEST(PspHeader, RejectsShortInput) {
  const auto b = encoded(fields(0, false));
  for (std::size_t n = 0; n < 16; ++n) {
    auto d = decode_header(std::span<const uint8_t>(b).first(n));
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.error(), DropReason::kTooShort) << n;
  }
  const auto bvc = encoded(fields(0, true));
  for (std::size_t n = 16; n < 24; ++n) {
    auto d = decode_header(std::span<const uint8_t>(bvc).first(n));
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.error(), DropReason::kTooShort) << n;
  }
}

TEST(PspHeader, RejectsStructuralErrors) {
  auto b = encoded(fields(0, true));
  b[3] &= 0xfe;  // the always-1 bit
  EXPECT_EQ(decode_header(b).error(), DropReason::kBadHeader);
  for (bool vc : {false, true}) {
    for (int ext = 0; ext < 256; ++ext) {
      auto h = encoded(fields(0, vc));
      h[1] = static_cast<uint8_t>(ext);
      auto d = decode_header(h);
      if (ext == (vc ? 2 : 1)) {
        EXPECT_TRUE(d.ok());
      } else {
        ASSERT_FALSE(d.ok());
        EXPECT_EQ(d.error(), DropReason::kBadHeader) << ext;
      }
    }
  }
}

TEST(PspHeader, SetSampleBitTouchesOnlyS) {
  auto b = encoded(fields(1, true));
  set_sample_bit(b.data(), true);
  EXPECT_EQ(b[3], 0x87);
  set_sample_bit(b.data(), false);
  EXPECT_EQ(b[3], 0x07);
  EXPECT_EQ(b[2], 0x05);
}

TEST(DropReasonNames, EveryReasonHasItsOwnName) {
  std::set<std::string> names;
  for (int r = static_cast<int>(DropReason::kNone); r < static_cast<int>(DropReason::kCount); ++r) {
    const auto name = to_string(static_cast<DropReason>(r));
    EXPECT_NE(name, "unknown");
    names.emplace(name);
  }
  EXPECT_EQ(names.size(), static_cast<std::size_t>(DropReason::kCount) - 1);
}

}  // namespace
}  // namespace pspgw::psp
