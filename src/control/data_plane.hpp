// DataPlane: how the control core programs the pipeline (INGR_ACL, EGR_ACL/PSP_ENCRYPT, PSP_DECRYPT's
// master keys; spec §5). The gateway implements it on top of src/flow; fake_data_plane.hpp is the
// in-memory double for tests. Calls come from the control thread only and must not block on workers.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "base/result.hpp"
#include "control/messages.hpp"

namespace pspgw::control {

enum class DataPlaneError : uint8_t {
  kNoSpace,   // table full
  kExists,    // ingress entry already present
  kNotFound,  // removing an entry that is not there
  kRejected,  // the data plane cannot express this SA (e.g. outer family it has no socket for)
};
std::string_view to_string(DataPlaneError e);

// A transmit SA: everything PSP_ENCRYPT needs to send from local VIP to remote VIP.
struct TxSa {
  net::IpAddr peer_outer_ip;  // the tunnel destination
  net::MacAddr peer_mac;      // DOCA's outer destination MAC; informational for a UDP-socket backend
  uint32_t spi = 0;           // the peer's SPI
  psp::DerivedKey key;        // the peer's key for `spi`; key.version is the PSP version
  uint64_t virt_cookie = 0;
};

class DataPlane {
 public:
  virtual ~DataPlane() = default;
  // INGR_ACL: accept packets with `spi` whose inner source is `remote_vip` and inner destination `local_vip`.
  virtual Status<DataPlaneError> open_ingress(uint32_t spi, const net::IpAddr& remote_vip,
                                              const net::IpAddr& local_vip) = 0;
  virtual Status<DataPlaneError> close_ingress(uint32_t spi, const net::IpAddr& remote_vip,
                                               const net::IpAddr& local_vip) = 0;
  // EGR_ACL + PSP_ENCRYPT for (local -> remote). Replaces an existing SA for the pair atomically.
  virtual Status<DataPlaneError> install_egress(const VipPair& pair, TxSa sa) = 0;
  virtual Status<DataPlaneError> remove_egress(const VipPair& pair) = 0;
  // PSP_DECRYPT: the master keys receive keys are derived from; published after every rotation.
  virtual void publish_master_keys(std::shared_ptr<const psp::MasterKeySnapshot> keys) = 0;
};

}  // namespace pspgw::control
