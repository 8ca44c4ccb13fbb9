#include "crypto/aead.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "base/hex.hpp"

namespace pspgw::crypto {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes hex(std::string_view text) {
  auto bytes = parse_hex(text);
  EXPECT_TRUE(bytes.has_value()) << text;
  return bytes.value_or(Bytes{});
}

GcmNonce nonce_of(std::string_view text) {
  const Bytes b = hex(text);
  GcmNonce n{};
  std::copy_n(b.begin(), std::min(b.size(), n.size()), n.begin());
  return n;
}

struct GcmVector {
  const char* name;
  AeadAlg alg;
  std::string_view key, iv, aad, pt, ct, tag;
};

// McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", Appendix B (96-bit IV cases).
constexpr std::string_view kK3 = "feffe9928665731c6d6a8f9467308308";
constexpr std::string_view kK15 = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
constexpr std::string_view kIv3 = "cafebabefacedbaddecaf888";
constexpr std::string_view kAad4 = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
constexpr std::string_view kP3 =
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
constexpr std::string_view kP4 =
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
constexpr std::string_view kZero12 = "000000000000000000000000";
constexpr std::string_view kZero16 = "00000000000000000000000000000000";
constexpr std::string_view kZero32 = "0000000000000000000000000000000000000000000000000000000000000000";

const GcmVector kVectors[] = {
    {"TC1", AeadAlg::kAesGcm128, kZero16, kZero12, "", "", "", "58e2fccefa7e3061367f1d57a4e7455a"},
    {"TC2", AeadAlg::kAesGcm128, kZero16, kZero12, "", kZero16, "0388dace60b6a392f328c2b971b2fe78",
     "ab6e47d42cec13bdf53a67b21257bddf"},
    {"TC3", AeadAlg::kAesGcm128, kK3, kIv3, "", kP3,
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
     "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
     "4d5c2af327cd64a62cf35abd2ba6fab4"},
    {"TC4", AeadAlg::kAesGcm128, kK3, kIv3, kAad4, kP4,
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
     "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
     "5bc94fbc3221a5db94fae95ae7121a47"},
    {"TC13", AeadAlg::kAesGcm256, kZero32, kZero12, "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"TC14", AeadAlg::kAesGcm256, kZero32, kZero12, "", kZero16, "cea7403d4d606b6e074ec5d3baf39d18",
     "d0d1c8a799996bf0265b98b5d48ab919"},
    {"TC15", AeadAlg::kAesGcm256, kK15, kIv3, "", kP3,
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    {"TC16", AeadAlg::kAesGcm256, kK15, kIv3, kAad4, kP4,
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

// One op over caller-owned buffers.
AeadOp make_op(const AeadKey* key, const GcmNonce& nonce, std::span<const uint8_t> aad, const uint8_t* in,
               uint8_t* out, std::size_t len, uint8_t* tag) {
  AeadOp op;
  op.key = key;
  op.nonce = nonce;
  op.aad = aad;
  op.in = in;
  op.out = out;
  op.len = len;
  op.tag = tag;
  return op;
}

class AeadBackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    backend_ = make_backend(GetParam());
    if (!backend_) GTEST_SKIP() << GetParam() << " backend unavailable on this CPU";
  }
  std::unique_ptr<AeadKey> key(AeadAlg alg, std::string_view key_hex) const {
    const Bytes k = hex(key_hex);
    auto prepared = backend_->make_key(alg, k);
    EXPECT_NE(prepared, nullptr);
    return prepared;
  }
  std::unique_ptr<AeadBackend> backend_;
};

TEST_P(AeadBackendTest, NameMatchesFactory) {
  EXPECT_EQ(backend_->name(), GetParam());
}

TEST_P(AeadBackendTest, KnownVectorsSealOutOfPlace) {
  for (const GcmVector& v : kVectors) {
    SCOPED_TRACE(v.name);
    const auto k = key(v.alg, v.key);
    const Bytes pt = hex(v.pt), aad = hex(v.aad);
    Bytes ct(pt.size() + 1, 0xAA), tag(kGcmTagSize);
    AeadOp op = make_op(k.get(), nonce_of(v.iv), aad, pt.data(), ct.data(), pt.size(), tag.data());
    backend_->seal({&op, 1});
    EXPECT_TRUE(op.ok);
    EXPECT_EQ(to_hex({ct.data(), pt.size()}), v.ct);
    EXPECT_EQ(ct.back(), 0xAA) << "wrote past len";
    EXPECT_EQ(to_hex(tag), v.tag);
  }
}

TEST_P(AeadBackendTest, KnownVectorsSealInPlace) {
  for (const GcmVector& v : kVectors) {
    SCOPED_TRACE(v.name);
    const auto k = key(v.alg, v.key);
    Bytes buf = hex(v.pt), tag(kGcmTagSize);
    const Bytes aad = hex(v.aad);
    AeadOp op = make_op(k.get(), nonce_of(v.iv), aad, buf.data(), buf.data(), buf.size(), tag.data());
    backend_->seal({&op, 1});
    EXPECT_TRUE(op.ok);
    EXPECT_EQ(to_hex(buf), v.ct);
    EXPECT_EQ(to_hex(tag), v.tag);
  }
}

TEST_P(AeadBackendTest, KnownVectorsOpenInPlaceAndOutOfPlace) {
  for (const GcmVector& v : kVectors) {
    SCOPED_TRACE(v.name);
    const auto k = key(v.alg, v.key);
    const Bytes ct = hex(v.ct), aad = hex(v.aad);
    Bytes tag = hex(v.tag), in_place = ct, out(ct.size());
    AeadOp ops[2] = {
        make_op(k.get(), nonce_of(v.iv), aad, in_place.data(), in_place.data(), ct.size(), tag.data()),
        make_op(k.get(), nonce_of(v.iv), aad, ct.data(), out.data(), ct.size(), tag.data()),
    };
    backend_->open(ops);
    EXPECT_TRUE(ops[0].ok);
    EXPECT_TRUE(ops[1].ok);
    EXPECT_EQ(to_hex(in_place), v.pt);
    EXPECT_EQ(to_hex(out), v.pt);
  }
}

// shared/spec/psp-protocol.md §4 "Published AEAD vector": nonce = SPI || IV; AAD = PSP header (16 B) plus
// the crypt-offset bytes (5 * 4 = 20 B) left clear; the rest is ciphertext, then the 16-byte ICV.
TEST_P(AeadBackendTest, PspPublishedVector) {
  const Bytes plain =
      hex("0401050111223344010203040506070845000025000100004011"
          "7cc57f0000017f00000104d2162e0011a0c4414141414141414141");
  const Bytes sealed =
      hex("04010501112233440102030405060708450000250001000040117cc57f000001"
          "7f0000018e3e2b1345c76bf95cdac39b861762a0cfdffbbebbc6313a2b9de064759cdd71c9");
  ASSERT_EQ(plain.size(), 53u);
  ASSERT_EQ(sealed.size(), 69u);
  const auto k = key(AeadAlg::kAesGcm128, "ffeeddccbbaa99887766554433221100");
  constexpr std::size_t kAadLen = 36;
  Bytes pkt = plain;
  pkt.resize(sealed.size());
  const GcmNonce nonce = nonce_of("112233440102030405060708");
  AeadOp op = make_op(k.get(), nonce, {pkt.data(), kAadLen}, pkt.data() + kAadLen, pkt.data() + kAadLen,
                      plain.size() - kAadLen, pkt.data() + plain.size());
  backend_->seal({&op, 1});
  ASSERT_TRUE(op.ok);
  EXPECT_EQ(to_hex(pkt), to_hex(sealed));
  backend_->open({&op, 1});
  EXPECT_TRUE(op.ok);
  EXPECT_EQ(to_hex({pkt.data(), plain.size()}), to_hex(plain));
}

// A batch that interleaves two algorithms and three keys; every op must use its own key.
TEST_P(AeadBackendTest, BatchWithMixedKeys) {
  std::vector<std::unique_ptr<AeadKey>> keys;
  for (const GcmVector& v : kVectors) keys.push_back(key(v.alg, v.key));
  constexpr std::size_t kN = std::size(kVectors);
  std::vector<Bytes> pts, aads, bufs, tags(2 * kN, Bytes(kGcmTagSize));
  std::vector<AeadOp> ops;
  for (std::size_t rep = 0; rep < 2; ++rep) {
    for (std::size_t i = 0; i < kN; ++i) {
      pts.push_back(hex(kVectors[(i * 3 + rep) % kN].pt));
      aads.push_back(hex(kVectors[i].aad));
    }
  }
  bufs = pts;
  for (std::size_t j = 0; j < 2 * kN; ++j) {
    const GcmVector& v = kVectors[(j * 5) % kN];
    ops.push_back(make_op(keys[(j * 5) % kN].get(), nonce_of(v.iv), aads[j], bufs[j].data(), bufs[j].data(),
                          bufs[j].size(), tags[j].data()));
  }
  backend_->seal(ops);
  // Each op, sealed alone with a fresh key from the same bytes, gives the same result.
  for (std::size_t j = 0; j < ops.size(); ++j) {
    EXPECT_TRUE(ops[j].ok) << j;
    const GcmVector& v = kVectors[(j * 5) % kN];
    const auto alone = key(v.alg, v.key);
    Bytes ct(pts[j].size()), tag(kGcmTagSize);
    AeadOp op =
        make_op(alone.get(), nonce_of(v.iv), aads[j], pts[j].data(), ct.data(), ct.size(), tag.data());
    backend_->seal({&op, 1});
    EXPECT_EQ(ct, bufs[j]) << j;
    EXPECT_EQ(tag, tags[j]) << j;
  }
  backend_->open(ops);
  for (std::size_t j = 0; j < ops.size(); ++j) {
    EXPECT_TRUE(ops[j].ok) << j;
    EXPECT_EQ(bufs[j], pts[j]) << j;
  }
}

// Flipping any one bit of tag, ciphertext or AAD must fail the open, including with an empty text.
TEST_P(AeadBackendTest, TamperingFailsOpen) {
  for (const GcmVector& v : kVectors) {
    SCOPED_TRACE(v.name);
    const auto k = key(v.alg, v.key);
    const Bytes ct = hex(v.ct), aad = hex(v.aad), tag = hex(v.tag);
    const auto try_open = [&](const Bytes& c, const Bytes& a, const Bytes& t) {
      Bytes buf = c, tg = t;
      AeadOp op = make_op(k.get(), nonce_of(v.iv), a, buf.data(), buf.data(), buf.size(), tg.data());
      op.ok = true;
      backend_->open({&op, 1});
      return op.ok;
    };
    EXPECT_TRUE(try_open(ct, aad, tag));
    for (std::size_t i = 0; i < tag.size(); ++i) {
      Bytes t = tag;
      t[i] ^= 0x01;
      EXPECT_FALSE(try_open(ct, aad, t)) << "tag byte " << i;
    }
    for (std::size_t i = 0; i < ct.size(); i += 7) {
      Bytes c = ct;
      c[i] ^= 0x80;
      EXPECT_FALSE(try_open(c, aad, tag)) << "ciphertext byte " << i;
    }
    for (std::size_t i = 0; i < aad.size(); ++i) {
      Bytes a = aad;
      a[i] ^= 0x10;
      EXPECT_FALSE(try_open(ct, a, tag)) << "aad byte " << i;
    }
    Bytes longer_aad = aad;
    longer_aad.push_back(0);
    EXPECT_FALSE(try_open(ct, longer_aad, tag)) << "aad length";
    GcmNonce other = nonce_of(v.iv);
    other[11] ^= 1;
    Bytes buf = ct, tg = tag;
    AeadOp op = make_op(k.get(), other, aad, buf.data(), buf.data(), buf.size(), tg.data());
    backend_->open({&op, 1});
    EXPECT_FALSE(op.ok) << "nonce";
  }
}

TEST_P(AeadBackendTest, WrongKeySizeIsRejected) {
  const Bytes k16(16, 1), k24(24, 1), k32(32, 1);
  EXPECT_EQ(backend_->make_key(AeadAlg::kAesGcm128, k32), nullptr);
  EXPECT_EQ(backend_->make_key(AeadAlg::kAesGcm128, k24), nullptr);
  EXPECT_EQ(backend_->make_key(AeadAlg::kAesGcm128, {}), nullptr);
  EXPECT_EQ(backend_->make_key(AeadAlg::kAesGcm256, k16), nullptr);
  EXPECT_EQ(backend_->make_key(AeadAlg::kAesGcm256, k24), nullptr);
  const auto k128 = backend_->make_key(AeadAlg::kAesGcm128, k16);
  const auto k256 = backend_->make_key(AeadAlg::kAesGcm256, k32);
  ASSERT_NE(k128, nullptr);
  ASSERT_NE(k256, nullptr);
  EXPECT_EQ(k128->alg(), AeadAlg::kAesGcm128);
  EXPECT_EQ(k256->alg(), AeadAlg::kAesGcm256);
}

std::string backend_case_name(const ::testing::TestParamInfo<std::string>& param) {
  return param.param == "openssl" ? "OpenSsl" : "IpsecMb";
}
TEST_P(AeadBackendTest, MalformedOpsFailWithoutTouchingMemory) {
  const auto k = key(AeadAlg::kAesGcm128, kZero16);
  Bytes buf(32), tag(kGcmTagSize);
  AeadOp ops[3] = {
      make_op(nullptr, {}, {}, buf.data(), buf.data(), buf.size(), tag.data()),  // no key
      make_op(k.get(), {}, {}, buf.data(), buf.data(), buf.size(), nullptr),     // no tag
      make_op(k.get(), {}, {}, nullptr, buf.data(), buf.size(), tag.data()),     // no input
  };
  for (AeadOp& op : ops) op.ok = true;
  backend_->seal(ops);
  for (const AeadOp& op : ops) EXPECT_FALSE(op.ok);
  for (AeadOp& op : ops) op.ok = true;
  backend_->open(ops);
  for (const AeadOp& op : ops) EXPECT_FALSE(op.ok);
}

// The hot bytes a backend names for prefetch_key lie inside its key objects (ipsec-mb: the start through the
// round keys of the key's AES, and some GHASH powers), or are none (OpenSSL); the other AES size moves the
// end of the round keys. ipsec-mb's key is laid out for the lines a short packet's open reads: the object
// line-aligned, the round keys right after AeadKey's 16 bytes (AES-128: lines 0-2, the algorithm among
// them) and the GHASH powers on whole lines of their own. prefetch_key is a hint and changes no result.
TEST_P(AeadBackendTest, HotBytesLieInsideTheKey) {
  const std::vector<uint8_t> k16(16, 0x11);
  auto key = backend_->make_key(AeadAlg::kAesGcm128, k16);
  ASSERT_NE(key, nullptr);
  const KeyHotBytes h128 = backend_->hot_bytes(AeadAlg::kAesGcm128);
  prefetch_key(key.get(), h128);
  if (std::string(GetParam()) == "openssl") {
    EXPECT_EQ(h128.head, 0u);
    EXPECT_EQ(h128.tail_len, 0u);
    return;
  }
  constexpr std::size_t kLine = 64;
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(key.get()) % kLine, 0u);
  EXPECT_EQ(h128.head, sizeof(AeadKey) + 11u * 16);  // AES-128: 11 round keys, ending with line 2
  EXPECT_LE(h128.head, 3 * kLine);
  EXPECT_GE(h128.tail_offset, h128.head);
  EXPECT_GT(h128.tail_len, 0u);
  EXPECT_EQ(h128.tail_offset % kLine, 0u);
  EXPECT_EQ(h128.tail_len % kLine, 0u);
  EXPECT_LE(h128.tail_offset + h128.tail_len, sizeof(AeadKey) + 16 * 15 + 16 * 48);  // inside gcm_key_data
  const KeyHotBytes h256 = backend_->hot_bytes(AeadAlg::kAesGcm256);
  EXPECT_EQ(h256.head, h128.head + 4 * 16);  // AES-256: 4 more round keys
  EXPECT_EQ(h256.tail_offset, h128.tail_offset);
  EXPECT_EQ(backend_->hot_bytes(AeadAlg::kAesGmac128).head, h128.head);
  EXPECT_EQ(backend_->hot_bytes(AeadAlg::kAesGmac256).head, h256.head);
  // A key re-prepared in place (another size, same object) still seals as a fresh one.
  const std::vector<uint8_t> k32(32, 0x22);
  ASSERT_TRUE(backend_->rekey(*key, AeadAlg::kAesGcm256, k32));
  prefetch_key(key.get(), h256);
  auto fresh = backend_->make_key(AeadAlg::kAesGcm256, k32);
  std::array<uint8_t, 16> tag_a{}, tag_b{};
  std::vector<uint8_t> pt(40, 0x5a), out_a(40), out_b(40);
  AeadOp a, b;
  for (auto [op, k, out, tag] :
       {std::tuple{&a, key.get(), &out_a, &tag_a}, {&b, fresh.get(), &out_b, &tag_b}}) {
    op->key = k;
    op->in = pt.data();
    op->out = out->data();
    op->len = pt.size();
    op->tag = tag->data();
  }
  std::array<AeadOp, 2> ops{a, b};
  backend_->seal(ops);
  EXPECT_TRUE(ops[0].ok && ops[1].ok);
  EXPECT_EQ(out_a, out_b);
  EXPECT_EQ(tag_a, tag_b);
}

INSTANTIATE_TEST_SUITE_P(Backends, AeadBackendTest, ::testing::Values("openssl", "ipsec-mb"),
                         backend_case_name);

TEST(AeadFactory, ByName) {
  EXPECT_EQ(make_backend("openssl")->name(), "openssl");
  EXPECT_EQ(make_backend("bogus"), nullptr);
  EXPECT_EQ(make_backend(""), nullptr);
  const auto automatic = make_backend("auto");
  ASSERT_NE(automatic, nullptr);
  const auto fast = make_ipsec_mb_backend();
  EXPECT_EQ(automatic->name(), fast ? "ipsec-mb" : "openssl");
}

// The two backends must agree bit for bit: same ciphertext and tag for every text length 0..9000 and both
// PSP versions, and each must open what the other sealed. Keys, nonces, AAD (0..64 B) and text are random
// from a fixed seed, printed on failure so a failing case can be replayed.
class AeadDifferentialTest : public ::testing::TestWithParam<AeadAlg> {};

TEST_P(AeadDifferentialTest, BackendsAgreeOnEverySize) {
  const auto ossl = make_openssl_backend();
  const auto imb = make_ipsec_mb_backend();
  if (!imb) GTEST_SKIP() << "ipsec-mb backend unavailable on this CPU";
  constexpr std::size_t kMaxLen = 9000, kMaxAad = 64;
  const AeadAlg alg = GetParam();
  const uint32_t seed = 0x50535047u + static_cast<uint32_t>(alg);
  std::mt19937 rng(seed);
  const auto fill = [&rng](std::span<uint8_t> s) {
    for (uint8_t& b : s) b = static_cast<uint8_t>(rng());
  };
  Bytes key(key_size(alg)), aad(kMaxAad), pt(kMaxLen), ct_a(kMaxLen), ct_b(kMaxLen), back(kMaxLen);
  std::array<uint8_t, kGcmTagSize> tag_a{}, tag_b{};
  fill(pt);
  for (std::size_t len = 0; len <= kMaxLen; ++len) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed << " len " << len);
    fill(key);
    GcmNonce nonce;
    fill(nonce);
    const std::span<const uint8_t> a(aad.data(), rng() % (kMaxAad + 1));
    fill(aad);
    fill({pt.data(), std::min<std::size_t>(len, 64)});  // vary the text head without refilling 9000 B
    const auto ka = ossl->make_key(alg, key);
    const auto kb = imb->make_key(alg, key);
    AeadOp sa = make_op(ka.get(), nonce, a, pt.data(), ct_a.data(), len, tag_a.data());
    AeadOp sb = make_op(kb.get(), nonce, a, pt.data(), ct_b.data(), len, tag_b.data());
    ossl->seal({&sa, 1});
    imb->seal({&sb, 1});
    ASSERT_TRUE(sa.ok && sb.ok);
    ASSERT_TRUE(std::equal(ct_a.begin(), ct_a.begin() + len, ct_b.begin()));
    if (is_gmac(alg)) {
      ASSERT_TRUE(std::equal(pt.begin(), pt.begin() + len, ct_a.begin()));  // left clear
    }
    ASSERT_EQ(tag_a, tag_b);
    // Cross-open: ipsec-mb opens OpenSSL's output out of place, OpenSSL opens ipsec-mb's in place.
    AeadOp oa = make_op(kb.get(), nonce, a, ct_a.data(), back.data(), len, tag_a.data());
    imb->open({&oa, 1});
    ASSERT_TRUE(oa.ok);
    ASSERT_TRUE(std::equal(pt.begin(), pt.begin() + len, back.begin()));
    AeadOp ob = make_op(ka.get(), nonce, a, ct_b.data(), ct_b.data(), len, tag_b.data());
    ossl->open({&ob, 1});
    ASSERT_TRUE(ob.ok);
    ASSERT_TRUE(std::equal(pt.begin(), pt.begin() + len, ct_b.begin()));
  }
}

// GMAC as PSP lays it out (header || rest in one buffer, sealed in place: the backends' one-update path)
// equals GCM with all of it as AAD and no text, in both backends: the spec's definition (§3), checked
// against OpenSSL's GCM, the reference.
TEST_P(AeadDifferentialTest, GmacIsGcmWithEverythingAsAad) {
  const AeadAlg alg = GetParam();
  if (!is_gmac(alg)) GTEST_SKIP() << "GMAC only";
  const AeadAlg gcm = key_size(alg) == 16 ? AeadAlg::kAesGcm128 : AeadAlg::kAesGcm256;
  const auto ossl = make_openssl_backend();
  std::mt19937 rng(0x474d4143u + static_cast<uint32_t>(alg));
  Bytes key(key_size(alg));
  for (uint8_t& b : key) b = static_cast<uint8_t>(rng());
  const auto reference = ossl->make_key(gcm, key);
  for (const std::string name : {"openssl", "ipsec-mb"}) {
    const auto backend = make_backend(name);
    if (!backend) continue;
    const auto k = backend->make_key(alg, key);
    ASSERT_NE(k, nullptr);
    for (std::size_t len : {0u, 1u, 15u, 16u, 17u, 48u, 64u, 1400u, 9000u}) {
      for (std::size_t aad_len : {0u, 16u, 20u, 24u, 44u}) {
        SCOPED_TRACE(::testing::Message() << name << " aad " << aad_len << " len " << len);
        Bytes pkt(aad_len + len);
        for (uint8_t& b : pkt) b = static_cast<uint8_t>(rng());
        const Bytes clear = pkt;
        GcmNonce nonce;
        for (uint8_t& b : nonce) b = static_cast<uint8_t>(rng());
        std::array<uint8_t, kGcmTagSize> tag{}, want{};
        AeadOp ref = make_op(reference.get(), nonce, pkt, nullptr, nullptr, 0, want.data());
        ossl->seal({&ref, 1});
        AeadOp op = make_op(k.get(), nonce, {pkt.data(), aad_len}, pkt.data() + aad_len, pkt.data() + aad_len,
                            len, tag.data());
        backend->seal({&op, 1});
        ASSERT_TRUE(ref.ok && op.ok);
        EXPECT_EQ(tag, want);
        EXPECT_EQ(pkt, clear);
        backend->open({&op, 1});
        EXPECT_TRUE(op.ok);
        if (!pkt.empty()) {
          pkt.back() ^= 1;  // the last byte of the clear text is authenticated too
          backend->open({&op, 1});
          EXPECT_FALSE(op.ok);
        }
      }
    }
  }
}

std::string alg_case_name(const ::testing::TestParamInfo<AeadAlg>& param) {
  switch (param.param) {
    case AeadAlg::kAesGcm128:
      return "Gcm128";
    case AeadAlg::kAesGcm256:
      return "Gcm256";
    case AeadAlg::kAesGmac128:
      return "Gmac128";
    case AeadAlg::kAesGmac256:
      return "Gmac256";
  }
  return "unknown";
}
INSTANTIATE_TEST_SUITE_P(Versions, AeadDifferentialTest,
                         ::testing::Values(AeadAlg::kAesGcm128, AeadAlg::kAesGcm256, AeadAlg::kAesGmac128,
                                           AeadAlg::kAesGmac256),
                         alg_case_name);

}  // namespace
}  // namespace pspgw::crypto
