#include "sfc/health.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace pspgw::sfc {
namespace {

using std::chrono::milliseconds;
using Clock = HealthMonitor::Clock;

class Health : public ::testing::Test {
 protected:
  Health() : h_({milliseconds(100), 2, milliseconds(50)}) {
    h_.sync({{"fw1", {PortId{2}, PortId{3}}}, {"fw2", {PortId{4}, PortId{4}}}});
  }
  // One round at t0 + ms: the probes sent, and those of `back` returned out of their egress ports.
  void round(int ms, const std::vector<std::string>& back) {
    for (const auto& p : h_.tick(t0_ + milliseconds(ms))) {
      const bool fw1 = p.port == PortId{2};
      if (std::find(back.begin(), back.end(), fw1 ? "fw1" : "fw2") == back.end()) continue;
      EXPECT_TRUE(h_.received(p.frame, fw1 ? PortId{3} : PortId{4}));
    }
  }
  HealthMonitor h_;
  Clock::time_point t0_ = Clock::now();
};

TEST_F(Health, AnInstanceIsOutAfterItsMissesAndBackWithTheFirstProbe) {
  round(0, {"fw1", "fw2"});
  EXPECT_TRUE(h_.live("fw1"));
  EXPECT_TRUE(h_.take_changes().empty());
  round(100, {"fw2"});  // fw1 misses: still in (1 of 2)
  round(160, {});       // the timeout passes: miss counted
  EXPECT_TRUE(h_.live("fw1"));
  round(200, {"fw2"});
  round(260, {});  // second miss: out, within interval x misses + timeout of the first lost probe
  EXPECT_FALSE(h_.live("fw1"));
  EXPECT_TRUE(h_.live("fw2"));  // one-armed: the probe comes back out of the same port
  EXPECT_EQ(h_.take_changes(), (std::vector<std::pair<std::string, bool>>{{"fw1", false}}));
  round(300, {"fw1", "fw2"});
  EXPECT_TRUE(h_.live("fw1"));
  EXPECT_EQ(h_.take_changes(), (std::vector<std::pair<std::string, bool>>{{"fw1", true}}));
  EXPECT_EQ(h_.pairs().at("fw1").downs, 1u);
}

TEST_F(Health, AProbeBackOutOfTheWrongPortOrLateProvesNothing) {
  auto probes = h_.tick(t0_);
  ASSERT_EQ(probes.size(), 2u);
  const auto& fw1 = probes[0].port == PortId{2} ? probes[0] : probes[1];
  EXPECT_FALSE(h_.received(fw1.frame, PortId{2}));  // reflected back into its ingress port
  std::vector<uint8_t> bad = fw1.frame;
  bad[14] ^= 1;  // not our magic
  EXPECT_FALSE(h_.received(bad, PortId{3}));
  h_.tick(t0_ + milliseconds(100));                 // the next probe replaces it
  EXPECT_FALSE(h_.received(fw1.frame, PortId{3}));  // the old sequence number
}

TEST_F(Health, SyncKeepsStateOfKeptPairsAndDropsRemovedOnes) {
  round(0, {});
  round(60, {});
  h_.sync({{"fw1", {PortId{2}, PortId{3}}}});
  EXPECT_EQ(h_.pairs().size(), 1u);
  EXPECT_EQ(h_.pairs().at("fw1").missed, 1u);
}

}  // namespace
}  // namespace pspgw::sfc
