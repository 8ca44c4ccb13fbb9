#include "fleet/directory.hpp"

#include <algorithm>

namespace pspgw::fleet {

Directory::Directory(const std::string& prefix) : prefix_(normalise_prefix(prefix)) {}

bool Directory::put(std::string_view key, std::string_view value, int64_t mod_revision) {
  if (key == policy_key(prefix_)) {
    auto p = decode_policy(value);
    if (!p) {
      ++bad_records_;
      return false;
    }
    policy_ = std::move(*p);
    ++generation_;
    return true;
  }
  auto host = host_of_key(prefix_, key);
  if (!host) return true;  // not ours to read
  auto r = decode_record(value);
  if (!r || r->host != *host) {  // a record under another host's key is as bad as one that does not parse
    ++bad_records_;
    return false;
  }
  put_record(*host, std::move(*r), mod_revision);
  return true;
}

void Directory::erase(std::string_view key) {
  if (key == policy_key(prefix_)) {
    policy_.reset();
    ++generation_;
    return;
  }
  if (auto host = host_of_key(prefix_, key)) erase_record(*host);
}

void Directory::clear() {
  slots_.clear();
  free_.clear();
  by_name_.clear();
  vips_.clear();
  policy_.reset();
  ++generation_;
}

void Directory::put_record(const std::string& host, HostRecord record, int64_t mod_revision) {
  uint32_t slot = 0;
  if (auto it = by_name_.find(host); it != by_name_.end()) {
    slot = it->second;
    drop_claims(slot);
  } else if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
    by_name_.emplace(host, slot);
  } else {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
    by_name_.emplace(host, slot);
  }
  for (const auto& port : record.ports) {
    for (const auto& vip : port.vips) vips_[vip].push_back({slot, mod_revision});
  }
  slots_[slot] = {std::move(record), mod_revision, true};
  ++generation_;
}

void Directory::erase_record(const std::string& host) {
  const auto it = by_name_.find(host);
  if (it == by_name_.end()) return;
  const uint32_t slot = it->second;
  drop_claims(slot);
  slots_[slot] = {};
  free_.push_back(slot);
  by_name_.erase(it);
  ++generation_;
}

void Directory::drop_claims(uint32_t slot) {
  for (const auto& port : slots_[slot].record.ports) {
    for (const auto& vip : port.vips) {
      auto it = vips_.find(vip);
      if (it == vips_.end()) continue;
      auto& claims = it->second;
      claims.erase(
          std::remove_if(claims.begin(), claims.end(), [&](const Claim& c) { return c.slot == slot; }),
          claims.end());
      if (claims.empty()) vips_.erase(it);
    }
  }
}

uint32_t Directory::winner(const std::vector<Claim>& claims) const {
  // The newest claim; equal revisions (one transaction) by host name, so every gateway picks the same.
  const Claim* best = &claims.front();
  for (const Claim& c : claims) {
    if (c.mod_revision > best->mod_revision ||
        (c.mod_revision == best->mod_revision && slots_[c.slot].record.host < slots_[best->slot].record.host))
      best = &c;
  }
  return best->slot;
}

std::optional<std::string> Directory::host_of(const net::IpAddr& vip) const {
  const auto it = vips_.find(vip);
  if (it == vips_.end()) return std::nullopt;
  return slots_[winner(it->second)].record.host;
}

const HostRecord* Directory::record(std::string_view host) const {
  const auto it = by_name_.find(std::string(host));
  return it == by_name_.end() ? nullptr : &slots_[it->second].record;
}

std::vector<DirectoryPeer> Directory::peers(std::string_view self, net::IpFamily family) const {
  std::vector<DirectoryPeer> out;
  for (const auto& [name, slot] : by_name_) {
    if (name == self) continue;
    DirectoryPeer p{slots_[slot].record, {}};
    for (const auto& vip : p.record.vips()) {
      if (vip.family != family) continue;
      const auto it = vips_.find(vip);
      if (it != vips_.end() && winner(it->second) == slot) p.vips.push_back(vip);
    }
    std::sort(p.vips.begin(), p.vips.end());
    p.vips.erase(std::unique(p.vips.begin(), p.vips.end()), p.vips.end());
    out.push_back(std::move(p));
  }
  std::sort(out.begin(), out.end(),
            [](const DirectoryPeer& a, const DirectoryPeer& b) { return a.record.host < b.record.host; });
  return out;
}

}  // namespace pspgw::fleet
