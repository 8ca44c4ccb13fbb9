#include "flow/action.hpp"

namespace pspgw::flow {

void UdpTunnelLocator::locate(std::span<net::Packet* const> pkts, std::span<const OuterL4> outer,
                              std::span<uint16_t> inner_l3) const {
  for (std::size_t i = 0; i < pkts.size(); ++i) {
    inner_l3[i] = 0;
    const OuterL4& o = outer[i];
    if (o.udp_payload == 0 || o.udp_dst != port_) continue;
    const uint32_t size = pkts[i]->size();
    if (o.udp_payload + static_cast<uint32_t>(len_) > size) continue;
    uint32_t at = o.udp_payload + len_;
    if (ext_mask_ != 0 && ext_byte_ < len_ && (pkts[i]->data()[o.udp_payload + ext_byte_] & ext_mask_) != 0)
      at += ext_len_;
    if (at < size && at <= 0xffff) inner_l3[i] = static_cast<uint16_t>(at);
  }
}

}  // namespace pspgw::flow
