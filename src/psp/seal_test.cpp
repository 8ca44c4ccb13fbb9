#include <gtest/gtest.h>

#include <vector>

#include "psp/seal.hpp"
#include "psp/test_util.hpp"

namespace pspgw::psp {
namespace {

using testing::hex;

// shared/spec/psp-protocol.md §4, "Published AEAD vector".
const std::vector<uint8_t> kVectorPlain =
    hex("04 01 05 01 11 22 33 44 01 02 03 04 05 06 07 08 45 00 00 25 00 01 00 00 40 11 7c c5 7f 00 00 01"
        "7f 00 00 01 04 d2 16 2e 00 11 a0 c4 41 41 41 41 41 41 41 41 41");
const std::vector<uint8_t> kVectorSealed =
    hex("04 01 05 01 11 22 33 44 01 02 03 04 05 06 07 08 45 00 00 25 00 01 00 00 40 11 7c c5 7f 00 00 01"
        "7f 00 00 01 8e 3e 2b 13 45 c7 6b f9 5c da c3 9b 86 17 62 a0 cf df fb be bb c6 31 3a 2b 9d e0 64"
        "75 9c dd 71 c9");
const std::vector<uint8_t> kVectorKey = hex("ffeeddccbbaa99887766554433221100");
const std::vector<uint8_t> kKey256 = hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");

PspHeaderFields vector_header() {
  PspHeaderFields h;
  h.next_header = 4;
  h.crypt_offset = 5;
  h.spi = 0x11223344;
  h.iv = 0x0102030405060708;
  return h;
}

// The reason open must give after flipping `bit` of header byte `byte` (§2): structure -> kBadHeader,
// version -> kBadVersion unless it lands on 0..3, crypt offset -> kBadCryptOffset past the end, else the
// tag catches it.
DropReason expected_header_flip(std::span<const uint8_t> pkt, std::size_t byte, int bit) {
  const auto flipped = static_cast<uint8_t>(pkt[byte] ^ (1u << bit));
  if (byte == 1) return DropReason::kBadHeader;
  if (byte == 3 && bit <= 1) return DropReason::kBadHeader;
  if (byte == 3 && bit <= 5) {
    // The fixed resolver holds GCM keys only: a GMAC version finds no key of its algorithm.
    const int v = (flipped >> 2) & 0xf;
    return v <= 1                ? DropReason::kAuthFailed
           : v <= kPspMaxVersion ? DropReason::kUnknownKey
                                 : DropReason::kBadVersion;
  }
  if (byte == 2 && bit < 6) {
    const std::size_t clear = (flipped & 0x3fu) * 4;
    return kPspHeaderSize + clear > pkt.size() - kPspIcvSize ? DropReason::kBadCryptOffset
                                                             : DropReason::kAuthFailed;
  }
  return DropReason::kAuthFailed;
}

class PspSealTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    aead_ = crypto::make_backend(GetParam());
    if (!aead_) GTEST_SKIP() << GetParam() << " unavailable";
    keys_ = std::make_unique<testing::FixedResolver>(*aead_, kVectorKey, kKey256);
  }
  const crypto::AeadKey& key(PspVersion v) const { return keys_->key(v); }

  // Flips every bit of `sealed` in turn; each must fail with its exact reason and release no plaintext.
  void expect_every_flip_fails(const std::vector<uint8_t>& sealed, const std::vector<uint8_t>& plain) {
    const auto layout = parse_open(sealed);
    ASSERT_TRUE(layout.ok());
    const std::size_t hdr = layout->header.size();
    for (std::size_t byte = 0; byte < sealed.size(); ++byte) {
      for (int bit = 0; bit < 8; ++bit) {
        auto buf = sealed;
        buf[byte] ^= static_cast<uint8_t>(1u << bit);
        auto r = open_packet(buf, *keys_, *aead_);
        ASSERT_FALSE(r.ok()) << "byte " << byte << " bit " << bit;
        const DropReason want =
            byte < hdr && byte < 4 ? expected_header_flip(sealed, byte, bit) : DropReason::kAuthFailed;
        EXPECT_EQ(r.error(), want) << "byte " << byte << " bit " << bit;
        // No plaintext left behind in the encrypted region.
        if (layout->text_len > 0) {
          EXPECT_FALSE(std::equal(plain.begin() + layout->aad_len, plain.begin() + layout->icv_offset(),
                                  buf.begin() + layout->aad_len))
              << "byte " << byte << " bit " << bit;
        }
      }
    }
  }

  std::unique_ptr<crypto::AeadBackend> aead_;
  std::unique_ptr<testing::FixedResolver> keys_;
};

TEST_P(PspSealTest, PublishedVectorSealsByteForByte) {
  auto buf = kVectorPlain;
  buf.resize(buf.size() + kPspIcvSize);
  ASSERT_TRUE(seal_packet(buf, vector_header(), key(PspVersion::kAesGcm128), *aead_).ok());
  EXPECT_EQ(buf, kVectorSealed);
}

TEST_P(PspSealTest, PublishedVectorOpens) {
  auto buf = kVectorSealed;
  auto r = open_packet(buf, *keys_, *aead_);
  ASSERT_TRUE(r.ok()) << to_string(r.error());
  EXPECT_EQ(r->spi, 0x11223344u);
  EXPECT_EQ(r->next_header, 4);
  EXPECT_TRUE(std::equal(kVectorPlain.begin(), kVectorPlain.end(), buf.begin()));
}

TEST_P(PspSealTest, BatchStepsUseOneAeadCall) {
  testing::CountingBackend counting(*aead_);
  std::vector<std::vector<uint8_t>> pkts(8, kVectorPlain);
  std::vector<crypto::AeadOp> ops(pkts.size());
  for (std::size_t i = 0; i < pkts.size(); ++i) {
    pkts[i].resize(kVectorPlain.size() + kPspIcvSize);
    auto h = vector_header();
    h.iv += i;
    ASSERT_TRUE(prepare_seal(pkts[i], h, key(PspVersion::kAesGcm128), ops[i]).ok());
  }
  counting.seal(ops);
  EXPECT_EQ(pkts[0], kVectorSealed);
  for (std::size_t i = 0; i < pkts.size(); ++i) {
    auto layout = prepare_open(pkts[i], *keys_, ops[i]);
    ASSERT_TRUE(layout.ok());
  }
  counting.open(ops);
  for (const auto& op : ops) EXPECT_EQ(finish_open(op), DropReason::kNone);
  EXPECT_EQ(counting.seal_calls, 1);
  EXPECT_EQ(counting.open_calls, 1);
}

TEST_P(PspSealTest, EveryBitFlipOfTheVectorFails) {
  expect_every_flip_fails(kVectorSealed, kVectorPlain);
}

TEST_P(PspSealTest, EveryBitFlipFailsAcrossConfigs) {
  struct Config {
    PspVersion version;
    bool vc;
    uint8_t off;
    std::size_t payload;
  };
  for (const Config c :
       {Config{PspVersion::kAesGcm256, true, 0, 12}, Config{PspVersion::kAesGcm128, true, 1, 9},
        Config{PspVersion::kAesGcm256, false, 3, 12}, Config{PspVersion::kAesGcm128, false, 0, 0}}) {
    PspHeaderFields h = vector_header();
    h.version = static_cast<uint8_t>(c.version);
    h.has_vc = c.vc;
    h.crypt_offset = c.off;
    h.vc = 0x1122334455667788;
    std::vector<uint8_t> buf(h.size() + c.payload + kPspIcvSize);
    for (std::size_t i = h.size(); i < buf.size() - kPspIcvSize; ++i) buf[i] = static_cast<uint8_t>(i);
    ASSERT_TRUE(seal_packet(buf, h, key(c.version), *aead_).ok());
    auto plain = buf;
    encode_header(h, plain);  // the clear text is header + the original payload
    for (std::size_t i = h.size(); i < buf.size() - kPspIcvSize; ++i) plain[i] = static_cast<uint8_t>(i);
    SCOPED_TRACE(::testing::Message() << "version " << static_cast<int>(c.version) << " vc " << c.vc
                                      << " off " << static_cast<int>(c.off));
    expect_every_flip_fails(buf, plain);
  }
}

TEST_P(PspSealTest, EveryTruncationFails) {
  for (std::size_t n = 0; n < kVectorSealed.size(); ++n) {
    std::vector<uint8_t> buf(kVectorSealed.begin(), kVectorSealed.begin() + static_cast<std::ptrdiff_t>(n));
    auto r = open_packet(buf, *keys_, *aead_);
    ASSERT_FALSE(r.ok()) << n;
    // Header + ICV need 32 bytes; the 20 clear bytes of crypt offset 5 need 52; beyond that only the tag
    // can tell (a PSP packet carries no length of its own: the outer UDP/IP lengths do, see encap_test).
    const DropReason want = n < 32   ? DropReason::kTooShort
                            : n < 52 ? DropReason::kBadCryptOffset
                                     : DropReason::kAuthFailed;
    EXPECT_EQ(r.error(), want) << n;
  }
}

TEST_P(PspSealTest, EmptyCiphertextIsSealedAndTheTagAlwaysChecked) {
  for (const auto& [payload, off] : {std::pair<std::size_t, uint8_t>{0, 0}, {20, 5}, {4, 1}}) {
    PspHeaderFields h = vector_header();
    h.crypt_offset = off;
    std::vector<uint8_t> buf(kPspHeaderSize + payload + kPspIcvSize, 0x5a);
    ASSERT_TRUE(seal_packet(buf, h, key(PspVersion::kAesGcm128), *aead_).ok());
    auto layout = parse_open(buf);
    ASSERT_TRUE(layout.ok());
    EXPECT_EQ(layout->text_len, 0u);
    auto good = buf;
    EXPECT_TRUE(open_packet(good, *keys_, *aead_).ok());
    for (std::size_t byte : {std::size_t{8}, buf.size() - 1, buf.size() - kPspIcvSize}) {
      auto bad = buf;
      bad[byte] ^= 1;
      auto r = open_packet(bad, *keys_, *aead_);
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.error(), DropReason::kAuthFailed);
    }
  }
}

TEST_P(PspSealTest, CryptOffsetPastThePayloadIsRefused) {
  PspHeaderFields h = vector_header();
  h.crypt_offset = 6;  // 24 bytes, payload 20
  std::vector<uint8_t> buf(kPspHeaderSize + 20 + kPspIcvSize);
  EXPECT_EQ(seal_packet(buf, h, key(PspVersion::kAesGcm128), *aead_).error(), DropReason::kBadCryptOffset);
  h.crypt_offset = 63;
  EXPECT_EQ(seal_packet(buf, h, key(PspVersion::kAesGcm128), *aead_).error(), DropReason::kBadCryptOffset);
  // The reference decrypt accepts offset 64+ nonsense; a received offset past the end is refused.
  auto rx = kVectorSealed;
  rx[2] = 63;
  EXPECT_EQ(open_packet(rx, *keys_, *aead_).error(), DropReason::kBadCryptOffset);
  // VC counts: with a VC, offset 2 (8 bytes) covers exactly the VC, and an empty payload is legal.
  h.crypt_offset = 2;
  h.has_vc = true;
  std::vector<uint8_t> vc_only(kPspHeaderSize + kPspVcSize + kPspIcvSize);
  EXPECT_TRUE(seal_packet(vc_only, h, key(PspVersion::kAesGcm128), *aead_).ok());
  EXPECT_TRUE(open_packet(vc_only, *keys_, *aead_).ok());
  h.crypt_offset = 3;
  EXPECT_EQ(seal_packet(vc_only, h, key(PspVersion::kAesGcm128), *aead_).error(),
            DropReason::kBadCryptOffset);
}

TEST_P(PspSealTest, UnsupportedVersionsAreRefused) {
  std::vector<uint8_t> buf(64);
  for (uint8_t v = kPspMaxVersion + 1; v < 16; ++v) {
    PspHeaderFields h = vector_header();
    h.version = v;
    EXPECT_EQ(seal_packet(buf, h, key(PspVersion::kAesGcm128), *aead_).error(), DropReason::kBadVersion);
    auto rx = kVectorSealed;
    rx[3] = static_cast<uint8_t>((rx[3] & 0xc3) | (v << 2));
    EXPECT_EQ(open_packet(rx, *keys_, *aead_).error(), DropReason::kBadVersion) << int{v};
  }
  // A key of the wrong size for the version.
  PspHeaderFields h = vector_header();
  h.version = 1;
  EXPECT_EQ(seal_packet(buf, h, key(PspVersion::kAesGcm128), *aead_).error(), DropReason::kBadVersion);
}

TEST_P(PspSealTest, UnknownKeyIsReported) {
  class NoKeys final : public KeyResolver {
   public:
    const crypto::AeadKey* key_for(uint32_t, PspVersion) override { return nullptr; }
  } none;
  auto buf = kVectorSealed;
  EXPECT_EQ(open_packet(buf, none, *aead_).error(), DropReason::kUnknownKey);
  EXPECT_EQ(buf, kVectorSealed);  // untouched
}

// check_open reads the header's first bytes directly (the open fast path); its verdict must be the one the
// field-by-field definition gives (decode_header, then the version, then header + ICV present, then the
// crypt offset within the packet), for every flags byte, every Hdr Ext Len near the legal ones, crypt
// offsets at the edges and every size up to past a VC header + ICV + a few bytes.
TEST(CheckOpenTest, AgreesWithTheFieldByFieldDefinition) {
  const auto reference = [](std::span<const uint8_t> b) {
    PspHeaderFields h;
    if (const DropReason r = decode_header(b, h); r != DropReason::kNone) return r;
    if (!aead_alg(h.version)) return DropReason::kBadVersion;
    if (b.size() < h.size() + kPspIcvSize) return DropReason::kTooShort;
    if (h.crypt_offset * 4u > b.size() - kPspHeaderSize - kPspIcvSize) return DropReason::kBadCryptOffset;
    return DropReason::kNone;
  };
  std::size_t checked = 0, ok = 0;
  std::vector<uint8_t> buf(kPspHeaderSize + kPspVcSize + kPspIcvSize + 12, 0xa5);
  for (int flags = 0; flags < 256; ++flags) {
    for (uint8_t ext_len : {0, 1, 2, 3}) {
      for (uint8_t offset : {0, 1, 2, 3, 5, 63, 0xc5}) {
        buf[1] = ext_len;
        buf[2] = offset;
        buf[3] = static_cast<uint8_t>(flags);
        for (std::size_t size = 0; size <= buf.size(); ++size) {
          const std::span<const uint8_t> pkt(buf.data(), size);
          detail::OpenShape o;
          const DropReason got = detail::check_open(pkt, o);
          ASSERT_EQ(got, reference(pkt)) << "flags " << flags << " ext " << int{ext_len} << " offset "
                                         << int{offset} << " size " << size;
          ++checked;
          if (got != DropReason::kNone) continue;
          ++ok;
          const auto l = parse_open(pkt).value();  // the layout form agrees on the parts
          EXPECT_EQ(o.aad_len, l.aad_len);
          EXPECT_EQ(o.text_len, l.text_len);
          EXPECT_EQ(o.version, l.header.version);
          EXPECT_EQ(o.aad_len + o.text_len + kPspIcvSize, size);
        }
      }
    }
  }
  EXPECT_GT(ok, 1000u);  // the accepting cases were reached, not only refusals
  EXPECT_EQ(checked, 256u * 4 * 7 * (buf.size() + 1));
}

std::string backend_label(const ::testing::TestParamInfo<const char*>& p) {
  return std::string(p.param) == "openssl" ? "openssl" : "ipsec_mb";
}
INSTANTIATE_TEST_SUITE_P(Backends, PspSealTest, ::testing::Values("openssl", "ipsec-mb"), backend_label);

}  // namespace
}  // namespace pspgw::psp
