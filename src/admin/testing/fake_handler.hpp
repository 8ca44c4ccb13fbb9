// FakeHandler: an in-memory AdminHandler answering every documented command with canned results of the
// documented shapes (tools/pspctl/README.md), for the server's and pspctl's tests. Test-only extras:
// "sleep" {ms} blocks the admin thread, "throw" throws, "fail" returns kFailed; fail_all fails everything.
#pragma once

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "admin/commands.hpp"
#include "admin/handler.hpp"

namespace pspgw::admin::testing {

inline nlohmann::json fake_status() {
  return {{"instance", "psp0"},
          {"version", "0.1.0"},
          {"pid", 4242},
          {"uptime_s", 3725},
          {"mode", "tunnel"},
          {"psp_version", "aes-gcm-256"},
          {"local_pip", "192.0.2.1"},
          {"grpc_address", "0.0.0.0:3000"},
          {"workers", 2},
          {"tunnels", 2},
          {"peers", 1},
          {"key_generation", 3}};
}

inline nlohmann::json fake_tunnels() {
  using nlohmann::json;
  return {{"tunnels", json::array({
                          {{"local_vip", "10.0.0.1"},
                           {"remote_vip", "10.0.1.1"},
                           {"peer", "192.0.2.2:3000"},
                           {"state", "connected"},
                           {"remote_pip", "192.0.2.2"},
                           {"tx_spi", 0x80000001},
                           {"rx_spis", json::array({0x00000002, 0x80000003})},
                           {"tx_packets", 1234567},
                           {"tx_bytes", 1700000000},
                           {"rx_packets", 1200000},
                           {"rx_bytes", 1650000000}},
                          {{"local_vip", "fd00::1"},
                           {"remote_vip", "fd00:1::1"},
                           {"peer", "192.0.2.2:3000"},
                           {"state", "in-flight"},
                           {"remote_pip", nullptr},
                           {"tx_spi", nullptr},
                           {"rx_spis", json::array({0x00000004})},
                           {"tx_packets", 0},
                           {"tx_bytes", 0},
                           {"rx_packets", 0},
                           {"rx_bytes", 0}},
                      })}};
}

inline nlohmann::json fake_counters() {
  using nlohmann::json;
  return {
      {"pipes", json::array({
                    {{"name", "EGR_ACL"}, {"entries", 2}, {"hits", 1234567}, {"misses", 3}, {"drops", 0}},
                    {{"name", "PSP_DECRYPT"}, {"entries", 1}, {"hits", 1200010}, {"misses", 0}, {"drops", 0}},
                    {{"name", "SYND_STATS"}, {"entries", 3}, {"hits", 10}, {"misses", 0}, {"drops", 10}},
                })},
      {"ports", json::array({
                    {{"name", "psp0"},
                     {"rx_packets", 1234570},
                     {"rx_bytes", 1600000000},
                     {"tx_packets", 1200000},
                     {"tx_bytes", 1600000000},
                     {"drops", 0}},
                    {{"name", "udp:1000"},
                     {"rx_packets", 1200010},
                     {"rx_bytes", 1700000000},
                     {"tx_packets", 1234567},
                     {"tx_bytes", 1750000000},
                     {"drops", 2}},
                })},
      {"psp",
       {{"tx_packets", 1234567}, {"rx_packets", 1200000}, {"auth_failures", 7}, {"framing_errors", 3}}},
      {"tunnels", fake_tunnels()["tunnels"]},
  };
}

inline nlohmann::json fake_peers() {
  using nlohmann::json;
  return {{"peers", json::array({
                        {{"name", "192.0.2.2:3000"},
                         {"state", "connected"},
                         {"tunnels", 2},
                         {"pending", 1},
                         {"rpcs_ok", 5},
                         {"rpcs_refused", 2},
                         {"rpcs_failed", 1},
                         {"last_error", "deadline exceeded"}},
                        {{"name", "192.0.2.3:3000"},
                         {"state", "backoff"},
                         {"tunnels", 0},
                         {"pending", 0},
                         {"rpcs_ok", 0},
                         {"rpcs_refused", 0},
                         {"rpcs_failed", 4},
                         {"last_error", "connection refused"}},
                    })}};
}

inline constexpr std::string_view kFakeMermaid =
    "flowchart LR\n  ROOT --> EGR_ACL\n  EGR_ACL --> PSP_ENCRYPT\n";

class FakeHandler final : public AdminHandler {
 public:
  AdminResult handle(std::string_view cmd, const nlohmann::json& args) override {
    calls++;
    if (fail_all) return admin_fail(AdminErrc::kFailed, "the gateway is shutting down");
    if (cmd == cmd::kStatus) return fake_status();
    if (cmd == cmd::kTunnels) return fake_tunnels();
    if (cmd == cmd::kCounters) return fake_counters();
    if (cmd == cmd::kPeers) return fake_peers();
    if (cmd == cmd::kPipeline) return pipeline(args);
    if (cmd == cmd::kRotateKeys) {
      const bool issue = args.value("issue_new_keys", false);  // mistyped -> json exception -> kBadArgs
      return nlohmann::json{{"generation", ++generation},
                            {"closed_ingress", 1},
                            {"rekey_due", 2},
                            {"lost", 0},
                            {"issued_new_keys", issue}};
    }
    if (cmd == cmd::kSfc) return nlohmann::json{{"ok", true}, {"argv", args.at("argv")}};  // what pspctl sent
    if (cmd == cmd::kReload) {  // reload_ok: as a valid config; else refused as an invalid one
      if (!reload_ok)
        return admin_fail(AdminErrc::kFailed,
                          "reload refused, the running config stays: c.json: bogus: unknown key");
      return nlohmann::json{{"reloaded", true}, {"summary", "reloaded c.json: peers +1 -0 ~0"}};
    }
    if (cmd == cmd::kSample) return args;  // echoes what pspctl sent
    if (cmd == "sleep") {
      std::this_thread::sleep_for(std::chrono::milliseconds(args.at("ms").get<int>()));
      return nlohmann::json("slept");
    }
    if (cmd == "fail") return admin_fail(AdminErrc::kFailed, "the data plane refused the change");
    if (cmd == "throw") throw std::runtime_error("boom");
    return admin_fail(AdminErrc::kUnknownCommand, "unknown command '" + std::string(cmd) + "'");
  }

  std::atomic<int> calls{0};
  std::atomic<bool> fail_all{false};  // every command answers kFailed
  std::atomic<bool> reload_ok{true};
  std::atomic<uint64_t> generation{3};

 private:
  static AdminResult pipeline(const nlohmann::json& args) {
    const std::string format = args.value("format", "mermaid");
    if (format == "mermaid") return nlohmann::json(kFakeMermaid);
    if (format == "json") {
      return nlohmann::json{{"pipes", nlohmann::json::array({{{"name", "ROOT"}}, {{"name", "EGR_ACL"}}})}};
    }
    return admin_fail(AdminErrc::kBadArgs, "format must be \"mermaid\" or \"json\", not \"" + format + "\"");
  }
};

}  // namespace pspgw::admin::testing
