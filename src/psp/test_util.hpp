// Shared helpers for the PSP unit tests: test frames, keys, resolvers, a counting backend.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "crypto/aead.hpp"
#include "crypto/kdf.hpp"
#include "net/addr.hpp"
#include "net/packet.hpp"
#include "psp/encap.hpp"
#include "psp/key_ring.hpp"

namespace pspgw::psp::testing {

std::vector<uint8_t> hex(std::string_view text);  // whitespace allowed
crypto::MasterKey master_key(std::string_view hex_text);
inline constexpr std::string_view kK0 = "34448a064292601b11a0978f56a2d34cf3fc35ede1a6bc04f8db3e5243a2b0ca";
inline constexpr std::string_view kK1 = "563952565d3a78ae773ec1b779f2f2d99f4a7f53a6fbb9b07d5b71f39364d739";

// Marks every SPI of the ring's active slot as handed out, for tests that seal to SPIs they pick instead of
// allocating them (a KeyCache refuses SPIs above the slot's high-water mark as kUnissuedSpi).
inline void issue_all(KeyRing& ring) {
  ring.set_spi_counter(kSpiSlotBit);
}

struct FrameSpec {
  net::IpFamily family = net::IpFamily::kV4;
  uint8_t proto = 17;  // 17 UDP, 6 TCP, anything else: opaque payload
  std::size_t payload = 100;
  bool vlan = false;
  uint8_t ipv4_option_words = 0;  // IPv4 options (NOPs), 4-byte words
  bool ipv6_dest_opts = false;    // one 8-byte destination-options extension header
};
// An Ethernet II frame like create_pcap's: valid lengths, IPv4 checksum, ports 11111 -> 22222.
std::vector<uint8_t> make_frame(const FrameSpec& spec);
// The bare IP packet of make_frame (no L2).
std::vector<uint8_t> make_ip_packet(const FrameSpec& spec);

// A packet in `pool` holding `bytes` behind the default headroom.
net::Packet* load(net::PacketPool& pool, std::span<const uint8_t> bytes);
inline std::vector<uint8_t> contents(const net::Packet& p) {
  return {p.bytes().begin(), p.bytes().end()};
}

// A resolver with one fixed key per version, for any SPI; counts lookups.
class FixedResolver final : public KeyResolver {
 public:
  FixedResolver(const crypto::AeadBackend& aead, std::span<const uint8_t> key128,
                std::span<const uint8_t> key256);
  const crypto::AeadKey* key_for(uint32_t spi, PspVersion version) override;
  const crypto::AeadKey& key(PspVersion v) const { return v == PspVersion::kAesGcm128 ? *k128_ : *k256_; }
  int lookups = 0;

 private:
  std::unique_ptr<crypto::AeadKey> k128_;
  std::unique_ptr<crypto::AeadKey> k256_;
};

// Forwards to a real backend and counts the batch calls.
class CountingBackend final : public crypto::AeadBackend {
 public:
  explicit CountingBackend(const crypto::AeadBackend& inner) : inner_(inner) {}
  std::string_view name() const override { return inner_.name(); }
  std::unique_ptr<crypto::AeadKey> make_key(crypto::AeadAlg alg,
                                            std::span<const uint8_t> key) const override {
    return inner_.make_key(alg, key);
  }
  void seal(std::span<crypto::AeadOp> ops) const override;
  void open(std::span<crypto::AeadOp> ops) const override;
  mutable int seal_calls = 0;
  mutable int open_calls = 0;
  mutable std::size_t ops_seen = 0;

 private:
  const crypto::AeadBackend& inner_;
};

// The backends to run every crypto test over: "openssl" always, "ipsec-mb" where the CPU has it.
std::vector<std::string_view> backend_names();

}  // namespace pspgw::psp::testing
