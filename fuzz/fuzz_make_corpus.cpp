// Writes the seed corpus: fuzz_make_corpus <fuzz/corpus dir>. Seeds are sealed with fuzz_keys.hpp's ring, so
// they authenticate in fuzz_psp_decap and reach the frame-restore code.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "fuzz/fuzz_keys.hpp"
#include "psp/encap.hpp"
#include "psp/seal.hpp"
#include "psp/test_util.hpp"

namespace {

using namespace pspgw;

void write(const std::filesystem::path& dir, const std::string& name, std::span<const uint8_t> bytes) {
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path root = argv[1];
  auto aead = crypto::make_openssl_backend();
  const psp::KeyRing ring = fuzz::fixed_ring();
  net::PacketPool pool(1);
  int n = 0;
  for (auto mode : {psp::Mode::kTransport, psp::Mode::kTunnel}) {
    for (auto fam : {net::IpFamily::kV4, net::IpFamily::kV6}) {
      for (auto v : {psp::PspVersion::kAesGcm128, psp::PspVersion::kAesGcm256}) {
        for (bool vc : {false, true}) {
          const auto frame = psp::testing::make_frame(
              {fam, static_cast<uint8_t>(vc ? 6 : 17), 24, vc && v == psp::PspVersion::kAesGcm128});
          write(root / "net_parse", "frame" + std::to_string(n), frame);
          psp::SealParams p;
          p.mode = mode;
          p.version = v;
          p.spi = vc ? 0x80000003 : 0x00000002;
          p.iv = 1;
          p.has_vc = vc;
          p.crypt_offset = vc ? 1 : 2;
          auto derived = ring.derive(p.spi, v).value();
          auto key = aead->make_key(*psp::aead_alg(static_cast<uint8_t>(v)), derived.view());
          net::Packet* pkt = psp::testing::load(pool, frame);
          if (!psp::encap_frame(*pkt, p, *key, *aead).ok()) return 1;
          write(root / "psp_decap", "frame" + std::to_string(n), pkt->bytes());
          pool.free(pkt);
          psp::PspHeaderFields h = psp::seal_header(p, 4);
          std::array<uint8_t, 24> hb{};
          psp::encode_header(h, hb);
          write(root / "psp_header", "hdr" + std::to_string(n), std::span<const uint8_t>(hb).first(h.size()));
          ++n;
        }
      }
    }
  }
  std::printf("wrote %d seeds per target under %s\n", n, root.c_str());
  return 0;
}
