#include "net/packet.hpp"

#include <cstring>

namespace pspgw::net {

bool Packet::assign(std::span<const uint8_t> src) {
  if (src.size() > cap_ - off_) return false;
  if (!src.empty()) std::memcpy(data(), src.data(), src.size());  // an empty span's data() may be null
  len_ = static_cast<uint32_t>(src.size());
  return true;
}

PacketPool::PacketPool(std::size_t count, uint32_t buffer_size)
    : buffer_size_(buffer_size), memory_(new uint8_t[count * buffer_size]) {
  packets_.reserve(count);
  free_.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    packets_.emplace_back(memory_.get() + i * buffer_size, buffer_size);
  }
  for (std::size_t i = count; i > 0; --i) free_.push_back(&packets_[i - 1]);
}

}  // namespace pspgw::net
