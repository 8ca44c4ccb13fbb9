#include "control/fake_data_plane.hpp"

namespace pspgw::control {

Status<DataPlaneError> FakeDataPlane::open_ingress(uint32_t spi, const net::IpAddr& remote_vip,
                                                   const net::IpAddr& local_vip) {
  std::lock_guard lock(mu_);
  ops_.push_back("open_ingress " + std::to_string(spi));
  if (auto e = std::exchange(fail_open_, std::nullopt)) return Err{*e};
  if (ingress_.size() >= capacity_) return Err{DataPlaneError::kNoSpace};
  if (!ingress_.emplace(spi, remote_vip, local_vip).second) return Err{DataPlaneError::kExists};
  return {};
}

Status<DataPlaneError> FakeDataPlane::close_ingress(uint32_t spi, const net::IpAddr& remote_vip,
                                                    const net::IpAddr& local_vip) {
  std::lock_guard lock(mu_);
  ops_.push_back("close_ingress " + std::to_string(spi));
  if (ingress_.erase(IngressKey{spi, remote_vip, local_vip}) == 0) return Err{DataPlaneError::kNotFound};
  return {};
}

Status<DataPlaneError> FakeDataPlane::install_egress(const VipPair& pair, TxSa sa) {
  std::lock_guard lock(mu_);
  ops_.push_back("install_egress " + pair.local.to_string() + "->" + pair.remote.to_string());
  if (fail_install_) {
    if (install_skip_ == 0) return Err{*std::exchange(fail_install_, std::nullopt)};
    --install_skip_;
  }
  egress_.insert_or_assign(pair, std::move(sa));
  return {};
}

Status<DataPlaneError> FakeDataPlane::remove_egress(const VipPair& pair) {
  std::lock_guard lock(mu_);
  ops_.push_back("remove_egress " + pair.local.to_string() + "->" + pair.remote.to_string());
  if (egress_.erase(pair) == 0) return Err{DataPlaneError::kNotFound};
  return {};
}

void FakeDataPlane::publish_master_keys(std::shared_ptr<const psp::MasterKeySnapshot> keys) {
  std::lock_guard lock(mu_);
  ops_.emplace_back("publish_master_keys");
  keys_ = std::move(keys);
}

bool FakeDataPlane::ingress_open(uint32_t spi, const VipPair& pair) const {
  std::lock_guard lock(mu_);
  return ingress_.contains(IngressKey{spi, pair.remote, pair.local});
}

std::size_t FakeDataPlane::ingress_count() const {
  std::lock_guard lock(mu_);
  return ingress_.size();
}

std::vector<uint32_t> FakeDataPlane::ingress_spis(const VipPair& pair) const {
  std::lock_guard lock(mu_);
  std::vector<uint32_t> out;
  for (const auto& [spi, remote, local] : ingress_) {
    if (remote == pair.remote && local == pair.local) out.push_back(spi);
  }
  return out;
}

std::optional<FakeDataPlane::EgressView> FakeDataPlane::egress(const VipPair& pair) const {
  std::lock_guard lock(mu_);
  auto it = egress_.find(pair);
  if (it == egress_.end()) return std::nullopt;
  const TxSa& sa = it->second;
  auto key = sa.key.view();
  return EgressView{sa.spi,         sa.peer_outer_ip,         sa.peer_mac,
                    sa.key.version, {key.begin(), key.end()}, sa.virt_cookie};
}

std::size_t FakeDataPlane::egress_count() const {
  std::lock_guard lock(mu_);
  return egress_.size();
}

std::vector<std::string> FakeDataPlane::ops() const {
  std::lock_guard lock(mu_);
  return ops_;
}

std::shared_ptr<const psp::MasterKeySnapshot> FakeDataPlane::master_keys() const {
  std::lock_guard lock(mu_);
  return keys_;
}

void FakeDataPlane::fail_next_open(DataPlaneError e) {
  std::lock_guard lock(mu_);
  fail_open_ = e;
}

void FakeDataPlane::fail_install(DataPlaneError e, std::size_t skip) {
  std::lock_guard lock(mu_);
  fail_install_ = e;
  install_skip_ = skip;
}

void FakeDataPlane::set_ingress_capacity(std::size_t n) {
  std::lock_guard lock(mu_);
  capacity_ = n;
}

}  // namespace pspgw::control
