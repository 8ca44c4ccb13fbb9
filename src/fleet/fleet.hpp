// Fleet: fleet mode's one object for the gateway (issue 11; README "Fleet mode"). It owns the etcd client,
// our Registration (own record under a lease) and the DirectorySync (everyone's records, watched), each on
// its own thread, and hands every directory change to the gateway as the list of remote hosts and the VIPs
// they serve, plus the policy. The gateway turns those into peers exactly as it does a static config's
// (the tunnel manager never knows where a peer came from).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "fleet/directory.hpp"
#include "fleet/etcd_client.hpp"
#include "fleet/record.hpp"
#include "fleet/registration.hpp"
#include "fleet/sync.hpp"

namespace pspgw::fleet {

inline constexpr std::chrono::seconds kDefaultLeaseTtl{10};

// What a directory change hands the gateway.
struct FleetView {
  std::vector<DirectoryPeer> peers;  // every host but us
  std::optional<Policy> policy;
  int64_t revision = 0;
};

struct FleetOptions {
  EtcdOptions etcd;
  std::string prefix = std::string(kDefaultPrefix);
  HostRecord self;  // our record (its host names our key)
  net::IpFamily vip_family = net::IpFamily::kV4;
  std::chrono::seconds lease_ttl = kDefaultLeaseTtl;
  std::function<void(std::string_view)> log;
  std::function<void(const FleetView&)> on_change;  // on the sync thread
};

struct FleetStatus {
  SyncStatus store;
  RegistrationStatus registration;
  std::string endpoint;
  std::string host;
};

class Fleet {
 public:
  static FResult<std::unique_ptr<Fleet>> create(FleetOptions options);
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  void start();
  // Revokes our lease (our record disappears) and stops both threads.
  void stop();
  // Our record changed (a reload moved VIPs): written again at once.
  void update_self(const HostRecord& self);
  FleetStatus status() const;

 private:
  explicit Fleet(FleetOptions options, std::unique_ptr<EtcdClient> client);

  FleetOptions options_;
  std::unique_ptr<EtcdClient> client_;
  std::unique_ptr<Registration> registration_;
  std::unique_ptr<DirectorySync> sync_;
  std::thread registration_thread_;
  std::thread sync_thread_;
};

}  // namespace pspgw::fleet
