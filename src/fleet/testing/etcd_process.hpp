// Real etcd members for tests and benchmarks: started on loopback with free ports and temporary data
// directories, stopped (SIGKILL, then the directory removed) by the destructor. Needs the `etcd` binary
// (Debian etcd-server); available() says whether it is installed.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace pspgw::fleet::testing {

struct EtcdTls {
  std::string ca, cert, key;  // server side; client certs are required when set (--client-cert-auth)
};

class EtcdCluster {
 public:
  // `members` members forming one cluster (1 or 3).
  explicit EtcdCluster(int members = 1, EtcdTls tls = {});
  ~EtcdCluster();
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  static bool available();
  // Starts every member and waits (bounded) until each serves clients; false on timeout.
  bool start(std::chrono::seconds timeout = std::chrono::seconds(20));
  void kill(int member);                                                              // SIGKILL
  bool restart(int member, std::chrono::seconds timeout = std::chrono::seconds(20));  // same data dir
  std::string url(int member) const;  // http(s)://127.0.0.1:PORT
  std::vector<std::string> urls() const;
  int size() const { return static_cast<int>(members_.size()); }

 private:
  struct Member {
    std::string name, dir;
    int client_port = 0, peer_port = 0;
    pid_t pid = -1;
  };
  void spawn(Member& m, bool fresh);
  bool wait_ready(const Member& m, std::chrono::seconds timeout) const;
  std::vector<Member> members_;
  std::string base_;
  std::string initial_cluster_;
  EtcdTls tls_;
};

}  // namespace pspgw::fleet::testing
