// Cost of a receive-key derivation and of what a packet with a hostile SPI costs the receiver (issue 7 §6).
//   kdf/v0, kdf/v1            KdfKey (intel-ipsec-mb AES-256-CMAC jobs): what the data plane runs
//   kdf/openssl_cmac/v0       the OpenSSL EVP_MAC reference, one context per call: what it cost before
//   snapshot/derive/v0|v1     MasterKeySnapshot::derive: the key cache's miss path minus make_key
//   key_cache/miss/ipsec-mb   a miss end to end: high-water check, derivation, make_key (GCM precompute)
//   key_cache/unissued        a random-SPI packet: the high-water check refuses it, nothing derived
// build/bin/bench_kdf --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include "crypto/aead.hpp"
#include "crypto/kdf.hpp"
#include "psp/key_cache.hpp"
#include "psp/key_ring.hpp"

namespace pspgw::bench {
namespace {

crypto::MasterKey fixed_key() {
  crypto::MasterKey k;
  for (std::size_t i = 0; i < k.size(); ++i) k.mutable_bytes()[i] = static_cast<uint8_t>(i * 7 + 1);
  return k;
}

void per_key(benchmark::State& state) {
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["per_key"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                                 benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_KdfV0(benchmark::State& state) {
  const crypto::KdfKey key(fixed_key());
  uint32_t spi = 1;
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the loop idiom
    auto k = key.derive_v0(spi++);
    benchmark::DoNotOptimize(k.reveal().data());
  }
  per_key(state);
}
BENCHMARK(BM_KdfV0)->Name("kdf/v0");

void BM_KdfV1(benchmark::State& state) {
  const crypto::KdfKey key(fixed_key());
  uint32_t spi = 1;
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the loop idiom
    auto k = key.derive_v1(spi++);
    benchmark::DoNotOptimize(k.reveal().data());
  }
  per_key(state);
}
BENCHMARK(BM_KdfV1)->Name("kdf/v1");

void BM_OpenSslCmacV0(benchmark::State& state) {
  const crypto::MasterKey mk = fixed_key();
  std::array<uint8_t, 16> block = {0, 0, 0, 1, 'P', 'v', '0', 0, 0, 0, 0, 1, 0, 0, 0, 0x80};
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the loop idiom
    ++block[11];
    auto k = crypto::cmac_aes256_block(mk, block);
    benchmark::DoNotOptimize(k.reveal().data());
  }
  per_key(state);
}
BENCHMARK(BM_OpenSslCmacV0)->Name("kdf/openssl_cmac/v0");

void BM_SnapshotDerive(benchmark::State& state, psp::PspVersion version) {
  psp::KeyRing ring(fixed_key());
  ring.set_spi_counter(psp::kSpiSlotBit);
  const auto snap = ring.snapshot();
  uint32_t spi = 1;
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the loop idiom
    auto k = snap->derive(spi++ & psp::kSpiLowMask, version);
    benchmark::DoNotOptimize(k);
  }
  per_key(state);
}
BENCHMARK_CAPTURE(BM_SnapshotDerive, v0, psp::PspVersion::kAesGcm128)->Name("snapshot/derive/v0");
BENCHMARK_CAPTURE(BM_SnapshotDerive, v1, psp::PspVersion::kAesGcm256)->Name("snapshot/derive/v1");

// Every lookup a miss: distinct SPIs, all handed out, through a cache of 1024 entries.
void BM_KeyCacheMiss(benchmark::State& state) {
  auto aead = crypto::make_backend("ipsec-mb");
  if (!aead) aead = crypto::make_backend("openssl");
  psp::KeyRing ring(fixed_key());
  ring.set_spi_counter(psp::kSpiSlotBit);
  psp::KeyCache cache(*aead);
  cache.update(ring.snapshot());
  uint32_t spi = 1;
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the loop idiom
    benchmark::DoNotOptimize(cache.key_for(spi++, psp::PspVersion::kAesGcm256));
  }
  per_key(state);
  state.SetLabel(std::string(aead->name()));
}
BENCHMARK(BM_KeyCacheMiss)->Name("key_cache/miss/v1");

// A random-SPI flood against a receiver that has handed out 1000 SPIs.
void BM_KeyCacheUnissued(benchmark::State& state) {
  auto aead = crypto::make_backend("openssl");
  psp::KeyRing ring(fixed_key());
  for (int i = 0; i < 1000; ++i) (void)ring.allocate_spi();
  psp::KeyCache cache(*aead);
  cache.update(ring.snapshot());
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the loop idiom
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    const auto spi = static_cast<uint32_t>(x) | 0x10000u;  // above the mark
    benchmark::DoNotOptimize(cache.key_for(spi, psp::PspVersion::kAesGcm128));
  }
  if (cache.stats().misses != 0) state.SkipWithError("derived a key for an unissued SPI");
  per_key(state);
}
BENCHMARK(BM_KeyCacheUnissued)->Name("key_cache/unissued");

}  // namespace
}  // namespace pspgw::bench

BENCHMARK_MAIN();
