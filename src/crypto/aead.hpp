// AES-GCM and AES-GMAC behind one interface, batched: one virtual call per batch, never per packet.
//
// A backend turns raw key bytes into an AeadKey (expanded key schedule / cipher context, zeroed when
// destroyed). seal/open take a span of AeadOp; each op names its key, so one batch may mix SAs.
// In-place operation (in == out) is supported and is what the data path uses. AAD and text are separate
// spans, but in PSP they are contiguous in the packet (header || clear bytes || ciphertext).
//
// Threading: a backend instance is single-threaded: it owns per-instance scratch state (ipsec-mb's
// IMB_MGR and GCM context; OpenSSL's per-key cipher contexts), so each worker thread makes its own backend,
// and a key is used only with the backend instance that made it, from that backend's thread. Nothing is
// locked. seal/open allocate nothing; neither does rekey (where a backend has it).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "base/prefetch.hpp"

namespace pspgw::crypto {

// GMAC (PSP versions 2/3, spec §3 "nothing is encrypted, everything after the header is authenticated") is
// GCM with an empty plaintext: the tag covers aad || text as one AAD string, and the text stays clear (seal
// and open copy it to out when out != in). An op is pointed at a packet the same way for either family.
enum class AeadAlg : uint8_t {
  kAesGcm128,   // PSP version 0
  kAesGcm256,   // PSP version 1
  kAesGmac128,  // PSP version 2: integrity only
  kAesGmac256,  // PSP version 3: integrity only
};
constexpr std::size_t key_size(AeadAlg alg) {
  return alg == AeadAlg::kAesGcm128 || alg == AeadAlg::kAesGmac128 ? 16 : 32;
}
constexpr bool is_gmac(AeadAlg alg) {
  return alg == AeadAlg::kAesGmac128 || alg == AeadAlg::kAesGmac256;
}

inline constexpr std::size_t kGcmTagSize = 16;
inline constexpr std::size_t kGcmNonceSize = 12;
using GcmNonce = std::array<uint8_t, kGcmNonceSize>;

// A prepared key. Backend-specific; only the backend that made it may use it. 16 bytes (the vtable pointer
// and the algorithm), so that a backend can start its key material in the object's first cache line: with
// 100,000 keys not in the CPU's caches each line an open touches is a wait (bench_spi_scale), and the
// algorithm, read per op, then shares a line with the round keys.
class AeadKey {
 public:
  virtual ~AeadKey() = default;
  AeadAlg alg() const { return alg_; }

 protected:
  explicit AeadKey(AeadAlg alg) : alg_(alg) {}
  void set_alg(AeadAlg alg) { alg_ = alg; }

 private:
  AeadAlg alg_;
};

// The bytes of a key object an op on a short packet reads first (the round keys and the first GHASH
// powers, as a backend lays them out), as offsets from the object's start: its first `head` bytes and
// `tail_len` bytes from `tail_offset`. The same for every key of one algorithm from one backend, so a key
// cache can ask the CPU for them knowing only the key's address (prefetch_key): reading them from the key
// itself would wait for the very line the hint is meant to bring.
struct KeyHotBytes {
  uint16_t head = 0;
  uint16_t tail_offset = 0;
  uint16_t tail_len = 0;
};

// Asks the CPU for `hot`'s bytes of `key`; a hint, with no effect on any result. A key cache calls it for a
// whole batch before the batch is opened: with more keys than the CPU caches hold, the batch's memory reads
// then overlap instead of each packet waiting for its own key.
inline void prefetch_key(const AeadKey* key, const KeyHotBytes& hot) {
  const auto* self = reinterpret_cast<const uint8_t*>(key);
  prefetch_lines(self, hot.head);
  prefetch_lines(self + hot.tail_offset, hot.tail_len);
}

struct AeadOp {
  const AeadKey* key = nullptr;
  GcmNonce nonce{};
  std::span<const uint8_t> aad;
  const uint8_t* in = nullptr;  // plaintext (seal) or ciphertext (open); may equal out
  uint8_t* out = nullptr;
  std::size_t len = 0;     // 0 is legal: the tag still covers the AAD and is still checked (GMAC: clear)
  uint8_t* tag = nullptr;  // seal: written (16 bytes); open: read and verified
  bool ok = false;         // open: true iff the tag verified; seal: true when done
};

// True when op's pointers are usable for its lengths: a key, a tag buffer, and text buffers when len > 0.
// Backends answer ok = false for an op that is not, rather than touch a null pointer.
constexpr bool well_formed(const AeadOp& op) {
  return op.key != nullptr && op.tag != nullptr && (op.len == 0 || (op.in != nullptr && op.out != nullptr));
}

class AeadBackend {
 public:
  virtual ~AeadBackend() = default;
  virtual std::string_view name() const = 0;
  // key.size() must equal key_size(alg); returns nullptr otherwise.
  virtual std::unique_ptr<AeadKey> make_key(AeadAlg alg, std::span<const uint8_t> key) const = 0;
  // Prepares `key` (made by this backend) again, in place, for new key bytes and algorithm, allocating
  // nothing: what lets a key cache recycle its key objects. False (key untouched) where the backend cannot
  // (OpenSSL: its contexts allocate) or key.size() != key_size(alg); the caller then calls make_key. Never
  // while an op names `key`.
  virtual bool rekey(AeadKey& /*key*/, AeadAlg /*alg*/, std::span<const uint8_t> /*key_bytes*/) const {
    return false;
  }
  // The bytes and alignment of one key object, for a caller that places keys itself (make_key_at); {0, 0}
  // where the backend cannot (OpenSSL: its contexts live on the heap).
  struct KeyStorage {
    std::size_t size = 0;
    std::size_t align = 0;
  };
  virtual KeyStorage key_storage() const { return {}; }
  // make_key into `storage` (key_storage().size bytes at key_storage().align), allocating nothing; the
  // caller ends the key with std::destroy_at (its destructor clears the key bytes) and owns the storage.
  // nullptr where make_key would give nullptr or the backend places no keys.
  virtual AeadKey* make_key_at(void* /*storage*/, AeadAlg /*alg*/, std::span<const uint8_t> /*key*/) const {
    return nullptr;
  }
  // Where keys of `alg` made by this backend keep what short packets read first; none by default.
  virtual KeyHotBytes hot_bytes(AeadAlg /*alg*/) const { return {}; }
  virtual void seal(std::span<AeadOp> ops) const = 0;
  // On tag mismatch op.ok = false and the contents of out are unspecified (callers must not deliver them).
  virtual void open(std::span<AeadOp> ops) const = 0;
};

// The portable reference (OpenSSL 3 EVP).
std::unique_ptr<AeadBackend> make_openssl_backend();
// The fast path on x86-64 (intel-ipsec-mb). nullptr if the CPU lacks AES-NI.
std::unique_ptr<AeadBackend> make_ipsec_mb_backend();
// ipsec-mb where available, else OpenSSL.
std::unique_ptr<AeadBackend> make_default_backend();
// By name: "ipsec-mb" | "openssl" | "auto"; nullptr for an unknown name.
std::unique_ptr<AeadBackend> make_backend(std::string_view name);

}  // namespace pspgw::crypto
