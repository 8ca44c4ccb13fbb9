// Raw AES-GCM cost per packet, per backend, AES-128 (PSP v0) and AES-256 (PSP v1), in batches of 32.
// Counters: per_pkt (time per packet), and bytes/s over the encrypted text (SetBytesProcessed).
#include <benchmark/benchmark.h>

#include <string>

#include "aead_fixture.hpp"

namespace pspgw::bench {
namespace {

enum class Dir { kSeal, kOpen };

void run(benchmark::State& state, const crypto::AeadBackend& backend, crypto::AeadAlg alg, Dir dir,
         std::size_t len) {
  AeadFixture fx(backend, alg, len);
  if (!fx.valid()) {
    state.SkipWithError("make_key failed");
    return;
  }
  const std::span<crypto::AeadOp> ops = dir == Dir::kSeal ? fx.seal_ops() : fx.open_ops();
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the loop idiom
    if (dir == Dir::kSeal) {
      backend.seal(ops);
    } else {
      backend.open(ops);
    }
    benchmark::ClobberMemory();
  }
  if (!AeadFixture::all_ok(ops)) state.SkipWithError("an op failed");
  const auto pkts = static_cast<int64_t>(state.iterations() * ops.size());
  state.SetItemsProcessed(pkts);
  state.SetBytesProcessed(pkts * static_cast<int64_t>(len));
  // Seconds per packet, printed with an SI prefix (e.g. "31.2ns").
  state.counters["per_pkt"] = benchmark::Counter(static_cast<double>(pkts),
                                                 benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void register_all(const std::vector<std::unique_ptr<crypto::AeadBackend>>& backends) {
  constexpr std::size_t kSizes[] = {64, 256, 512, 1400, 9000};
  for (const auto& backend : backends) {
    for (const crypto::AeadAlg alg : {crypto::AeadAlg::kAesGcm128, crypto::AeadAlg::kAesGcm256}) {
      for (const Dir dir : {Dir::kSeal, Dir::kOpen}) {
        for (const std::size_t len : kSizes) {
          const std::string name =
              std::string(dir == Dir::kSeal ? "seal/" : "open/") + std::string(backend->name()) +
              (alg == crypto::AeadAlg::kAesGcm128 ? "/aes128/" : "/aes256/") + std::to_string(len);
          const crypto::AeadBackend* b = backend.get();
          benchmark::RegisterBenchmark(
              name.c_str(), [b, alg, dir, len](benchmark::State& state) { run(state, *b, alg, dir, len); });
        }
      }
    }
  }
}

}  // namespace
}  // namespace pspgw::bench

int main(int argc, char** argv) {
  std::vector<std::unique_ptr<pspgw::crypto::AeadBackend>> backends;
  for (const char* name : {"openssl", "ipsec-mb"}) {
    if (auto backend = pspgw::crypto::make_backend(name)) backends.push_back(std::move(backend));
  }
  pspgw::bench::register_all(backends);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
