// Strong ids: a PortId is not a queue number is not an SPI.
#pragma once

#include <cstdint>
#include <functional>

namespace pspgw {

template <class Tag, class Rep>
class StrongId {
 public:
  using rep_type = Rep;
  constexpr StrongId() = default;
  constexpr explicit StrongId(Rep v) : v_(v) {}
  constexpr Rep value() const { return v_; }
  friend constexpr auto operator<=>(StrongId, StrongId) = default;

 private:
  Rep v_{};
};

using PortId = StrongId<struct PortIdTag, uint16_t>;

}  // namespace pspgw

template <class Tag, class Rep>
struct std::hash<pspgw::StrongId<Tag, Rep>> {
  std::size_t operator()(pspgw::StrongId<Tag, Rep> id) const noexcept { return std::hash<Rep>{}(id.value()); }
};
