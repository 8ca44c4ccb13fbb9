// PSP seal and open through the batch API (tunnel-mode UDP payloads, crypt offset 0, no VC) against the raw
// AES-GCM call of the same backend on the same sizes, batch 32, keys mixed as in aead_fixture.hpp. The AEAD
// work is identical (16 B AAD = the PSP header, text = the inner packet), so the ratio is the PSP layer's
// cost.
//   psp_seal/<backend>/<v0|v1>/<inner bytes>   vs  raw_seal/...
//   psp_rt/...  (seal + open, in place)        vs  raw_rt/... (seal + in-place open)
// At exit a table prints PSP throughput / raw throughput per size.
#include <benchmark/benchmark.h>

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
  // Seals the batch, then returns the packets to their inner form: strip header and ICV, and put back the
  // (now encrypted) inner IPv4 header so the next seal sees an IP packet. Counted against PSP.
  bool seal_and_rewind() {
    psp::seal_payload_batch(batch_, jobs_, keys_.aead_backend(), results_);
    for (std::size_t p = 0; p < kBatch; ++p) {
      batch_[p]->pull_front(psp::kPspHeaderSize);
      batch_[p]->trim_back(psp::kPspIcvSize);
      std::memcpy(batch_[p]->data(), ip_header_.data(), ip_header_.size());
    }
    return results_[kBatch - 1] == psp::DropReason::kNone;
  }
  bool seal_then_open() {
    psp::seal_payload_batch(batch_, jobs_, keys_.aead_backend(), results_);
    psp::open_payload_batch(batch_, keys_, keys_.aead_backend(), results_, infos_);
    return results_[kBatch - 1] == psp::DropReason::kNone;
  }
  void set_backend(const crypto::AeadBackend& b) { keys_.backend = &b; }

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
  net::PacketPool pool_;
  std::array<uint8_t, 20> ip_header_{};
  net::PacketBatch batch_;
  std::vector<psp::SealJob> jobs_;
  Keys keys_;
  std::array<psp::DropReason, net::kMaxBatch> results_{};
  std::array<psp::OpenInfo, net::kMaxBatch> infos_{};
};

enum class What { kPspSeal, kRawSeal, kPspRoundTrip, kRawRoundTrip };

void run(benchmark::State& state, const crypto::AeadBackend& backend, psp::PspVersion v, What what,
         std::size_t len) {
  const auto alg =
      v == psp::PspVersion::kAesGcm128 ? crypto::AeadAlg::kAesGcm128 : crypto::AeadAlg::kAesGcm256;
  AeadFixture fx(backend, alg, len);
  PspFixture pf(fx, v, len);
  pf.set_backend(backend);
  std::vector<crypto::AeadOp> in_place(fx.seal_ops().begin(), fx.seal_ops().end());
  bool ok = true;
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the loop idiom
    switch (what) {
      case What::kPspSeal:
        ok &= pf.seal_and_rewind();
        break;
      case What::kRawSeal:
        backend.seal(fx.seal_ops());
        break;
      case What::kPspRoundTrip:
        ok &= pf.seal_then_open();
        break;
      case What::kRawRoundTrip:
        backend.seal(in_place);
        backend.open(in_place);
        ok &= in_place[0].ok;
        break;
    }
    benchmark::ClobberMemory();
  }
  if (!ok) state.SkipWithError("an op failed");
  const auto pkts = static_cast<int64_t>(state.iterations() * kBatch);
  state.SetItemsProcessed(pkts);
  state.SetBytesProcessed(pkts * static_cast<int64_t>(len));
}

const char* kWhatName[] = {"psp_seal", "raw_seal", "psp_rt", "raw_rt"};
constexpr std::size_t kSizes[] = {64, 256, 512, 1400, 9000};

std::string name(What w, std::string_view backend, psp::PspVersion v, std::size_t len) {
  return std::string(kWhatName[static_cast<int>(w)]) + "/" + std::string(backend) +
         (v == psp::PspVersion::kAesGcm128 ? "/v0/" : "/v1/") + std::to_string(len);
}

// Records each run's time per iteration, for the ratio table.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) times_[r.benchmark_name()] = r.GetAdjustedCPUTime();
    ConsoleReporter::ReportRuns(runs);
  }
  void print_ratios(const std::vector<std::unique_ptr<crypto::AeadBackend>>& backends) const {
    std::printf("\nPSP throughput / raw AES-GCM throughput (CPU time, same backend, batch %zu)\n", kBatch);
    std::printf("%-10s %-3s %6s %8s %8s\n", "backend", "ver", "bytes", "seal", "seal+open");
    for (const auto& b : backends) {
      for (auto v : {psp::PspVersion::kAesGcm128, psp::PspVersion::kAesGcm256}) {
        for (std::size_t len : kSizes) {
          std::printf("%-10s %-3s %6zu %7.1f%% %7.1f%%\n", std::string(b->name()).c_str(),
                      v == psp::PspVersion::kAesGcm128 ? "v0" : "v1", len,
                      ratio(name(What::kRawSeal, b->name(), v, len), name(What::kPspSeal, b->name(), v, len)),
                      ratio(name(What::kRawRoundTrip, b->name(), v, len),
                            name(What::kPspRoundTrip, b->name(), v, len)));
        }
      }
    }
  }

 private:
  double ratio(const std::string& raw, const std::string& psp) const {
    const auto r = times_.find(raw);
    const auto p = times_.find(psp);
    if (r == times_.end() || p == times_.end() || p->second <= 0) return 0;
    return 100.0 * r->second / p->second;
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
  for (const auto& b : backends) {
    for (auto v : {psp::PspVersion::kAesGcm128, psp::PspVersion::kAesGcm256}) {
      for (std::size_t len : bench::kSizes) {
        for (auto w : {bench::What::kRawSeal, bench::What::kPspSeal, bench::What::kRawRoundTrip,
                       bench::What::kPspRoundTrip}) {
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
