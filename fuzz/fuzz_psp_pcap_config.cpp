// psp-pcap's encrypt/decrypt config parsers on arbitrary text: no crash; errors name an item 1..10;
// what parses is in range, and every valid encrypt config is also a valid decrypt config with the same
// keys (tools/psp-pcap/config.hpp).
#include <algorithm>
#include <string_view>

#include "fuzz/fuzz_target.hpp"
#include "tools/psp-pcap/config.hpp"

namespace {

using namespace pspgw;

bool same_key(const crypto::MasterKey& a, const crypto::MasterKey& b) {
  return std::ranges::equal(a.reveal(), b.reveal());
}

}  // namespace

PSPGW_FUZZ_TARGET(psp_pcap_config) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto enc = psp_pcap::parse_encrypt_config(text);
  auto dec = psp_pcap::parse_decrypt_config(text);
  if (!enc) PSPGW_FUZZ_CHECK(enc.error().item >= 1 && enc.error().item <= 10);
  if (!dec) PSPGW_FUZZ_CHECK(dec.error().item >= 1 && dec.error().item <= 10);
  if (enc) {
    PSPGW_FUZZ_CHECK((enc->spi & 0x7fffffffu) != 0);  // spec §5: low 31 bits zero is reserved
    for (uint8_t off :
         {enc->transport_crypt_offset, enc->ipv4_tunnel_crypt_offset, enc->ipv6_tunnel_crypt_offset})
      PSPGW_FUZZ_CHECK(off <= psp::kPspMaxCryptOffset);
    PSPGW_FUZZ_CHECK(dec.ok());
    PSPGW_FUZZ_CHECK(same_key(enc->keys.key0, dec->key0) && same_key(enc->keys.key1, dec->key1));
  }
  return 0;
}
