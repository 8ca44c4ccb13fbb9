#include "admin/unix_socket.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace pspgw::admin {
namespace {

std::string errno_text(int err) {
  return std::error_code(err, std::system_category()).message();
}

// sun_path is a fixed 108-byte array: longer paths cannot be bound at all, so say so plainly.
bool fill_address(const std::string& path, sockaddr_un& addr) {
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) return false;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  return true;
}

const sockaddr* as_sockaddr(const sockaddr_un& addr) {
  return reinterpret_cast<const sockaddr*>(&addr);
}

Err<ListenError> listen_fail(ListenErrc code, std::string message) {
  return Err{ListenError{code, std::move(message)}};
}

// Creates the socket's directory if it is missing, with `mode` regardless of the umask.
Status<ListenError> prepare_dir(const std::string& path, mode_t mode) {
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) return {};
  std::error_code ec;
  if (std::filesystem::exists(dir, ec)) return {};
  if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) {
    return listen_fail(ListenErrc::kSystem, "cannot create " + dir.string() + ": " + errno_text(errno));
  }
  if (::chmod(dir.c_str(), mode) != 0) {
    return listen_fail(ListenErrc::kSystem, "cannot chmod " + dir.string() + ": " + errno_text(errno));
  }
  return {};
}

// After EADDRINUSE: a live server keeps its socket; a dead one's file is removed so we can bind.
Status<ListenError> clear_stale(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return {};  // gone meanwhile: just retry the bind
  if (!S_ISSOCK(st.st_mode)) return listen_fail(ListenErrc::kSystem, path + " exists and is not a socket");
  auto probe = connect_unix(path, std::chrono::milliseconds(1000));
  if (probe.ok() || probe.error().code == ConnectErrc::kTimeout) {
    return listen_fail(ListenErrc::kInUse, "another gateway is running on " + path);
  }
  if (probe.error().code != ConnectErrc::kNoServer)
    return listen_fail(ListenErrc::kSystem, probe.error().message);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return listen_fail(ListenErrc::kSystem, "cannot remove stale socket " + path + ": " + errno_text(errno));
  }
  return {};
}

Status<ListenError> bind_replacing_stale(int fd, const std::string& path, const sockaddr_un& addr) {
  if (::bind(fd, as_sockaddr(addr), sizeof(addr)) == 0) return {};
  if (errno != EADDRINUSE) {
    return listen_fail(ListenErrc::kSystem, "cannot bind " + path + ": " + errno_text(errno));
  }
  if (auto st = clear_stale(path); !st) return st;
  if (::bind(fd, as_sockaddr(addr), sizeof(addr)) == 0) return {};
  // EADDRINUSE again: another server won the race for the path between our unlink and bind.
  return listen_fail(errno == EADDRINUSE ? ListenErrc::kInUse : ListenErrc::kSystem,
                     "cannot bind " + path + ": " + errno_text(errno));
}

}  // namespace

Result<Listener, ListenError> listen_unix(const std::string& path, const ListenOptions& opts) {
  sockaddr_un addr{};
  if (!fill_address(path, addr)) {
    return listen_fail(ListenErrc::kSystem, "socket path '" + path + "' is empty or longer than " +
                                                std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  }
  if (auto st = prepare_dir(path, opts.dir_mode); !st) return Err{st.error()};
  Listener l;
  l.fd.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!l.fd.valid()) return listen_fail(ListenErrc::kSystem, "socket: " + errno_text(errno));
  if (auto st = bind_replacing_stale(l.fd.get(), path, addr); !st) return Err{st.error()};
  // Between bind and chmod the file has the umask's mode; the 0750 directory covers that window.
  struct stat st {};
  if (::chmod(path.c_str(), opts.socket_mode) != 0 || ::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    ::unlink(path.c_str());
    return listen_fail(ListenErrc::kSystem, "cannot set the mode of " + path + ": " + errno_text(err));
  }
  l.dev = st.st_dev;
  l.ino = st.st_ino;
  if (::listen(l.fd.get(), opts.backlog) != 0) {
    const int err = errno;
    unlink_if_ours(path, l);
    return listen_fail(ListenErrc::kSystem, "cannot listen on " + path + ": " + errno_text(err));
  }
  return l;
}

void unlink_if_ours(const std::string& path, const Listener& l) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && st.st_dev == l.dev && st.st_ino == l.ino) ::unlink(path.c_str());
}

Result<UniqueFd, ConnectError> connect_unix(const std::string& path, std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  if (!fill_address(path, addr)) {
    return Err{ConnectError{ConnectErrc::kSystem, "socket path '" + path + "' is empty or too long"}};
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Err{ConnectError{ConnectErrc::kSystem, "socket: " + errno_text(errno)}};
  // A Unix-socket connect blocks only while the listener's backlog is full, for at most SO_SNDTIMEO.
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
  timeval tv{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (::connect(fd.get(), as_sockaddr(addr), sizeof(addr)) == 0) return fd;
  const int err = errno;
  ConnectErrc code = ConnectErrc::kSystem;
  if (err == ENOENT || err == ECONNREFUSED || err == ENOTDIR) code = ConnectErrc::kNoServer;
  if (err == EACCES || err == EPERM) code = ConnectErrc::kPermission;
  if (err == EAGAIN || err == EINPROGRESS || err == ETIMEDOUT) code = ConnectErrc::kTimeout;
  return Err{ConnectError{code, path + ": " + errno_text(err)}};
}

}  // namespace pspgw::admin
