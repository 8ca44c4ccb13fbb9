// Actions a pipe applies to the packets that hit one of its entries, and the hook that finds a tunnelled
// packet. Both are batch interfaces: one virtual call per batch and pipe, never per packet.
//
// A pipe declares its action list once (DOCA's actions template); each entry supplies the per-entry
// arguments (e.g. pkt_meta = crypto_id, the SA an encrypt action uses). Order of execution per pipe:
// actions in declaration order -> mirror copies -> forward.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "flow/field.hpp"
#include "net/packet.hpp"

namespace pspgw::flow {

struct ActionContext {
  uint16_t worker = 0;              // index of the calling worker, < max_workers
  net::PacketPool* pool = nullptr;  // the worker's pool (may be null)
};

// A user action (src/psp: encrypt, decrypt, encap, decap). Called once per batch with the packets that hit;
// args[i] is the argument of the entry pkts[i] hit (0 for actions without per-entry arguments).
// To drop a packet, set pkt->meta.drop_reason to a code in 1..kFirstEngineDrop-1: the engine then sends it
// to drop with that reason instead of forwarding it, and counts it.
class BatchAction {
 public:
  virtual ~BatchAction() = default;
  virtual void apply(std::span<net::Packet* const> pkts, std::span<const uint64_t> args,
                     const ActionContext& ctx) = 0;
  // Dump label, e.g. "encrypt()".
  virtual std::string name() const = 0;
  // False if the action touches metadata only, so header fields parsed before it stay valid.
  virtual bool rewrites_packet() const { return true; }
  // Name of a drop code this action assigns (dump / stats); empty = print the number.
  virtual std::string_view drop_reason_name(uint8_t /*code*/) const { return {}; }
};

struct ActionSpec {
  enum class Kind : uint8_t {
    kSetMeta,  // field (kPktMeta / kReg0..3 / kInPort) := value or the entry's argument
    kSetBits,  // packet bits under `mask` of a 32-bit field (kUdpPayload0/4) := value (PSP S bit)
    kUser,     // a BatchAction
  };
  Kind kind = Kind::kSetMeta;
  Field field = Field::kPktMeta;
  uint32_t mask = 0;
  uint32_t value = 0;
  bool per_entry = false;  // the value comes from the entry's argument
  std::string label;       // dump: "pkt_meta=<label>" for per-entry values, the action name for kSetBits
  std::shared_ptr<BatchAction> user;

  static ActionSpec set_meta(Field f, uint32_t v) { return {Kind::kSetMeta, f, ~0u, v, false, {}, {}}; }
  static ActionSpec set_meta_from_entry(Field f, std::string label) {
    return {Kind::kSetMeta, f, ~0u, 0, true, std::move(label), {}};
  }
  static ActionSpec set_bits(Field f, uint32_t mask, uint32_t v, std::string label = {}) {
    return {Kind::kSetBits, f, mask, v, false, std::move(label), {}};
  }
  static ActionSpec call(std::shared_ptr<BatchAction> a, bool per_entry_arg = false) {
    return {Kind::kUser, Field::kPktMeta, 0, 0, per_entry_arg, {}, std::move(a)};
  }
};

// Where a packet's outer headers end and its tunnel begins, as the engine parsed them.
struct OuterL4 {
  uint16_t udp_payload = 0;  // offset of the UDP payload in the packet; 0 = not UDP / truncated
  uint16_t udp_dst = 0;      // host order
};

// Finds the tunnelled IP packet (for the kInner* fields). Called once per batch, only for pipes that
// match inner fields. inner_l3[i] := offset of the inner IP header in pkts[i], or 0 when there is none;
// the engine bounds-checks and parses what it finds there.
class InnerLocator {
 public:
  virtual ~InnerLocator() = default;
  virtual void locate(std::span<net::Packet* const> pkts, std::span<const OuterL4> outer,
                      std::span<uint16_t> inner_l3) const = 0;
};

// The common case as data: a fixed-size header after UDP port `udp_port`, `ext_len` bytes longer when
// bit `ext_mask` of header byte `ext_byte` is set. PSP: {1000, 16, 3, 0x02, 8} (the V bit adds the VC).
class UdpTunnelLocator final : public InnerLocator {
 public:
  UdpTunnelLocator(uint16_t udp_port, uint8_t header_len, uint8_t ext_byte = 0, uint8_t ext_mask = 0,
                   uint8_t ext_len = 0)
      : port_(udp_port), len_(header_len), ext_byte_(ext_byte), ext_mask_(ext_mask), ext_len_(ext_len) {}
  void locate(std::span<net::Packet* const> pkts, std::span<const OuterL4> outer,
              std::span<uint16_t> inner_l3) const override;

 private:
  uint16_t port_;
  uint8_t len_, ext_byte_, ext_mask_, ext_len_;
};

}  // namespace pspgw::flow
