// EtcdClient: etcd's v3 API over gRPC, generated at build time from the protocol files Debian ships
// (golang-etcd-server-dev: etcdserverpb/rpc.proto). Why gRPC and not the JSON gateway: it is etcd's own
// API (the gateway is a translation of it), the project already links libgrpc++, and watches and lease
// keep-alives are bidirectional streams that the JSON gateway only emulates with chunked HTTP.
//
// Endpoints. One channel per endpoint (http://ip:port, https://ip:port or a DNS name); calls go to the
// current one, and one that fails with UNAVAILABLE or DEADLINE_EXCEEDED moves on to the next and tries
// again, each endpoint once per call. So a killed member costs a call one deadline at most.
//
// Only what fleet mode needs: put/get/delete, a prefix range read in pages at one revision, leases
// (grant, keep-alive, revoke), a watch stream, and compaction (tests, benchmarks).
//
// Identity. With TLS files the client certificate's common name is the etcd user (etcd
// --client-cert-auth); etcd's RBAC then decides which keys it may write (README "Fleet mode").
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "fleet/error.hpp"

namespace pspgw::fleet {

struct EtcdTlsFiles {
  std::string ca;    // CA that signed the etcd servers' certificates
  std::string cert;  // our client certificate (its CN is our etcd user)
  std::string key;
  bool any() const { return !ca.empty() || !cert.empty() || !key.empty(); }
};

struct EtcdOptions {
  std::vector<std::string> endpoints;  // "http://127.0.0.1:2379", "https://etcd1.example:2379"
  EtcdTlsFiles tls;
  std::chrono::milliseconds deadline{2000};  // every unary call
};

struct KeyValue {
  std::string key;
  std::string value;
  int64_t mod_revision = 0;
  int64_t lease = 0;
};

struct RangeResult {
  std::vector<KeyValue> kvs;
  int64_t revision = 0;  // the store's revision the read saw
};

struct WatchEvent {
  bool deleted = false;
  KeyValue kv;
};

struct WatchBatch {
  std::vector<WatchEvent> events;
  int64_t revision = 0;  // header revision of the response
  bool created = false;  // the stream's first answer: the watch exists (no event, revision not advanced)
};

// The first key after every key starting with `prefix` (etcd's range_end for a prefix read).
std::string prefix_end(std::string_view prefix);
// "http://h:p" -> "h:p"; tls is set for https. Error for anything else.
FResult<std::string> endpoint_target(std::string_view url, bool& tls);

class EtcdWatch;

class EtcdClient {
 public:
  // Checks the URLs and reads the TLS files; connects lazily.
  static FResult<std::unique_ptr<EtcdClient>> create(EtcdOptions options);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  FStatus put(const std::string& key, const std::string& value, int64_t lease = 0);
  FResult<std::vector<KeyValue>> get(const std::string& key);
  FStatus erase(const std::string& key);
  // Every key under `prefix` at one revision, read in pages of `page` keys.
  FResult<RangeResult> get_prefix(const std::string& prefix, int64_t page = 1000);
  // A lease of `ttl` seconds; returns its id.
  FResult<int64_t> grant_lease(int64_t ttl);
  // One keep-alive; returns the TTL etcd granted. kLeaseLost when the lease is gone.
  FResult<int64_t> keep_alive(int64_t lease);
  FStatus revoke_lease(int64_t lease);
  // Compacts the store up to `revision` (tests and benchmarks).
  FStatus compact(int64_t revision);
  // Events under `prefix` from `start_revision` (0: from now). The stream is opened on the current
  // endpoint when the first next() runs.
  std::unique_ptr<EtcdWatch> watch(const std::string& prefix, int64_t start_revision);

  std::string endpoint() const;  // the current endpoint, for logs
  void rotate();                 // moves to the next endpoint (a watch failed on this one)

 private:
  struct Impl;
  explicit EtcdClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One watch stream. next() blocks until events arrive, the stream fails, or cancel() (any thread).
class EtcdWatch {
 public:
  virtual ~EtcdWatch() = default;
  // Events (possibly none: a progress notification). kCompacted: start_revision was compacted (the message
  // names the compact revision); kUnavailable: the stream broke (resume from the last revision + 1).
  virtual FResult<WatchBatch> next() = 0;
  virtual void cancel() = 0;
};

}  // namespace pspgw::fleet
