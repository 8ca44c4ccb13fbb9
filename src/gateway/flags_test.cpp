#include "gateway/flags.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

namespace pspgw::gateway {
namespace {

class Flags : public ::testing::Test {
 protected:
  void SetUp() override { std::ofstream(config_) << "{}"; }
  void TearDown() override { std::remove(config_.c_str()); }

  Result<GatewayFlags, FlagsExit> parse(std::vector<std::string> args) {
    args.insert(args.begin(), "psp-gateway");
    std::vector<const char*> argv;
    argv.reserve(args.size());
    for (const std::string& a : args) argv.push_back(a.c_str());
    return parse_flags(static_cast<int>(argv.size()), argv.data());
  }
  GatewayFlags ok(std::vector<std::string> args) {
    auto r = parse(std::move(args));
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().text);
    return r.ok() ? std::move(r.value()) : GatewayFlags{};
  }
  FlagsExit fails(std::vector<std::string> args) {
    auto r = parse(std::move(args));
    EXPECT_FALSE(r.ok());
    return r.ok() ? FlagsExit{} : r.error();
  }

  // One file per test process: ctest runs the cases of this binary in parallel processes.
  std::string config_ = ::testing::TempDir() + "/pspgw_flags_test." + std::to_string(::getpid()) + ".json";
};

TEST_F(Flags, Defaults) {
  GatewayFlags f = ok({"-c", config_});
  EXPECT_EQ(f.config_path, config_);
  EXPECT_EQ(f.vf_name, "psp0");
  EXPECT_EQ(f.max_tunnels, 256u);
  EXPECT_EQ(f.psp_version, psp::PspVersion::kAesGcm256);
  EXPECT_EQ(f.outer_ip_type, net::IpFamily::kV6);
  EXPECT_EQ(f.inner_ip_type, net::IpFamily::kV4);
  EXPECT_EQ(f.mode, EncapMode::kTunnel);
  EXPECT_EQ(f.sample_rate, 0u);
  EXPECT_EQ(f.workers, 1u);
  EXPECT_EQ(f.tap_queue_len, kDefaultTapQueueLen);
  EXPECT_FALSE(f.static_tunnels || f.debug_keys || f.cookie || f.disable_ingress_acl);
  EXPECT_FALSE(f.crypt_offset.has_value());
}

TEST_F(Flags, CryptOffsetDefaultFollowsInnerTypeAndCookie) {
  EXPECT_EQ(ok({"-c", config_}).effective_crypt_offset(), 5);
  EXPECT_EQ(ok({"-c", config_, "--cookie"}).effective_crypt_offset(), 7);
  EXPECT_EQ(ok({"-c", config_, "--inner-ip-type", "ipv6"}).effective_crypt_offset(), 10);
  EXPECT_EQ(ok({"-c", config_, "--inner-ip-type", "ipv6", "--cookie"}).effective_crypt_offset(), 12);
  EXPECT_EQ(ok({"-c", config_, "-o", "0", "--cookie"}).effective_crypt_offset(), 0);
  EXPECT_EQ(fails({"-c", config_, "-o", "64"}).code, 2);
}

// Transport mode: no IP header in the PSP payload, so the default leaves only the VC (if any) clear.
TEST_F(Flags, CryptOffsetDefaultInTransportModeIsZeroPlusCookie) {
  EXPECT_EQ(ok({"-c", config_, "--mode", "transport"}).effective_crypt_offset(), 0);
  EXPECT_EQ(ok({"-c", config_, "--mode", "transport", "--cookie"}).effective_crypt_offset(), 2);
  EXPECT_EQ(ok({"-c", config_, "--mode", "transport", "--inner-ip-type", "ipv6", "--cookie"})
                .effective_crypt_offset(),
            2);
  EXPECT_EQ(ok({"-c", config_, "--mode", "transport", "-o", "5"}).effective_crypt_offset(), 5);
  EXPECT_EQ(ok({"-c", config_, "--mode", "transport", "-o", "0", "--cookie"}).effective_crypt_offset(), 0);
}

TEST_F(Flags, EveryFlag) {
  GatewayFlags f = ok({"-c",
                       config_,
                       "--sample-rate",
                       "3",
                       "-x",
                       "1000",
                       "--psp-version",
                       "0",
                       "-z",
                       "-k",
                       "--stat-print",
                       "--perf-print",
                       "all",
                       "--show-rss-rx-packets",
                       "--outer-ip-type",
                       "ipv4",
                       "--inner-ip-type",
                       "ipv6",
                       "--mode",
                       "transport",
                       "--cookie",
                       "-a",
                       "--maintain-order",
                       "-d",
                       "tap7",
                       "--decap-dmac",
                       "02:00:00:00:00:01",
                       "-n",
                       "02:00:00:00:00:02",
                       "--workers",
                       "4",
                       "--tap-queue-len",
                       "0",
                       "--sample-pcap",
                       "/tmp/s.pcap"});
  EXPECT_EQ(f.sample_rate, 3u);
  EXPECT_EQ(f.max_tunnels, 1000u);
  EXPECT_EQ(f.psp_version, psp::PspVersion::kAesGcm128);
  EXPECT_TRUE(f.static_tunnels && f.debug_keys && f.stat_print && f.show_rss_rx_packets && f.cookie &&
              f.disable_ingress_acl && f.maintain_order);
  EXPECT_TRUE(f.perf_print.key_gen && f.perf_print.insertion);
  EXPECT_EQ(f.outer_ip_type, net::IpFamily::kV4);
  EXPECT_EQ(f.inner_ip_type, net::IpFamily::kV6);
  EXPECT_EQ(f.mode, EncapMode::kTransport);
  EXPECT_EQ(f.vf_name, "tap7");
  EXPECT_EQ(f.decap_dmac->to_string(), "02:00:00:00:00:01");
  EXPECT_EQ(f.nexthop_dmac->to_string(), "02:00:00:00:00:02");
  EXPECT_EQ(f.workers, 4u);
  EXPECT_EQ(f.tap_queue_len, 0u);
  EXPECT_EQ(f.sample_pcap, "/tmp/s.pcap");
  GatewayFlags g = ok({"--perf-print", "insertion", "-c", config_});
  EXPECT_TRUE(g.perf_print.insertion);
  EXPECT_FALSE(g.perf_print.key_gen);
}

// --psp-version takes DOCA's spelling and values, plus the GMAC versions 2/3 (integrity only).
TEST_F(Flags, PspVersionAcceptsZeroToThree) {
  EXPECT_EQ(ok({"--psp-version", "2", "-c", config_}).psp_version, psp::PspVersion::kAesGmac128);
  EXPECT_EQ(ok({"--psp-version", "3", "-c", config_}).psp_version, psp::PspVersion::kAesGmac256);
  EXPECT_EQ(ok({"--psp-version", "0", "-c", config_}).psp_version, psp::PspVersion::kAesGcm128);
  EXPECT_EQ(fails({"--psp-version", "4", "-c", config_}).code, 2);
  EXPECT_EQ(fails({"--psp-version", "aes-gmac-128", "-c", config_}).code, 2);
}

// DOCA parses --static-tunnels wrongly (spec §6). Here it is a switch: it never eats the next argument.
TEST_F(Flags, StaticTunnelsTakesNoValue) {
  GatewayFlags f = ok({"-z", "-c", config_});
  EXPECT_TRUE(f.static_tunnels);
  EXPECT_EQ(f.config_path, config_);
  EXPECT_TRUE(ok({"--static-tunnels", "-c", config_}).static_tunnels);
  EXPECT_EQ(fails({"-c", config_, "--static-tunnels", "1"}).code, 2);  // a stray value is an error
}

TEST_F(Flags, HelpListsEveryFlag) {
  FlagsExit help = fails({"--help"});
  EXPECT_EQ(help.code, 0);
  for (const char* name : {"--config",
                           "--vf-name",
                           "--sample-rate",
                           "--sample-pcap",
                           "--max-tunnels",
                           "--crypt-offset",
                           "--psp-version",
                           "--static-tunnels",
                           "--debug-keys",
                           "--stat-print",
                           "--perf-print",
                           "--show-rss-rx-packets",
                           "--outer-ip-type",
                           "--inner-ip-type",
                           "--mode",
                           "--cookie",
                           "--disable-ingress-acl",
                           "--maintain-order",
                           "--decap-dmac",
                           "--nexthop-dmac",
                           "--workers",
                           "--admin-socket",
                           "--udp-zero-checksum",
                           "--dump-pipeline",
                           "--grpc-tls-cert",
                           "--grpc-tls-key",
                           "--grpc-tls-ca",
                           "--grpc-insecure",
                           "--key-rotation-interval",
                           "--tunnel-idle-timeout",
                           "--log-level",
                           "--metrics-address",
                           "--metrics-max-tunnels",
                           "--device",
                           "--repr",
                           "--core-mask"}) {
    EXPECT_NE(help.text.find(name), std::string::npos) << name;
  }
}

TEST_F(Flags, HelpReadsLikeAManPage) {
  const std::string help = fails({"--help"}).text;
  for (const char* section : {"Config and ports:", "PSP and tunnels:", "Diagnostics:", "Operation:",
                              "Key exchange security:", "\nEXAMPLES\n", "\nFILES\n", "\nSIGNALS\n"}) {
    EXPECT_NE(help.find(section), std::string::npos) << section << "\n" << help;
  }
}

TEST_F(Flags, OperationFlags) {
  GatewayFlags f = ok({"-c", config_});
  EXPECT_EQ(f.log_level, LogLevel::kInfo);
  EXPECT_EQ(f.metrics_address, "");
  EXPECT_EQ(f.metrics_max_tunnels, 1000u);
  f = ok({"-c", config_, "--log-level", "debug", "--metrics-address", "[::1]:9469", "--metrics-max-tunnels",
          "5"});
  EXPECT_EQ(f.log_level, LogLevel::kDebug);
  EXPECT_EQ(f.metrics_address, "[::1]:9469");
  EXPECT_EQ(f.metrics_max_tunnels, 5u);
  EXPECT_EQ(ok({"-c", config_, "--metrics-address", "127.0.0.1:0"}).metrics_address, "127.0.0.1:0");
  EXPECT_EQ(fails({"-c", config_, "--log-level", "verbose"}).code, 2);
  EXPECT_EQ(fails({"-c", config_, "--metrics-address", "127.0.0.1"}).code, 2);  // the port is required
  EXPECT_EQ(fails({"-c", config_, "--metrics-address", "localhost:9469"}).code, 2);
}

TEST_F(Flags, SoftwareGatewayFlags) {
  GatewayFlags f =
      ok({"-c", config_, "--udp-zero-checksum", "--dump-pipeline", "json", "--admin-socket", "/tmp/x.sock"});
  EXPECT_TRUE(f.udp_zero_checksum);
  EXPECT_EQ(f.dump_pipeline, "json");
  EXPECT_EQ(f.admin_socket, "/tmp/x.sock");
  EXPECT_FALSE(ok({"-c", config_}).udp_zero_checksum);            // valid checksums and UDP GSO unless asked
  const FlagsExit retired = fails({"-c", config_, "--udp-gso"});  // GSO is the default now
  EXPECT_EQ(retired.code, 2);
  EXPECT_NE(retired.text.find("--udp-zero-checksum"), std::string::npos) << retired.text;
  EXPECT_EQ(fails({"-c", config_, "--dump-pipeline", "dot"}).code, 2);
}

TEST_F(Flags, GrpcSecurityFlags) {
  GatewayFlags f =
      ok({"-c", config_, "--grpc-tls-cert", "a.crt", "--grpc-tls-key", "a.key", "--grpc-tls-ca", "ca.crt"});
  EXPECT_EQ(f.grpc_tls_cert, "a.crt");
  EXPECT_EQ(f.grpc_tls_key, "a.key");
  EXPECT_EQ(f.grpc_tls_ca, "ca.crt");
  EXPECT_FALSE(f.grpc_insecure);
  EXPECT_TRUE(ok({"-c", config_, "--grpc-insecure"}).grpc_insecure);
  EXPECT_EQ(fails({"-c", config_, "--grpc-tls-cert"}).code, 2);  // a file name is required
}

TEST_F(Flags, DurationsOfRotationAndIdleTimeout) {
  GatewayFlags d = ok({"-c", config_});
  EXPECT_EQ(d.key_rotation_interval, std::chrono::hours(24));
  EXPECT_EQ(d.tunnel_idle_timeout, std::chrono::milliseconds(0));  // off
  GatewayFlags f = ok({"-c", config_, "--key-rotation-interval", "90s", "--tunnel-idle-timeout", "10m"});
  EXPECT_EQ(f.key_rotation_interval, std::chrono::seconds(90));
  EXPECT_EQ(f.tunnel_idle_timeout, std::chrono::minutes(10));
  EXPECT_EQ(ok({"-c", config_, "--key-rotation-interval", "0"}).key_rotation_interval,
            std::chrono::milliseconds(0));
  FlagsExit e = fails({"-c", config_, "--key-rotation-interval", "24"});
  EXPECT_EQ(e.code, 2);
  EXPECT_NE(e.text.find("needs a unit"), std::string::npos) << e.text;
  EXPECT_EQ(fails({"-c", config_, "--tunnel-idle-timeout", "soon"}).code, 2);
}

TEST_F(Flags, HardwareOnlyFlagsAreRejectedWithAReason) {
  FlagsExit e = fails({"-c", config_, "-s", "03:00.0"});
  EXPECT_EQ(e.code, 2);
  EXPECT_EQ(e.text,
            "--device has no meaning in the software gateway: there is no NIC to select: PSP runs over the "
            "kernel's UDP sockets");
  EXPECT_EQ(fails({"-c", config_, "--repr", "pf0vf0"})
                .text.rfind("--repr has no meaning in the software gateway", 0),
            0u);
  EXPECT_EQ(
      fails({"-c", config_, "-m", "0x3"}).text.rfind("--core-mask has no meaning in the software gateway", 0),
      0u);
}

// Issue 7 §6: neither flag is parsed and ignored. --decap-dmac reaches the decap action
// (PspContext::decap_dmac, tested in gateway_parts_test DecapDmacOverridesTheLearnedMac); --maintain-order is
// accepted because a flow's order is always kept here (samples are mirrored copies), which the help and the
// start-up line say, and gateway_parts_test SamplingKeepsTheFlowInOrder checks.
TEST_F(Flags, MaintainOrderAndDecapDmacSayWhatTheyDo) {
  GatewayFlags f = ok({"-c", config_, "--decap-dmac", "0a:0b:0c:0d:0e:0f", "--maintain-order"});
  ASSERT_TRUE(f.decap_dmac.has_value());
  EXPECT_EQ(f.decap_dmac->to_string(), "0A:0B:0C:0D:0E:0F");
  EXPECT_TRUE(f.maintain_order);
  EXPECT_FALSE(ok({"-c", config_}).decap_dmac.has_value());  // default: the learned workload MAC
  const std::string help = fails({"--help"}).text;
  EXPECT_NE(help.find("instead of the workload MAC learned"), std::string::npos) << help;
  EXPECT_NE(help.find("samples are mirrored"), std::string::npos) << help;
  EXPECT_NE(std::string(kMaintainOrderNote).find("mirrored copies"), std::string::npos);
  for (const char* bad : {"02:00:00:00:00", "02:00:00:00:00:01x"}) {
    EXPECT_EQ(fails({"-c", config_, "--decap-dmac", bad}).code, 2) << bad;
  }
}

TEST_F(Flags, BadValuesAreUsageErrors) {
  EXPECT_EQ(fails({}).code, 2);  // -c is required
  EXPECT_NE(fails({}).text.find("--config"), std::string::npos);
  EXPECT_EQ(fails({"-c", "/nonexistent/x.json"}).code, 2);
  for (std::vector<std::string> bad : {std::vector<std::string>{"--psp-version", "4"},
                                       {"--outer-ip-type", "ipv5"},
                                       {"--mode", "tunnels"},
                                       {"--decap-dmac", "zz"},
                                       {"--sample-rate", "17"},
                                       {"--workers", "0"},
                                       {"--tap-queue-len", "65537"},
                                       {"--tap-queue-len", "-1"},
                                       {"--perf-print", "everything"},
                                       {"-d", "a-very-long-interface"}}) {
    bad.insert(bad.begin(), {"-c", config_});
    EXPECT_EQ(fails(bad).code, 2) << bad[2];
  }
}

TEST_F(Flags, FleetMode) {
  GatewayFlags d = ok({"-c", config_});
  EXPECT_TRUE(d.etcd_endpoints.empty());
  EXPECT_TRUE(d.etcd_prefix.empty());
  GatewayFlags f = ok({"-c", config_, "--etcd-endpoints", "http://10.0.0.1:2379,https://10.0.0.2:2379",
                       "--etcd-prefix", "/f/"});
  EXPECT_EQ(f.etcd_endpoints, (std::vector<std::string>{"http://10.0.0.1:2379", "https://10.0.0.2:2379"}));
  EXPECT_EQ(f.etcd_prefix, "/f/");
  EXPECT_EQ(fails({"-c", config_, "--etcd-endpoints", "10.0.0.1:2379"}).code, 2);  // a URL is required
}

}  // namespace
}  // namespace pspgw::gateway
