// Registration: our own host record under a lease (README "Fleet mode").
//
// The record is written with a lease of `ttl`, kept alive every ttl/3. When the gateway stops, the lease is
// revoked and the record disappears at once; when it dies, etcd drops the record when the lease expires.
// etcd unreachable: keep-alives are retried with backoff; if the lease expired meanwhile (keep-alive says
// so, or a put names an unknown lease), a new lease is granted and the record written again. A refusal
// (RBAC: we may write only our own key) is logged and retried slowly: the operator's fix takes effect.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "fleet/backoff.hpp"
#include "fleet/etcd_client.hpp"

namespace pspgw::fleet {

struct RegistrationStatus {
  bool registered = false;  // our record is in the store under a live lease
  int64_t lease = 0;
  std::string last_error;
};

class Registration {
 public:
  Registration(EtcdClient& client, std::string key, std::chrono::seconds ttl,
               std::function<void(std::string_view)> log);

  // The record's new text (start, reload); written at once by run().
  void set_record(std::string value);
  // The loop of the registration thread; returns after stop(), having revoked the lease.
  void run();
  void stop();
  RegistrationStatus status() const;

 private:
  void step();
  void wait(std::chrono::milliseconds d);
  void failed(const Error& e);

  EtcdClient& client_;
  const std::string key_;
  const std::chrono::seconds ttl_;
  std::function<void(std::string_view)> log_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string value_;
  bool dirty_ = true;
  bool stop_ = false;
  int64_t lease_ = 0;
  bool registered_ = false;
  std::string last_error_;
  StoreBackoff backoff_;
};

}  // namespace pspgw::fleet
