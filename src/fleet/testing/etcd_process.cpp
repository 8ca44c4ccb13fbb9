#include "fleet/testing/etcd_process.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

namespace pspgw::fleet::testing {

namespace {

// A free loopback port (bound then released: another process could take it first; tests retry nothing).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  (void)::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);  // NOLINT: sockaddr API
  socklen_t len = sizeof a;
  (void)::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);  // NOLINT: sockaddr API
  ::close(fd);
  return ntohs(a.sin_port);
}

bool port_open(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;  // NOLINT: sockaddr API
  ::close(fd);
  return ok;
}

}  // namespace

bool EtcdCluster::available() {
  return ::access("/usr/bin/etcd", X_OK) == 0;
}

EtcdCluster::EtcdCluster(int members, EtcdTls tls) : tls_(std::move(tls)) {
  char tmpl[] = "/tmp/pspgw-etcd-XXXXXX";
  base_ = ::mkdtemp(tmpl) ? tmpl : "/tmp";
  for (int i = 0; i < members; ++i) {
    Member m;
    m.name = "m" + std::to_string(i);
    m.dir = base_ + "/" + m.name;
    m.client_port = free_port();
    m.peer_port = free_port();
    initial_cluster_ += (i ? "," : "") + m.name + "=http://127.0.0.1:" + std::to_string(m.peer_port);
    members_.push_back(std::move(m));
  }
}

EtcdCluster::~EtcdCluster() {
  for (int i = 0; i < size(); ++i) kill(i);
  std::error_code ec;
  if (base_ != "/tmp") std::filesystem::remove_all(base_, ec);
}

std::string EtcdCluster::url(int member) const {
  return std::string(tls_.ca.empty() ? "http" : "https") +
         "://127.0.0.1:" + std::to_string(members_[static_cast<std::size_t>(member)].client_port);
}

std::vector<std::string> EtcdCluster::urls() const {
  std::vector<std::string> out;
  out.reserve(members_.size());
  for (int i = 0; i < size(); ++i) out.push_back(url(i));
  return out;
}

void EtcdCluster::spawn(Member& m, bool fresh) {
  const std::string client = url(static_cast<int>(&m - members_.data()));
  const std::string peer = "http://127.0.0.1:" + std::to_string(m.peer_port);
  std::vector<std::string> args = {"/usr/bin/etcd",
                                   "--name=" + m.name,
                                   "--data-dir=" + m.dir,
                                   "--listen-client-urls=" + client,
                                   "--advertise-client-urls=" + client,
                                   "--listen-peer-urls=" + peer,
                                   "--initial-advertise-peer-urls=" + peer,
                                   "--initial-cluster=" + initial_cluster_,
                                   "--initial-cluster-state=" + std::string(fresh ? "new" : "existing"),
                                   "--initial-cluster-token=" + base_,
                                   "--heartbeat-interval=50",
                                   "--election-timeout=500",
                                   "--log-level=error"};
  if (!tls_.ca.empty()) {
    args.insert(args.end(), {"--client-cert-auth", "--trusted-ca-file=" + tls_.ca, "--cert-file=" + tls_.cert,
                             "--key-file=" + tls_.key});
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // Its log goes beside its data, not into the test's output.
    const std::string log = base_ + "/" + m.name + ".log";
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  m.pid = pid;
}

bool EtcdCluster::wait_ready(const Member& m, std::chrono::seconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (port_open(m.client_port)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

bool EtcdCluster::start(std::chrono::seconds timeout) {
  for (auto& m : members_) spawn(m, true);
  for (const auto& m : members_) {
    if (!wait_ready(m, timeout)) return false;
  }
  return true;
}

void EtcdCluster::kill(int member) {
  Member& m = members_[static_cast<std::size_t>(member)];
  if (m.pid <= 0) return;
  ::kill(m.pid, SIGKILL);
  ::waitpid(m.pid, nullptr, 0);
  m.pid = -1;
}

bool EtcdCluster::restart(int member, std::chrono::seconds timeout) {
  Member& m = members_[static_cast<std::size_t>(member)];
  kill(member);
  spawn(m, false);
  return wait_ready(m, timeout);
}

}  // namespace pspgw::fleet::testing
