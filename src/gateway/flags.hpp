// Command-line flags of psp-gateway: DOCA's names where they make sense (shared/spec/doca-psp-gateway.md
// §4), plus --workers, --sample-pcap. Hardware-only DOCA flags (-s/--device, -r/--repr, -m/--core-mask)
// are recognised and rejected with a message saying why, so a DOCA command line fails clearly.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "gateway/log.hpp"
#include "net/addr.hpp"
#include "psp/header.hpp"

namespace pspgw::gateway {

enum class EncapMode : uint8_t { kTunnel, kTransport };

struct PerfPrint {
  bool key_gen = false;    // time of key derivation per exchange
  bool insertion = false;  // time of flow insertion per exchange
};

// --tap-queue-len's default: a TAP's own 500 frames are 2-3 ms at 0.2 Mpps, less than a worker sharing a
// core may wait for it; paced UDP lost 0.6-1.2% of 1400-byte datagrams at 2.0-2.4 Gbit/s on 2 vCPUs, none
// with 4096 (README Performance, "UDP paced").
inline constexpr uint32_t kDefaultTapQueueLen = 4096;

struct GatewayFlags {
  std::string config_path;                                    // -c/--config (required)
  uint32_t sample_rate = 0;                                   // --sample-rate: 1 in 2^N packets; 0 off
  uint32_t max_tunnels = 256;                                 // -x/--max-tunnels
  std::optional<uint8_t> crypt_offset;                        // -o/--crypt-offset, in 4-octet units
  psp::PspVersion psp_version = psp::PspVersion::kAesGcm256;  // --psp-version 0|1|2|3
  bool static_tunnels = false;                                // -z/--static-tunnels
  bool debug_keys = false;                                    // -k/--debug-keys
  bool stat_print = false;                                    // --stat-print
  PerfPrint perf_print;                                       // --perf-print key-gen,insertion,all
  bool show_rss_rx_packets = false;                           // --show-rss-rx-packets
  net::IpFamily outer_ip_type = net::IpFamily::kV6;           // --outer-ip-type ipv4|ipv6
  net::IpFamily inner_ip_type = net::IpFamily::kV4;           // --inner-ip-type ipv4|ipv6
  EncapMode mode = EncapMode::kTunnel;                        // --mode tunnel|transport
  bool cookie = false;                                        // --cookie: send the virtualization cookie
  bool disable_ingress_acl = false;                           // -a/--disable-ingress-acl
  bool maintain_order = false;                                // --maintain-order (see kMaintainOrderNote)
  std::string vf_name = "psp0";                               // -d/--vf-name: the host-side TAP
  std::optional<net::MacAddr> decap_dmac;                     // --decap-dmac: dst MAC of decapsulated frames
  std::optional<net::MacAddr> nexthop_dmac;                   // -n/--nexthop-dmac
  uint32_t workers = 1;                                       // --workers
  uint32_t tap_queue_len = kDefaultTapQueueLen;               // --tap-queue-len (0: the kernel's)
  std::string sample_pcap;                                    // --sample-pcap FILE ("" = none)
  bool udp_zero_checksum = false;  // --udp-zero-checksum: UDP checksum 0 on transmit, no UDP GSO
  std::string dump_pipeline;  // --dump-pipeline mermaid|json: print the pipeline this config builds, exit
  std::string admin_socket;   // --admin-socket PATH ("" = /run/psp-gateway/<vf-name>.sock), pspctl's -s
  // Mutual TLS on gRPC (override x-sw.grpc-tls); one of TLS or --grpc-insecure is required to start.
  std::string grpc_tls_cert;             // --grpc-tls-cert FILE
  std::string grpc_tls_key;              // --grpc-tls-key FILE
  std::string grpc_tls_ca;               // --grpc-tls-ca FILE
  bool grpc_insecure = false;            // --grpc-insecure: plaintext, callers by source address (DOCA peers)
  std::string metrics_address;           // --metrics-address ip:port ("" = x-sw.metrics-address or off)
  uint32_t metrics_max_tunnels = 1000;   // --metrics-max-tunnels: per-tunnel series exported at most
  LogLevel log_level = LogLevel::kInfo;  // --log-level error|warn|info|debug
  // --key-rotation-interval DURATION: the master key rotates on its own this often (0: only on request).
  std::chrono::milliseconds key_rotation_interval = std::chrono::hours(24);
  // --tunnel-idle-timeout DURATION: a tunnel with no packet either way for this long is closed (0: never).
  std::chrono::milliseconds tunnel_idle_timeout{0};
  // Fleet mode (issue 11; README "Fleet mode"): peers and VIPs from etcd. Override x-sw.etcd.
  std::vector<std::string> etcd_endpoints;  // --etcd-endpoints URL[,URL...] (empty: x-sw.etcd or off)
  std::string etcd_prefix;                  // --etcd-prefix ("" = x-sw.etcd.prefix or /psp-gateway/)

  // -o if given, else the mode's default, plus 2 words when the 8-byte virtualization cookie precedes
  // the payload (the offset counts the VC, spec §2, so this keeps it clear):
  //   tunnel:    DOCA's default: the inner IP header stays clear (IPv4 5, IPv6 10 words);
  //   transport: 0: the IP header is not part of the PSP payload, the whole L4 segment is encrypted.
  uint8_t effective_crypt_offset() const;
};

// --maintain-order: DOCA sends sampled packets through the CPU, so without it they could overtake or fall
// behind their flow. Here a sample is a mirrored copy and the original never leaves the pipeline, so a
// flow's order is kept with or without the flag: it is accepted (DOCA command lines keep working) and the
// gateway says so at start with this line.
inline constexpr std::string_view kMaintainOrderNote =
    "--maintain-order: always in effect: samples are mirrored copies, the originals never go through the "
    "CPU, so sampled and unsampled packets of a flow keep their order";

// Parsing stopped: --help (code 0, the help text) or a usage error (code 2, the message).
struct FlagsExit {
  int code = 2;
  std::string text;
};

Result<GatewayFlags, FlagsExit> parse_flags(int argc, const char* const* argv);

}  // namespace pspgw::gateway
