#include "fleet/registration.hpp"

namespace pspgw::fleet {

Registration::Registration(EtcdClient& client, std::string key, std::chrono::seconds ttl,
                           std::function<void(std::string_view)> log)
    : client_(client), key_(std::move(key)), ttl_(ttl), log_(std::move(log)) {}

void Registration::set_record(std::string value) {
  {
    std::lock_guard lock(mu_);
    if (value == value_ && !dirty_) return;
    value_ = std::move(value);
    dirty_ = true;
  }
  cv_.notify_all();
}

void Registration::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

RegistrationStatus Registration::status() const {
  std::lock_guard lock(mu_);
  return {registered_, lease_, last_error_};
}

void Registration::wait(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [&] { return stop_ || (dirty_ && backoff_.current.count() == 0); });
}

void Registration::failed(const Error& e) {
  bool first = false;
  {
    std::lock_guard lock(mu_);
    first = last_error_ != e.message;
    last_error_ = e.message;
    if (e.code == FleetError::kLeaseLost) {
      lease_ = 0;
      registered_ = false;
      dirty_ = true;
    }
  }
  // One line per distinct error: an etcd outage logs once, not once per retry.
  if (first) log_("fleet: registration: " + e.message + " (retrying)");
  wait(backoff_.next());
}

void Registration::step() {
  int64_t lease = 0;
  bool dirty = false;
  std::string value;
  {
    std::lock_guard lock(mu_);
    lease = lease_;
    dirty = dirty_;
    value = value_;
  }
  if (lease == 0) {
    auto granted = client_.grant_lease(ttl_.count());
    if (!granted) return failed(granted.error());
    std::lock_guard lock(mu_);
    lease_ = *granted;
    dirty_ = true;
    return;
  }
  if (dirty) {
    if (auto s = client_.put(key_, value, lease); !s) return failed(s.error());
    std::lock_guard lock(mu_);
    if (value_ == value) dirty_ = false;
    if (!registered_ || !last_error_.empty())
      log_("fleet: registered " + key_ + " (lease " + std::to_string(lease) + ")");
    registered_ = true;
    last_error_.clear();
    backoff_.reset();
    return;
  }
  wait(std::chrono::duration_cast<std::chrono::milliseconds>(ttl_) / 3);
  {
    std::lock_guard lock(mu_);
    if (stop_ || dirty_) return;
  }
  auto ttl = client_.keep_alive(lease);
  if (!ttl) return failed(ttl.error());
  std::lock_guard lock(mu_);
  if (!last_error_.empty()) log_("fleet: store reachable again, lease " + std::to_string(lease) + " kept");
  last_error_.clear();
  backoff_.reset();
}

void Registration::run() {
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stop_) break;
    }
    step();
  }
  int64_t lease = 0;
  {
    std::lock_guard lock(mu_);
    lease = lease_;
    lease_ = 0;
    registered_ = false;
  }
  // Best effort: if the store is down the lease simply expires.
  if (lease != 0) (void)client_.revoke_lease(lease);
}

}  // namespace pspgw::fleet
