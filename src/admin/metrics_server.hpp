// MetricsServer: GET /metrics over HTTP for Prometheus (--metrics-address). The HTTP side is cpp-httplib
// (Debian libcpp-httplib-dev): one listener thread plus a small fixed thread pool, keep-alive bounded, read
// and write timeouts, so a slow or hostile scraper ties up at most a pool thread for a few seconds. Only
// GET /metrics answers; anything else is 404. Each scrape asks `snapshot` for a fresh StatsSnapshot.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "admin/stats.hpp"
#include "base/result.hpp"

namespace httplib {
class Server;
}

namespace pspgw::admin {

struct MetricsServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: the kernel picks (port() says which)
  std::size_t max_tunnels = 1000;
  std::function<StatsSnapshot()> snapshot;
};

class MetricsServer {
 public:
  explicit MetricsServer(MetricsServerOptions opts);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  Status<std::string> start();
  void stop();
  uint16_t port() const { return bound_port_; }

 private:
  MetricsServerOptions opts_;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  uint16_t bound_port_ = 0;
};

}  // namespace pspgw::admin
