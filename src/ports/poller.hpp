// Waits on several ports at once (epoll, level-triggered): a worker sleeps here when every port is idle.
// Level-triggered because rx_burst takes at most one batch: a port with more queued stays ready.
#pragma once

#include <cstdint>
#include <span>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "ports/port.hpp"

namespace pspgw::ports {

class Poller {
 public:
  // errno on failure.
  static Result<Poller, int> create();

  // Watches `fd` (or the port's fd) for readability; wait() reports `token` when it is ready.
  // EINVAL for a port without a descriptor (fd() == -1), else errno from epoll_ctl.
  Status<int> add(int fd, uint32_t token);
  Status<int> add(const Port& port, uint32_t token) { return add(port.fd(), token); }
  Status<int> remove(int fd);

  // Waits up to timeout_ms (-1: forever, 0: just look) and writes the tokens of ready descriptors into
  // `ready`. Returns how many (0 on timeout or when a signal interrupted the wait).
  std::size_t wait(std::span<uint32_t> ready, int timeout_ms);

 private:
  explicit Poller(UniqueFd epfd) : epfd_(std::move(epfd)) {}
  UniqueFd epfd_;
};

}  // namespace pspgw::ports
