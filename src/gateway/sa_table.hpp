// Transmit SAs: PSP_ENCRYPT's table, indexed by crypto id (the pkt_meta EGR_ACL sets, DOCA's design).
//
// The control thread installs and removes SAs; workers read them without locks. Publication is the flow
// engine's (flow::EpochDomain, docs/architecture.md): an SA is immutable once published, slots are atomic
// pointers stored with release and loaded with acquire, and a replaced or removed SA is destroyed only after
// every worker has passed a batch boundary. Each SA holds its key bytes and one prepared key per worker,
// because a crypto backend (and the keys it makes) belongs to one worker thread (crypto/aead.hpp); each
// worker prepares its key on its first packet with the SA (TxKeys), not the control thread for every worker
// at install: a prepared intel-ipsec-mb key is ~1.1 KB, 110 MB per worker for 100,000 SAs whether they
// carry traffic or not.
//
// IVs: unique per packet per key (spec §3). Each worker draws from its own 56-bit counter, tagged with the
// worker number in the top byte, shared by all SAs and never reset: no two packets of the process ever
// carry the same IV, whatever SA (or re-installed key) they use.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "base/result.hpp"
#include "base/secret.hpp"
#include "crypto/aead.hpp"
#include "flow/epoch.hpp"
#include "psp/encap.hpp"
#include "psp/encap_template.hpp"
#include "psp/header.hpp"

namespace pspgw::gateway {

using CryptoId = uint32_t;

// An SA's prepared keys, one slot per worker. Slot w is written only by worker w, once, on its first packet
// with the SA (an SA is otherwise immutable once published), and read by that worker alone until the SA
// is destroyed after a grace period (whose release/acquire chain orders the worker's store before the
// destructor's load). A key is deleted, and so zeroed (crypto::AeadKey), with the SA.
// One worker's slot (the default of one worker) sits inline: no heap chunk of its own per SA.
class TxKeys {
 public:
  TxKeys() = default;
  explicit TxKeys(std::size_t workers);
  ~TxKeys();
  // Not movable: the slots may be the object's own.
  TxKeys(const TxKeys&) = delete;
  TxKeys& operator=(const TxKeys&) = delete;

  std::size_t size() const { return n_; }
  // Worker `w`: its key, nullptr until it made one (or if the SA has no slot for it).
  const crypto::AeadKey* get(std::size_t w) const {
    return w < n_ ? slots_[w].load(std::memory_order_relaxed) : nullptr;
  }
  // Worker `w` only, into its empty slot: keeps `key` and returns it (nullptr, key dropped: no slot for w).
  const crypto::AeadKey* set(std::size_t w, std::unique_ptr<crypto::AeadKey> key) const;

 private:
  mutable std::atomic<crypto::AeadKey*> one_{nullptr};
  std::atomic<crypto::AeadKey*>* slots_ = &one_;  // &one_, or an array of n_ > 1 on the heap
  std::size_t n_ = 0;
};

// An SA's template, or none: std::optional's interface without its flag (a template that exists is never
// empty, so size() 0 says "none"), which would take an SA past a 176-byte heap chunk.
class SaTemplate {
 public:
  SaTemplate() = default;
  explicit SaTemplate(const psp::EncapTemplate& t) : t_(t) {}
  explicit operator bool() const { return t_.size() != 0; }
  const psp::EncapTemplate& operator*() const { return t_; }
  const psp::EncapTemplate* operator->() const { return &t_; }

 private:
  psp::EncapTemplate t_;
};

// Immutable once published (but for TxKeys' slots). The SPI, version, VC, crypt offset and outer
// addresses live in the template alone: with one worker an SA is one 192-byte heap chunk, where it was a
// 256-byte one and the worker slots' 32 (memory at 100,000 tunnels, README Performance).
struct TxSa {
  TxSa() = default;  // no key slots: SaTable refuses it (kBadKey)
  // The SA sealing with `params` (version, SPI, crypt offset, VC) between `outer`'s addresses: `key` is the
  // peer's key for the SPI (its first key_size(version) bytes), with a key slot for each of `workers`.
  TxSa(const psp::SealParams& params, const psp::OuterHeaders& outer, Secret<32> key, std::size_t workers);

  Secret<32> key;
  TxKeys keys;  // [worker], each made by its worker from `key` (key_for); no slots: kBadKey
  // The frame head encap() copies (psp/encap_template.hpp), made from the constructor's params; it holds
  // the SPI, version and the rest. Absent when they cannot make one (no outer addresses): encap() then
  // drops as kNoSa.
  SaTemplate tmpl;
  // Worker `worker`: the key its backend prepared, made now if this is its first packet with the SA
  // (allocates once per SA and worker; never again for that pair). nullptr: no template, no slot for the
  // worker, or key bytes the backend refuses.
  const crypto::AeadKey* key_for(uint16_t worker, const crypto::AeadBackend& backend) const {
    const crypto::AeadKey* k = keys.get(worker);
    return k != nullptr ? k : make_key(worker, backend);
  }

 private:
  const crypto::AeadKey* make_key(uint16_t worker, const crypto::AeadBackend& backend) const;
};

enum class SaError : uint8_t { kFull, kBadKey, kNotFound };

class SaTable {
 public:
  SaTable(uint32_t capacity, flow::EpochDomain& epoch);
  ~SaTable();
  SaTable(const SaTable&) = delete;
  SaTable& operator=(const SaTable&) = delete;

  // Control thread. install: a free crypto id for a new SA; replace: swaps the SA behind an id.
  Result<CryptoId, SaError> install(std::unique_ptr<TxSa> sa);
  Status<SaError> replace(CryptoId id, std::unique_ptr<TxSa> sa);
  Status<SaError> remove(CryptoId id);
  std::size_t size() const { return used_; }
  uint32_t capacity() const { return static_cast<uint32_t>(slots_.size()); }

  // Worker: the SA behind an id, valid until this worker's next quiescent point; nullptr if none.
  const TxSa* get(CryptoId id) const {
    return id < slots_.size() ? slots_[id].load(std::memory_order_acquire) : nullptr;
  }

 private:
  void retire(const TxSa* sa);

  std::vector<std::atomic<const TxSa*>> slots_;
  // Shared with the grace-period callbacks of remove(), which may run after the table is gone (the
  // epoch domain outlives it and runs pending callbacks when destroyed).
  std::shared_ptr<std::vector<CryptoId>> free_;
  std::size_t used_ = 0;
  flow::EpochDomain& epoch_;
};

// One worker's IV source (spec §3: unique per packet per key).
class IvCounter {
 public:
  explicit IvCounter(uint16_t worker) : next_((static_cast<uint64_t>(worker) + 1) << 56 | 1) {}
  uint64_t next() { return next_++; }

 private:
  uint64_t next_;
};

}  // namespace pspgw::gateway
