// Worker steering (issue 9 step 5): every packet of one flow, both directions, to one worker.
//
// The gateway's flow hash (gateway::flow_hash) is symmetric: a flow's two directions hash alike. Its low 14
// bits are the tunnel's UDP source port on the wire (0xc000 | hash & 0x3fff), so a peer running this gateway
// tells us the hash of every flow it sends in the source port. Both kernels then pick the worker from the
// same 14 bits, without a packet crossing threads:
//   TAP (workload -> gateway):  a multi-queue TAP's queue is chosen by an eBPF program (TUNSETSTEERINGEBPF)
//                               that computes the flow hash of the frame; the kernel takes it modulo the
//                               number of queues, queue w being worker w's.
//   UDP (peer -> gateway):      the workers' SO_REUSEPORT sockets on port 1000 form a group in bind order,
//                               socket w being worker w's; a classic BPF program (SO_ATTACH_REUSEPORT_CBPF)
//                               picks (source port & 0x3fff) % workers.
// steer_index() is that choice, for tests and for code that must predict it.
//
// Both programs are built here instruction by instruction (no libbpf, no clang at build time) and loaded
// with the bpf() syscall. Where the kernel refuses (no CONFIG_BPF_SYSCALL, unprivileged BPF disabled, an
// old kernel without TUNSETSTEERINGEBPF), the attach returns the step and errno and the caller keeps the
// kernel's own choice (TAP: automatic flow steering; UDP: the 4-tuple hash), which still keeps each
// direction of a flow on one worker, though not both on the same one.
#pragma once

#include <cstdint>
#include <vector>

#include <linux/bpf.h>
#include <linux/filter.h>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "net/addr.hpp"
#include "ports/port.hpp"

namespace pspgw::ports {

inline constexpr uint32_t kSteerBits = 0x3fff;  // the flow-hash bits carried in the UDP source port

// The worker of a flow whose hash (or UDP source port, which carries it) is `hash_or_port`.
constexpr uint16_t steer_index(uint32_t hash_or_port, uint16_t workers) {
  return workers <= 1 ? 0 : static_cast<uint16_t>((hash_or_port & kSteerBits) % workers);
}

// The eBPF socket-filter program TUNSETSTEERINGEBPF runs: it returns flow_hash(frame) & kSteerBits for the
// Ethernet frame at the skb's data (0 for a frame that is not IPv4/IPv6, or too short to read).
std::vector<bpf_insn> tap_steering_program();
// Loads tap_steering_program() (BPF_PROG_TYPE_SOCKET_FILTER).
Result<UniqueFd, SysError> load_tap_steering();
// Loads the program and attaches it to the multi-queue TAP that `tap_fd` is a queue of (one attach serves
// every queue of the device). The program fd may be closed afterwards: the device holds a reference.
Status<SysError> attach_tap_steering(int tap_fd);

// The classic BPF program SO_ATTACH_REUSEPORT_CBPF runs for a UDP socket of `family` bound to port 1000:
// (UDP source port & kSteerBits) % workers.
std::vector<sock_filter> reuseport_steering_program(net::IpFamily family, uint16_t workers);
// Attaches it to the reuseport group of `udp_fd` (SO_REUSEPORT set; bound or not).
Status<SysError> attach_reuseport_steering(int udp_fd, net::IpFamily family, uint16_t workers);

}  // namespace pspgw::ports
