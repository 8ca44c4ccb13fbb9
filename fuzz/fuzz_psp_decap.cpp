// The one PSP decap (psp/encap.hpp: what the daemon's decrypt()/decap() and psp-pcap run) on arbitrary
// bytes with a fixed key ring, every version (0/1 GCM, 2/3 GMAC): no crash, no read outside the packet;
// whatever authenticates restores to a frame that parses as IP. A restored tunnel packet is then sealed
// again by the daemon's encap (psp/encap_template.hpp) with the header it came with, and must decap to
// the same inner packet. A decap that fails names its reason (one of the receive side's), and holds no
// plaintext: every byte is still the one received or zero (the text of a packet whose ICV failed is
// wiped); only a packet that authenticated and then failed the inner checks (kBadInnerPacket) is exempt.
#include <algorithm>
#include <span>
#include <vector>

#include "base/byteorder.hpp"
#include "crypto/aead.hpp"
#include "fuzz/fuzz_keys.hpp"
#include "fuzz/fuzz_target.hpp"
#include "net/packet.hpp"
#include "psp/batch.hpp"
#include "psp/encap.hpp"
#include "psp/encap_template.hpp"
#include "psp/key_cache.hpp"

namespace {

using namespace pspgw;

struct Env {
  std::unique_ptr<crypto::AeadBackend> aead = crypto::make_openssl_backend();
  psp::KeyRing ring = fuzz::fixed_ring();
  psp::KeyCache keys{*aead, 64};
  net::PacketPool pool{1};
  Env() { keys.update(ring.snapshot()); }
};

// Sealed again with the header it arrived with, from the outer family `outer_v4`.
void reencap(Env& env, net::Packet& pkt, const psp::OpenInfo& info) {
  psp::SealParams p;
  p.version = static_cast<psp::PspVersion>(info.header.version);
  p.spi = info.header.spi;
  p.crypt_offset = info.header.crypt_offset;
  p.has_vc = info.header.has_vc;
  p.vc = info.header.vc;
  psp::OuterHeaders o;
  o.local = *net::IpAddr::parse("2001:db8::1");
  o.peer = *net::IpAddr::parse("2001:db8::2");
  auto t = psp::EncapTemplate::make(p, o);
  PSPGW_FUZZ_CHECK(t.ok());
  auto derived = env.ring.derive(p.spi, p.version);
  PSPGW_FUZZ_CHECK(derived.ok());
  const auto key = env.aead->make_key(*psp::aead_alg(info.header.version), derived->view());
  // Ethertype + the inner IP packet as its header states it (decap keeps any bytes behind it; encap not).
  const uint32_t ip_len = psp::steps::check_inner_ip(pkt.bytes().subspan(14)).length;
  const std::vector<uint8_t> inner(pkt.bytes().begin() + 12, pkt.bytes().begin() + 14 + ip_len);
  if (psp::encap_tunnel(pkt, *t, {}, info.header.iv, 0) != psp::EncapError::kNone) return;  // no room
  crypto::AeadOp op;
  // The clear bytes may pass a shorter inner packet than the one the crypt offset was chosen for.
  if (psp::prepare_frame_seal(pkt, *t, *key, op) != psp::DropReason::kNone) return;
  env.aead->seal({&op, 1});
  auto again = psp::decap_frame(pkt, env.keys, *env.aead);
  PSPGW_FUZZ_CHECK(again.ok());
  PSPGW_FUZZ_CHECK(pkt.size() == inner.size() + 12);
  PSPGW_FUZZ_CHECK(std::equal(inner.begin(), inner.end(), pkt.bytes().begin() + 12));
}

}  // namespace

PSPGW_FUZZ_TARGET(psp_decap) {
  static Env env;
  net::Packet* pkt = env.pool.alloc();
  if (pkt->assign(std::span<const uint8_t>(data, size))) {
    auto r = psp::decap_frame(*pkt, env.keys, *env.aead);
    if (r) {  // restored: an Ethernet (+VLAN) frame whose ethertype and IP version agree
      const auto b = pkt->bytes();
      PSPGW_FUZZ_CHECK(b.size() >= 18 + 20);
      const std::size_t l2 = load_be16(&b[12]) == 0x8100 ? 18 : 14;
      const uint16_t et = load_be16(&b[l2 - 2]);
      const int version = b[l2] >> 4;
      PSPGW_FUZZ_CHECK((et == 0x0800 && version == 4) || (et == 0x86dd && version == 6));
      if (r->mode == psp::Mode::kTunnel && l2 == 14) reencap(env, *pkt, *r);
    } else {
      const psp::DropReason why = r.error();
      PSPGW_FUZZ_CHECK(why > psp::DropReason::kNone && why < psp::DropReason::kCount &&
                       why != psp::DropReason::kNoRoom);
      if (why != psp::DropReason::kBadInnerPacket) {
        PSPGW_FUZZ_CHECK(pkt->size() == size);
        for (std::size_t i = 0; i < size; ++i)
          PSPGW_FUZZ_CHECK(pkt->data()[i] == data[i] || pkt->data()[i] == 0);
      }
    }
  }
  env.pool.free(pkt);
  return 0;
}
