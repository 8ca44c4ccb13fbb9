// The fleet directory: every host record under the prefix, and which host serves which VIP, in memory.
// Fed by the watcher (store.hpp) one event at a time, or rebuilt from a snapshot after a compaction.
//
// A VIP claimed by two records (a VM migrating: the new host registered it before the old one dropped it)
// belongs to the newer claim (the record with the higher mod revision); when that record drops it, the
// older claim serves again. A record that does not decode is counted and ignored (its host keeps the
// last good record it wrote: a bad write does not tear its tunnels down).
//
// Not thread-safe: the fleet thread owns it; the gateway reads a copy of its peers() view.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fleet/policy.hpp"
#include "fleet/record.hpp"

namespace pspgw::fleet {

// A remote host and the VIPs the directory says it serves (conflicts resolved).
struct DirectoryPeer {
  HostRecord record;
  std::vector<net::IpAddr> vips;
};

class Directory {
 public:
  explicit Directory(const std::string& prefix = std::string(kDefaultPrefix));

  // One key's new value (a watch PUT or a snapshot entry) / its deletion. Keys outside the prefix's
  // hosts/ and policy keys are ignored. Returns false when the value did not decode (counted).
  bool put(std::string_view key, std::string_view value, int64_t mod_revision);
  void erase(std::string_view key);
  // Forget everything (before a resync from a snapshot).
  void clear();
  void set_revision(int64_t revision) { revision_ = revision; }

  std::optional<std::string> host_of(const net::IpAddr& vip) const;
  const HostRecord* record(std::string_view host) const;
  // Every host but `self`, with the VIPs it serves, sorted by host name; VIPs of the family given only.
  std::vector<DirectoryPeer> peers(std::string_view self, net::IpFamily family) const;
  const std::optional<Policy>& policy() const { return policy_; }

  std::size_t host_count() const { return by_name_.size(); }
  std::size_t vip_count() const { return vips_.size(); }
  int64_t revision() const { return revision_; }
  uint64_t bad_records() const { return bad_records_; }
  // Bumped by every change; a reader compares it to skip work when nothing changed.
  uint64_t generation() const { return generation_; }

 private:
  struct Claim {
    uint32_t slot;
    int64_t mod_revision;
  };
  struct Slot {
    HostRecord record;
    int64_t mod_revision = 0;
    bool used = false;
  };
  void put_record(const std::string& host, HostRecord record, int64_t mod_revision);
  void erase_record(const std::string& host);
  void drop_claims(uint32_t slot);
  uint32_t winner(const std::vector<Claim>& claims) const;

  std::string prefix_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_;
  std::unordered_map<std::string, uint32_t> by_name_;
  std::unordered_map<net::IpAddr, std::vector<Claim>> vips_;
  std::optional<Policy> policy_;
  int64_t revision_ = 0;
  uint64_t bad_records_ = 0;
  uint64_t generation_ = 0;
};

}  // namespace pspgw::fleet
