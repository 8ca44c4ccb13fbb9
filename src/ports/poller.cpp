#include "ports/poller.hpp"

#include <sys/epoll.h>

#include <array>
#include <cerrno>

#include "net/packet.hpp"

namespace pspgw::ports {

Result<Poller, int> Poller::create() {
  UniqueFd fd(::epoll_create1(EPOLL_CLOEXEC));
  if (!fd.valid()) return Err{errno};
  return Poller(std::move(fd));
}

Status<int> Poller::add(int fd, uint32_t token) {
  if (fd < 0) return Err{EINVAL};
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u32 = token;
  if (::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return Err{errno};
  return Status<int>::Ok();
}

Status<int> Poller::remove(int fd) {
  if (::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, nullptr) != 0) return Err{errno};
  return Status<int>::Ok();
}

std::size_t Poller::wait(std::span<uint32_t> ready, int timeout_ms) {
  std::array<epoll_event, net::kMaxBatch> events{};
  const int max = static_cast<int>(ready.size() < events.size() ? ready.size() : events.size());
  if (max == 0) return 0;
  const int n = ::epoll_wait(epfd_.get(), events.data(), max, timeout_ms);
  if (n <= 0) return 0;  // timeout, or EINTR: the caller's loop looks again
  for (int i = 0; i < n; ++i)
    ready[static_cast<std::size_t>(i)] = events[static_cast<std::size_t>(i)].data.u32;
  return static_cast<std::size_t>(n);
}

}  // namespace pspgw::ports
