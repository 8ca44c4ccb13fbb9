// Encrypting and decrypting whole captures, batch by batch, the way the google/psp reference tools
// psp_encrypt and psp_decrypt do (shared/spec/psp-protocol.md §6; differences in README.md here).
//
// encrypt: one SA per run (SPI, version, mode, crypt offsets, VC from the config); IV 1, 2, 3, ... per
//   encrypted frame. Frames the reference skips are skipped for the same reasons and counted; frames it
//   refuses (partial capture, too large) stop the run. -e sets reserved bit 7 of the crypt-offset byte
//   after sealing, which is authenticated, so every such frame must fail to decrypt.
// decrypt: the receive key of each frame is derived from its SPI and version (bounded key cache);
//   tunnel vs transport comes from Next Header. Frames that are not PSP (not IP, not UDP, UDP port not
//   1000) are skipped like the reference does; PSP frames that fail are counted per psp::DropReason and
//   never written. Unlike the reference, the tag is verified also for an empty ciphertext, and one bad
//   frame does not stop the run.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "config.hpp"
#include "crypto/aead.hpp"
#include "net/packet.hpp"
#include "ports/pcap_io.hpp"
#include "psp/drop_reason.hpp"
#include "psp/key_cache.hpp"
#include "psp/key_ring.hpp"

namespace pspgw::psp_pcap {

// The reference's packet buffer size (ETH_JUMBO_MAX_OCTETS): the largest frame it writes, and the
// snaplen of the captures psp_encrypt and psp_decrypt write.
inline constexpr uint32_t kMaxFrame = 9014;

// A condition that stops the run (the reference's PKT_ERR), with a message naming the record.
struct FatalError {
  std::string message;
};

enum class EncryptSkip : uint8_t {
  kNotIp,               // ethertype neither IPv4 nor IPv6 (VLAN-tagged frames included, as in the reference)
  kMalformed,           // IP header truncated or inconsistent, or refused by the encapsulation
  kTransportNotTcpUdp,  // transport mode, IPv6, next header not TCP/UDP
  kCryptOffsetTooBig,   // crypt offset beyond the bytes to protect
  kCount,
};
std::string_view to_string(EncryptSkip s);

struct EncryptStats {
  uint64_t encrypted = 0;
  std::array<uint64_t, static_cast<std::size_t>(EncryptSkip::kCount)> skipped{};
  uint64_t total_skipped() const;
};

struct EncryptOptions {
  bool corrupt = false;      // -e
  uint64_t first_iv = 1;     // the reference starts at 1
  std::FILE* log = nullptr;  // per-frame skip lines (-v); nullptr = quiet
};

class Encryptor {
 public:
  // key: the derived key for cfg.spi/cfg.version, made by `aead`.
  Encryptor(const EncryptConfig& cfg, const crypto::AeadBackend& aead, const crypto::AeadKey& key,
            EncryptOptions opts);

  // Seals batch[i] (described by recs[i]) in place. Skipped frames go back to `pool` and leave the batch;
  // recs is compacted alongside, so afterwards batch[i] is described by recs[i].
  Status<FatalError> run(net::PacketBatch& batch, std::span<ports::PcapRecord> recs, net::PacketPool& pool);
  const EncryptStats& stats() const { return stats_; }

 private:
  // Returns kCount if the frame is to be sealed, with its SealParams in `params`.
  Result<EncryptSkip, FatalError> classify(const net::Packet& pkt, const ports::PcapRecord& rec,
                                           psp::SealParams& params) const;
  void skip(EncryptSkip why, const ports::PcapRecord& rec);

  const EncryptConfig& cfg_;
  const crypto::AeadBackend& aead_;
  const crypto::AeadKey& key_;
  EncryptOptions opts_;
  uint64_t next_iv_;
  EncryptStats stats_;
};

enum class DecryptSkip : uint8_t {
  kNotIp,       // ethertype neither IPv4 nor IPv6
  kNotUdp,      // IP protocol / next header not UDP
  kNotPspPort,  // UDP destination port not 1000
  kCount,
};
std::string_view to_string(DecryptSkip s);

struct DecryptStats {
  uint64_t decrypted = 0;
  std::array<uint64_t, static_cast<std::size_t>(DecryptSkip::kCount)> skipped{};
  std::array<uint64_t, static_cast<std::size_t>(psp::DropReason::kCount)> failed{};
  uint64_t total_skipped() const;
  uint64_t total_failed() const;
};

class Decryptor {
 public:
  // key_log: each newly derived key is printed there (debug tool; -v only). report: the first failed
  // frames, one line each. nullptr = quiet.
  Decryptor(const MasterKeys& keys, const crypto::AeadBackend& aead, std::FILE* key_log,
            std::FILE* report = nullptr);
  ~Decryptor();
  Decryptor(const Decryptor&) = delete;
  Decryptor& operator=(const Decryptor&) = delete;

  // Decrypts batch[i] in place; frames skipped or failed go back to `pool` and leave the batch, recs is
  // compacted alongside.
  Status<FatalError> run(net::PacketBatch& batch, std::span<ports::PcapRecord> recs, net::PacketPool& pool);
  const DecryptStats& stats() const { return stats_; }

 private:
  class Keys;
  const crypto::AeadBackend& aead_;
  std::FILE* report_;
  std::shared_ptr<const psp::MasterKeySnapshot> snapshot_;
  std::unique_ptr<Keys> keys_;
  DecryptStats stats_;
};

// Frames not partial captures: the reference refuses caplen != len.
Status<FatalError> check_complete(const ports::PcapRecord& rec);

}  // namespace pspgw::psp_pcap

namespace pspgw::psp_pcap {

// Reads `in` batch by batch through `engine` (Encryptor or Decryptor) into `out`, timestamps copied.
template <class Engine>
Status<FatalError> pump(ports::PcapReader& in, net::PacketPool& pool, Engine& engine,
                        ports::PcapWriter& out) {
  std::array<ports::PcapRecord, net::kMaxBatch> recs;
  std::array<ports::PcapTimestamp, net::kMaxBatch> ts;
  bool more = true;
  while (more) {
    net::PacketBatch batch;
    auto read = in.read_batch(pool, batch, recs);
    Status<FatalError> st;
    if (!read) st = Err{FatalError{read.error().message}};
    if (st) st = engine.run(batch, {recs.data(), batch.size()}, pool);
    if (st) {
      for (std::size_t i = 0; i < batch.size(); ++i) ts[i] = recs[i].ts;
      if (auto w = out.write_batch(batch, {ts.data(), batch.size()}); !w)
        st = Err{FatalError{w.error().message}};
    }
    for (net::Packet* p : batch) pool.free(p);
    if (!st) return st;
    more = *read;
  }
  return {};
}

}  // namespace pspgw::psp_pcap
