// The daemon's PSP path against raw intel-ipsec-mb, same run, same AEAD work.
//
//   psp_seal/<v>/<inner bytes>   what encap() + encrypt() run per batch of 32 (psp/encap_template.hpp):
//                                encap_tunnel (template copy + patch) per packet, prepare_frame_seal per
//                                packet, one AeadBackend::seal call; then the frame is rewound to its inner
//                                form for the next iteration (rewind/<v>/<bytes> times that alone:
//                                subtracted)
//   raw_seal/<v>/<inner bytes>   IMB_AESxxx_GCM_ENC (v0/v1) or IMB_AESxxx_GMAC_* (v2/v3) called directly on
//                                32 buffers [PSP header][inner packet][tag], in place: no project code
//   psp_open/...                 what decrypt() + decap() run: prepare_open_batch (plan_decap into the
//                                packet's metadata, the key-cache hints, prepare_open per packet with a
//                                warm KeyCache), one AeadBackend::open call, finish_open, then
//                                finish_planned_decap from the kept plan per packet; then
//                                the sealed frame is copied back
//   raw_open/...                 IMB GCM_DEC / GMAC + tag compare per buffer, then the sealed bytes
//                                copied back
//   restore_raw/<bytes>          the copy-back of each side alone (restore_frame/: the daemon's frames),
//                                subtracted in the table
//
// Frames are what the daemon sends by default: IPv4 inner packets (protocol 253) in an IPv6 outer header,
// crypt offset 5 (the inner IPv4 header stays clear), no VC. The raw side authenticates the same bytes:
// AAD = PSP header + 20 clear bytes, text = the rest (GMAC: all of it as AAD). Not in the daemon's-path
// numbers: the flow hash (gateway/psp_actions.cpp, shared with worker steering) and the SA table lookup.
// At exit a table prints daemon path throughput / raw throughput, best CPU time of each benchmark:
//   build/bin/bench_psp_seal --benchmark_min_time=0.2
//   build/bin/bench_psp_seal --benchmark_min_time=0.2 --benchmark_repetitions=5
//       --benchmark_enable_random_interleaving=true                                (one line)
// On a machine whose speed drifts, the paired mode's ratios are the steadier (see run_paired, ~20 s):
//   build/bin/bench_psp_seal --paired          (or --paired=ROUNDS; default 400)
#include <benchmark/benchmark.h>
#include <intel-ipsec-mb.h>
#include <openssl/crypto.h>

#include <time.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/aead.hpp"
#include "net/packet.hpp"
#include "psp/batch.hpp"
#include "psp/encap_template.hpp"
#include "psp/key_cache.hpp"
#include "psp/key_ring.hpp"

namespace pspgw::bench {
namespace {

constexpr std::size_t kBatch = 32;
constexpr std::size_t kSpis = 4;  // a batch mixes SAs, as on a gateway
constexpr uint8_t kCryptOffset = 5;
constexpr std::size_t kClear = kCryptOffset * 4;
constexpr std::size_t kEth = 14;
constexpr psp::PspVersion kVersions[] = {psp::PspVersion::kAesGcm128, psp::PspVersion::kAesGcm256,
                                         psp::PspVersion::kAesGmac128, psp::PspVersion::kAesGmac256};
constexpr std::size_t kSizes[] = {64, 1400};

psp::KeyRing bench_ring() {
  std::array<uint8_t, 32> k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(i * 7 + 1);
  psp::KeyRing ring{crypto::MasterKey(std::span<const uint8_t, 32>(k))};
  ring.set_spi_counter(psp::kSpiSlotBit);  // every SPI counts as handed out
  return ring;
}
uint32_t spi_of(std::size_t p) {
  return 0x100 + static_cast<uint32_t>(p % kSpis);
}

// Copies of sealed bytes, put back before each open (open works in place).
class Pristine {
 public:
  void save(std::size_t p, std::span<const uint8_t> b) { copies_[p].assign(b.begin(), b.end()); }
  void restore(std::size_t p, uint8_t* to) const { std::memcpy(to, copies_[p].data(), copies_[p].size()); }

 private:
  std::array<std::vector<uint8_t>, kBatch> copies_;
};

// ---- the daemon's path ----------------------------------------------------------------------------------

class DaemonPath {
 public:
  DaemonPath(psp::PspVersion v, std::size_t len)
      : aead_(crypto::make_ipsec_mb_backend()),
        ring_(bench_ring()),
        pool_(kBatch, static_cast<uint32_t>((net::kDefaultHeadroom + len + 128 + 63) / 64 * 64)) {
    keys_ = std::make_unique<psp::KeyCache>(*aead_, 64);
    keys_->update(ring_.snapshot());
    psp::OuterHeaders o;
    o.local = *net::IpAddr::parse("2001:db8::1");
    o.peer = *net::IpAddr::parse("2001:db8::2");
    eth_ =
        psp::eth_addrs(*net::MacAddr::parse("02:00:00:00:00:02"), *net::MacAddr::parse("02:00:00:00:00:01"));
    for (std::size_t s = 0; s < kSpis; ++s) {
      psp::SealParams p;
      p.version = v;
      p.spi = spi_of(s);
      p.crypt_offset = kCryptOffset;
      tmpls_.push_back(psp::EncapTemplate::make(p, o).value());
      const auto derived = ring_.derive(p.spi, v).value();
      tx_keys_.push_back(aead_->make_key(*psp::aead_alg(static_cast<uint8_t>(v)), derived.view()));
    }
    for (std::size_t p = 0; p < kBatch; ++p) {
      std::vector<uint8_t> frame(kEth + len, static_cast<uint8_t>(p));
      std::memcpy(frame.data(), eth_.data(), 12);
      frame[12] = 0x08;
      frame[13] = 0x00;
      uint8_t* ip = frame.data() + kEth;
      std::memset(ip, 0, 20);
      ip[0] = 0x45;
      store_be16(ip + 2, static_cast<uint16_t>(len));
      ip[8] = 64;
      ip[9] = 253;
      inner_head_ = {frame.begin(), frame.begin() + kEth + 20};
      net::Packet* pkt = pool_.alloc();
      pkt->assign(frame);
      batch_.push(pkt);
    }
  }
  bool valid() const { return aead_ != nullptr; }

  // encap() + encrypt() of the batch, then the rewind to [Eth][inner IP] (the inner header put back).
  [[gnu::noinline]] bool seal_and_rewind() {
    bool ok = seal();
    for (std::size_t p = 0; p < kBatch; ++p) {
      net::Packet& pkt = *batch_[p];
      pkt.pull_front(tmpls_[p % kSpis].size() - kEth);
      pkt.trim_back(psp::kPspIcvSize);
      std::memcpy(pkt.data(), inner_head_.data(), inner_head_.size());
    }
    return ok;
  }

  // The rewind alone (the same packet-bound moves and header copy, no encap or seal): subtracted from
  // psp_seal in the table, as the copy-back is from psp_open.
  [[gnu::noinline]] void rewind_only() {
    for (std::size_t p = 0; p < kBatch; ++p) {
      net::Packet& pkt = *batch_[p];
      const uint32_t grow = tmpls_[p % kSpis].size() - kEth;
      pkt.push_front(grow);
      pkt.push_back(psp::kPspIcvSize);
      benchmark::DoNotOptimize(pkt.data());
      pkt.pull_front(grow);
      pkt.trim_back(psp::kPspIcvSize);
      std::memcpy(pkt.data(), inner_head_.data(), inner_head_.size());
    }
  }

  bool seal_for_open() {
    const bool ok = seal();
    for (std::size_t p = 0; p < kBatch; ++p) sealed_.save(p, batch_[p]->bytes());
    return ok;
  }
  // decrypt() + decap() of the batch, then the sealed frames put back.
  [[gnu::noinline]] bool open_and_restore() {
    const bool ok = open();
    for (std::size_t p = 0; p < kBatch; ++p) {
      net::Packet& pkt = *batch_[p];
      pkt.push_front(tmpls_[p % kSpis].size() - kEth);
      pkt.push_back(psp::kPspIcvSize);
      sealed_.restore(p, pkt.data());
    }
    return ok;
  }
  std::size_t frame_bytes() const { return tmpls_[0].size() + batch_[0]->size() - kEth + psp::kPspIcvSize; }

 private:
  bool seal() {
    bool ok = true;
    // encap(): EncapAction::apply's loop.
    for (std::size_t p = 0; p < kBatch; ++p) {
      ok &= psp::encap_tunnel(*batch_[p], tmpls_[p % kSpis], eth_, ++iv_, static_cast<uint32_t>(p)) ==
            psp::EncapError::kNone;
    }
    // encrypt(): EncryptAction::apply's loop and its one AEAD call.
    std::size_t n = 0;
    for (std::size_t p = 0; p < kBatch; ++p) {
      const psp::DropReason r =
          psp::prepare_frame_seal(*batch_[p], tmpls_[p % kSpis], *tx_keys_[p % kSpis], scratch_.ops.fill(n));
      if (r == psp::DropReason::kNone) scratch_.pkt_index[n++] = static_cast<uint8_t>(p);
    }
    aead_->seal({scratch_.ops.data(), n});
    return ok && n == kBatch;
  }

  bool open() {
    // decrypt(): DecryptAction::apply's loop (the plan kept in the packet's metadata), its one AEAD call
    // and the verdicts.
    std::array<psp::DropReason, kBatch> results{};
    const std::size_t n = psp::detail::prepare_open_batch(
        batch_, *keys_, scratch_,
        [&](std::size_t p) -> psp::DecapPlan& { return batch_[p]->meta.decap_plan; }, results);
    if (n != kBatch) return false;
    aead_->open({scratch_.ops.data(), n});
    bool ok = true;
    for (std::size_t j = 0; j < n; ++j) {
      const psp::DropReason r = psp::finish_open(scratch_.ops[j]);
      batch_[scratch_.pkt_index[j]]->meta.syndrome = static_cast<uint8_t>(r);
      ok &= r == psp::DropReason::kNone;
    }
    // decap(): DecapAction::apply's loop: the frame restored from decrypt()'s plan (the mode checked first),
    // then the workload MAC stores.
    for (std::size_t p = 0; p < kBatch; ++p) {
      net::Packet& pkt = *batch_[p];
      const psp::DecapPlan& plan = pkt.meta.decap_plan;
      if (pkt.meta.syndrome != static_cast<uint8_t>(psp::DropReason::kNone) || plan.psp_len == 0 ||
          plan.psp_offset + plan.psp_len > pkt.size())
        return false;
      const uint8_t nh = psp::steps::planned_next_header(pkt, plan);
      if ((nh != 4 && nh != 41) || psp::steps::finish_planned_decap(pkt, plan) != psp::DropReason::kNone)
        return false;
      std::memcpy(pkt.data(), eth_.data(), eth_.size());
    }
    return ok;
  }

  std::unique_ptr<crypto::AeadBackend> aead_;
  psp::KeyRing ring_;
  std::unique_ptr<psp::KeyCache> keys_;
  net::PacketPool pool_;
  net::PacketBatch batch_;
  psp::EthAddrs eth_{};
  std::vector<psp::EncapTemplate> tmpls_;
  std::vector<std::unique_ptr<crypto::AeadKey>> tx_keys_;
  std::vector<uint8_t> inner_head_;
  psp::detail::OpenScratch scratch_;
  Pristine sealed_;
  uint64_t iv_ = 0;
};

// ---- raw intel-ipsec-mb -----------------------------------------------------------------------------------

struct MgrFree {
  void operator()(IMB_MGR* m) const { free_mb_mgr(m); }
};

class RawPath {
 public:
  RawPath(psp::PspVersion v, std::size_t len) : v_(v), len_(len), mgr_(alloc_mb_mgr(0)) {
    init_mb_mgr_auto(mgr_.get(), nullptr);
    const psp::KeyRing ring = bench_ring();
    for (std::size_t s = 0; s < kSpis; ++s) {
      const auto k = ring.derive(spi_of(s), v).value();
      if (k.size() == 16) {
        IMB_AES128_GCM_PRE(mgr_.get(), k.view().data(), &keys_[s]);
      } else {
        IMB_AES256_GCM_PRE(mgr_.get(), k.view().data(), &keys_[s]);
      }
    }
    for (std::size_t p = 0; p < kBatch; ++p) {
      bufs_[p].assign(psp::kPspHeaderSize + len + psp::kPspIcvSize, static_cast<uint8_t>(p));
      nonces_[p] = {0, 0, 1, static_cast<uint8_t>(p % kSpis), 0, 0, 0, 0, 0, 0, 0, static_cast<uint8_t>(p)};
    }
  }
  ~RawPath() { imb_clear_mem(keys_.data(), sizeof(keys_)); }
  RawPath(const RawPath&) = delete;
  RawPath& operator=(const RawPath&) = delete;

  [[gnu::noinline]] void seal() {
    for (std::size_t p = 0; p < kBatch; ++p) seal_one(p, bufs_[p].data() + psp::kPspHeaderSize + len_);
  }
  void seal_for_open() {
    seal();
    for (std::size_t p = 0; p < kBatch; ++p) sealed_.save(p, bufs_[p]);
  }
  [[gnu::noinline]] bool open_and_restore() {
    bool ok = true;
    for (std::size_t p = 0; p < kBatch; ++p) {
      std::array<uint8_t, 16> tag;
      uint8_t* b = bufs_[p].data();
      open_one(p, tag.data());
      ok &= CRYPTO_memcmp(tag.data(), b + psp::kPspHeaderSize + len_, tag.size()) == 0;
    }
    for (std::size_t p = 0; p < kBatch; ++p) sealed_.restore(p, bufs_[p].data());
    return ok;
  }
  std::size_t bytes() const { return bufs_[0].size(); }

 private:
  // GCM: AAD = header + clear bytes, text after them. GMAC: all of it as AAD, one update.
  void seal_one(std::size_t p, uint8_t* tag) {
    uint8_t* b = bufs_[p].data();
    const gcm_key_data* k = &keys_[p % kSpis];
    const std::size_t aad = psp::kPspHeaderSize + kClear;
    switch (v_) {
      case psp::PspVersion::kAesGcm128:
        IMB_AES128_GCM_ENC(mgr_.get(), k, &ctx_, b + aad, b + aad, len_ - kClear, nonces_[p].data(), b, aad,
                           tag, 16);
        break;
      case psp::PspVersion::kAesGcm256:
        IMB_AES256_GCM_ENC(mgr_.get(), k, &ctx_, b + aad, b + aad, len_ - kClear, nonces_[p].data(), b, aad,
                           tag, 16);
        break;
      case psp::PspVersion::kAesGmac128:
        IMB_AES128_GMAC_INIT(mgr_.get(), k, &ctx_, nonces_[p].data(), 12);
        IMB_AES128_GMAC_UPDATE(mgr_.get(), k, &ctx_, b, psp::kPspHeaderSize + len_);
        IMB_AES128_GMAC_FINALIZE(mgr_.get(), k, &ctx_, tag, 16);
        break;
      case psp::PspVersion::kAesGmac256:
        IMB_AES256_GMAC_INIT(mgr_.get(), k, &ctx_, nonces_[p].data(), 12);
        IMB_AES256_GMAC_UPDATE(mgr_.get(), k, &ctx_, b, psp::kPspHeaderSize + len_);
        IMB_AES256_GMAC_FINALIZE(mgr_.get(), k, &ctx_, tag, 16);
        break;
    }
  }
  void open_one(std::size_t p, uint8_t* tag) {
    uint8_t* b = bufs_[p].data();
    const gcm_key_data* k = &keys_[p % kSpis];
    const std::size_t aad = psp::kPspHeaderSize + kClear;
    switch (v_) {
      case psp::PspVersion::kAesGcm128:
        IMB_AES128_GCM_DEC(mgr_.get(), k, &ctx_, b + aad, b + aad, len_ - kClear, nonces_[p].data(), b, aad,
                           tag, 16);
        break;
      case psp::PspVersion::kAesGcm256:
        IMB_AES256_GCM_DEC(mgr_.get(), k, &ctx_, b + aad, b + aad, len_ - kClear, nonces_[p].data(), b, aad,
                           tag, 16);
        break;
      default:
        seal_one(p, tag);  // GMAC: open recomputes the same tag
        break;
    }
  }

  psp::PspVersion v_;
  std::size_t len_;
  std::unique_ptr<IMB_MGR, MgrFree> mgr_;
  alignas(64) std::array<gcm_key_data, kSpis> keys_{};
  gcm_context_data ctx_{};
  std::array<std::vector<uint8_t>, kBatch> bufs_;
  std::array<std::array<uint8_t, 12>, kBatch> nonces_{};
  Pristine sealed_;
};

// ---- benchmarks ------------------------------------------------------------------------------------------

enum class What { kPspSeal, kRawSeal, kPspOpen, kRawOpen, kRewind };
const char* const kWhatName[] = {"psp_seal", "raw_seal", "psp_open", "raw_open", "rewind"};

std::string name(What w, psp::PspVersion v, std::size_t len) {
  return std::string(kWhatName[static_cast<int>(w)]) + "/v" + std::to_string(static_cast<int>(v)) + "/" +
         std::to_string(len);
}

void run(benchmark::State& state, psp::PspVersion v, What what, std::size_t len) {
  bool ok = true;
  if (what == What::kRewind) {
    DaemonPath d(v, len);
    for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the loop idiom
      d.rewind_only();
      benchmark::ClobberMemory();
    }
  } else if (what == What::kPspSeal || what == What::kPspOpen) {
    DaemonPath d(v, len);
    if (!d.valid()) {
      state.SkipWithError("no ipsec-mb");
      return;
    }
    if (what == What::kPspOpen) ok = d.seal_for_open();
    for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the loop idiom
      ok &= what == What::kPspSeal ? d.seal_and_rewind() : d.open_and_restore();
      benchmark::ClobberMemory();
    }
  } else {
    RawPath r(v, len);
    if (what == What::kRawOpen) r.seal_for_open();
    for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the loop idiom
      if (what == What::kRawSeal) {
        r.seal();
      } else {
        ok &= r.open_and_restore();
      }
      benchmark::ClobberMemory();
    }
  }
  if (!ok) state.SkipWithError("an op failed");
  const auto pkts = static_cast<int64_t>(state.iterations() * kBatch);
  state.SetItemsProcessed(pkts);
  state.SetBytesProcessed(pkts * static_cast<int64_t>(len));
}

// A copy-back alone: kBatch copies of `bytes` (what each side's open loop adds).
void run_restore(benchmark::State& state, std::size_t bytes) {
  std::vector<std::vector<uint8_t>> pkts(kBatch, std::vector<uint8_t>(bytes, 1));
  Pristine sealed;
  for (std::size_t p = 0; p < kBatch; ++p) sealed.save(p, pkts[p]);
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the loop idiom
    for (std::size_t p = 0; p < kBatch; ++p) sealed.restore(p, pkts[p].data());
    benchmark::ClobberMemory();
  }
}
std::size_t raw_bytes(std::size_t len) {
  return psp::kPspHeaderSize + len + psp::kPspIcvSize;
}
std::size_t frame_bytes(std::size_t len) {
  return kEth + 40 + 8 + psp::kPspHeaderSize + len + psp::kPspIcvSize;  // IPv6 outer, no VC
}
std::string restore_name(const char* side, std::size_t bytes) {
  return std::string("restore_") + side + "/" + std::to_string(bytes);
}

class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      if (r.run_type != Run::RT_Iteration || r.error_occurred) continue;
      const auto [it, added] = times_.try_emplace(r.benchmark_name(), r.GetAdjustedCPUTime());
      if (!added) it->second = std::min(it->second, r.GetAdjustedCPUTime());
    }
    ConsoleReporter::ReportRuns(runs);
  }
  void print_ratios() const {
    std::printf(
        "\nDaemon path (psp/encap_template + psp/encap decap, ipsec-mb backend) / raw intel-ipsec-mb\n"
        "throughput, best CPU time per batch of %zu; seal: the daemon side's rewind subtracted; open: each\n"
        "side's copy-back subtracted\n"
        "%-4s %6s | %10s %10s %7s | %10s %10s %7s\n",
        kBatch, "ver", "size", "seal ns/p", "raw ns/p", "ratio", "open ns/p", "raw ns/p", "ratio");
    for (psp::PspVersion v : kVersions) {
      for (std::size_t len : kSizes) {
        const double ps = time(name(What::kPspSeal, v, len)) - time(name(What::kRewind, v, len));
        const double rs = time(name(What::kRawSeal, v, len));
        const double po = time(name(What::kPspOpen, v, len)) - time(restore_name("frame", frame_bytes(len)));
        const double ro = time(name(What::kRawOpen, v, len)) - time(restore_name("raw", raw_bytes(len)));
        std::printf("v%-3d %6zu | %10.1f %10.1f %6.1f%% | %10.1f %10.1f %6.1f%%\n", static_cast<int>(v), len,
                    ps / kBatch, rs / kBatch, ps > 0 ? 100.0 * rs / ps : 0.0, po / kBatch, ro / kBatch,
                    po > 0 ? 100.0 * ro / po : 0.0);
      }
    }
  }

 private:
  double time(const std::string& n) const {
    const auto it = times_.find(n);
    return it == times_.end() ? 0 : it->second;
  }
  std::map<std::string, double> times_;
};

// ---- paired mode (--paired[=rounds]) -------------------------------------------------------------------
//
// The table above divides the best time of each benchmark, each measured in its own stretch of seconds:
// on a VM whose speed drifts (a neighbour's load, +-15% from one run to the next here) the two sides of a
// ratio can be measured at different speeds. Paired mode measures the parts of one ratio back to back, in
// short slices (64 batches, ~0.1-0.5 ms each) whose order rotates every round, divides within each round,
// and reports the median and quartiles of the per-round ratios over many rounds: a drift slower than a
// round moves both sides alike. The parts and the subtractions are the table's: seal = daemon seal + rewind
// minus the rewind alone, against raw seal; open = daemon open + copy-back minus a copy-back of its frames,
// against raw open + copy-back minus a copy-back of its buffers. Thread CPU time.

double thread_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// kBatch buffers of `bytes`, copied back as run_restore does.
class CopyBack {
 public:
  explicit CopyBack(std::size_t bytes) : pkts_(kBatch, std::vector<uint8_t>(bytes, 1)) {
    for (std::size_t p = 0; p < kBatch; ++p) sealed_.save(p, pkts_[p]);
  }
  [[gnu::noinline]] void run() {
    for (std::size_t p = 0; p < kBatch; ++p) sealed_.restore(p, pkts_[p].data());
    benchmark::ClobberMemory();
  }

 private:
  std::vector<std::vector<uint8_t>> pkts_;
  Pristine sealed_;
};

struct Quartiles {
  double p25 = 0, median = 0, p75 = 0;
};
Quartiles quartiles(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const auto at = [&v](double q) {
    return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
  };
  return {at(0.25), at(0.5), at(0.75)};
}

// Per round: each part timed over kSlice batches, in an order that rotates; the ratio raw / daemon of the
// round. Returns false if an op failed.
constexpr int kSlice = 64;
template <std::size_t N, class Ratio>
bool paired(int rounds, std::array<std::function<bool()>, N> parts, Ratio&& ratio, std::vector<double>& out) {
  for (auto& f : parts) {  // warm-up slice
    for (int i = 0; i < kSlice; ++i) {
      if (!f()) return false;
    }
  }
  std::array<double, N> ns{};
  for (int r = 0; r < rounds; ++r) {
    for (std::size_t k = 0; k < N; ++k) {
      const std::size_t j = (k + static_cast<std::size_t>(r)) % N;
      bool ok = true;
      const double t0 = thread_ns();
      for (int i = 0; i < kSlice; ++i) ok &= parts[j]();
      ns[j] = (thread_ns() - t0) / kSlice / kBatch;
      if (!ok) return false;
    }
    out.push_back(ratio(ns));
  }
  return true;
}

int run_paired(int rounds) {
  std::printf(
      "Paired: daemon path / raw intel-ipsec-mb, the ratio of each round's back-to-back slices (%d batches "
      "of\n"
      "%zu each part, order rotating), median [25th-75th percentile] of %d rounds; thread CPU time\n"
      "%-4s %6s | %22s | %22s\n",
      kSlice, kBatch, rounds, "ver", "size", "seal ratio", "open ratio");
  for (psp::PspVersion v : kVersions) {
    for (std::size_t len : kSizes) {
      DaemonPath d(v, len);
      RawPath raw(v, len);
      if (!d.valid()) {
        std::printf("no ipsec-mb\n");
        return 1;
      }
      std::vector<double> seal, open;
      bool ok = paired<3>(
          rounds,
          {[&] { return d.seal_and_rewind(); },
           [&] {
             d.rewind_only();
             return true;
           },
           [&] {
             raw.seal();
             return true;
           }},
          [](const std::array<double, 3>& ns) { return ns[2] / (ns[0] - ns[1]); }, seal);
      CopyBack frame_copy(frame_bytes(len)), raw_copy(raw_bytes(len));
      ok = ok && d.seal_for_open();
      raw.seal_for_open();
      ok = ok && paired<4>(
                     rounds,
                     {[&] { return d.open_and_restore(); },
                      [&] {
                        frame_copy.run();
                        return true;
                      },
                      [&] { return raw.open_and_restore(); },
                      [&] {
                        raw_copy.run();
                        return true;
                      }},
                     [](const std::array<double, 4>& ns) { return (ns[2] - ns[3]) / (ns[0] - ns[1]); }, open);
      if (!ok) {
        std::printf("v%d %zu: an op failed\n", static_cast<int>(v), len);
        return 1;
      }
      const Quartiles qs = quartiles(seal), qo = quartiles(open);
      std::printf("v%-3d %6zu | %6.1f%% [%5.1f-%5.1f%%] | %6.1f%% [%5.1f-%5.1f%%]\n", static_cast<int>(v),
                  len, 100 * qs.median, 100 * qs.p25, 100 * qs.p75, 100 * qo.median, 100 * qo.p25,
                  100 * qo.p75);
    }
  }
  return 0;
}

}  // namespace
}  // namespace pspgw::bench

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--paired" || a.starts_with("--paired=")) {
      const int rounds = a == "--paired" ? 400 : std::atoi(argv[i] + std::strlen("--paired="));
      if (rounds < 4) {
        std::fprintf(stderr, "--paired=N: N rounds, at least 4\n");
        return 2;
      }
      return pspgw::bench::run_paired(rounds);
    }
  }
  using namespace pspgw;
  using bench::What;
  for (std::size_t len : bench::kSizes) {
    for (const auto& [side, bytes] :
         {std::pair{"raw", bench::raw_bytes(len)}, {"frame", bench::frame_bytes(len)}}) {
      const std::size_t b = bytes;
      benchmark::RegisterBenchmark(bench::restore_name(side, b).c_str(),
                                   [b](benchmark::State& s) { bench::run_restore(s, b); });
    }
  }
  for (psp::PspVersion v : bench::kVersions) {
    for (std::size_t len : bench::kSizes) {
      for (What w : {What::kRawSeal, What::kPspSeal, What::kRewind, What::kRawOpen, What::kPspOpen}) {
        benchmark::RegisterBenchmark(bench::name(w, v, len).c_str(),
                                     [v, w, len](benchmark::State& s) { bench::run(s, v, w, len); });
      }
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.print_ratios();
  benchmark::Shutdown();
  return 0;
}
