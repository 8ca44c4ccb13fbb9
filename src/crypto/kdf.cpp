// PSP key derivation: SP 800-108 counter-mode KDF, PRF = AES-256-CMAC (shared/spec/psp-protocol.md §4).
#include "crypto/kdf.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "base/byteorder.hpp"

namespace pspgw::crypto {
namespace {

// The label field of the KDF input block: "Pv0\0" / "Pv1\0".
constexpr uint32_t kLabelV0 = 0x50763000;
constexpr uint32_t kLabelV1 = 0x50763100;
// L, the derived key length in bits.
constexpr uint32_t kBitsV0 = 128;
constexpr uint32_t kBitsV1 = 256;

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

}  // namespace

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
  return cmac_aes256_block(master, kdf_block(1, kLabelV0, spi, kBitsV0));
}

Secret<32> derive_psp_key_v1(const MasterKey& master, uint32_t spi) {
  const Secret<16> first = cmac_aes256_block(master, kdf_block(1, kLabelV1, spi, kBitsV1));
  const Secret<16> second = cmac_aes256_block(master, kdf_block(2, kLabelV1, spi, kBitsV1));
  Secret<32> key;
  auto out = key.mutable_bytes();
  std::copy(first.reveal().begin(), first.reveal().end(), out.begin());
  std::copy(second.reveal().begin(), second.reveal().end(), out.begin() + 16);
  return key;
}

}  // namespace pspgw::crypto
