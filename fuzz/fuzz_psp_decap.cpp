// decap_frame (and open_payload) on arbitrary bytes with a fixed key ring: no crash, no read outside the
// packet; whatever authenticates restores to a frame that parses as IP.
#include <span>

#include "base/byteorder.hpp"
#include "crypto/aead.hpp"
#include "fuzz/fuzz_keys.hpp"
#include "fuzz/fuzz_target.hpp"
#include "net/packet.hpp"
#include "psp/encap.hpp"
#include "psp/key_cache.hpp"
#include "psp/payload.hpp"

namespace {

struct Env {
  std::unique_ptr<pspgw::crypto::AeadBackend> aead = pspgw::crypto::make_openssl_backend();
  pspgw::psp::KeyCache keys{*aead, 64};
  pspgw::net::PacketPool pool{1};
  Env() { keys.update(pspgw::fuzz::fixed_ring().snapshot()); }
};

}  // namespace

PSPGW_FUZZ_TARGET(psp_decap) {
  static Env env;
  pspgw::net::Packet* pkt = env.pool.alloc();
  if (pkt->assign(std::span<const uint8_t>(data, size))) {
    auto r = pspgw::psp::decap_frame(*pkt, env.keys, *env.aead);
    if (r) {  // restored: an Ethernet (+VLAN) frame whose ethertype and IP version agree
      const auto b = pkt->bytes();
      PSPGW_FUZZ_CHECK(b.size() >= 18 + 20);
      const std::size_t l2 = pspgw::load_be16(&b[12]) == 0x8100 ? 18 : 14;
      const uint16_t et = pspgw::load_be16(&b[l2 - 2]);
      const int version = b[l2] >> 4;
      PSPGW_FUZZ_CHECK((et == 0x0800 && version == 4) || (et == 0x86dd && version == 6));
    }
    pkt->reset();
    if (pkt->assign(std::span<const uint8_t>(data, size)))
      (void)pspgw::psp::open_payload(*pkt, env.keys, *env.aead);
  }
  env.pool.free(pkt);
  return 0;
}
