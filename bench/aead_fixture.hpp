// Raw AES-GCM workload shared by the benchmarks: a batch of PSP-shaped packets (AAD || text || tag,
// contiguous as on the wire), prepared keys, and ready-made seal / open ops. Everything is allocated up
// front so the timed loop only runs the backend.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "crypto/aead.hpp"

namespace pspgw::bench {

class AeadFixture {
 public:
  static constexpr std::size_t kBatch = 32;
  static constexpr std::size_t kAadLen = 16;  // the PSP header: all the AAD in tunnel mode, crypt offset 0
  static constexpr std::size_t kKeys = 4;     // a batch mixes SAs, as on a gateway

  AeadFixture(const crypto::AeadBackend& backend, crypto::AeadAlg alg, std::size_t len)
      : backend_(backend), len_(len) {
    std::vector<uint8_t> raw(crypto::key_size(alg));
    for (std::size_t k = 0; k < kKeys; ++k) {
      for (std::size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<uint8_t>(k * 31 + i);
      keys_.push_back(backend.make_key(alg, raw));
    }
    const std::size_t pkt_len = kAadLen + len + crypto::kGcmTagSize;
    for (std::size_t p = 0; p < kBatch; ++p) {
      packets_.emplace_back(pkt_len);
      sealed_.emplace_back(pkt_len);
      for (std::size_t i = 0; i < pkt_len; ++i) packets_[p][i] = static_cast<uint8_t>(p + i);
      scratch_.emplace_back(len == 0 ? 1 : len);
    }
    for (std::size_t p = 0; p < kBatch; ++p) {
      seal_ops_.push_back(op_on(p, packets_[p].data(), packets_[p].data() + kAadLen));
    }
    // Seal a copy once, so that every open op has a valid tag and verifies.
    for (std::size_t p = 0; p < kBatch; ++p) sealed_[p] = packets_[p];
    std::vector<crypto::AeadOp> once;
    for (std::size_t p = 0; p < kBatch; ++p) {
      once.push_back(op_on(p, sealed_[p].data(), sealed_[p].data() + kAadLen));
      open_ops_.push_back(op_on(p, sealed_[p].data(), scratch_[p].data()));
    }
    backend.seal(once);
  }

  bool valid() const {
    for (const auto& key : keys_) {
      if (!key) return false;
    }
    return true;
  }
  std::size_t len() const { return len_; }
  const crypto::AeadBackend& backend() const { return backend_; }
  const crypto::AeadKey& key(std::size_t packet) const { return *keys_[packet % kKeys]; }
  // In-place seal of packet p (repeated seals re-encrypt the same buffer: same cost, nonce unchanged).
  std::span<crypto::AeadOp> seal_ops() { return seal_ops_; }
  // Out-of-place open of a sealed copy into scratch: every op verifies, every time.
  std::span<crypto::AeadOp> open_ops() { return open_ops_; }
  std::vector<uint8_t>& packet(std::size_t p) { return packets_[p]; }

  static bool all_ok(std::span<const crypto::AeadOp> ops) {
    for (const auto& op : ops) {
      if (!op.ok) return false;
    }
    return true;
  }

 private:
  // Nonce = SPI || IV, unique per packet.
  crypto::AeadOp op_on(std::size_t p, uint8_t* pkt, uint8_t* out) const {
    crypto::AeadOp op;
    op.key = keys_[p % kKeys].get();
    op.nonce = {0x10, 0, 0, static_cast<uint8_t>(p % kKeys), 0, 0, 0, 0, 0, 0, 0, static_cast<uint8_t>(p)};
    op.aad = {pkt, kAadLen};
    op.in = pkt + kAadLen;
    op.out = out;
    op.len = len_;
    op.tag = pkt + kAadLen + len_;
    return op;
  }

  const crypto::AeadBackend& backend_;
  std::size_t len_;
  std::vector<std::unique_ptr<crypto::AeadKey>> keys_;
  std::vector<std::vector<uint8_t>> packets_, sealed_, scratch_;
  std::vector<crypto::AeadOp> seal_ops_, open_ops_;
};

}  // namespace pspgw::bench
