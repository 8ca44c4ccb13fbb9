// Retry pacing of the store's calls (etcd unreachable: log, retry, catch up on reconnect).
#pragma once

#include <algorithm>
#include <chrono>

namespace pspgw::fleet {

struct StoreBackoff {
  std::chrono::milliseconds initial{200};
  std::chrono::milliseconds max{2000};  // a store back is used within 2 s
  std::chrono::milliseconds current{0};

  // The wait before the next try: initial, doubling to max.
  std::chrono::milliseconds next() {
    current = current.count() == 0 ? initial : std::min(max, current * 2);
    return current;
  }
  void reset() { current = std::chrono::milliseconds(0); }
};

}  // namespace pspgw::fleet
