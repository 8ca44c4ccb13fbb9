// A batched UDP load for bench/e2e.sh: how many datagrams a path carries, measured with ends that are not
// the bottleneck. iperf3 sends and receives one datagram a system call; on this 2-vCPU machine that caps
// even the bare veth at ~0.25 Mpps of 1400-byte packets, so iperf3's UDP figures measure iperf3 as much as
// the path. Here the sender fills sendmmsg() batches (optionally paced) and the receiver drains recvmmsg()
// batches, each a numbered datagram, so the count that arrived, and the loss, are the path's.
//
//   bench_udp_load recv --bind ADDR [--port 5202] [--max-seconds 60] [--idle-ms 500]
//   bench_udp_load send --to ADDR [--port 5202] --payload N [--seconds 5] [--pps R] [--batch 32]
//
// --payload is the UDP payload's size (iperf3's -l: bench/e2e.sh's 1400-byte IPv4 packets are 1372), at
// least 8: it starts with the datagram's sequence number (8 bytes, big-endian). --pps 0 (default) sends as
// fast as sendmmsg() returns; otherwise batches of at most 100 us of the rate leave on a schedule of R
// datagrams a second. The receiver stops after --idle-ms without a datagram once one has come (or at
// --max-seconds). Each prints one JSON object on stdout: the sender {"sent", "seconds", "send_errors"},
// the receiver {"received", "bytes", "seconds", "max_seq", "reordered", "truncated"}.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>
#include <system_error>
#include <vector>

#include "base/byteorder.hpp"
#include "base/unique_fd.hpp"
#include "net/addr.hpp"

namespace pspgw::bench {
namespace {

constexpr std::size_t kMaxBatch = 64;
constexpr std::size_t kRxBuffer = 2048;
constexpr std::size_t kSeqBytes = 8;
constexpr int kSocketBuffer = 4 << 20;
constexpr double kPacedBurstSeconds = 100e-6;  // as bench/e2e.sh's paced iperf3 trials (-w 4M)

using Clock = std::chrono::steady_clock;

struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family = AF_INET;
};

bool make_endpoint(const std::string& text, uint16_t port, Endpoint* e) {
  const auto ip = net::IpAddr::parse(text);
  if (!ip) return false;
  if (ip->is_v4()) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&e->addr);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    std::memcpy(&sin->sin_addr, ip->bytes.data(), 4);
    e->len = sizeof(sockaddr_in);
    e->family = AF_INET;
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&e->addr);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    std::memcpy(&sin6->sin6_addr, ip->bytes.data(), 16);
    e->len = sizeof(sockaddr_in6);
    e->family = AF_INET6;
  }
  return true;
}

// SO_*BUFFORCE where the caller may (root, as bench/e2e.sh runs); the capped option otherwise.
void size_buffer(int fd, int force_opt, int opt) {
  const int bytes = kSocketBuffer;
  if (::setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof(bytes)) != 0) {
    (void)::setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof(bytes));
  }
}

int fail(const std::string& what) {
  std::fprintf(stderr, "bench_udp_load: %s: %s\n", what.c_str(),
               std::system_category().message(errno).c_str());
  return 1;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct SendOptions {
  std::string to;
  uint16_t port = 5202;
  uint32_t payload = 1372;
  double seconds = 5;
  double pps = 0;
  uint32_t batch = 32;
};

int run_send(const SendOptions& o) {
  Endpoint dst;
  if (!make_endpoint(o.to, o.port, &dst)) {
    std::fprintf(stderr, "bench_udp_load: --to '%s' is not an IP address\n", o.to.c_str());
    return 2;
  }
  const std::size_t payload = o.payload;
  UniqueFd fd(::socket(dst.family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return fail("socket");
  size_buffer(fd.get(), SO_SNDBUFFORCE, SO_SNDBUF);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&dst.addr), dst.len) != 0) return fail("connect");

  std::vector<uint8_t> bufs(payload * o.batch, 0);
  std::array<iovec, kMaxBatch> iov{};
  std::array<mmsghdr, kMaxBatch> msgs{};
  for (std::size_t i = 0; i < o.batch; ++i) {
    iov[i] = {bufs.data() + i * payload, payload};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  // Paced, a batch is at most 100 us of the rate: bursts of 32 at a few tens of thousands a second would
  // measure a path's tolerance of bursts (its queues) rather than the rate it carries.
  const auto batch = o.pps > 0
                         ? std::clamp<uint32_t>(static_cast<uint32_t>(o.pps * kPacedBurstSeconds), 1, o.batch)
                         : o.batch;
  uint64_t seq = 0;
  uint64_t errors = 0;
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  for (auto now = t0; now < end; now = Clock::now()) {
    // Paced: the batch starting at datagram `seq` is due at t0 + seq / pps; one that is late goes at once.
    if (o.pps > 0) {
      const auto due = t0 + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(static_cast<double>(seq) / o.pps));
      if (due > now) {
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(due - now).count();
        const timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
        ::clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, nullptr);
      }
    }
    for (std::size_t i = 0; i < batch; ++i) store_be64(bufs.data() + i * payload, seq + i);
    const int r = ::sendmmsg(fd.get(), msgs.data(), batch, 0);
    if (r > 0) {
      seq += static_cast<uint64_t>(r);
    } else if (errno != EINTR) {
      ++errors;  // ENOBUFS/ECONNREFUSED from a path that pushes back: counted, the run goes on
    }
  }
  const nlohmann::json out = {{"sent", seq}, {"seconds", seconds_since(t0)}, {"send_errors", errors}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

struct RecvOptions {
  std::string bind;
  uint16_t port = 5202;
  double max_seconds = 60;
  int idle_ms = 500;
};

struct Tally {
  uint64_t received = 0;
  uint64_t bytes = 0;
  uint64_t max_seq = 0;
  uint64_t reordered = 0;
  uint64_t truncated = 0;
  Clock::time_point first;
  Clock::time_point last;

  void count(const uint8_t* data, std::size_t len, bool trunc, Clock::time_point now) {
    if (received == 0) first = now;
    last = now;
    ++received;
    bytes += len;
    truncated += trunc ? 1 : 0;
    if (len < kSeqBytes) return;
    const uint64_t seq = load_be64(data);
    if (received > 1 && seq < max_seq) ++reordered;
    if (seq > max_seq) max_seq = seq;
  }
};

int run_recv(const RecvOptions& o) {
  Endpoint local;
  if (!make_endpoint(o.bind, o.port, &local)) {
    std::fprintf(stderr, "bench_udp_load: --bind '%s' is not an IP address\n", o.bind.c_str());
    return 2;
  }
  UniqueFd fd(::socket(local.family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return fail("socket");
  size_buffer(fd.get(), SO_RCVBUFFORCE, SO_RCVBUF);
  const timeval tick{0, 100000};  // wake every 100 ms to check the idle and overall limits
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof(tick)) != 0) return fail("SO_RCVTIMEO");
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&local.addr), local.len) != 0) return fail("bind");

  std::vector<uint8_t> bufs(kRxBuffer * kMaxBatch);
  std::array<iovec, kMaxBatch> iov{};
  std::array<mmsghdr, kMaxBatch> msgs{};
  Tally t;
  const auto t0 = Clock::now();
  const auto idle = std::chrono::milliseconds(o.idle_ms);
  while (seconds_since(t0) < o.max_seconds) {
    for (std::size_t i = 0; i < kMaxBatch; ++i) {
      iov[i] = {bufs.data() + i * kRxBuffer, kRxBuffer};
      msgs[i].msg_hdr = msghdr{};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int r = ::recvmmsg(fd.get(), msgs.data(), kMaxBatch, MSG_WAITFORONE, nullptr);
    const auto now = Clock::now();
    for (int i = 0; i < r; ++i) {
      const auto& h = msgs[static_cast<std::size_t>(i)];
      t.count(bufs.data() + static_cast<std::size_t>(i) * kRxBuffer, h.msg_len,
              (h.msg_hdr.msg_flags & MSG_TRUNC) != 0, now);
    }
    if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return fail("recvmmsg");
    if (t.received > 0 && now - t.last >= idle) break;
  }
  const double secs = t.received > 1 ? std::chrono::duration<double>(t.last - t.first).count() : 0.0;
  const nlohmann::json out = {{"received", t.received},   {"bytes", t.bytes},
                              {"seconds", secs},          {"max_seq", t.max_seq},
                              {"reordered", t.reordered}, {"truncated", t.truncated}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace
}  // namespace pspgw::bench

namespace pspgw::bench {
namespace {

int run(int argc, char** argv) {
  CLI::App app{"bench_udp_load: a batched UDP sender and receiver for bench/e2e.sh"};
  app.require_subcommand(1);
  SendOptions s;
  CLI::App* send = app.add_subcommand("send", "send numbered datagrams to --to:--port");
  send->add_option("--to", s.to, "destination address")->required();
  send->add_option("--port", s.port, "destination UDP port");
  send->add_option("--payload", s.payload, "UDP payload bytes")->check(CLI::Range(8, 65507));
  send->add_option("--seconds", s.seconds, "how long to send")->check(CLI::Range(0.01, 3600.0));
  send->add_option("--pps", s.pps, "datagrams a second, 0 = as fast as possible")
      ->check(CLI::NonNegativeNumber);
  send->add_option("--batch", s.batch, "datagrams a sendmmsg()")
      ->check(CLI::Range(1, static_cast<int>(kMaxBatch)));
  RecvOptions r;
  CLI::App* recv = app.add_subcommand("recv", "count the datagrams that arrive on --bind:--port");
  recv->add_option("--bind", r.bind, "local address")->required();
  recv->add_option("--port", r.port, "local UDP port");
  recv->add_option("--max-seconds", r.max_seconds, "give up after this long")->check(CLI::Range(0.1, 3600.0));
  recv->add_option("--idle-ms", r.idle_ms, "stop this long after the last datagram")
      ->check(CLI::Range(10, 60000));
  CLI11_PARSE(app, argc, argv);
  return send->parsed() ? run_send(s) : run_recv(r);
}

}  // namespace
}  // namespace pspgw::bench

int main(int argc, char** argv) {
  try {
    return pspgw::bench::run(argc, argv);
  } catch (const std::exception& e) {  // bad_alloc, a JSON error: report, never abort
    std::fprintf(stderr, "bench_udp_load: error: %s\n", e.what());
    return 1;
  }
}
