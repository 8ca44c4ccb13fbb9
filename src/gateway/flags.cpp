#include "gateway/flags.hpp"

#include <CLI/CLI.hpp>
#include <sstream>
#include <vector>

#include "base/duration.hpp"
#include "gateway/config.hpp"

namespace pspgw::gateway {

namespace {

constexpr uint32_t kMaxSampleRate = 16;  // EGR_SAMP matches 16 random bits (the seeds' mask 0xffff)
constexpr uint32_t kMaxWorkers = 256;
constexpr uint32_t kMaxTunnelsLimit = 1u << 20;
constexpr uint32_t kMaxTapQueueLen = 1u << 16;

// Hardware-only DOCA flags: accepted by the parser so the message can say why they are refused.
struct HardwareFlag {
  const char* names;
  const char* name;
  const char* why;
};
constexpr HardwareFlag kHardwareFlags[] = {
    {"-s,--device", "--device", "there is no NIC to select: PSP runs over the kernel's UDP sockets"},
    {"-r,--repr", "--repr", "there are no VF representors: the host side is the TAP device of -d/--vf-name"},
    {"-m,--core-mask", "--core-mask", "use --workers N to choose the number of packet threads"},
};

// --help's man-page tail.
constexpr const char* kHelpFooter = R"(EXAMPLES
  psp-gateway -c /etc/psp-gateway/host1.json --grpc-tls-cert host1.pem --grpc-tls-key host1.key \
              --grpc-tls-ca ca.pem
      Start with the DOCA-schema config, mutual TLS on gRPC, tunnels made on demand.
  psp-gateway -c host1.json --grpc-insecure -z --metrics-address 127.0.0.1:9469 --log-level warn
      Plaintext gRPC (DOCA peers), every tunnel made at start, Prometheus metrics, warnings only.
  psp-gateway -c host1.json --grpc-insecure --dump-pipeline mermaid
      Print the pipeline the config builds, open nothing.

SIGNALS
  SIGTERM, SIGINT  stop cleanly (workers drained, gRPC stopped, keys zeroed, TAPs removed), exit 0
  SIGHUP           reload: re-read the config file and apply the difference; a config that does not
                   check, or changes what needs a restart, is refused as a whole (the running one stays)

FILES
  /etc/psp-gateway/NAME.json         config of the systemd instance psp-gateway@NAME.service
  /run/psp-gateway/<vf-name>.sock    admin socket (pspctl -s), unless --admin-socket
  psp-gateway@.service               systemd unit: Type=notify (READY=1 once ports, gRPC and the
                                     admin socket are up), Restart=on-failure

EXIT STATUS
  0 stopped by a signal or --help; 1 could not start; 2 bad flags or config

See README.md ("Operating") for install, systemd, metrics and log levels.)";

// --help in sections, like a man page's: each option not placed where it was added goes by its name.
void group_options(CLI::App& app) {
  struct Section {
    const char* group;
    std::vector<const char*> names;
  };
  const Section kSections[] = {
      {"Config and ports",
       {"--config", "--vf-name", "--admin-socket", "--workers", "--tap-queue-len", "--udp-zero-checksum",
        "--dump-pipeline"}},
      {"PSP and tunnels",
       {"--max-tunnels", "--crypt-offset", "--psp-version", "--static-tunnels", "--outer-ip-type",
        "--inner-ip-type", "--mode", "--cookie", "--disable-ingress-acl", "--maintain-order", "--decap-dmac",
        "--nexthop-dmac"}},
      {"Diagnostics",
       {"--debug-keys", "--stat-print", "--perf-print", "--show-rss-rx-packets", "--sample-rate",
        "--sample-pcap"}},
  };
  for (CLI::Option* opt : app.get_options()) {
    for (const auto& section : kSections) {
      for (const char* name : section.names) {
        if (opt->check_name(name)) opt->group(section.group);
      }
    }
  }
}

const CLI::Validator kMac(
    [](const std::string& text) {
      return net::MacAddr::parse(text) ? std::string() : "not a MAC address: " + text;
    },
    "MAC");

void parse_perf_print(const std::string& text, PerfPrint& out) {
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item == "key-gen" || item == "all") out.key_gen = true;
    if (item == "insertion" || item == "all") out.insertion = true;
  }
}

// A duration option (base/duration.hpp): checked while parsing, so the usage error names the flag.
CLI::Option* add_duration(CLI::App& app, const std::string& names, std::chrono::milliseconds& out,
                          const std::string& help) {
  return app
      .add_option_function<std::string>(
          names, [&out](const std::string& text) { out = *parse_duration(text); }, help)
      ->check(CLI::Validator(
          [](const std::string& text) {
            auto d = parse_duration(text);
            return d ? std::string() : d.error();
          },
          "DURATION"))
      ->default_str(format_duration(out));
}

net::IpFamily family_of(const std::string& text) {
  return text == "ipv4" ? net::IpFamily::kV4 : net::IpFamily::kV6;
}

}  // namespace

uint8_t GatewayFlags::effective_crypt_offset() const {
  if (crypt_offset) return *crypt_offset;
  const uint8_t vc = cookie ? 2 : 0;  // 8 bytes of VC
  if (mode == EncapMode::kTransport) return vc;
  const uint8_t inner = inner_ip_type == net::IpFamily::kV4 ? 5 : 10;  // 20 / 40 bytes of IP header
  return static_cast<uint8_t>(inner + vc);
}

Result<GatewayFlags, FlagsExit> parse_flags(int argc, const char* const* argv) {
  GatewayFlags f;
  CLI::App app{"psp-gateway: a software PSP Security Protocol gateway (DOCA PSP Gateway compatible)",
               "psp-gateway"};
  app.get_formatter()->column_width(32);
  std::string psp_version = "1", outer = "ipv6", inner = "ipv4", mode = "tunnel", perf, decap, nexthop;
  uint32_t crypt_offset = 0;

  app.add_option("-c,--config", f.config_path, "JSON config file (DOCA schema + x-sw extension; required)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("-d,--vf-name", f.vf_name, "Host-side TAP device to create (default psp0)")
      ->check([](const std::string& s) {
        return s.empty() || s.size() > 15 ? "1..15 characters" : std::string();
      });
  app.add_option("--sample-rate", f.sample_rate, "Sample 1 in 2^N packets (0: off, the default)")
      ->check(CLI::Range(0u, kMaxSampleRate));
  app.add_option("--sample-pcap", f.sample_pcap,
                 "Also write sampled packets to this pcap file (default: none)");
  app.add_flag(
      "--udp-zero-checksum", f.udp_zero_checksum,
      "Send PSP datagrams with UDP checksum 0, as the PSP spec words it, instead of a valid checksum; "
      "the kernel cannot batch such sends (no UDP GSO), so it is slower (default: valid checksums "
      "and UDP GSO, which every PSP receiver accepts)");
  app.add_option("--dump-pipeline", f.dump_pipeline,
                 "Print the pipeline the config and flags build (mermaid or json) and exit; opens no port "
                 "(default: run)")
      ->check(CLI::IsMember({"mermaid", "json"}));
  app.add_option("--admin-socket", f.admin_socket,
                 "Unix socket of the admin channel (pspctl -s); default /run/psp-gateway/<vf-name>.sock");
  app.add_option("--grpc-tls-cert", f.grpc_tls_cert,
                 "Our certificate (PEM) for mutual TLS on gRPC; its subjectAltName must name our gRPC host")
      ->type_name("FILE")
      ->group("Key exchange security");
  app.add_option("--grpc-tls-key", f.grpc_tls_key, "Private key (PEM, unencrypted) of --grpc-tls-cert")
      ->type_name("FILE")
      ->group("Key exchange security");
  app.add_option("--grpc-tls-ca", f.grpc_tls_ca,
                 "CA certificate(s) (PEM) that every peer's certificate must chain to")
      ->type_name("FILE")
      ->group("Key exchange security");
  app.add_flag("--grpc-insecure", f.grpc_insecure,
               "Plaintext, unauthenticated gRPC (to peer with DOCA hardware gateways): a request is "
               "accepted only from a configured peer's address")
      ->group("Key exchange security");
  std::string log_level = "info";
  app.add_option("--log-level", log_level,
                 "Least severe lines written: error, warn, info or debug (default info). Lines read "
                 "'psp-gateway: LEVEL: ...', time-stamped unless journald reads them (JOURNAL_STREAM set)")
      ->check(CLI::IsMember({"error", "warn", "info", "debug"}))
      ->group("Operation");
  app.add_option("--metrics-address", f.metrics_address,
                 "Serve Prometheus metrics at http://ADDR/metrics (ip:port, [v6]:port; port 0: any free "
                 "port); overrides x-sw.metrics-address (default: off)")
      ->type_name("ADDR")
      ->check([](const std::string& s) {
        return parse_listen_address(s) ? std::string() : "not ip:port (IPv6: [ip]:port): " + s;
      })
      ->group("Operation");
  app.add_option("--metrics-max-tunnels", f.metrics_max_tunnels,
                 "Most tunnels exported as per-tunnel series (local_vip, remote_vip labels); the rest count "
                 "in psp_gateway_tunnels_unexported (default 1000)")
      ->check(CLI::Range(0u, kMaxTunnelsLimit))
      ->group("Operation");
  app.add_option("--etcd-endpoints", f.etcd_endpoints,
                 "Fleet mode: etcd's client URLs (http://ip:port or https://...), comma-separated; peers and "
                 "remote VIPs then come from the store beside the JSON's (overrides x-sw.etcd.endpoints)")
      ->type_name("URL[,URL...]")
      ->delimiter(',')
      ->check([](const std::string& s) {
        return s.starts_with("http://") || s.starts_with("https://")
                   ? std::string()
                   : "not http://HOST:PORT or https://: " + s;
      })
      ->group("Fleet mode");
  app.add_option("--etcd-prefix", f.etcd_prefix,
                 "Fleet mode: the key prefix of this fleet's records (default /psp-gateway/; overrides "
                 "x-sw.etcd.prefix)")
      ->type_name("PREFIX")
      ->group("Fleet mode");
  app.add_option("-x,--max-tunnels", f.max_tunnels, "Maximum number of tunnels (default 256)")
      ->check(CLI::Range(1u, kMaxTunnelsLimit));
  auto* crypt =
      app.add_option("-o,--crypt-offset", crypt_offset,
                     "Crypt offset in 4-octet units (default: tunnel inner IPv4 5, IPv6 10; transport 0; "
                     "+2 with --cookie)")
          ->check(CLI::Range(0, static_cast<int>(psp::kPspMaxCryptOffset)));
  app.add_option("--psp-version", psp_version,
                 "PSP version: 0 = AES-GCM-128, 1 = AES-GCM-256, 2 = AES-GMAC-128, 3 = AES-GMAC-256 "
                 "(2/3: integrity only, the payload is not encrypted; default 1)")
      ->check(CLI::IsMember({"0", "1", "2", "3"}));
  // DOCA's sample registers this switch so that it is parsed wrongly (spec §6); here it takes no value.
  app.add_flag("-z,--static-tunnels", f.static_tunnels,
               "Create every configured tunnel at start-up (default: on first packet)");
  app.add_flag("-k,--debug-keys", f.debug_keys,
               "Log SPIs and keys in hex (the only way a key is ever printed; default off)");
  app.add_flag("--stat-print", f.stat_print,
               "Print pipe and tunnel counters every second when they changed (default off)");
  app.add_option("--perf-print", perf,
                 "Print timings: key-gen, insertion or all (comma-separated; default none)")
      ->check(CLI::IsMember({"key-gen", "insertion", "all", "key-gen,insertion", "insertion,key-gen"}));
  app.add_flag("--show-rss-rx-packets", f.show_rss_rx_packets,
               "Log every packet that reaches the slow path (default off)");
  app.add_option("--outer-ip-type", outer, "Outer (network) IP family: ipv4 or ipv6 (default ipv6)")
      ->check(CLI::IsMember({"ipv4", "ipv6"}));
  app.add_option("--inner-ip-type", inner, "Inner (workload) IP family: ipv4 or ipv6 (default ipv4)")
      ->check(CLI::IsMember({"ipv4", "ipv6"}));
  app.add_option("--mode", mode, "PSP encapsulation: tunnel or transport (default tunnel)")
      ->check(CLI::IsMember({"tunnel", "transport"}));
  app.add_flag("--cookie", f.cookie, "Carry the virtualization cookie in every packet (default off)");
  app.add_flag("-a,--disable-ingress-acl", f.disable_ingress_acl,
               "Accept any decrypted packet without the SPI/VIP check (testing only)");
  app.add_flag("--maintain-order", f.maintain_order,
               "Keep sampled and unsampled packets of a flow in order (always so here: samples are mirrored "
               "copies, originals never go through the CPU)");
  app.add_option(
         "--decap-dmac", decap,
         "Destination MAC of decapsulated packets toward the host, instead of the workload MAC learned "
         "from the host port")
      ->check(kMac);
  app.add_option("-n,--nexthop-dmac", nexthop, "Destination MAC of encapsulated packets toward the network")
      ->check(kMac);
  add_duration(app, "--key-rotation-interval", f.key_rotation_interval,
               "Rotate the master key this often, e.g. 90s, 10m, 24h (0: only on request; default 24h)");
  add_duration(app, "--tunnel-idle-timeout", f.tunnel_idle_timeout,
               "Close a tunnel after this long without a packet either way, e.g. 10m (default 0: never)");
  app.add_option("--workers", f.workers, "Packet worker threads (default 1)")
      ->check(CLI::Range(1u, kMaxWorkers));
  app.add_option("--tap-queue-len", f.tap_queue_len,
                 "Frames each TAP queue holds from the workload before the kernel drops them (the TAP's "
                 "txqueuelen; 0: the kernel's, 500). Default 4096: room for a worker a few milliseconds late "
                 "at a few hundred thousand frames a second")
      ->check(CLI::Range(0u, kMaxTapQueueLen));
  std::vector<std::string> hardware(std::size(kHardwareFlags));
  for (std::size_t i = 0; i < std::size(kHardwareFlags); ++i) {
    app.add_option(kHardwareFlags[i].names, hardware[i], "DOCA hardware flag: rejected here")
        ->group("Hardware-only (rejected)");
  }
  // Retired in 0.2: UDP GSO became the default. Named so a script that still passes it learns why.
  bool retired_udp_gso = false;
  app.add_flag("--udp-gso", retired_udp_gso, "Retired: UDP GSO is the default (see --udp-zero-checksum)")
      ->group("Retired (rejected)");

  group_options(app);
  app.footer(kHelpFooter);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    return Err{FlagsExit{0, app.help()}};
  } catch (const CLI::ParseError& e) {
    return Err{FlagsExit{2, std::string(e.what()) + "\nRun with --help for more information."}};
  }
  for (std::size_t i = 0; i < std::size(kHardwareFlags); ++i) {
    if (app.count(std::string(kHardwareFlags[i].name)) > 0) {
      return Err{FlagsExit{2, std::string(kHardwareFlags[i].name) +
                                  " has no meaning in the software gateway: " + kHardwareFlags[i].why}};
    }
  }
  if (retired_udp_gso) {
    return Err{FlagsExit{2,
                         "--udp-gso is retired: UDP GSO with valid UDP checksums is the default; "
                         "--udp-zero-checksum sends the spec's checksum 0 without GSO"}};
  }
  if (crypt->count() > 0) f.crypt_offset = static_cast<uint8_t>(crypt_offset);
  f.psp_version = static_cast<psp::PspVersion>(psp_version[0] - '0');  // IsMember: "0".."3"
  f.outer_ip_type = family_of(outer);
  f.inner_ip_type = family_of(inner);
  f.mode = mode == "transport" ? EncapMode::kTransport : EncapMode::kTunnel;
  parse_perf_print(perf, f.perf_print);
  f.log_level = parse_log_level(log_level).value_or(LogLevel::kInfo);
  if (!decap.empty()) f.decap_dmac = net::MacAddr::parse(decap);
  if (!nexthop.empty()) f.nexthop_dmac = net::MacAddr::parse(nexthop);
  return f;
}

}  // namespace pspgw::gateway
