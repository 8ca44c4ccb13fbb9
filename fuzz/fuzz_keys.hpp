// The fixed master keys of the fuzz targets and their seed corpus (the published K0/K1 of spec §4), so
// seeds made by fuzz_make_corpus authenticate and reach the restore paths.
#pragma once

#include <array>

#include "psp/key_ring.hpp"

namespace pspgw::fuzz {

inline psp::KeyRing fixed_ring() {
  constexpr std::array<uint8_t, 32> k0 = {0x34, 0x44, 0x8a, 0x06, 0x42, 0x92, 0x60, 0x1b, 0x11, 0xa0, 0x97,
                                          0x8f, 0x56, 0xa2, 0xd3, 0x4c, 0xf3, 0xfc, 0x35, 0xed, 0xe1, 0xa6,
                                          0xbc, 0x04, 0xf8, 0xdb, 0x3e, 0x52, 0x43, 0xa2, 0xb0, 0xca};
  constexpr std::array<uint8_t, 32> k1 = {0x56, 0x39, 0x52, 0x56, 0x5d, 0x3a, 0x78, 0xae, 0x77, 0x3e, 0xc1,
                                          0xb7, 0x79, 0xf2, 0xf2, 0xd9, 0x9f, 0x4a, 0x7f, 0x53, 0xa6, 0xfb,
                                          0xb9, 0xb0, 0x7d, 0x5b, 0x71, 0xf3, 0x93, 0x64, 0xd7, 0x39};
  // Every SPI of both slots counts as handed out, so the seeds' SPIs reach the AEAD (and mutated SPIs too).
  psp::KeyRing ring{crypto::MasterKey(std::span<const uint8_t, 32>(k0))};
  ring.set_spi_counter(psp::kSpiSlotBit);
  ring.rotate(crypto::MasterKey(std::span<const uint8_t, 32>(k1)));
  ring.set_spi_counter(psp::kSpiSlotBit);
  return ring;
}

}  // namespace pspgw::fuzz
