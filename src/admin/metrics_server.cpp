#include "admin/metrics_server.hpp"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>

#include "admin/metrics.hpp"

namespace pspgw::admin {

namespace {
constexpr int kIoTimeoutS = 5;
constexpr std::size_t kMaxRequestBytes = 8192;  // a scrape is a one-line GET
constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";
}  // namespace

MetricsServer::MetricsServer(MetricsServerOptions opts) : opts_(std::move(opts)) {}

MetricsServer::~MetricsServer() {
  stop();
}

Status<std::string> MetricsServer::start() {
  http_ = std::make_unique<httplib::Server>();
  http_->set_read_timeout(kIoTimeoutS, 0);
  http_->set_write_timeout(kIoTimeoutS, 0);
  http_->set_keep_alive_max_count(16);
  http_->set_payload_max_length(kMaxRequestBytes);
  // httplib's default adds SO_REUSEPORT, which would let a second gateway share our port silently:
  // SO_REUSEADDR only (a restart rebinds at once), so a port in use is an error at start.
  http_->set_socket_options([](int fd) {
    const int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  http_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(render_metrics(opts_.snapshot(), opts_.max_tunnels), kContentType);
  });
  const int port = opts_.port == 0 ? http_->bind_to_any_port(opts_.host) : opts_.port;
  if (port <= 0 || (opts_.port != 0 && !http_->bind_to_port(opts_.host, opts_.port))) {
    return Err{"cannot listen on " + opts_.host + ":" + std::to_string(opts_.port)};
  }
  bound_port_ = static_cast<uint16_t>(port);
  thread_ = std::thread([this] { http_->listen_after_bind(); });
  // httplib's stop() does nothing until the listener runs: wait for it, so a stop right after start works.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kIoTimeoutS);
  while (!http_->is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!http_->is_running()) {
    stop();
    return Err{"the listener on " + opts_.host + ":" + std::to_string(bound_port_) + " did not start"};
  }
  return {};
}

void MetricsServer::stop() {
  if (!http_) return;
  http_->stop();
  if (thread_.joinable()) thread_.join();
  http_.reset();
}

}  // namespace pspgw::admin
