#include "admin/client.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

namespace pspgw::admin {
namespace {

using Clock = std::chrono::steady_clock;

Err<ClientError> client_fail(ClientErrc code, std::string message) {
  return Err{ClientError{code, std::move(message)}};
}

std::string errno_text(int err) {
  return std::error_code(err, std::system_category()).message();
}

}  // namespace

Result<AdminClient, ClientError> AdminClient::connect(const std::string& path,
                                                      std::chrono::milliseconds timeout) {
  auto fd = connect_unix(path, timeout);
  if (fd) return AdminClient(std::move(*fd), timeout);
  switch (fd.error().code) {
    case ConnectErrc::kNoServer:
      return client_fail(ClientErrc::kNoServer, fd.error().message);
    case ConnectErrc::kPermission:
      return client_fail(ClientErrc::kPermission, fd.error().message);
    case ConnectErrc::kTimeout:
      return client_fail(ClientErrc::kTimeout, fd.error().message);
    case ConnectErrc::kSystem:
      break;
  }
  return client_fail(ClientErrc::kIo, fd.error().message);
}

Result<Reply, ClientError> AdminClient::call(const Request& req) {
  std::string line = encode_request(req);
  line.pop_back();
  return call_line(std::move(line));
}

Result<Reply, ClientError> AdminClient::call_line(std::string line) {
  const auto deadline = Clock::now() + timeout_;
  line += '\n';
  // The socket is blocking with SO_SNDTIMEO = timeout (connect_unix): a stuck server cannot hold us.
  for (std::size_t off = 0; off < line.size();) {
    const ssize_t n = ::send(fd_.get(), line.data() + off, line.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return client_fail(ClientErrc::kTimeout, "send timed out");
    // The server may have answered and closed before reading us (kBusy): its line is still to be read.
    if (n < 0 && errno == EPIPE) break;
    if (n < 0) return client_fail(ClientErrc::kIo, "send: " + errno_text(errno));
    off += static_cast<std::size_t>(n);
  }
  auto resp = read_line(deadline);
  if (!resp) return Err{resp.error()};
  auto reply = parse_reply(*resp);
  if (!reply) return client_fail(ClientErrc::kProtocol, reply.error());
  return std::move(*reply);
}

Result<std::string, ClientError> AdminClient::read_line(Clock::time_point deadline) {
  for (;;) {
    if (const std::size_t nl = buf_.find('\n'); nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return line;
    }
    if (buf_.size() > kMaxResponseLine) return client_fail(ClientErrc::kProtocol, "response line too long");
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd p{fd_.get(), POLLIN, 0};
    const int r = left > 0 ? ::poll(&p, 1, static_cast<int>(left)) : 0;
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return client_fail(ClientErrc::kIo, "poll: " + errno_text(errno));
    if (r == 0)
      return client_fail(ClientErrc::kTimeout,
                         "no response within " + std::to_string(timeout_.count()) + " ms");
    char chunk[65536];
    const ssize_t n = ::recv(fd_.get(), chunk, sizeof(chunk), MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return client_fail(ClientErrc::kIo, "recv: " + errno_text(errno));
    if (n == 0) return client_fail(ClientErrc::kIo, "the gateway closed the connection without answering");
    buf_.append(chunk, static_cast<std::size_t>(n));
  }
}

}  // namespace pspgw::admin
