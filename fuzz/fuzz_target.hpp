// One fuzz entry point per file, usable two ways: as a libFuzzer target (clang, PSPGW_LIBFUZZER defined:
// the macro also emits LLVMFuzzerTestOneInput) and linked together into the corpus-replay test that every
// build runs (g++ or clang, no libFuzzer).
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(PSPGW_LIBFUZZER)
#define PSPGW_FUZZ_TARGET(name)                                                  \
  int pspgw_fuzz_##name(const uint8_t* data, std::size_t size);                  \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) { \
    return pspgw_fuzz_##name(data, size);                                        \
  }                                                                              \
  int pspgw_fuzz_##name(const uint8_t* data, std::size_t size)
#else
#define PSPGW_FUZZ_TARGET(name) int pspgw_fuzz_##name(const uint8_t* data, std::size_t size)
#endif

int pspgw_fuzz_psp_decap(const uint8_t* data, std::size_t size);
int pspgw_fuzz_psp_header(const uint8_t* data, std::size_t size);
int pspgw_fuzz_net_parse(const uint8_t* data, std::size_t size);
int pspgw_fuzz_gateway_config(const uint8_t* data, std::size_t size);
int pspgw_fuzz_psp_pcap_config(const uint8_t* data, std::size_t size);
int pspgw_fuzz_pcap_reader(const uint8_t* data, std::size_t size);
int pspgw_fuzz_exception_reply(const uint8_t* data, std::size_t size);
int pspgw_fuzz_admin_request(const uint8_t* data, std::size_t size);
int pspgw_fuzz_grpc_convert(const uint8_t* data, std::size_t size);
int pspgw_fuzz_sfc_match(const uint8_t* data, std::size_t size);
int pspgw_fuzz_tap_gso(const uint8_t* data, std::size_t size);
int pspgw_fuzz_flow_match(const uint8_t* data, std::size_t size);
int pspgw_fuzz_fleet_record(const uint8_t* data, std::size_t size);

// Aborts (a crash the fuzzer reports) when an invariant does not hold; active in release builds too.
#define PSPGW_FUZZ_CHECK(cond)     \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)
