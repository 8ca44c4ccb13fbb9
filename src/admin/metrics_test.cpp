// The Prometheus rendering of a StatsSnapshot (names, units, labels, escaping, the per-tunnel cap,
// validated by promtool) and MetricsServer over real HTTP (cpp-httplib's client).
#include "admin/metrics.hpp"

#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdlib>
#include <sstream>

#include "admin/metrics_server.hpp"
#include "admin/stats_json.hpp"
#include "admin/testing/promtool.hpp"

namespace pspgw::admin {
namespace {

StatsSnapshot sample(std::size_t tunnels) {
  StatsSnapshot s;
  s.uptime_s = 42;
  s.key_generation = 3;
  s.pipes.push_back({"EGR_ACL", 2, 100, 5, 0, {{"rule", 4}}, {}});
  s.pipes.push_back(
      {"SYND_STATS", 0, 7, 0, 0, {{"auth_failure", 7}}, {{"acl_miss", 0}, {"auth_failure", 7}}});
  s.ports.push_back({"network", 10, 1000, 20, 2000, 1});
  s.ports.push_back({"vm\"a\\b", 1, 2, 3, 4, 0});  // a name that needs escaping
  s.psp = {{"rx_packets", 10}, {"rx_bytes", 1000}, {"key_cache_hits", 9}};
  s.psp_drops = {{"auth_failure", 7}, {"bad_version", 0}};
  s.slow_path = {{"held", 1}, {"exchanges_ok", 1}};
  for (std::size_t i = 0; i < tunnels; ++i) {
    s.tunnels.push_back({"10.0.0.1", "10.1.0." + std::to_string(i), static_cast<uint32_t>(i), i, 2 * i});
  }
  s.peers.push_back({"127.0.0.1:3000", "connected", 1, 0, "127.0.0.2"});
  return s;
}

TEST(Metrics, NamesCarryThePrefixUnitsAndLabels) {
  const std::string text = render_metrics(sample(2));
  EXPECT_NE(text.find("psp_gateway_pipe_hits_total{pipe=\"EGR_ACL\"} 100\n"), std::string::npos) << text;
  EXPECT_NE(text.find("psp_gateway_pipe_drops_total{pipe=\"EGR_ACL\",reason=\"rule\"} 4\n"),
            std::string::npos);
  EXPECT_NE(text.find("psp_gateway_syndromes_total{reason=\"auth_failure\"} 7\n"), std::string::npos);
  EXPECT_NE(text.find("psp_gateway_port_rx_bytes_total{port=\"network\"} 1000\n"), std::string::npos);
  EXPECT_NE(text.find("psp_gateway_port_tx_packets_total{port=\"vm\\\"a\\\\b\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("psp_gateway_psp_rx_bytes_total 1000\n"), std::string::npos);
  EXPECT_NE(text.find("psp_gateway_psp_drops_total{reason=\"bad_version\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("psp_gateway_slow_path_exchanges_ok_total 1\n"), std::string::npos);
  EXPECT_NE(
      text.find("psp_gateway_tunnel_rx_packets_total{local_vip=\"10.0.0.1\",remote_vip=\"10.1.0.1\"} 2\n"),
      std::string::npos);
  EXPECT_NE(text.find("psp_gateway_peer_up{peer=\"127.0.0.1:3000\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("psp_gateway_uptime_seconds 42\n"), std::string::npos);
  // Every sample line belongs to the prefix.
  std::istringstream lines(text);
  for (std::string l; std::getline(lines, l);) {
    if (!l.empty() && l[0] != '#') {
      EXPECT_EQ(l.rfind("psp_gateway_", 0), 0u) << l;
    }
  }
}

TEST(Metrics, PerTunnelSeriesStopAtTheCapAndTheRestIsCounted) {
  const std::string text = render_metrics(sample(5), 3);
  std::size_t series = 0;
  for (std::size_t at = 0; (at = text.find("psp_gateway_tunnel_tx_packets_total{", at)) != std::string::npos;
       ++at)
    ++series;
  EXPECT_EQ(series, 3u);
  EXPECT_NE(text.find("psp_gateway_tunnels 5\n"), std::string::npos);
  EXPECT_NE(text.find("psp_gateway_tunnels_unexported 2\n"), std::string::npos);
}

TEST(Metrics, PromtoolAcceptsTheOutput) {
  const auto r = testing::promtool_check(render_metrics(sample(3)));
  if (!r.available) GTEST_SKIP() << "promtool not installed (scripts/deps.sh installs package prometheus)";
  EXPECT_EQ(r.status, 0) << r.output;
}

TEST(Metrics, FleetSeriesOnlyInFleetMode) {
  StatsSnapshot s = sample(1);
  EXPECT_EQ(render_metrics(s).find("fleet_"), std::string::npos);
  s.fleet = {true, true, true, 42, 3, 7, 1, 2, 0};
  const std::string text = render_metrics(s);
  EXPECT_NE(text.find("psp_gateway_fleet_store_up 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("psp_gateway_fleet_directory_revision 42\n"), std::string::npos);
  EXPECT_NE(text.find("psp_gateway_fleet_directory_hosts 3\n"), std::string::npos);
  EXPECT_NE(text.find("psp_gateway_fleet_directory_vips 7\n"), std::string::npos);
  EXPECT_NE(text.find("psp_gateway_fleet_reconnects_total 2\n"), std::string::npos);
  const auto r = testing::promtool_check(text);
  if (r.available) {
    EXPECT_EQ(r.status, 0) << r.output;
  }
}

TEST(Metrics, TheJsonRenderingKeepsTheAdminChannelsKeys) {
  const auto j = counters_json(sample(1));
  EXPECT_EQ(j["psp"]["drop_auth_failure"], 7u);
  EXPECT_FALSE(j["psp"].contains("drop_bad_version"));  // only reasons that occurred
  EXPECT_EQ(j["pipes"][0]["drops"], 4u);
  EXPECT_EQ(j["pipes"][0]["drop_reasons"]["rule"], 4u);
  EXPECT_EQ(j["pipes"][1]["syndromes"]["acl_miss"], 0u);
  EXPECT_EQ(j["tunnels"][0]["tx_spi"], 0u);
  EXPECT_EQ(j["slow_path"]["held"], 1u);
  EXPECT_EQ(peers_json(sample(0))["peers"][0]["pip"], "127.0.0.2");
}

TEST(MetricsServer, ServesMetricsOverHttpAndNothingElse) {
  int scrapes = 0;
  MetricsServerOptions o;
  o.snapshot = [&] {
    ++scrapes;
    return sample(1);
  };
  MetricsServer server(o);
  ASSERT_TRUE(server.start().ok());
  ASSERT_NE(server.port(), 0);
  httplib::Client client("127.0.0.1", server.port());
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(res->body.find("psp_gateway_uptime_seconds 42"), std::string::npos);
  EXPECT_EQ(scrapes, 1);
  auto other = client.Get("/");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 404);
  server.stop();
}

TEST(MetricsServer, AnAddressInUseIsAnError) {
  MetricsServerOptions o;
  o.snapshot = [] { return StatsSnapshot{}; };
  MetricsServer first(o);
  ASSERT_TRUE(first.start().ok());
  o.port = first.port();
  MetricsServer second(o);
  EXPECT_FALSE(second.start().ok());
}

}  // namespace
}  // namespace pspgw::admin
