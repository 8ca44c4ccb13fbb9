// DirectorySync: keeps a Directory equal to the store's keys under the prefix.
//
// Start (and after a compaction): read every key under the prefix at one revision R, rebuild the directory
// from it, then watch from R + 1. Each watch batch is applied in order and the revision advanced to its
// last event, so a stream that breaks (a member killed, the store down) is reopened, on the next
// endpoint, from the last revision + 1: no event is missed and none applied twice. If that revision has
// been compacted meanwhile, etcd says so and the directory is rebuilt from a fresh read (a full resync).
// While the store is unreachable the directory keeps its last state (no tunnel depends on the store) and
// the loop retries with backoff.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "fleet/backoff.hpp"
#include "fleet/directory.hpp"
#include "fleet/etcd_client.hpp"

namespace pspgw::fleet {

enum class StoreState : uint8_t { kConnecting, kConnected, kUnreachable };
std::string_view to_string(StoreState s);

struct SyncStatus {
  StoreState state = StoreState::kConnecting;
  int64_t revision = 0;
  std::size_t hosts = 0;
  std::size_t vips = 0;
  uint64_t bad_records = 0;
  uint64_t resyncs = 0;     // full reads (the first one included)
  uint64_t reconnects = 0;  // watch streams reopened after a break
  std::string last_error;
};

class DirectorySync {
 public:
  // on_change: called on the sync thread after each change, with the directory (read it there).
  DirectorySync(EtcdClient& client, const std::string& prefix, std::function<void(std::string_view)> log,
                std::function<void(const Directory&)> on_change);

  void run();  // the loop of the sync thread; returns after stop()
  void stop();
  SyncStatus status() const;

 private:
  bool resync();
  void watch();
  void failed(const Error& e);
  void wait(std::chrono::milliseconds d);
  void publish();

  EtcdClient& client_;
  const std::string prefix_;
  std::function<void(std::string_view)> log_;
  std::function<void(const Directory&)> on_change_;
  Directory dir_;  // the sync thread's own
  uint64_t published_ = UINT64_MAX;
  bool need_resync_ = true;
  StoreBackoff backoff_;

  mutable std::mutex mu_;  // guards what follows (status readers, stop)
  std::condition_variable cv_;
  bool stop_ = false;
  std::unique_ptr<EtcdWatch> watch_;
  SyncStatus status_;
};

}  // namespace pspgw::fleet
