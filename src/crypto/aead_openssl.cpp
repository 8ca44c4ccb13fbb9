// OpenSSL 3 EVP AES-GCM backend: the portable reference implementation.
//
// make_key() runs the AES key schedule and GHASH precomputation once, into one encrypt and one decrypt
// EVP_CIPHER_CTX; each op then only sets the nonce. Tag comparison on open is OpenSSL's (CRYPTO_memcmp).
// GMAC is the same GCM cipher fed the text as AAD (the reference definition: GCM with only AAD).
#include <openssl/evp.h>

#include <cassert>
#include <climits>
#include <cstring>

#include "crypto/aead.hpp"

namespace pspgw::crypto {
namespace {

struct CipherFree {
  void operator()(EVP_CIPHER* c) const { EVP_CIPHER_free(c); }
};
struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }  // cleanses the key schedule
};
using CipherPtr = std::unique_ptr<EVP_CIPHER, CipherFree>;
using CtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

class OpenSslKey final : public AeadKey {
 public:
  OpenSslKey(AeadAlg alg, CtxPtr enc, CtxPtr dec)
      : AeadKey(alg), enc_(std::move(enc)), dec_(std::move(dec)) {}
  // The contexts hold per-op state (nonce, GHASH accumulator): a key is used by one thread at a time.
  EVP_CIPHER_CTX* enc() const { return enc_.get(); }
  EVP_CIPHER_CTX* dec() const { return dec_.get(); }

 private:
  CtxPtr enc_;
  CtxPtr dec_;
};

CtxPtr keyed_ctx(const EVP_CIPHER* cipher, std::span<const uint8_t> key, int encrypt) {
  CtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx || EVP_CipherInit_ex(ctx.get(), cipher, nullptr, key.data(), nullptr, encrypt) != 1)
    return nullptr;
  return ctx;
}

bool fits_int(const AeadOp& op) {
  return op.len <= static_cast<std::size_t>(INT_MAX) && op.aad.size() <= static_cast<std::size_t>(INT_MAX);
}

// Feeds nonce, AAD and text to a keyed context. The GCM default IV length (12) is the PSP nonce length.
// GMAC: the text is authenticated as more AAD and copied through unchanged.
bool gcm_update(EVP_CIPHER_CTX* ctx, const AeadOp& op, int encrypt, bool gmac) {
  int n = 0;
  if (EVP_CipherInit_ex(ctx, nullptr, nullptr, nullptr, op.nonce.data(), encrypt) != 1) return false;
  if (!op.aad.empty() &&
      EVP_CipherUpdate(ctx, nullptr, &n, op.aad.data(), static_cast<int>(op.aad.size())) != 1) {
    return false;
  }
  if (op.len == 0) return true;
  if (!gmac) return EVP_CipherUpdate(ctx, op.out, &n, op.in, static_cast<int>(op.len)) == 1;
  if (EVP_CipherUpdate(ctx, nullptr, &n, op.in, static_cast<int>(op.len)) != 1) return false;
  if (op.out != op.in) std::memmove(op.out, op.in, op.len);
  return true;
}

// GCM's Final writes no bytes; it gets a scratch buffer so that out may be null when len is 0.
bool seal_one(const OpenSslKey& key, AeadOp& op) {
  EVP_CIPHER_CTX* ctx = key.enc();
  std::array<uint8_t, 16> none;
  int n = 0;
  return fits_int(op) && gcm_update(ctx, op, 1, is_gmac(key.alg())) &&
         EVP_CipherFinal_ex(ctx, none.data(), &n) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, kGcmTagSize, op.tag) == 1;
}

bool open_one(const OpenSslKey& key, AeadOp& op) {
  EVP_CIPHER_CTX* ctx = key.dec();
  std::array<uint8_t, kGcmTagSize> tag;  // SET_TAG takes a non-const pointer
  std::memcpy(tag.data(), op.tag, tag.size());
  std::array<uint8_t, 16> none;
  int n = 0;
  return fits_int(op) && gcm_update(ctx, op, 0, is_gmac(key.alg())) &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, kGcmTagSize, tag.data()) == 1 &&
         EVP_CipherFinal_ex(ctx, none.data(), &n) == 1;
}

const OpenSslKey& as_openssl(const AeadKey* key) {
  assert(dynamic_cast<const OpenSslKey*>(key) != nullptr);
  return *static_cast<const OpenSslKey*>(key);
}

class OpenSslBackend final : public AeadBackend {
 public:
  OpenSslBackend(CipherPtr gcm128, CipherPtr gcm256)
      : gcm128_(std::move(gcm128)), gcm256_(std::move(gcm256)) {}

  std::string_view name() const override { return "openssl"; }

  std::unique_ptr<AeadKey> make_key(AeadAlg alg, std::span<const uint8_t> key) const override {
    if (key.size() != key_size(alg)) return nullptr;
    const EVP_CIPHER* cipher = key_size(alg) == 16 ? gcm128_.get() : gcm256_.get();
    CtxPtr enc = keyed_ctx(cipher, key, 1);
    CtxPtr dec = keyed_ctx(cipher, key, 0);
    if (!enc || !dec) return nullptr;
    return std::make_unique<OpenSslKey>(alg, std::move(enc), std::move(dec));
  }

  void seal(std::span<AeadOp> ops) const override {
    for (AeadOp& op : ops) op.ok = well_formed(op) && seal_one(as_openssl(op.key), op);
  }

  void open(std::span<AeadOp> ops) const override {
    for (AeadOp& op : ops) op.ok = well_formed(op) && open_one(as_openssl(op.key), op);
  }

 private:
  CipherPtr gcm128_;
  CipherPtr gcm256_;
};

}  // namespace

std::unique_ptr<AeadBackend> make_openssl_backend() {
  CipherPtr gcm128(EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr));
  CipherPtr gcm256(EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr));
  if (!gcm128 || !gcm256) return nullptr;
  return std::make_unique<OpenSslBackend>(std::move(gcm128), std::move(gcm256));
}

}  // namespace pspgw::crypto
