// Test doubles for the flow engine: frame builders and a Sink that records where each packet went.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "flow/pipeline.hpp"
#include "net/addr.hpp"
#include "net/packet.hpp"

namespace pspgw::flow::testing {

struct FrameSpec {
  net::IpAddr src = *net::IpAddr::parse("10.0.0.1");
  net::IpAddr dst = *net::IpAddr::parse("10.0.0.2");
  uint8_t proto = 17;
  uint16_t sport = 1234;
  uint16_t dport = 5678;
  std::vector<uint8_t> payload = std::vector<uint8_t>(18, 0x41);
};
// Ethernet + IPv4/IPv6 (by the address family) + UDP/TCP (by proto) + payload.
std::vector<uint8_t> frame(const FrameSpec& s);
// Ethernet + ARP request.
std::vector<uint8_t> arp_frame();
// A PSP-shaped tunnel packet: Ethernet + outer IPv6 + UDP dport 1000 + 16-byte PSP header (next header 4,
// S bit, SPI) + inner IPv4/UDP packet + 16-byte ICV, bytes in the clear (as after decrypt).
std::vector<uint8_t> psp_frame(uint32_t spi, bool s_bit, const net::IpAddr& inner_src,
                               const net::IpAddr& inner_dst);

struct Delivery {
  Target target;
  net::Packet* pkt;
};

// Records every packet and the target it left by, in order. Packets go back to the pool on clear().
class CollectSink final : public Sink {
 public:
  explicit CollectSink(net::PacketPool& pool) : pool_(pool) {}
  ~CollectSink() override { clear(); }
  void to_port(PortId port, std::span<net::Packet* const> pkts) override {
    add({TargetKind::kPort, port.value()}, pkts);
  }
  void to_cpu(uint16_t reason, std::span<net::Packet* const> pkts) override {
    add({TargetKind::kCpu, reason}, pkts);
  }
  void to_kernel(std::span<net::Packet* const> pkts) override { add({TargetKind::kKernel, 0}, pkts); }
  void dropped(uint8_t reason, std::span<net::Packet* const> pkts) override {
    add({TargetKind::kDrop, reason}, pkts);
  }

  std::vector<Delivery> out;
  std::size_t calls = 0;
  std::size_t count(Target t) const;
  void clear();

 private:
  void add(Target t, std::span<net::Packet* const> pkts);
  net::PacketPool& pool_;
};

// Fills a batch with copies of frames from the pool, in_port set.
net::PacketBatch make_batch(net::PacketPool& pool, const std::vector<std::vector<uint8_t>>& frames,
                            uint16_t in_port = 0);

}  // namespace pspgw::flow::testing
