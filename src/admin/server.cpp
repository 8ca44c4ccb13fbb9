#include "admin/server.hpp"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <system_error>

#include "admin/protocol.hpp"

namespace pspgw::admin {

using Clock = std::chrono::steady_clock;

struct AdminServer::Connection {
  UniqueFd fd;
  std::string in;   // bytes of the request line(s) not yet answered
  std::string out;  // response bytes; out[sent..] still to write
  std::size_t sent = 0;
  Clock::time_point deadline{};  // read_timeout while a request or response is pending, else idle_timeout
  bool closing = false;          // write what is in `out`, then close
};

namespace {

bool wants_read(const AdminServer::Connection& c) {
  return c.out.empty() && !c.closing;
}

short events_for(const AdminServer::Connection& c) {
  return static_cast<short>((wants_read(c) ? POLLIN : 0) | (c.out.empty() ? 0 : POLLOUT));
}

// Best effort, never blocks: for one short error line to a client we are about to close.
void send_and_forget(int fd, const std::string& line) {
  [[maybe_unused]] ssize_t n = ::send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

// false: the peer is gone or broken. Resets the deadline on progress.
bool flush(AdminServer::Connection& c, std::chrono::milliseconds read_timeout) {
  while (c.sent < c.out.size()) {
    const ssize_t n =
        ::send(c.fd.get(), c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    c.sent += static_cast<std::size_t>(n);
    c.deadline = Clock::now() + read_timeout;
  }
  c.out.clear();
  c.sent = 0;
  return true;
}

int poll_timeout_ms(const std::vector<AdminServer::Connection>& conns) {
  if (conns.empty()) return -1;
  auto first = std::min_element(conns.begin(), conns.end(),
                                [](const auto& a, const auto& b) { return a.deadline < b.deadline; });
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(first->deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, 60 * 60 * 1000));
}

}  // namespace

AdminServer::AdminServer(std::string path, AdminHandler& handler)
    : AdminServer(AdminServerOptions{.path = std::move(path)}, handler) {}

AdminServer::AdminServer(AdminServerOptions opts, AdminHandler& handler)
    : opts_(std::move(opts)), handler_(handler) {
  opts_.max_clients = std::max<std::size_t>(opts_.max_clients, 1);
}

AdminServer::~AdminServer() {
  stop();
}

Status<ListenError> AdminServer::start() {
  if (listener_.fd.valid()) return Err{ListenError{ListenErrc::kSystem, "admin server already started"}};
  wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_.valid()) {
    return Err{ListenError{ListenErrc::kSystem,
                           "eventfd: " + std::error_code(errno, std::system_category()).message()}};
  }
  auto l = listen_unix(opts_.path, opts_.listen);
  if (!l) return Err{l.error()};
  listener_ = std::move(*l);
  thread_ = std::thread([this] { run(); });
  pthread_setname_np(thread_.native_handle(), "pspgw-admin");
  return {};
}

void AdminServer::stop() {
  if (!listener_.fd.valid()) return;
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_.get(), &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  unlink_if_ours(opts_.path, listener_);
  listener_.fd.reset();
}

AdminServerStats AdminServer::stats() const {
  return {counters_.accepted.load(), counters_.rejected.load(), counters_.requests.load(),
          counters_.timeouts.load(), counters_.clients.load()};
}

void AdminServer::log(const std::string& line) const {
  if (opts_.log) {
    opts_.log(line);
  } else {
    std::fprintf(stderr, "admin: %s\n", line.c_str());
  }
}

void AdminServer::run() {
  std::vector<Connection> conns;
  std::vector<pollfd> fds;
  for (;;) {
    fds.assign({{wake_.get(), POLLIN, 0}, {listener_.fd.get(), POLLIN, 0}});
    for (const auto& c : conns) fds.push_back({c.fd.get(), events_for(c), 0});
    if (::poll(fds.data(), fds.size(), poll_timeout_ms(conns)) < 0 && errno != EINTR) {
      log("poll: " + std::error_code(errno, std::system_category()).message() + "; admin channel stopped");
      break;
    }
    if (fds[0].revents != 0) break;  // stop()
    // Backwards, so erasing a connection does not shift the ones still to visit.
    for (std::size_t i = conns.size(); i-- > 0;) {
      if (fds[i + 2].revents != 0 && !on_events(conns[i], fds[i + 2].revents)) conns.erase(conns.begin() + i);
    }
    expire(conns);
    if ((fds[1].revents & POLLIN) != 0) accept_clients(conns);
    counters_.clients = conns.size();
  }
  counters_.clients = 0;
}

bool AdminServer::on_events(Connection& c, short revents) {
  if ((revents & (POLLERR | POLLNVAL)) != 0) return false;
  if ((revents & (POLLIN | POLLHUP)) != 0 && wants_read(c) && !on_readable(c)) return false;
  if (!advance(c)) return false;
  if (c.in.empty() && c.out.empty()) c.deadline = Clock::now() + opts_.idle_timeout;
  return true;
}

bool AdminServer::on_readable(Connection& c) {
  char buf[4096];
  const ssize_t n = ::recv(c.fd.get(), buf, sizeof(buf), MSG_DONTWAIT);
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  // EOF: every complete line has been answered before we read again, so only a partial one (a client
  // that went away mid-request) can be left. It is dropped unanswered; the handler never sees it.
  if (n == 0) return false;
  // The read timeout runs from a request's first byte, so trickling bytes cannot hold a slot forever.
  if (c.in.empty()) c.deadline = Clock::now() + opts_.read_timeout;
  c.in.append(buf, static_cast<std::size_t>(n));
  return true;
}

// Writes pending output, then answers buffered lines one at a time: a new response is produced only when
// the previous one is fully written, so a client pipelining requests cannot grow `out` without bound.
bool AdminServer::advance(Connection& c) {
  for (;;) {
    if (!flush(c, opts_.read_timeout)) return false;
    if (!c.out.empty()) return true;  // wait for POLLOUT
    if (c.closing) return false;
    const std::size_t nl = c.in.find('\n');
    if (nl == std::string::npos) break;
    answer_line(c, std::string_view(c.in).substr(0, nl));
    c.in.erase(0, nl + 1);
  }
  if (c.in.size() > kMaxRequestLine) answer_line(c, c.in);  // no '\n' yet, and already too long
  return c.out.empty() || advance(c);
}

void AdminServer::answer_line(Connection& c, std::string_view line) {
  counters_.requests++;
  if (line.size() > kMaxRequestLine) {
    // The rest of the line is still unread and cannot be framed reliably: answer and close.
    c.out =
        encode_response(admin_fail(AdminErrc::kRequestTooLong,
                                   "request line longer than " + std::to_string(kMaxRequestLine) + " bytes"));
    c.closing = true;
    c.in.clear();
    return;
  }
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // tolerate CRLF (nc, socat)
  c.out = encode_response(call_handler(line));
}

// The one place where handler exceptions become typed errors.
AdminResult AdminServer::call_handler(std::string_view line) {
  auto req = parse_request(line);
  if (!req) return Err{req.error()};
  try {
    return handler_.handle(req->cmd, req->args);
  } catch (const nlohmann::json::exception& e) {
    // args.at("x") / get<T>() in the handler: a missing or mistyped argument.
    return admin_fail(AdminErrc::kBadArgs, req->cmd + ": bad arguments: " + e.what());
  } catch (const std::exception& e) {
    log("handler for '" + req->cmd + "' threw: " + e.what());
    return admin_fail(AdminErrc::kInternal, req->cmd + ": internal error: " + e.what());
  }
}

void AdminServer::expire(std::vector<Connection>& conns) {
  const auto now = Clock::now();
  std::erase_if(conns, [&](Connection& c) {
    if (c.deadline > now) return false;
    counters_.timeouts++;
    if (!c.in.empty() && c.out.empty()) {
      send_and_forget(c.fd.get(),
                      encode_response(admin_fail(AdminErrc::kTimeout, "request not completed in time")));
    }
    return true;
  });
}

void AdminServer::accept_clients(std::vector<Connection>& conns) {
  for (;;) {
    UniqueFd fd(::accept4(listener_.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
        log("accept: " + std::error_code(errno, std::system_category()).message());
      }
      return;
    }
    if (conns.size() >= opts_.max_clients) {
      counters_.rejected++;
      send_and_forget(fd.get(),
                      encode_response(admin_fail(AdminErrc::kBusy, "too many admin clients (at most " +
                                                                       std::to_string(opts_.max_clients) +
                                                                       "); try again")));
      continue;
    }
    counters_.accepted++;
    conns.push_back(Connection{std::move(fd), {}, {}, 0, Clock::now() + opts_.idle_timeout, false});
  }
}

}  // namespace pspgw::admin
