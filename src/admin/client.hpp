// AdminClient: one connection to a gateway's admin socket, requests answered in order (protocol.hpp).
// Every call is bounded by the timeout given at connect.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "admin/protocol.hpp"
#include "admin/unix_socket.hpp"
#include "base/result.hpp"

namespace pspgw::admin {

enum class ClientErrc : uint8_t {
  kNoServer,    // no socket file, or nobody listening on it
  kPermission,  // not allowed to connect (socket mode 0660: join the daemon's group, or use sudo)
  kTimeout,     // no complete response within the timeout
  kIo,          // the connection broke, or the server closed it without answering
  kProtocol,    // the server's line is not a valid response
};

struct ClientError {
  ClientErrc code = ClientErrc::kIo;
  std::string message;
};

class AdminClient {
 public:
  static Result<AdminClient, ClientError> connect(const std::string& path, std::chrono::milliseconds timeout);

  // A command and its reply (which may itself be an error from the server: Reply::ok false).
  Result<Reply, ClientError> call(const Request& req);
  // Sends `line` as it is (a '\n' is appended): for `pspctl raw`.
  Result<Reply, ClientError> call_line(std::string line);

 private:
  AdminClient(UniqueFd fd, std::chrono::milliseconds timeout) : fd_(std::move(fd)), timeout_(timeout) {}
  Result<std::string, ClientError> read_line(std::chrono::steady_clock::time_point deadline);

  UniqueFd fd_;
  std::chrono::milliseconds timeout_;
  std::string buf_;  // bytes received past the last line
};

}  // namespace pspgw::admin
