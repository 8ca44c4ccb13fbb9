// PSP seal and open through the batch API (tunnel-mode UDP payloads, crypt offset 0, no VC) against the raw
// AES-GCM call of the same backend on the same sizes, batch 32, keys mixed as in aead_fixture.hpp. The AEAD
// work is identical (16 B AAD = the PSP header, text = the inner packet, in place), so the ratio is the PSP
// layer's cost.
//   psp_seal/<backend>/<v0|v1>/<inner bytes>  vs  raw_seal/...   in-place seal
//   psp_open/...                              vs  raw_open/...   restore the sealed bytes, in-place open
//   restore/<inner bytes>                     the restore alone (memcpy of the sealed packets)
// The per-batch functions are not inlined, so that callgrind shows each side's cost per batch.
// Open works in place, so each iteration first copies a pristine sealed copy back over the batch; both
// sides copy the same bytes, and the table subtracts restore/<bytes> from both before taking the ratio.
// At exit a table prints PSP throughput / raw throughput per size, from the fastest repetition of each
// benchmark (on a shared machine, add repetitions in random order for steadier ratios):
//   build/bin/bench_psp_seal --benchmark_min_time=0.2
//   build/bin/bench_psp_seal --benchmark_min_time=0.2 --benchmark_repetitions=3
//       --benchmark_enable_random_interleaving=true --benchmark_filter='ipsec-mb|restore'   (one line)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "aead_fixture.hpp"
#include "net/packet.hpp"
#include "psp/batch.hpp"

namespace pspgw::bench {
namespace {

constexpr std::size_t kBatch = AeadFixture::kBatch;
constexpr std::size_t kSealedExtra = AeadFixture::kAadLen + crypto::kGcmTagSize;  // header + ICV

// The sealed bytes of a batch, copied back before each open (the restore both sides pay).
class Pristine {
 public:
  void save(std::size_t p, std::span<const uint8_t> bytes) { copies_[p].assign(bytes.begin(), bytes.end()); }
  void restore(std::size_t p, uint8_t* to) const { std::memcpy(to, copies_[p].data(), copies_[p].size()); }

 private:
  std::array<std::vector<uint8_t>, kBatch> copies_;
};

// A batch of inner IPv4 packets of `len` bytes (protocol 253: no L4 header to parse), sealed with the
// fixture's keys.
class PspFixture {
 public:
  // Buffers sized to the packet like the raw fixture's (a 9 KB buffer per packet would measure TLB misses
  // of the pool layout, not the PSP layer).
  PspFixture(AeadFixture& fx, psp::PspVersion version, std::size_t len)
      : pool_(kBatch, static_cast<uint32_t>((net::kDefaultHeadroom + len + 64 + 63) / 64 * 64)) {
    for (std::size_t p = 0; p < kBatch; ++p) {
      net::Packet* pkt = pool_.alloc();
      std::vector<uint8_t> ip(len, static_cast<uint8_t>(p));
      ip[0] = 0x45;
      ip[2] = static_cast<uint8_t>(len >> 8);
      ip[3] = static_cast<uint8_t>(len & 0xff);
      ip[9] = 253;
      pkt->assign(ip);
      std::copy(ip.begin(), ip.begin() + 20, ip_header_.begin());
      batch_.push(pkt);
      psp::SealJob job;
      job.params.mode = psp::Mode::kTunnel;
      job.params.version = version;
      job.params.spi = 0x10000000u | static_cast<uint32_t>(p % AeadFixture::kKeys);
      job.params.iv = p + 1;
      job.key = &fx.key(p);
      jobs_.push_back(job);
      keys_.keys[p % AeadFixture::kKeys] = &fx.key(p);
    }
  }
  void set_backend(const crypto::AeadBackend& b) { keys_.backend = &b; }

  // Seals the batch, then returns the packets to their inner form: strip header and ICV, and put back the
  // (now encrypted) inner IPv4 header so the next seal sees an IP packet. Counted against PSP.
  [[gnu::noinline]] bool seal_and_rewind() {
    psp::seal_payload_batch(batch_, jobs_, keys_.aead_backend(), results_);
    for (std::size_t p = 0; p < kBatch; ++p) {
      batch_[p]->pull_front(psp::kPspHeaderSize);
      batch_[p]->trim_back(psp::kPspIcvSize);
      std::memcpy(batch_[p]->data(), ip_header_.data(), ip_header_.size());
    }
    return all_ok();
  }

  // Seals the batch once and keeps the sealed bytes for open_and_restore.
  bool seal_for_open() {
    psp::seal_payload_batch(batch_, jobs_, keys_.aead_backend(), results_);
    for (std::size_t p = 0; p < kBatch; ++p) sealed_.save(p, batch_[p]->bytes());
    return all_ok();
  }
  // Opens the batch, then puts the sealed packets back: the bounds (header and ICV) and the bytes.
  [[gnu::noinline]] bool open_and_restore() {
    psp::open_payload_batch(batch_, keys_, keys_.aead_backend(), results_, infos_);
    if (!all_ok()) return false;
    for (std::size_t p = 0; p < kBatch; ++p) {
      net::Packet& pkt = *batch_[p];
      pkt.push_front(psp::kPspHeaderSize);
      pkt.push_back(psp::kPspIcvSize);
      sealed_.restore(p, pkt.data());
    }
    return true;
  }

 private:
  // The receive side's keys: SPI -> the fixture key (what a warm KeyCache returns).
  struct Keys {
    const crypto::AeadKey* key_for(uint32_t spi, psp::PspVersion /*version*/) {
      return keys[spi % AeadFixture::kKeys];
    }
    const crypto::AeadBackend& aead_backend() const { return *backend; }
    std::array<const crypto::AeadKey*, AeadFixture::kKeys> keys{};
    const crypto::AeadBackend* backend = nullptr;
  };
  bool all_ok() const {
    for (std::size_t p = 0; p < kBatch; ++p) {
      if (results_[p] != psp::DropReason::kNone) return false;
    }
    return true;
  }

  net::PacketPool pool_;
  std::array<uint8_t, 20> ip_header_{};
  net::PacketBatch batch_;
  std::vector<psp::SealJob> jobs_;
  Keys keys_;
  Pristine sealed_;
  std::array<psp::DropReason, net::kMaxBatch> results_{};
  std::array<psp::OpenInfo, net::kMaxBatch> infos_{};
};

// The raw side of open: the fixture's packets sealed in place once, then restored and opened in place.
class RawOpen {
 public:
  explicit RawOpen(AeadFixture& fx) : fx_(fx), ops_(fx.seal_ops().begin(), fx.seal_ops().end()) {
    fx.backend().seal(ops_);
    for (std::size_t p = 0; p < kBatch; ++p) sealed_.save(p, fx.packet(p));
  }
  [[gnu::noinline]] bool open_and_restore() {
    fx_.backend().open(ops_);
    const bool ok = AeadFixture::all_ok(ops_);
    for (std::size_t p = 0; p < kBatch; ++p) sealed_.restore(p, fx_.packet(p).data());
    return ok;
  }

 private:
  AeadFixture& fx_;
  std::vector<crypto::AeadOp> ops_;
  Pristine sealed_;
};

enum class What { kPspSeal, kRawSeal, kPspOpen, kRawOpen };

[[gnu::noinline]] void raw_seal(AeadFixture& fx) {
  fx.backend().seal(fx.seal_ops());
}

void run(benchmark::State& state, const crypto::AeadBackend& backend, psp::PspVersion v, What what,
         std::size_t len) {
  const auto alg =
      v == psp::PspVersion::kAesGcm128 ? crypto::AeadAlg::kAesGcm128 : crypto::AeadAlg::kAesGcm256;
  AeadFixture fx(backend, alg, len);
  PspFixture pf(fx, v, len);
  pf.set_backend(backend);
  bool ok = true;
  switch (what) {
    case What::kPspSeal:
      for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the loop idiom
        ok &= pf.seal_and_rewind();
        benchmark::ClobberMemory();
      }
      break;
    case What::kRawSeal:
      for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the loop idiom
        raw_seal(fx);
        benchmark::ClobberMemory();
      }
      break;
    case What::kPspOpen:
      ok = pf.seal_for_open();
      for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the loop idiom
        ok &= pf.open_and_restore();
        benchmark::ClobberMemory();
      }
      break;
    case What::kRawOpen: {
      RawOpen raw(fx);
      for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the loop idiom
        ok &= raw.open_and_restore();
        benchmark::ClobberMemory();
      }
      break;
    }
  }
  if (!ok) state.SkipWithError("an op failed");
  const auto pkts = static_cast<int64_t>(state.iterations() * kBatch);
  state.SetItemsProcessed(pkts);
  state.SetBytesProcessed(pkts * static_cast<int64_t>(len));
}

// The restore alone: the same copies as RawOpen::open_and_restore, without the open.
void run_restore(benchmark::State& state, std::size_t len) {
  std::vector<std::vector<uint8_t>> packets(kBatch, std::vector<uint8_t>(len + kSealedExtra, 1));
  Pristine sealed;
  for (std::size_t p = 0; p < kBatch; ++p) sealed.save(p, packets[p]);
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the loop idiom
    for (std::size_t p = 0; p < kBatch; ++p) sealed.restore(p, packets[p].data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
}

const char* kWhatName[] = {"psp_seal", "raw_seal", "psp_open", "raw_open"};
constexpr std::size_t kSizes[] = {64, 256, 512, 1400, 9000};

std::string name(What w, std::string_view backend, psp::PspVersion v, std::size_t len) {
  return std::string(kWhatName[static_cast<int>(w)]) + "/" + std::string(backend) +
         (v == psp::PspVersion::kAesGcm128 ? "/v0/" : "/v1/") + std::to_string(len);
}
std::string restore_name(std::size_t len) {
  return "restore/" + std::to_string(len);
}

// Records each benchmark's best time per iteration over its repetitions, for the ratio table.
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
  void print_ratios(const std::vector<std::unique_ptr<crypto::AeadBackend>>& backends) const {
    std::printf(
        "\nPSP throughput / raw AES-GCM throughput (best CPU time per batch, same backend, batch %zu;\n"
        "open: the restore copy both sides pay is subtracted, 'open+copy' keeps it)\n",
        kBatch);
    for (const auto& b : backends) {
      const std::string bn(b->name());
      std::printf("\n%s\n%-4s %6s | %13s | %13s | %9s\n", bn.c_str(), "ver", "size", "seal PSP/raw",
                  "open PSP/raw", "open+copy");
      for (auto v : {psp::PspVersion::kAesGcm128, psp::PspVersion::kAesGcm256}) {
        for (std::size_t len : kSizes) {
          const double copy = time(restore_name(len));
          std::printf("%-4s %6zu | %12.1f%% | %12.1f%% | %8.1f%%\n",
                      v == psp::PspVersion::kAesGcm128 ? "v0" : "v1", len,
                      ratio(name(What::kRawSeal, bn, v, len), name(What::kPspSeal, bn, v, len), 0),
                      ratio(name(What::kRawOpen, bn, v, len), name(What::kPspOpen, bn, v, len), copy),
                      ratio(name(What::kRawOpen, bn, v, len), name(What::kPspOpen, bn, v, len), 0));
        }
      }
    }
  }

 private:
  double time(const std::string& n) const {
    const auto it = times_.find(n);
    return it == times_.end() ? 0 : it->second;
  }
  // 100 * (raw - base) / (psp - base); 0 when a run is missing.
  double ratio(const std::string& raw, const std::string& psp, double base) const {
    const double r = time(raw) - base;
    const double p = time(psp) - base;
    if (time(raw) <= 0 || time(psp) <= 0 || p <= 0) return 0;
    return 100.0 * r / p;
  }
  std::map<std::string, double> times_;
};

}  // namespace
}  // namespace pspgw::bench

int main(int argc, char** argv) {
  using namespace pspgw;
  std::vector<std::unique_ptr<crypto::AeadBackend>> backends;
  for (const char* n : {"openssl", "ipsec-mb"}) {
    if (auto b = crypto::make_backend(n)) backends.push_back(std::move(b));
  }
  for (std::size_t len : bench::kSizes) {
    benchmark::RegisterBenchmark(bench::restore_name(len).c_str(),
                                 [len](benchmark::State& s) { bench::run_restore(s, len); });
  }
  for (const auto& b : backends) {
    for (auto v : {psp::PspVersion::kAesGcm128, psp::PspVersion::kAesGcm256}) {
      for (std::size_t len : bench::kSizes) {
        for (auto w :
             {bench::What::kRawSeal, bench::What::kPspSeal, bench::What::kRawOpen, bench::What::kPspOpen}) {
          const crypto::AeadBackend* backend = b.get();
          benchmark::RegisterBenchmark(
              bench::name(w, b->name(), v, len).c_str(),
              [backend, v, w, len](benchmark::State& s) { bench::run(s, *backend, v, w, len); });
        }
      }
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.print_ratios(backends);
  benchmark::Shutdown();
  return 0;
}
