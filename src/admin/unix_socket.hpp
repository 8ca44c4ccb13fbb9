// Unix-domain stream sockets for the admin channel: an fd owner, the listener (directory and file modes,
// stale-socket replacement) and a connect with a bound on the wait.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace pspgw::admin {

using pspgw::UniqueFd;

enum class ListenErrc : uint8_t {
  kInUse,   // a live server answers on the path ("another gateway is running on PATH")
  kSystem,  // anything else: bad path, not a socket, permissions, ... (the message has errno's text)
};
struct ListenError {
  ListenErrc code = ListenErrc::kSystem;
  std::string message;
};

struct ListenOptions {
  mode_t dir_mode = 0750;     // given to the socket's directory when we create it
  mode_t socket_mode = 0660;  // owner and group may connect (the daemon's admin group)
  int backlog = 16;
};

// A bound socket file and its identity, so that only our own file is ever unlinked.
struct Listener {
  UniqueFd fd;  // non-blocking, close-on-exec, listening
  dev_t dev = 0;
  ino_t ino = 0;
};

// Binds and listens on `path`. Creates the parent directory (one level) if missing. A socket file left by
// a dead server (connect is refused) is replaced; a live one is kInUse.
Result<Listener, ListenError> listen_unix(const std::string& path, const ListenOptions& opts = {});
// Unlinks `path` if it is still the file `l` bound (not one a later server put there).
void unlink_if_ours(const std::string& path, const Listener& l);

enum class ConnectErrc : uint8_t {
  kNoServer,    // no socket file, or nobody listening on it
  kPermission,  // the socket or its directory is not ours to use
  kTimeout,     // the server's backlog stayed full for the whole timeout
  kSystem,      // anything else (the message has errno's text)
};
struct ConnectError {
  ConnectErrc code = ConnectErrc::kSystem;
  std::string message;
};

// A blocking, close-on-exec connection; the connect waits at most `timeout`.
Result<UniqueFd, ConnectError> connect_unix(const std::string& path, std::chrono::milliseconds timeout);

}  // namespace pspgw::admin
