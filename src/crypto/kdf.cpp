// PSP key derivation: SP 800-108 counter-mode KDF, PRF = AES-256-CMAC (shared/spec/psp-protocol.md §4).
#include "crypto/kdf.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#if defined(__AES__)
#include <wmmintrin.h>
#endif

#include "base/byteorder.hpp"

namespace pspgw::crypto {
namespace {

// The label field of the KDF input block: "Pv0\0" / "Pv1\0".
constexpr uint32_t kLabelV0 = 0x50763000;
constexpr uint32_t kLabelV1 = 0x50763100;
// L, the derived key length in bits.
constexpr uint32_t kBitsV0 = 128;
constexpr uint32_t kBitsV1 = 256;
// CMAC's R_128 (SP 800-38B §5.3): the reduction constant of the subkey doubling.
constexpr uint8_t kRb = 0x87;

// A CMAC that cannot run means the OpenSSL installation is broken (no default provider): no key can be
// derived and there is no safe degraded mode, so stop.
[[noreturn]] void fatal(const char* what) {
  std::fprintf(stderr, "pspgw::crypto: OpenSSL CMAC failed: %s\n", what);
  std::abort();
}

EVP_MAC* cmac_algorithm() {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "CMAC", nullptr);  // fetched once, never freed
  if (mac == nullptr) fatal("EVP_MAC_fetch(CMAC)");
  return mac;
}

struct MacCtxFree {
  void operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }  // cleanses the key schedule
};

// One SP 800-108 input block: counter | label | context (SPI) | L, each a big-endian 32-bit field.
std::array<uint8_t, 16> kdf_block(uint32_t counter, uint32_t label, uint32_t spi, uint32_t bits) {
  std::array<uint8_t, 16> block{};
  store_be32(block.data(), counter);
  store_be32(block.data() + 4, label);
  store_be32(block.data() + 8, spi);
  store_be32(block.data() + 12, bits);
  return block;
}

#if defined(__AES__)
// AES-256 key expansion with AES-NI (Intel, "Advanced Encryption Standard (AES) New Instructions Set",
// figure 28): each step yields one 128-bit round key from the previous two.
__m128i spread(__m128i k) {
  k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
  k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
  return _mm_xor_si128(k, _mm_slli_si128(k, 4));
}

template <int Rcon>
__m128i even_round_key(__m128i two_back, __m128i prev) {
  return _mm_xor_si128(spread(two_back), _mm_shuffle_epi32(_mm_aeskeygenassist_si128(prev, Rcon), 0xff));
}

__m128i odd_round_key(__m128i two_back, __m128i prev) {
  return _mm_xor_si128(spread(two_back), _mm_shuffle_epi32(_mm_aeskeygenassist_si128(prev, 0), 0xaa));
}

template <int Rcon>
void expand_pair(__m128i* rk, int i) {
  rk[i] = even_round_key<Rcon>(rk[i - 2], rk[i - 1]);
  if (i + 1 < 15) rk[i + 1] = odd_round_key(rk[i - 1], rk[i]);
}

void expand_key(const uint8_t* key, uint8_t* out) {
  __m128i rk[15];
  rk[0] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key));
  rk[1] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key + 16));
  expand_pair<0x01>(rk, 2);
  expand_pair<0x02>(rk, 4);
  expand_pair<0x04>(rk, 6);
  expand_pair<0x08>(rk, 8);
  expand_pair<0x10>(rk, 10);
  expand_pair<0x20>(rk, 12);
  expand_pair<0x40>(rk, 14);
  for (int i = 0; i < 15; ++i) _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * i), rk[i]);
  secure_zero(rk, sizeof(rk));
}
#endif

}  // namespace

KdfKey::KdfKey(const MasterKey& master) {
#if defined(__AES__)
  expand_key(master.reveal().data(), round_keys_.data());
#else
  // Without AES-NI the "round keys" are the raw key, and encrypt_block runs OpenSSL's AES per call.
  std::copy(master.reveal().begin(), master.reveal().end(), round_keys_.begin());
#endif
  // K1 = double(AES_K(0^128)) in GF(2^128) (SP 800-38B §6.1).
  std::array<uint8_t, 16> l{};
  encrypt_block(l.data(), l.data());
  const uint8_t carry = l[0] >> 7;
  for (std::size_t i = 0; i < 15; ++i) k1_[i] = static_cast<uint8_t>(l[i] << 1 | l[i + 1] >> 7);
  k1_[15] = static_cast<uint8_t>(l[15] << 1 ^ (carry != 0 ? kRb : 0));
  secure_zero(l.data(), l.size());
}

KdfKey::~KdfKey() {
  secure_zero(round_keys_.data(), round_keys_.size());
  secure_zero(k1_.data(), k1_.size());
}

void KdfKey::encrypt_block(const uint8_t* in, uint8_t* out) const {
#if defined(__AES__)
  const auto* rk = reinterpret_cast<const __m128i*>(round_keys_.data());
  __m128i x = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in)), _mm_load_si128(rk));
  for (int i = 1; i < 14; ++i) x = _mm_aesenc_si128(x, _mm_load_si128(rk + i));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_aesenclast_si128(x, _mm_load_si128(rk + 14)));
#else
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                      EVP_CIPHER_CTX_free);
  int len = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_ecb(), nullptr, round_keys_.data(), nullptr) != 1 ||
      EVP_CIPHER_CTX_set_padding(ctx.get(), 0) != 1 || EVP_EncryptUpdate(ctx.get(), out, &len, in, 16) != 1) {
    fatal("AES-256-ECB");
  }
#endif
}

Secret<16> KdfKey::cmac_block(const std::array<uint8_t, 16>& block) const {
  alignas(16) std::array<uint8_t, 16> x;
  for (std::size_t i = 0; i < 16; ++i) x[i] = block[i] ^ k1_[i];
  Secret<16> mac;
  encrypt_block(x.data(), mac.mutable_bytes().data());
  secure_zero(x.data(), x.size());
  return mac;
}

Secret<16> KdfKey::derive_v0(uint32_t spi) const {
  return cmac_block(kdf_block(1, kLabelV0, spi, kBitsV0));
}

Secret<32> KdfKey::derive_v1(uint32_t spi) const {
  Secret<32> key;
  auto out = key.mutable_bytes();
  const Secret<16> first = cmac_block(kdf_block(1, kLabelV1, spi, kBitsV1));
  const Secret<16> second = cmac_block(kdf_block(2, kLabelV1, spi, kBitsV1));
  std::copy(first.reveal().begin(), first.reveal().end(), out.begin());
  std::copy(second.reveal().begin(), second.reveal().end(), out.begin() + 16);
  return key;
}

Secret<16> cmac_aes256_block(const MasterKey& key, const std::array<uint8_t, 16>& block) {
  std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx(EVP_MAC_CTX_new(cmac_algorithm()));
  if (!ctx) fatal("EVP_MAC_CTX_new");
  char cipher[] = "AES-256-CBC";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0),
                               OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(ctx.get(), key.reveal().data(), key.size(), params) != 1) fatal("EVP_MAC_init");
  if (EVP_MAC_update(ctx.get(), block.data(), block.size()) != 1) fatal("EVP_MAC_update");
  Secret<16> mac;
  std::size_t mac_len = 0;
  if (EVP_MAC_final(ctx.get(), mac.mutable_bytes().data(), &mac_len, mac.size()) != 1 ||
      mac_len != mac.size()) {
    fatal("EVP_MAC_final");
  }
  return mac;
}

Secret<16> derive_psp_key_v0(const MasterKey& master, uint32_t spi) {
  return KdfKey(master).derive_v0(spi);
}

Secret<32> derive_psp_key_v1(const MasterKey& master, uint32_t spi) {
  return KdfKey(master).derive_v1(spi);
}

}  // namespace pspgw::crypto
