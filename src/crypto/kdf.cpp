// PSP key derivation: SP 800-108 counter-mode KDF, PRF = AES-256-CMAC (shared/spec/psp-protocol.md §4).
#include "crypto/kdf.hpp"

#include <intel-ipsec-mb.h>
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
constexpr uint64_t kBlockSize = 16;

// A CMAC that cannot run means the crypto installation is broken: no key can be derived and there is no
// safe degraded mode, so stop.
[[noreturn]] void fatal(const char* library, const char* what) {
  std::fprintf(stderr, "pspgw::crypto: %s CMAC failed: %s\n", library, what);
  std::abort();
}

EVP_MAC* cmac_algorithm() {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "CMAC", nullptr);  // fetched once, never freed
  if (mac == nullptr) fatal("OpenSSL", "EVP_MAC_fetch(CMAC)");
  return mac;
}

struct MacCtxFree {
  void operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }  // cleanses the key schedule
};

using MgrPtr = std::unique_ptr<IMB_MGR, KdfContext::Free>;

MgrPtr make_manager() {
  MgrPtr mgr(alloc_mb_mgr(0));
  if (!mgr) fatal("intel-ipsec-mb", "alloc_mb_mgr");
  IMB_ARCH arch = IMB_ARCH_NONE;
  init_mb_mgr_auto(mgr.get(), &arch);  // without AES-NI this is ipsec-mb's own (slower) software AES
  if (imb_get_errno(mgr.get()) != 0 || arch == IMB_ARCH_NONE) fatal("intel-ipsec-mb", "init_mb_mgr_auto");
  return mgr;
}

// The calling thread's manager: the job API queues jobs in it, so it is never shared between threads.
// Allocated on the thread's first call, wiped and freed when the thread exits.
IMB_MGR* thread_manager() {
  thread_local const MgrPtr mgr = make_manager();
  return mgr.get();
}

// One SP 800-108 input block: counter | label | context (SPI) | L, each a big-endian 32-bit field.
std::array<uint8_t, 16> kdf_block(uint32_t counter, uint32_t label, uint32_t spi, uint32_t bits) {
  std::array<uint8_t, 16> block{};
  store_be32(block.data(), counter);
  store_be32(block.data() + 4, label);
  store_be32(block.data() + 8, spi);
  store_be32(block.data() + 12, bits);
  return block;
}

// A completed job must have run the hash; anything else is a bad job (a bug here), not a recoverable state.
void check_completed(IMB_MGR* mgr, const IMB_JOB* job) {
  if (job->status == IMB_STATUS_COMPLETED) return;
  const int err = imb_get_errno(mgr);
  fatal("intel-ipsec-mb", err != 0 ? imb_get_strerror(err) : "a job did not complete");
}

// Collects every job the manager still holds; each wrote its tag to where its submitter pointed it.
void drain(IMB_MGR* mgr) {
  while (const IMB_JOB* job = IMB_FLUSH_JOB(mgr)) check_completed(mgr, job);
}

}  // namespace

// The manager's job slots and out-of-order lanes have held pointers to, and scratch derived from, key
// material: wiped before it is freed.
void KdfContext::Free::operator()(IMB_MGR* mgr) const {
  imb_clear_mem(mgr, imb_get_mb_mgr_size());
  free_mb_mgr(mgr);
}

KdfContext::KdfContext() : mgr_(make_manager()) {}

KdfContext::~KdfContext() = default;

// Reads only the KdfKey's constant key material: the queue state lives in the manager.
class KdfKey::Jobs {
 public:
  Jobs(const KdfKey& key, IMB_MGR* mgr) : key_(key), mgr_(mgr) {}
  ~Jobs() { drain(mgr_); }
  Jobs(const Jobs&) = delete;
  Jobs& operator=(const Jobs&) = delete;

  // Queues CMAC(block) into tag (16 bytes); the tag is written by the time the Jobs object is gone. block
  // must live as long, too.
  void cmac(const std::array<uint8_t, 16>& block, uint8_t* tag) {
    IMB_JOB* job = IMB_GET_NEXT_JOB(mgr_);
    job->cipher_mode = IMB_CIPHER_NULL;
    job->cipher_direction = IMB_DIR_ENCRYPT;
    job->chain_order = IMB_ORDER_HASH_CIPHER;
    job->hash_alg = IMB_AUTH_AES_CMAC_256;
    job->src = block.data();
    job->dst = nullptr;
    job->cipher_start_src_offset_in_bytes = 0;
    job->msg_len_to_cipher_in_bytes = 0;
    job->hash_start_src_offset_in_bytes = 0;
    job->msg_len_to_hash_in_bytes = kBlockSize;
    job->auth_tag_output = tag;
    job->auth_tag_output_len_in_bytes = kBlockSize;
    job->u.CMAC._key_expanded = key_.round_keys_.data();
    job->u.CMAC._skey1 = key_.k1_.data();
    job->u.CMAC._skey2 = key_.k2_.data();
    for (const IMB_JOB* done = IMB_SUBMIT_JOB(mgr_); done != nullptr; done = IMB_GET_COMPLETED_JOB(mgr_)) {
      check_completed(mgr_, done);
    }
  }

 private:
  const KdfKey& key_;
  IMB_MGR* mgr_;
};

KdfKey::KdfKey(const MasterKey& master, KdfContext* ctx) {
  IMB_MGR* mgr = ctx != nullptr ? ctx->mgr_.get() : thread_manager();
  alignas(16) std::array<uint8_t, 15 * 16> decrypt_keys;  // IMB_AES_KEYEXP_256 always writes both schedules
  IMB_AES_KEYEXP_256(mgr, master.reveal().data(), round_keys_.data(), decrypt_keys.data());
  secure_zero(decrypt_keys.data(), decrypt_keys.size());
  IMB_AES_CMAC_SUBKEY_GEN_256(mgr, round_keys_.data(), k1_.data(), k2_.data());
}

KdfKey::~KdfKey() {
  secure_zero(round_keys_.data(), round_keys_.size());
  secure_zero(k1_.data(), k1_.size());
  secure_zero(k2_.data(), k2_.size());
}

Secret<16> KdfKey::cmac_block(const std::array<uint8_t, 16>& block) const {
  Secret<16> mac;
  Jobs(*this, thread_manager()).cmac(block, mac.mutable_bytes().data());
  return mac;
}

Secret<16> KdfKey::derive_v0(uint32_t spi) const {
  return cmac_block(kdf_block(1, kLabelV0, spi, kBitsV0));
}

Secret<32> KdfKey::derive_v1(uint32_t spi) const {
  return derive_v1_with(thread_manager(), spi);
}

Secret<16> KdfKey::derive_v0(uint32_t spi, KdfContext& ctx) const {
  Secret<16> mac;
  const std::array<uint8_t, 16> block = kdf_block(1, kLabelV0, spi, kBitsV0);
  Jobs(*this, ctx.mgr_.get()).cmac(block, mac.mutable_bytes().data());
  return mac;
}

Secret<32> KdfKey::derive_v1(uint32_t spi, KdfContext& ctx) const {
  return derive_v1_with(ctx.mgr_.get(), spi);
}

// Both blocks are queued before either is collected: the manager runs them side by side in its lanes.
Secret<32> KdfKey::derive_v1_with(IMB_MGR* mgr, uint32_t spi) const {
  Secret<32> key;
  const std::array<uint8_t, 16> first = kdf_block(1, kLabelV1, spi, kBitsV1);
  const std::array<uint8_t, 16> second = kdf_block(2, kLabelV1, spi, kBitsV1);
  {
    Jobs jobs(*this, mgr);
    jobs.cmac(first, key.mutable_bytes().data());
    jobs.cmac(second, key.mutable_bytes().data() + 16);
  }
  return key;
}

Secret<16> cmac_aes256_block(const MasterKey& key, const std::array<uint8_t, 16>& block) {
  std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx(EVP_MAC_CTX_new(cmac_algorithm()));
  if (!ctx) fatal("OpenSSL", "EVP_MAC_CTX_new");
  char cipher[] = "AES-256-CBC";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0),
                               OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(ctx.get(), key.reveal().data(), key.size(), params) != 1) fatal("OpenSSL", "EVP_MAC_init");
  if (EVP_MAC_update(ctx.get(), block.data(), block.size()) != 1) fatal("OpenSSL", "EVP_MAC_update");
  Secret<16> mac;
  std::size_t mac_len = 0;
  if (EVP_MAC_final(ctx.get(), mac.mutable_bytes().data(), &mac_len, mac.size()) != 1 ||
      mac_len != mac.size()) {
    fatal("OpenSSL", "EVP_MAC_final");
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
