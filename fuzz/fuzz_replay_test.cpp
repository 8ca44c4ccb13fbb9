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

// One test per entry point this build links (fuzz/CMakeLists.txt defines PSPGW_FUZZ_HAVE_<TARGET>).
#define PSPGW_FUZZ_REPLAY(Test, name) \
  TEST(FuzzReplay, Test) {            \
    replay(#name, pspgw_fuzz_##name); \
  }

#ifdef PSPGW_FUZZ_HAVE_PSP_DECAP
PSPGW_FUZZ_REPLAY(PspDecap, psp_decap)
#endif
#ifdef PSPGW_FUZZ_HAVE_PSP_HEADER
PSPGW_FUZZ_REPLAY(PspHeader, psp_header)
#endif
#ifdef PSPGW_FUZZ_HAVE_NET_PARSE
PSPGW_FUZZ_REPLAY(NetParse, net_parse)
#endif
#ifdef PSPGW_FUZZ_HAVE_GATEWAY_CONFIG
PSPGW_FUZZ_REPLAY(GatewayConfig, gateway_config)
#endif
#ifdef PSPGW_FUZZ_HAVE_PSP_PCAP_CONFIG
PSPGW_FUZZ_REPLAY(PspPcapConfig, psp_pcap_config)
#endif
#ifdef PSPGW_FUZZ_HAVE_PCAP_READER
PSPGW_FUZZ_REPLAY(PcapReader, pcap_reader)
#endif
#ifdef PSPGW_FUZZ_HAVE_EXCEPTION_REPLY
PSPGW_FUZZ_REPLAY(ExceptionReply, exception_reply)
#endif
#ifdef PSPGW_FUZZ_HAVE_SFC_MATCH
PSPGW_FUZZ_REPLAY(SfcMatch, sfc_match)
#endif
#ifdef PSPGW_FUZZ_HAVE_ADMIN_REQUEST
PSPGW_FUZZ_REPLAY(AdminRequest, admin_request)
#endif
#ifdef PSPGW_FUZZ_HAVE_GRPC_CONVERT
PSPGW_FUZZ_REPLAY(GrpcConvert, grpc_convert)
#endif
#ifdef PSPGW_FUZZ_HAVE_TAP_GSO
PSPGW_FUZZ_REPLAY(TapGso, tap_gso)
#endif
#ifdef PSPGW_FUZZ_HAVE_FLOW_MATCH
PSPGW_FUZZ_REPLAY(FlowMatch, flow_match)
#endif
#ifdef PSPGW_FUZZ_HAVE_FLEET_RECORD
PSPGW_FUZZ_REPLAY(FleetRecord, fleet_record)
#endif

}  // namespace
