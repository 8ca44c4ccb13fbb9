// AdminServer: the gateway's local admin channel. One thread serves every client with poll(2): reads
// request lines (bounded), calls the AdminHandler, writes response lines (protocol.hpp). Never a packet
// worker; the data path does not wait on it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "admin/handler.hpp"
#include "admin/unix_socket.hpp"
#include "base/result.hpp"

namespace pspgw::admin {

struct AdminServerOptions {
  std::string path;             // the daemon passes default_socket_path(instance) or its --admin-socket
  std::size_t max_clients = 8;  // one more is answered kBusy and closed
  // A client mid-request (partial line) or not reading its response for this long is dropped.
  std::chrono::milliseconds read_timeout{5000};
  // A connected client that sends nothing for this long is closed (frees its slot).
  std::chrono::milliseconds idle_timeout{60000};
  ListenOptions listen;
  std::function<void(std::string_view)> log;  // default: stderr, "admin: ..." lines
};

// Totals since start(), for tests and the daemon's own status.
struct AdminServerStats {
  uint64_t accepted = 0;  // connections served
  uint64_t rejected = 0;  // connections refused as kBusy
  uint64_t requests = 0;  // request lines answered (errors included)
  uint64_t timeouts = 0;  // connections dropped by read_timeout / idle_timeout
  uint64_t clients = 0;   // connected now
};

class AdminServer {
 public:
  AdminServer(std::string path, AdminHandler& handler);
  AdminServer(AdminServerOptions opts, AdminHandler& handler);
  ~AdminServer();  // stop()
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds the socket (replacing a dead server's file; a live one is ListenErrc::kInUse) and starts the
  // admin thread. Call once.
  Status<ListenError> start();
  // Wakes the thread, closes every client and removes the socket file. Returns within one poll wake-up
  // (not after client timeouts), waiting only for a handler call already running. Idempotent.
  void stop();

  const std::string& path() const { return opts_.path; }
  AdminServerStats stats() const;

  struct Connection;  // one client (server.cpp)

 private:
  struct Counters {
    std::atomic<uint64_t> accepted{0}, rejected{0}, requests{0}, timeouts{0}, clients{0};
  };
  void run();
  void accept_clients(std::vector<Connection>& conns);
  void expire(std::vector<Connection>& conns);
  // Each returns false when the connection is to be dropped.
  bool on_events(Connection& c, short revents);
  bool on_readable(Connection& c);
  bool advance(Connection& c);
  void answer_line(Connection& c, std::string_view line);
  AdminResult call_handler(std::string_view line);
  void log(const std::string& line) const;

  AdminServerOptions opts_;
  AdminHandler& handler_;
  Listener listener_;
  UniqueFd wake_;  // eventfd: stop() writes it, the thread's poll wakes
  std::thread thread_;
  Counters counters_;
};

}  // namespace pspgw::admin
