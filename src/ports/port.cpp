#include "ports/port.hpp"

#include <cstring>

namespace pspgw::ports {

std::string_view to_string(DropReason r) {
  switch (r) {
    case DropReason::kTruncated:
      return "truncated";
    case DropReason::kBadVnetHeader:
      return "bad_vnet_header";
    case DropReason::kBadGso:
      return "bad_gso";
    case DropReason::kRxError:
      return "rx_error";
    case DropReason::kNoDestination:
      return "no_destination";
    case DropReason::kTxQueueFull:
      return "tx_queue_full";
    case DropReason::kTxError:
      return "tx_error";
    case DropReason::kWire:
      return "wire";
    case DropReason::kDeviceGone:
      return "device_gone";
    case DropReason::kCount:
      break;
  }
  return "unknown";
}

std::string SysError::message() const {
  std::string m(step);
  m += ": ";
  m += ::strerrordesc_np(err) != nullptr ? ::strerrordesc_np(err) : "unknown error";
  return m;
}

uint64_t PortStats::total_drops() const {
  uint64_t n = 0;
  for (uint64_t d : drops) n += d;
  return n;
}

}  // namespace pspgw::ports
