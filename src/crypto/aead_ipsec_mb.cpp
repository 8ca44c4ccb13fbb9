// intel-ipsec-mb AES-GCM / AES-GMAC backend: the x86-64 fast path.
//
// The direct GCM API is used per op (one call computes ciphertext and tag): PSP packets are single,
// contiguous buffers, so the job/burst API's queueing buys nothing and costs a job fill per packet.
// GMAC ops use the GMAC API (init/update/finalize), whose update runs the bulk GHASH; GCM's own AAD path
// is written for short AADs. make_key() runs the key schedule and GHASH precomputation
// (IMB_AESxxx_GCM_PRE, shared by GCM and GMAC) once per key.
#include <emmintrin.h>
#include <intel-ipsec-mb.h>

#include <cassert>
#include <cstring>
#include <new>

#include "crypto/aead.hpp"

namespace pspgw::crypto {
namespace {

// Where the GHASH powers of a short packet (H^4..H^1: 64 bytes of ciphertext, and a PSP AAD of up to three
// blocks) lie in gcm_key_data::ghash_keys. The layout is that of the implementation init_mb_mgr_auto
// picked (intel-ipsec-mb's gcm_keys_*.asm): VAES/AVX-512 stores H^48..H^1 descending, AVX2/AVX-512
// H^8..H^1, SSE/AVX H^1..H^8 and then their Karatsuba halves.
struct GhashHot {
  std::size_t offset = 0;
  std::size_t len = 0;
};
GhashHot ghash_hot(const IMB_MGR& mgr) {
  constexpr std::size_t kHkey = 16;
  constexpr std::size_t kPowers = 4;
  const bool vaes = (mgr.features & IMB_FEATURE_VAES) != 0 && (mgr.features & IMB_FEATURE_VPCLMULQDQ) != 0;
  if (mgr.used_arch == IMB_ARCH_AVX512 && vaes) return {(48 - kPowers) * kHkey, kPowers * kHkey};
  if (mgr.used_arch == IMB_ARCH_AVX512 || mgr.used_arch == IMB_ARCH_AVX2) {
    return {(8 - kPowers) * kHkey, kPowers * kHkey};
  }
  // H^1..H^4 at 0 and their Karatsuba halves 128 bytes on: one range through both.
  return {0, (8 + kPowers) * kHkey};
}

// Expanded AES round keys + GHASH powers, laid out for the lines an op touches: the object is line-aligned
// and the key material starts 16 bytes in, right after AeadKey's fields, so that the round keys of AES-128
// take lines 0-2 (the algorithm, read per op, in line 0 with them) and the four GHASH powers of a short
// packet one whole line (VAES/AVX-512: line 15; AVX2/AVX-512: line 5). With the material at 64, as before,
// an AES-128 open read six lines of its key, not four: a line of AeadKey's fields alone, and powers that
// straddled two lines. ipsec-mb's code needs 16-byte alignment of the key data (its SSE code reads round
// keys as aligned operands); the header's 64 is declared for ipsec-mb's own builds (LINUX) only, not this
// one. The bytes are secret: cleared with imb_clear_mem, which the compiler cannot elide.
class alignas(kCacheLineSize) IpsecMbKey final : public AeadKey {
 public:
  static constexpr std::size_t kDataOffset = sizeof(AeadKey);

  explicit IpsecMbKey(AeadAlg alg) : AeadKey(alg) {
    assert(reinterpret_cast<const uint8_t*>(&data_) - reinterpret_cast<const uint8_t*>(this) ==
           static_cast<std::ptrdiff_t>(kDataOffset));
  }
  ~IpsecMbKey() override { imb_clear_mem(&data_, sizeof(data_)); }
  IpsecMbKey(const IpsecMbKey&) = delete;
  IpsecMbKey& operator=(const IpsecMbKey&) = delete;

  using AeadKey::set_alg;
  gcm_key_data* data() { return &data_; }
  const gcm_key_data* data() const { return &data_; }

 private:
  alignas(16) gcm_key_data data_{};
};
static_assert(sizeof(AeadKey) == 16);

// Whether two 16-byte tags are equal, in constant time: one 16-byte compare of all the bytes and one test of
// its mask, no branch on where they differ (CRYPTO_memcmp's guarantee, without its call through the PLT
// and its byte loop on every packet). This backend is x86-64 only (AES-NI), so SSE2 is there.
inline bool tags_equal(const uint8_t* a, const uint8_t* b) {
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a));
  const __m128i y = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b));
  return _mm_movemask_epi8(_mm_cmpeq_epi8(x, y)) == 0xffff;
}
static_assert(kGcmTagSize == sizeof(__m128i));

const IpsecMbKey& as_ipsec_mb(const AeadKey* key) {
  assert(dynamic_cast<const IpsecMbKey*>(key) != nullptr);
  return *static_cast<const IpsecMbKey*>(key);
}

struct MgrFree {
  void operator()(IMB_MGR* mgr) const { free_mb_mgr(mgr); }
};
using MgrPtr = std::unique_ptr<IMB_MGR, MgrFree>;

class IpsecMbBackend final : public AeadBackend {
 public:
  explicit IpsecMbBackend(MgrPtr mgr) : mgr_(std::move(mgr)), ghash_(ghash_hot(*mgr_)) {}
  ~IpsecMbBackend() override { imb_clear_mem(&ctx_, sizeof(ctx_)); }
  IpsecMbBackend(const IpsecMbBackend&) = delete;
  IpsecMbBackend& operator=(const IpsecMbBackend&) = delete;

  std::string_view name() const override { return "ipsec-mb"; }

  std::unique_ptr<AeadKey> make_key(AeadAlg alg, std::span<const uint8_t> key) const override {
    if (key.size() != key_size(alg)) return nullptr;
    auto prepared = std::make_unique<IpsecMbKey>(alg);
    prepare(alg, key, *prepared);
    return prepared;
  }

  KeyStorage key_storage() const override { return {sizeof(IpsecMbKey), alignof(IpsecMbKey)}; }
  AeadKey* make_key_at(void* storage, AeadAlg alg, std::span<const uint8_t> key) const override {
    if (key.size() != key_size(alg)) return nullptr;
    auto* prepared = ::new (storage) IpsecMbKey(alg);
    prepare(alg, key, *prepared);
    return prepared;
  }

  // The expanded keys and GHASH table are a fixed-size struct for both key sizes: overwritten in place.
  bool rekey(AeadKey& key, AeadAlg alg, std::span<const uint8_t> bytes) const override {
    if (bytes.size() != key_size(alg)) return false;
    assert(dynamic_cast<IpsecMbKey*>(&key) != nullptr);
    prepare(alg, bytes, static_cast<IpsecMbKey&>(key));
    return true;
  }

  void prepare(AeadAlg alg, std::span<const uint8_t> key, IpsecMbKey& out) const {
    out.set_alg(alg);
    if (key_size(alg) == 16) {
      IMB_AES128_GCM_PRE(mgr_.get(), key.data(), out.data());
    } else {
      IMB_AES256_GCM_PRE(mgr_.get(), key.data(), out.data());
    }
  }

  // The object's start through the round keys of alg's AES, and the GHASH powers of short packets.
  KeyHotBytes hot_bytes(AeadAlg alg) const override {
    constexpr std::size_t kRoundKey = 16;
    const std::size_t rounds = key_size(alg) == 16 ? 10 : 14;
    return {
        static_cast<uint16_t>(IpsecMbKey::kDataOffset + (rounds + 1) * kRoundKey),
        static_cast<uint16_t>(IpsecMbKey::kDataOffset + offsetof(gcm_key_data, ghash_keys) + ghash_.offset),
        static_cast<uint16_t>(ghash_.len)};
  }

  // Per op one switch on the algorithm and one direct call (GCM) or init/update/finalize (GMAC), all
  // inline: an out-of-line helper per op (its prologue, a lambda, its branches) cost ~70 instructions a
  // packet, as many as the rest of the open path's own checks (callgrind, bench/psp_seal v2/v3).
  void seal(std::span<AeadOp> ops) const override {
    for (AeadOp& op : ops) {
      op.ok = well_formed(op);
      if (!op.ok) [[unlikely]]
        continue;
      const IpsecMbKey& key = as_ipsec_mb(op.key);
      switch (key.alg()) {
        case AeadAlg::kAesGcm128:
          IMB_AES128_GCM_ENC(mgr_.get(), key.data(), &ctx_, op.out, op.in, op.len, op.nonce.data(),
                             op.aad.data(), op.aad.size(), op.tag, kGcmTagSize);
          break;
        case AeadAlg::kAesGcm256:
          IMB_AES256_GCM_ENC(mgr_.get(), key.data(), &ctx_, op.out, op.in, op.len, op.nonce.data(),
                             op.aad.data(), op.aad.size(), op.tag, kGcmTagSize);
          break;
        case AeadAlg::kAesGmac128:
          gmac<true>(key, op, op.tag);
          break;
        case AeadAlg::kAesGmac256:
          gmac<false>(key, op, op.tag);
          break;
      }
    }
  }

  // Decrypts and recomputes the tag, then compares it with the received one in constant time.
  void open(std::span<AeadOp> ops) const override {
    for (AeadOp& op : ops) {
      op.ok = well_formed(op);
      if (!op.ok) [[unlikely]]
        continue;
      const IpsecMbKey& key = as_ipsec_mb(op.key);
      alignas(16) std::array<uint8_t, kGcmTagSize> tag;
      switch (key.alg()) {
        case AeadAlg::kAesGcm128:
          IMB_AES128_GCM_DEC(mgr_.get(), key.data(), &ctx_, op.out, op.in, op.len, op.nonce.data(),
                             op.aad.data(), op.aad.size(), tag.data(), tag.size());
          break;
        case AeadAlg::kAesGcm256:
          IMB_AES256_GCM_DEC(mgr_.get(), key.data(), &ctx_, op.out, op.in, op.len, op.nonce.data(),
                             op.aad.data(), op.aad.size(), tag.data(), tag.size());
          break;
        case AeadAlg::kAesGmac128:
          gmac<true>(key, op, tag.data());
          break;
        case AeadAlg::kAesGmac256:
          gmac<false>(key, op, tag.data());
          break;
      }
      op.ok = tags_equal(tag.data(), op.tag);
    }
  }

 private:
  // GMAC over aad || text into `tag`; the text is copied to out unchanged. In PSP the two are contiguous
  // (header, then the rest of the packet): one update.
  template <bool k128>
  [[gnu::always_inline]] void gmac(const IpsecMbKey& key, const AeadOp& op, uint8_t* tag) const {
    gmac_init<k128>(key, op);
    if (op.len == 0 || op.in == op.aad.data() + op.aad.size()) [[likely]] {
      gmac_update<k128>(key, op.aad.data(), op.aad.size() + op.len);
    } else {
      gmac_update<k128>(key, op.aad.data(), op.aad.size());
      gmac_update<k128>(key, op.in, op.len);
    }
    gmac_finalize<k128>(key, tag);
    if (op.len != 0 && op.out != op.in) std::memmove(op.out, op.in, op.len);
  }
  template <bool k128>
  void gmac_init(const IpsecMbKey& key, const AeadOp& op) const {
    if constexpr (k128) {
      IMB_AES128_GMAC_INIT(mgr_.get(), key.data(), &ctx_, op.nonce.data(), op.nonce.size());
    } else {
      IMB_AES256_GMAC_INIT(mgr_.get(), key.data(), &ctx_, op.nonce.data(), op.nonce.size());
    }
  }
  template <bool k128>
  void gmac_update(const IpsecMbKey& key, const uint8_t* p, std::size_t n) const {
    if (n == 0) return;
    if constexpr (k128) {
      IMB_AES128_GMAC_UPDATE(mgr_.get(), key.data(), &ctx_, p, n);
    } else {
      IMB_AES256_GMAC_UPDATE(mgr_.get(), key.data(), &ctx_, p, n);
    }
  }
  template <bool k128>
  void gmac_finalize(const IpsecMbKey& key, uint8_t* tag) const {
    if constexpr (k128) {
      IMB_AES128_GMAC_FINALIZE(mgr_.get(), key.data(), &ctx_, tag, kGcmTagSize);
    } else {
      IMB_AES256_GMAC_FINALIZE(mgr_.get(), key.data(), &ctx_, tag, kGcmTagSize);
    }
  }

  MgrPtr mgr_;
  GhashHot ghash_;  // where this manager's implementation keeps the GHASH powers of short packets
  // Per-op scratch (GHASH state, counter block) kept here rather than on the stack so that it is cleared
  // once, on destruction. This is what makes an instance single-threaded.
  mutable gcm_context_data ctx_{};
};

}  // namespace

std::unique_ptr<AeadBackend> make_ipsec_mb_backend() {
  // Without AES-NI ipsec-mb would run its software-emulation path, slower than OpenSSL: decline.
  if ((imb_get_feature_flags() & IMB_FEATURE_AESNI) == 0) return nullptr;
  MgrPtr mgr(alloc_mb_mgr(0));
  if (!mgr) return nullptr;
  IMB_ARCH arch = IMB_ARCH_NONE;
  init_mb_mgr_auto(mgr.get(), &arch);
  if (imb_get_errno(mgr.get()) != 0 || arch == IMB_ARCH_NONE || arch == IMB_ARCH_NOAESNI) return nullptr;
  return std::make_unique<IpsecMbBackend>(std::move(mgr));
}

}  // namespace pspgw::crypto
