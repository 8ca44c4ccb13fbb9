// Worker steering programs (steering.hpp). Stages:
//   build:  the eBPF steering program (the flow hash, instruction for instruction as gateway::flow_hash
//           computes it) / the classic reuseport program
//   load:   bpf(BPF_PROG_LOAD) -> program fd
//   attach: TUNSETSTEERINGEBPF on a TAP queue / SO_ATTACH_REUSEPORT_CBPF on a UDP socket
#include "ports/steering.hpp"

#include <linux/filter.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>

namespace pspgw::ports {
namespace {

// gateway::flow_hash's constants (psp_actions.cpp): FNV-1a's 64-bit prime over 32-bit words, then
// MurmurHash3's finalizer.
constexpr uint64_t kSeed = 0x9e3779b97f4a7c15ULL;
constexpr uint64_t kPrime = 0x100000001b3ULL;
constexpr uint64_t kFmix = 0xff51afd7ed558ccdULL;

// Registers: R6 the skb (LD_ABS/LD_IND read through it), R7 the offset of the IP (later L4) header, R8 the
// hash, R9 a value kept across a load. Loads clobber R1-R5 and return in R0.
constexpr uint8_t kR0 = BPF_REG_0, kR1 = BPF_REG_1, kR6 = BPF_REG_6, kR7 = BPF_REG_7, kR8 = BPF_REG_8,
                  kR9 = BPF_REG_9;

// A few-instruction assembler with forward labels (the program has no backward jumps: no loops).
class Asm {
 public:
  void op(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    bpf_insn i{};
    i.code = code;
    i.dst_reg = dst & 0xf;
    i.src_reg = src & 0xf;
    i.off = off;
    i.imm = imm;
    prog_.push_back(i);
  }
  void alu64_x(uint8_t o, uint8_t dst, uint8_t src) { op(BPF_ALU64 | o | BPF_X, dst, src, 0, 0); }
  void alu64_k(uint8_t o, uint8_t dst, int32_t imm) { op(BPF_ALU64 | o | BPF_K, dst, 0, 0, imm); }
  void alu32_x(uint8_t o, uint8_t dst, uint8_t src) { op(BPF_ALU | o | BPF_X, dst, src, 0, 0); }
  void alu32_k(uint8_t o, uint8_t dst, int32_t imm) { op(BPF_ALU | o | BPF_K, dst, 0, 0, imm); }
  void ld_imm64(uint8_t dst, uint64_t v) {
    // BPF_LD | BPF_DW | BPF_IMM; the class BPF_LD is 0.
    op(BPF_DW | BPF_IMM, dst, 0, 0, static_cast<int32_t>(static_cast<uint32_t>(v)));
    op(0, 0, 0, 0, static_cast<int32_t>(static_cast<uint32_t>(v >> 32)));
  }
  // R0 = the big-endian value of `size` (BPF_B/H/W) at skb data + R7 + off, as a host number.
  void ld_ip(uint8_t size, int32_t off) { op(BPF_LD | BPF_IND | size, 0, kR7, 0, off); }
  void jmp_k(uint8_t o, uint8_t dst, int32_t imm, int label) {
    fix_.push_back({prog_.size(), label});
    op(BPF_JMP | o | BPF_K, dst, 0, 0, imm);
  }
  void ja(int label) {
    fix_.push_back({prog_.size(), label});
    op(BPF_JMP | BPF_JA, 0, 0, 0, 0);
  }
  void label(int l) { at_[static_cast<std::size_t>(l)] = prog_.size(); }
  void exit() { op(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

  // h = (h ^ R) * prime, for a register R (clobbers R1).
  void mix_reg(uint8_t r) {
    alu64_x(BPF_XOR, kR8, r);
    ld_imm64(kR1, kPrime);
    alu64_x(BPF_MUL, kR8, kR1);
  }
  // The address word pair at IP offsets s and d: h mixes s ^ d, then (s + d) mod 2^32 (symmetric).
  void mix_pair(int32_t s, int32_t d) {
    ld_ip(BPF_W, s);
    alu64_x(BPF_MOV, kR9, kR0);
    ld_ip(BPF_W, d);
    alu64_x(BPF_MOV, kR1, kR9);
    alu64_x(BPF_XOR, kR1, kR0);
    alu32_x(BPF_ADD, kR9, kR0);  // 32-bit add: zero-extended, as uint32_t in C++
    alu64_x(BPF_XOR, kR8, kR1);
    ld_imm64(kR1, kPrime);
    alu64_x(BPF_MUL, kR8, kR1);
    mix_reg(kR9);
  }

  std::vector<bpf_insn> done() {
    for (const auto& [at, l] : fix_) {
      prog_[at].off = static_cast<int16_t>(static_cast<std::ptrdiff_t>(at_[static_cast<std::size_t>(l)]) -
                                           static_cast<std::ptrdiff_t>(at) - 1);
    }
    return prog_;
  }

 private:
  std::vector<bpf_insn> prog_;
  std::vector<std::pair<std::size_t, int>> fix_;
  std::array<std::size_t, 8> at_{};
};

enum Label { kV4, kV6, kL4, kPorts, kFinish, kZero };

Status<SysError> set_steering(int tap_fd, int prog_fd) {
  if (::ioctl(tap_fd, TUNSETSTEERINGEBPF, &prog_fd) != 0) return Err{SysError{"TUNSETSTEERINGEBPF", errno}};
  return {};
}

}  // namespace

std::vector<bpf_insn> tap_steering_program() {
  constexpr int32_t kEth = 14, kVlan = 4;
  Asm a;
  a.alu64_x(BPF_MOV, kR6, kR1);
  a.alu64_k(BPF_MOV, kR7, kEth);
  a.op(BPF_LD | BPF_ABS | BPF_H, 0, 0, 0, 12);  // ethertype
  a.jmp_k(BPF_JNE, kR0, 0x8100, kV4);           // one VLAN tag, as flow_hash skips it
  a.op(BPF_LD | BPF_ABS | BPF_H, 0, 0, 0, 16);
  a.alu64_k(BPF_MOV, kR7, kEth + kVlan);
  a.label(kV4);
  a.ld_imm64(kR8, kSeed);
  a.jmp_k(BPF_JEQ, kR0, 0x86dd, kV6);
  a.jmp_k(BPF_JNE, kR0, 0x0800, kZero);
  // IPv4: addresses, protocol; ports of TCP/UDP unless a fragment; L4 after IHL words.
  a.ld_ip(BPF_B, 0);
  a.alu64_k(BPF_RSH, kR0, 4);
  a.jmp_k(BPF_JNE, kR0, 4, kZero);
  a.mix_pair(12, 16);
  a.ld_ip(BPF_B, 9);
  a.alu64_x(BPF_MOV, kR9, kR0);
  a.mix_reg(kR9);
  a.jmp_k(BPF_JEQ, kR9, 6, kL4);
  a.jmp_k(BPF_JNE, kR9, 17, kFinish);
  a.label(kL4);
  a.ld_ip(BPF_H, 6);
  a.alu64_k(BPF_AND, kR0, 0x3fff);  // MF | fragment offset
  a.jmp_k(BPF_JNE, kR0, 0, kFinish);
  a.ld_ip(BPF_B, 0);
  a.alu64_k(BPF_AND, kR0, 0xf);
  a.alu64_k(BPF_LSH, kR0, 2);
  a.alu64_x(BPF_ADD, kR7, kR0);
  a.ja(kPorts);
  // IPv6: the four address word pairs, Next Header of the fixed header; L4 right after it.
  a.label(kV6);
  a.ld_ip(BPF_B, 0);
  a.alu64_k(BPF_RSH, kR0, 4);
  a.jmp_k(BPF_JNE, kR0, 6, kZero);
  for (int32_t i = 0; i < 16; i += 4) a.mix_pair(8 + i, 24 + i);
  a.ld_ip(BPF_B, 6);
  a.alu64_x(BPF_MOV, kR9, kR0);
  a.mix_reg(kR9);
  a.alu64_k(BPF_ADD, kR7, 40);
  a.jmp_k(BPF_JEQ, kR9, 6, kPorts);
  a.jmp_k(BPF_JNE, kR9, 17, kFinish);
  // Ports: (sport ^ dport) << 16 | (sport + dport) & 0xffff.
  a.label(kPorts);
  a.ld_ip(BPF_H, 0);
  a.alu64_x(BPF_MOV, kR9, kR0);
  a.ld_ip(BPF_H, 2);
  a.alu64_x(BPF_MOV, kR1, kR9);
  a.alu64_x(BPF_XOR, kR1, kR0);
  a.alu64_k(BPF_LSH, kR1, 16);
  a.alu64_x(BPF_ADD, kR9, kR0);
  a.alu64_k(BPF_AND, kR9, 0xffff);
  a.alu64_x(BPF_OR, kR9, kR1);
  a.mix_reg(kR9);
  // fmix: h ^= h >> 33; h *= kFmix; h ^= h >> 33; the low 32 bits, then the steering bits.
  a.label(kFinish);
  a.alu64_x(BPF_MOV, kR0, kR8);
  a.alu64_k(BPF_RSH, kR0, 33);
  a.alu64_x(BPF_XOR, kR8, kR0);
  a.ld_imm64(kR1, kFmix);
  a.alu64_x(BPF_MUL, kR8, kR1);
  a.alu64_x(BPF_MOV, kR0, kR8);
  a.alu64_k(BPF_RSH, kR0, 33);
  a.alu64_x(BPF_XOR, kR8, kR0);
  a.alu32_x(BPF_MOV, kR0, kR8);
  a.alu32_k(BPF_AND, kR0, static_cast<int32_t>(kSteerBits));
  a.exit();
  a.label(kZero);
  a.alu64_k(BPF_MOV, kR0, 0);
  a.exit();
  return a.done();
}

Result<UniqueFd, SysError> load_tap_steering() {
  const std::vector<bpf_insn> prog = tap_steering_program();
  static constexpr char kLicense[] = "GPL";  // no helper is called; the kernel asks for a string
  bpf_attr attr{};
  attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  attr.insns = reinterpret_cast<uint64_t>(prog.data());
  attr.insn_cnt = static_cast<uint32_t>(prog.size());
  attr.license = reinterpret_cast<uint64_t>(kLicense);
  std::memcpy(attr.prog_name, "pspgw_steer", sizeof("pspgw_steer"));
  const long fd = ::syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
  if (fd < 0) return Err{SysError{"bpf(BPF_PROG_LOAD)", errno}};
  return UniqueFd(static_cast<int>(fd));
}

Status<SysError> attach_tap_steering(int tap_fd) {
  auto prog = load_tap_steering();
  if (!prog) return Err{prog.error()};
  return set_steering(tap_fd, prog->get());
}

std::vector<sock_filter> reuseport_steering_program(net::IpFamily family, uint16_t workers) {
  // The program sees the skb at the UDP payload: the source port is read relative to the network header
  // (SKF_NET_OFF), behind the IPv4 header's IHL words or the fixed IPv6 header.
  std::vector<sock_filter> p;
  if (family == net::IpFamily::kV4) {
    p.push_back(BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, static_cast<uint32_t>(SKF_NET_OFF)));
    p.push_back(BPF_STMT(BPF_LD | BPF_H | BPF_IND, static_cast<uint32_t>(SKF_NET_OFF)));
  } else {
    p.push_back(BPF_STMT(BPF_LD | BPF_H | BPF_ABS, static_cast<uint32_t>(SKF_NET_OFF + 40)));
  }
  p.push_back(BPF_STMT(BPF_ALU | BPF_AND | BPF_K, kSteerBits));
  p.push_back(BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, workers == 0 ? 1U : workers));
  p.push_back(BPF_STMT(BPF_RET | BPF_A, 0));
  return p;
}

Status<SysError> attach_reuseport_steering(int udp_fd, net::IpFamily family, uint16_t workers) {
  std::vector<sock_filter> prog = reuseport_steering_program(family, workers);
  sock_fprog fprog{static_cast<unsigned short>(prog.size()), prog.data()};
  if (::setsockopt(udp_fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fprog, sizeof(fprog)) != 0)
    return Err{SysError{"SO_ATTACH_REUSEPORT_CBPF", errno}};
  return {};
}

}  // namespace pspgw::ports
