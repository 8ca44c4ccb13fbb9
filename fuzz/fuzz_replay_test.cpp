// Runs every fuzz entry point over its checked-in seed corpus (fuzz/corpus/<target>/), mutations of the
// seeds, and deterministic random inputs, so the entry points run in every test run (g++ has no libFuzzer).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <vector>

#include "fuzz/fuzz_target.hpp"

namespace {

using Entry = int (*)(const uint8_t*, std::size_t);

std::vector<std::vector<uint8_t>> seeds(const char* target) {
  std::vector<std::vector<uint8_t>> out;
  const std::filesystem::path dir = std::filesystem::path(PSPGW_FUZZ_CORPUS) / target;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    out.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return out;
}

void replay(const char* target, Entry entry) {
  const auto corpus = seeds(target);
  ASSERT_GE(corpus.size(), 3u) << "seed corpus missing for " << target;
  std::mt19937 rng(12345);
  for (const auto& s : corpus) {
    entry(s.data(), s.size());
    for (int m = 0; m < 200; ++m) {  // bit flips, byte sets and truncations of the seed
      auto v = s;
      if (!v.empty()) {
        const std::size_t at = rng() % v.size();
        if (m % 3 == 0) v[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
        if (m % 3 == 1) v[at] = static_cast<uint8_t>(rng());
        if (m % 3 == 2) v.resize(at);
      }
      entry(v.data(), v.size());
    }
  }
  for (int i = 0; i < 3000; ++i) {  // random bytes of random length
    std::vector<uint8_t> v(rng() % 256);
    for (auto& b : v) b = static_cast<uint8_t>(rng());
    entry(v.data(), v.size());
  }
}

TEST(FuzzReplay, PspDecap) {
  replay("psp_decap", pspgw_fuzz_psp_decap);
}
TEST(FuzzReplay, PspHeader) {
  replay("psp_header", pspgw_fuzz_psp_header);
}
TEST(FuzzReplay, NetParse) {
  replay("net_parse", pspgw_fuzz_net_parse);
}

}  // namespace
