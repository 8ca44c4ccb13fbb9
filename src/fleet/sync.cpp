#include "fleet/sync.hpp"

#include <algorithm>

namespace pspgw::fleet {

std::string_view to_string(StoreState s) {
  switch (s) {
    case StoreState::kConnecting:
      return "connecting";
    case StoreState::kConnected:
      return "connected";
    case StoreState::kUnreachable:
      return "unreachable";
  }
  return "unknown";
}

DirectorySync::DirectorySync(EtcdClient& client, const std::string& prefix,
                             std::function<void(std::string_view)> log,
                             std::function<void(const Directory&)> on_change)
    : client_(client),
      prefix_(normalise_prefix(prefix)),
      log_(std::move(log)),
      on_change_(std::move(on_change)),
      dir_(prefix_) {}

void DirectorySync::stop() {
  std::lock_guard lock(mu_);
  stop_ = true;
  if (watch_) watch_->cancel();
  cv_.notify_all();
}

SyncStatus DirectorySync::status() const {
  std::lock_guard lock(mu_);
  return status_;
}

void DirectorySync::wait(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [&] { return stop_; });
}

void DirectorySync::failed(const Error& e) {
  bool first = false;
  {
    std::lock_guard lock(mu_);
    first = status_.state != StoreState::kUnreachable || status_.last_error != e.message;
    status_.state = StoreState::kUnreachable;
    status_.last_error = e.message;
  }
  if (first) {
    log_("fleet: store: " + e.message + "; the directory keeps its last state (revision " +
         std::to_string(dir_.revision()) + "), retrying");
  }
  client_.rotate();
  wait(backoff_.next());
}

void DirectorySync::publish() {
  {
    std::lock_guard lock(mu_);
    const bool back = status_.state == StoreState::kUnreachable;
    status_.state = StoreState::kConnected;
    status_.revision = dir_.revision();
    status_.hosts = dir_.host_count();
    status_.vips = dir_.vip_count();
    status_.bad_records = dir_.bad_records();
    if (back)
      log_("fleet: store reachable again at " + client_.endpoint() + ", caught up to revision " +
           std::to_string(dir_.revision()));
    status_.last_error.clear();
  }
  backoff_.reset();
  if (dir_.generation() == published_) return;
  published_ = dir_.generation();
  on_change_(dir_);
}

bool DirectorySync::resync() {
  auto r = client_.get_prefix(prefix_);
  if (!r) {
    failed(r.error());
    return false;
  }
  dir_.clear();
  for (const auto& kv : r->kvs) (void)dir_.put(kv.key, kv.value, kv.mod_revision);
  dir_.set_revision(r->revision);
  need_resync_ = false;
  {
    std::lock_guard lock(mu_);
    ++status_.resyncs;
  }
  log_("fleet: directory read at revision " + std::to_string(r->revision) + ": " +
       std::to_string(dir_.host_count()) + " host(s), " + std::to_string(dir_.vip_count()) + " VIP(s)");
  publish();
  return true;
}

void DirectorySync::watch() {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    watch_ = client_.watch(prefix_, dir_.revision() + 1);
  }
  for (;;) {
    auto b = watch_->next();
    if (!b) {
      if (b.error().code == FleetError::kCompacted) {
        log_("fleet: " + b.error().message + ": full resync");
        need_resync_ = true;
      } else {
        std::lock_guard lock(mu_);
        if (stop_) break;
        ++status_.reconnects;
      }
      if (!need_resync_) failed(b.error());
      break;
    }
    if (b->created) {  // the store answers: connected, nothing to apply yet
      publish();
      continue;
    }
    int64_t last = 0;
    for (const auto& ev : b->events) {
      if (ev.deleted) {
        dir_.erase(ev.kv.key);
      } else {
        (void)dir_.put(ev.kv.key, ev.kv.value, ev.kv.mod_revision);
      }
      last = std::max(last, ev.kv.mod_revision);
    }
    // A progress notification (no events) means every event up to its header revision was sent.
    dir_.set_revision(std::max(dir_.revision(), b->events.empty() ? b->revision : last));
    publish();
  }
  std::lock_guard lock(mu_);
  watch_.reset();
}

void DirectorySync::run() {
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
    }
    if (need_resync_ && !resync()) continue;
    watch();
  }
}

}  // namespace pspgw::fleet
