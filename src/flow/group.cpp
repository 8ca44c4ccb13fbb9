#include "flow/group.hpp"

#include <algorithm>

namespace pspgw::flow {

GroupTable rebalance(const GroupTable* old, std::span<const Target> members, Target if_empty) {
  GroupTable t;
  const std::size_t n = members.size();
  if (n == 0) {
    t.slot.fill(if_empty);
    return t;
  }
  // Which member holds each old slot (n = none), and how many each holds.
  std::vector<std::size_t> owner(kGroupSlots, n);
  std::vector<uint32_t> held(n, 0);
  if (old != nullptr) {
    for (uint32_t s = 0; s < kGroupSlots; ++s) {
      const auto it = std::find(members.begin(), members.end(), old->slot[s]);
      if (it == members.end()) continue;
      owner[s] = static_cast<std::size_t>(it - members.begin());
      ++held[owner[s]];
    }
  }
  // Fair shares: kGroupSlots / n each, the remainder to the members holding the most (fewest moves).
  std::vector<uint32_t> share(n, kGroupSlots / static_cast<uint32_t>(n));
  std::vector<std::size_t> by_held(n);
  for (std::size_t i = 0; i < n; ++i) by_held[i] = i;
  std::stable_sort(by_held.begin(), by_held.end(),
                   [&](std::size_t a, std::size_t b) { return held[a] > held[b]; });
  for (std::size_t r = 0; r < kGroupSlots % n; ++r) ++share[by_held[r]];
  // Members above their share give up their highest slots.
  std::vector<uint32_t> kept(n, 0);
  for (uint32_t s = 0; s < kGroupSlots; ++s) {
    if (owner[s] == n) continue;
    if (kept[owner[s]] < share[owner[s]]) {
      ++kept[owner[s]];
    } else {
      owner[s] = n;
    }
  }
  // Free slots go to the members below their share, in member order.
  std::size_t next = 0;
  for (uint32_t s = 0; s < kGroupSlots; ++s) {
    if (owner[s] != n) continue;
    while (kept[next] == share[next]) ++next;
    owner[s] = next;
    ++kept[next];
  }
  for (uint32_t s = 0; s < kGroupSlots; ++s) t.slot[s] = members[owner[s]];
  return t;
}

}  // namespace pspgw::flow
