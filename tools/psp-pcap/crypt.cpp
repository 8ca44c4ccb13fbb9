#include "crypt.hpp"

#include <numeric>

#include "base/byteorder.hpp"
#include "base/hex.hpp"
#include "net/headers.hpp"
#include "net/parse.hpp"
#include "psp/batch.hpp"
#include "psp/header.hpp"

namespace pspgw::psp_pcap {
namespace {

constexpr std::size_t kEth = sizeof(net::EthHdr);
// The reference's fixed encapsulation sizes (psp.h): UDP 8 + PSP header 16 + ICV 16, plus the outer IP
// header in tunnel mode.
constexpr uint32_t kTransportOverhead = sizeof(net::UdpHdr) + psp::kPspHeaderSize + psp::kPspIcvSize;

constexpr uint8_t kCryptOffReservedBit7 = 0x80;  // the bit -e sets (authenticated, so open must fail)

// Frames printed individually before only the summary counts them.
constexpr uint64_t kMaxReportedFrames = 10;

// Offset of the PSP header in a frame encap produced: Ethernet, outer IP header, UDP.
std::size_t psp_offset(std::span<const uint8_t> frame) {
  const uint8_t vihl = frame[kEth];
  const std::size_t ip_len =
      (vihl >> 4) == 4 ? static_cast<std::size_t>(vihl & 0x0f) * 4 : sizeof(net::Ipv6Hdr);
  return kEth + ip_len + sizeof(net::UdpHdr);
}

// Removes the packets whose keep[i] is false (returning them to pool) and compacts recs alongside.
void compact(net::PacketBatch& batch, std::span<ports::PcapRecord> recs, std::span<const bool> keep,
             net::PacketPool& pool) {
  net::PacketBatch kept;
  std::size_t n = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!keep[i]) {
      pool.free(batch[i]);
      continue;
    }
    kept.push(batch[i]);
    recs[n++] = recs[i];
  }
  batch = kept;
}

}  // namespace

std::string_view to_string(EncryptSkip s) {
  switch (s) {
    case EncryptSkip::kNotIp:
      return "not IPv4/IPv6";
    case EncryptSkip::kMalformed:
      return "malformed IP packet";
    case EncryptSkip::kTransportNotTcpUdp:
      return "transport mode, IPv6 next header not TCP/UDP";
    case EncryptSkip::kCryptOffsetTooBig:
      return "crypt offset beyond the packet";
    case EncryptSkip::kCount:
      break;
  }
  return "?";
}

std::string_view to_string(DecryptSkip s) {
  switch (s) {
    case DecryptSkip::kNotIp:
      return "not IPv4/IPv6";
    case DecryptSkip::kNotUdp:
      return "not UDP";
    case DecryptSkip::kNotPspPort:
      return "UDP destination port not 1000";
    case DecryptSkip::kCount:
      break;
  }
  return "?";
}

uint64_t EncryptStats::total_skipped() const {
  return std::accumulate(skipped.begin(), skipped.end(), uint64_t{0});
}
uint64_t DecryptStats::total_skipped() const {
  return std::accumulate(skipped.begin(), skipped.end(), uint64_t{0});
}
uint64_t DecryptStats::total_failed() const {
  return std::accumulate(failed.begin(), failed.end(), uint64_t{0});
}

Status<FatalError> check_complete(const ports::PcapRecord& rec) {
  if (rec.caplen == rec.orig_len) return {};
  return Err{FatalError{"record " + std::to_string(rec.index) + ": partial capture (" +
                        std::to_string(rec.caplen) + " of " + std::to_string(rec.orig_len) +
                        " bytes); psp-pcap needs whole frames"}};
}

// ---- encrypt --------------------------------------------------------------------------------------

Encryptor::Encryptor(const EncryptConfig& cfg, const crypto::AeadBackend& aead, const crypto::AeadKey& key,
                     EncryptOptions opts)
    : cfg_(cfg), aead_(aead), key_(key), opts_(opts), next_iv_(opts.first_iv) {}

void Encryptor::skip(EncryptSkip why, const ports::PcapRecord& rec) {
  const uint64_t n = ++stats_.skipped[static_cast<std::size_t>(why)];
  if (opts_.log != nullptr && n <= kMaxReportedFrames) {
    std::fprintf(opts_.log, "skipping record %llu: %.*s\n", static_cast<unsigned long long>(rec.index),
                 static_cast<int>(to_string(why).size()), to_string(why).data());
  }
}

// The reference's decisions, in its order: partial capture (fatal), not IP (skip), too large (fatal),
// transport IPv6 without TCP/UDP (skip), crypt offset beyond the protected bytes (skip).
Result<EncryptSkip, FatalError> Encryptor::classify(const net::Packet& pkt, const ports::PcapRecord& rec,
                                                    psp::SealParams& params) const {
  const auto b = pkt.bytes();
  if (b.size() < kEth) return EncryptSkip::kMalformed;
  const uint16_t ethertype = load_be16(b.data() + 12);
  const bool v4 = ethertype == net::kEtherTypeIpv4;
  if (!v4 && ethertype != net::kEtherTypeIpv6) return EncryptSkip::kNotIp;
  const std::size_t ip_min = v4 ? sizeof(net::Ipv4Hdr) : sizeof(net::Ipv6Hdr);
  const bool transport = cfg_.mode == psp::Mode::kTransport;
  const uint32_t vc = cfg_.vc ? psp::kPspVcSize : 0;
  // As the reference: transport checks against the base overhead, tunnel adds the outer header and VC.
  const uint32_t overhead =
      transport ? kTransportOverhead : kTransportOverhead + static_cast<uint32_t>(ip_min) + vc;
  if (b.size() > kMaxFrame - overhead) {
    return Err{FatalError{"record " + std::to_string(rec.index) + ": frame of " + std::to_string(b.size()) +
                          " bytes is too large to encrypt (at most " + std::to_string(kMaxFrame - overhead) +
                          " bytes in this mode)"}};
  }
  if (b.size() < kEth + ip_min) return EncryptSkip::kMalformed;
  const std::size_t ip_hdr = v4 ? static_cast<std::size_t>(b[kEth] & 0x0f) * 4 : ip_min;
  if (ip_hdr < ip_min || b.size() < kEth + ip_hdr) return EncryptSkip::kMalformed;
  const uint8_t proto = v4 ? b[kEth + 9] : b[kEth + 6];
  if (transport && !v4 && proto != net::kIpProtoTcp && proto != net::kIpProtoUdp) {
    return EncryptSkip::kTransportNotTcpUdp;
  }
  const uint8_t offset = transport ? cfg_.transport_crypt_offset
                         : v4      ? cfg_.ipv4_tunnel_crypt_offset
                                   : cfg_.ipv6_tunnel_crypt_offset;
  const std::size_t protected_len = b.size() - kEth - (transport ? ip_hdr : 0);
  if (std::size_t{offset} * 4 > protected_len) return EncryptSkip::kCryptOffsetTooBig;

  params = psp::SealParams{};
  params.mode = cfg_.mode;
  params.version = cfg_.version;
  params.spi = cfg_.spi;
  params.crypt_offset = offset;
  params.has_vc = cfg_.vc;
  params.vc = 0;  // the reference's VC is 8 zero bytes
  return EncryptSkip::kCount;
}

Status<FatalError> Encryptor::run(net::PacketBatch& batch, std::span<ports::PcapRecord> recs,
                                  net::PacketPool& pool) {
  std::array<psp::SealJob, net::kMaxBatch> jobs;
  std::array<bool, net::kMaxBatch> keep{};
  std::array<uint8_t, net::kMaxBatch> slot{};  // batch index -> index in `sealing`
  net::PacketBatch sealing;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (auto st = check_complete(recs[i]); !st) return st;
    auto verdict = classify(*batch[i], recs[i], jobs[sealing.size()].params);
    if (!verdict) return Err{verdict.error()};
    if (*verdict != EncryptSkip::kCount) {
      skip(*verdict, recs[i]);
      continue;
    }
    psp::SealJob& job = jobs[sealing.size()];
    job.key = &key_;
    job.params.iv = next_iv_++;
    keep[i] = true;
    slot[i] = static_cast<uint8_t>(sealing.size());
    sealing.push(batch[i]);
  }

  std::array<psp::DropReason, net::kMaxBatch> results{};
  psp::encap_batch(sealing, {jobs.data(), sealing.size()}, aead_, results);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!keep[i]) continue;
    if (results[slot[i]] != psp::DropReason::kNone) {
      keep[i] = false;
      skip(EncryptSkip::kMalformed, recs[i]);
      continue;
    }
    ++stats_.encrypted;
    if (opts_.corrupt) {
      const auto frame = batch[i]->bytes();
      frame[psp_offset(frame) + 2] |= kCryptOffReservedBit7;
    }
  }
  compact(batch, recs, keep, pool);
  return {};
}

// ---- decrypt --------------------------------------------------------------------------------------

// The key cache, plus the -v printout of each key the first time it is derived.
class Decryptor::Keys final {
 public:
  Keys(const crypto::AeadBackend& aead, std::shared_ptr<const psp::MasterKeySnapshot> snapshot,
       std::FILE* log)
      : cache_(aead, kCacheSize), snapshot_(snapshot), log_(log) {
    cache_.update(std::move(snapshot));
  }
  const crypto::AeadKey* key_for(uint32_t spi, psp::PspVersion version) {
    const uint64_t misses = cache_.stats().misses;
    const crypto::AeadKey* key = cache_.key_for(spi, version);
    if (log_ != nullptr && key != nullptr && cache_.stats().misses != misses) print(spi, version);
    return key;
  }

 private:
  static constexpr std::size_t kCacheSize = 64;  // a capture rarely holds more SAs; misses just re-derive

  void print(uint32_t spi, psp::PspVersion version) const {
    auto key = snapshot_->derive(spi, version);
    if (!key) return;
    std::fprintf(log_, "SPI %08x version %d Derived Key:\n ", spi, static_cast<int>(version));
    for (uint8_t byte : key->view()) std::fprintf(log_, " %02x", byte);
    std::fprintf(log_, "\n");
  }

  psp::KeyCache cache_;
  std::shared_ptr<const psp::MasterKeySnapshot> snapshot_;
  std::FILE* log_;
};

Decryptor::Decryptor(const MasterKeys& keys, const crypto::AeadBackend& aead, std::FILE* key_log,
                     std::FILE* report)
    : aead_(aead),
      report_(report),
      snapshot_(std::make_shared<const psp::MasterKeySnapshot>(keys.key0.clone(), keys.key1.clone(), 0)),
      keys_(std::make_unique<Keys>(aead, snapshot_, key_log)) {}

Decryptor::~Decryptor() = default;

Status<FatalError> Decryptor::run(net::PacketBatch& batch, std::span<ports::PcapRecord> recs,
                                  net::PacketPool& pool) {
  std::array<bool, net::kMaxBatch> keep{};
  std::array<uint8_t, net::kMaxBatch> slot{};
  net::PacketBatch opening;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (auto st = check_complete(recs[i]); !st) return st;
    auto frame = net::parse_frame(batch[i]->bytes());
    DecryptSkip skip = DecryptSkip::kCount;
    if (frame && frame->ip.family == net::IpFamily::kNone) {
      skip = DecryptSkip::kNotIp;
    } else if (frame && frame->ip.l4_proto != net::kIpProtoUdp) {
      skip = DecryptSkip::kNotUdp;
    } else if (frame && frame->ip.dst_port != psp::kPspUdpPort) {
      skip = DecryptSkip::kNotPspPort;
    }
    if (skip != DecryptSkip::kCount) {
      ++stats_.skipped[static_cast<std::size_t>(skip)];
      continue;
    }
    keep[i] = true;  // malformed frames go to decap too, which names the reason
    slot[i] = static_cast<uint8_t>(opening.size());
    opening.push(batch[i]);
  }

  std::array<psp::DropReason, net::kMaxBatch> results{};
  std::array<psp::OpenInfo, net::kMaxBatch> infos{};
  psp::decap_batch(opening, *keys_, aead_, results, infos);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!keep[i]) continue;
    const psp::DropReason r = results[slot[i]];
    if (r == psp::DropReason::kNone) {
      ++stats_.decrypted;
      continue;
    }
    keep[i] = false;
    const uint64_t n = ++stats_.failed[static_cast<std::size_t>(r)];
    if (report_ != nullptr && n <= kMaxReportedFrames) {
      std::fprintf(report_, "record %llu: dropped: %.*s\n", static_cast<unsigned long long>(recs[i].index),
                   static_cast<int>(psp::to_string(r).size()), psp::to_string(r).data());
    }
  }
  compact(batch, recs, keep, pool);
  return {};
}

}  // namespace pspgw::psp_pcap
