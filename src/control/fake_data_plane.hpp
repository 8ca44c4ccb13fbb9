// FakeDataPlane: the in-memory DataPlane double for control-plane tests. Records every call in order
// (so a test can check that ingress was opened before a request was sent) and can be told to fail.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "control/data_plane.hpp"

namespace pspgw::control {

class FakeDataPlane final : public DataPlane {
 public:
  using IngressKey = std::tuple<uint32_t, net::IpAddr, net::IpAddr>;  // spi, remote VIP, local VIP

  Status<DataPlaneError> open_ingress(uint32_t spi, const net::IpAddr& remote_vip,
                                      const net::IpAddr& local_vip) override;
  Status<DataPlaneError> close_ingress(uint32_t spi, const net::IpAddr& remote_vip,
                                       const net::IpAddr& local_vip) override;
  Status<DataPlaneError> install_egress(const VipPair& pair, TxSa sa) override;
  Status<DataPlaneError> remove_egress(const VipPair& pair) override;
  void publish_master_keys(std::shared_ptr<const psp::MasterKeySnapshot> keys) override;

  // Inspection (all thread-safe).
  bool ingress_open(uint32_t spi, const VipPair& pair) const;
  std::size_t ingress_count() const;
  std::vector<uint32_t> ingress_spis(const VipPair& pair) const;  // ascending
  // The egress SA of a pair: spi, outer ip, key bytes (a copy), version, cookie.
  struct EgressView {
    uint32_t spi;
    net::IpAddr outer_ip;
    net::MacAddr mac;
    psp::PspVersion version;
    std::vector<uint8_t> key;
    uint64_t virt_cookie;
  };
  std::optional<EgressView> egress(const VipPair& pair) const;
  std::size_t egress_count() const;
  std::vector<std::string> ops() const;  // "open_ingress <spi>", "install_egress <local>-><remote>", ...
  std::shared_ptr<const psp::MasterKeySnapshot> master_keys() const;

  // Failure injection: the next call of that kind fails with `e`.
  void fail_next_open(DataPlaneError e);
  // After `skip` more successful installs, the next install fails with `e`.
  void fail_install(DataPlaneError e, std::size_t skip = 0);
  void set_ingress_capacity(std::size_t n);

 private:
  mutable std::mutex mu_;
  std::set<IngressKey> ingress_;
  std::map<VipPair, TxSa> egress_;
  std::vector<std::string> ops_;
  std::shared_ptr<const psp::MasterKeySnapshot> keys_;
  std::optional<DataPlaneError> fail_open_, fail_install_;
  std::size_t install_skip_ = 0;
  std::size_t capacity_ = SIZE_MAX;
};

}  // namespace pspgw::control
