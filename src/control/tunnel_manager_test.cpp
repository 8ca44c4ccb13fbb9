#include "control/tunnel_manager.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "base/hex.hpp"
#include "control/fake_data_plane.hpp"
#include "control/test_util.hpp"

namespace pspgw::control {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace)
using std::chrono::milliseconds;

// One gateway: a fake data plane, a manual clock and a manager, with the log captured.
struct Gateway {
  FakeDataPlane dp;
  ManualClock clock;
  std::vector<std::string> log;
  int rekey_wakeups = 0;
  std::unique_ptr<TunnelManager> tm;

  Gateway(std::string_view pip, std::string_view mac_text, std::vector<PeerPolicy> peers,
          const std::function<void(TunnelManagerOptions&)>& tweak = {}) {
    TunnelManagerOptions o;
    o.local = LocalIdentity{mac(mac_text), ip(pip), 0x1122334455667788ULL};
    o.now = clock.fn();
    o.log = [this](std::string_view line) { log.emplace_back(line); };
    o.on_rekey_due = [this] { ++rekey_wakeups; };
    if (tweak) tweak(o);
    tm = std::make_unique<TunnelManager>(psp::KeyRing::with_random_key(), std::move(peers), dp, std::move(o));
  }
};

const VipPair kA1toB1 = pair("10.0.0.1", "10.0.1.1");  // A's view
const VipPair kA1toB2 = pair("10.0.0.1", "10.0.1.2");
const VipPair kB1toA1 = pair("10.0.1.1", "10.0.0.1");  // B's view
const VipPair kB2toA1 = pair("10.0.1.2", "10.0.0.1");

std::unique_ptr<Gateway> make_a(const std::function<void(TunnelManagerOptions&)>& tweak = {}) {
  return std::make_unique<Gateway>("192.0.2.1", "02:00:00:00:00:0A",
                                   std::vector<PeerPolicy>{{"B", {kA1toB1, kA1toB2}}}, tweak);
}
std::unique_ptr<Gateway> make_b(const std::function<void(TunnelManagerOptions&)>& tweak = {}) {
  return std::make_unique<Gateway>("192.0.2.2", "02:00:00:00:00:0B",
                                   std::vector<PeerPolicy>{{"A", {kB1toA1, kB2toA1}}}, tweak);
}

// A's request for one tunnel to B1, as the gRPC adapter would hand it to B.
MultiTunnelRequest request_from_a(std::vector<uint32_t> versions, std::string_view src = "10.0.0.1",
                                  std::string_view dst = "10.0.1.1") {
  MultiTunnelRequest r;
  r.request_id = 42;
  r.versions_accepted = std::move(versions);
  r.tunnels.push_back(TunnelRequest{ip(src), ip(dst), std::nullopt});
  return r;
}

TunnelParams params_of_a(uint32_t spi, uint8_t fill) {
  psp::DerivedKey key{psp::PspVersion::kAesGcm256, {}};
  std::fill(key.bytes.mutable_bytes().begin(), key.bytes.mutable_bytes().end(), fill);
  return TunnelParams{mac("02:00:00:00:00:0A"), ip("192.0.2.1"), std::move(key), spi, 0x1122334455667788ULL};
}

// ---- server side ----

TEST(TunnelManagerServer, PicksFirstSupportedVersion) {
  auto b = make_b();
  auto r = b->tm->handle_tunnel_request(from_peer(), request_from_a({3, 1, 0}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->tunnels.at(0).version(), psp::PspVersion::kAesGcm256);
  EXPECT_EQ(r->tunnels.at(0).key.size(), 32u);

  auto r0 = b->tm->handle_tunnel_request(from_peer(), request_from_a({2, 0, 1}, "10.0.0.1", "10.0.1.2"));
  ASSERT_TRUE(r0.ok()) << r0.error().message;
  EXPECT_EQ(r0->tunnels.at(0).version(), psp::PspVersion::kAesGcm128);
  EXPECT_EQ(r0->tunnels.at(0).key.size(), 16u);
}

// Integrity-only versions (2/3) only where this gateway runs that version itself: a requester cannot turn
// an encrypting gateway's tunnels into clear-text ones.
TEST(TunnelManagerServer, GmacVersionsOnlyWhereConfigured) {
  auto gcm = make_b();
  auto r = gcm->tm->handle_tunnel_request(from_peer(), request_from_a({3, 2}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "none of the accepted PSP versions [3,2] is supported (0, 1)");
  auto gmac = make_b([](TunnelManagerOptions& o) { o.version = psp::PspVersion::kAesGmac256; });
  auto ok = gmac->tm->handle_tunnel_request(from_peer(), request_from_a({3, 1}));
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->tunnels.at(0).version(), psp::PspVersion::kAesGmac256);
  EXPECT_EQ(ok->tunnels.at(0).key.size(), 32u);
  auto other = gmac->tm->handle_tunnel_request(from_peer(), request_from_a({2}, "10.0.0.1", "10.0.1.2"));
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().message, "none of the accepted PSP versions [2] is supported (0, 1, 3)");
}

TEST(TunnelManagerServer, NoSupportedVersionIsInvalidArgument) {
  auto b = make_b();
  auto r = b->tm->handle_tunnel_request(from_peer(), request_from_a({2, 3}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ControlError::kInvalidArgument);
  EXPECT_EQ(r.error().message, "none of the accepted PSP versions [2,3] is supported (0, 1)");
  auto empty = b->tm->handle_tunnel_request(from_peer(), request_from_a({}));
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, ControlError::kInvalidArgument);
  EXPECT_EQ(b->dp.ingress_count(), 0u);
}

TEST(TunnelManagerServer, AllocatesSpiDerivesKeyAndOpensIngress) {
  auto b = make_b();
  auto r = b->tm->handle_tunnel_request(from_peer(), request_from_a({1}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->request_id, 42u);
  const TunnelParams& p = r->tunnels.at(0);
  EXPECT_NE(p.spi & 0x7fffffffu, 0u);
  EXPECT_EQ(p.outer_ip, ip("192.0.2.2"));
  EXPECT_EQ(p.mac, mac("02:00:00:00:00:0B"));
  EXPECT_EQ(p.virt_cookie, 0x1122334455667788ULL);
  // The key is the one the data plane will derive from the published master keys (stateless decrypt).
  auto derived = b->dp.master_keys()->derive(p.spi, psp::PspVersion::kAesGcm256);
  ASSERT_TRUE(derived.ok());
  EXPECT_EQ(bytes_of(*derived), bytes_of(p.key));
  // Ingress ACL: (SPI, src = requester VIP, dst = our VIP). No egress without reverse params.
  EXPECT_TRUE(b->dp.ingress_open(p.spi, kB1toA1));
  EXPECT_EQ(b->dp.ingress_count(), 1u);
  EXPECT_EQ(b->dp.egress_count(), 0u);
  EXPECT_EQ(b->tm->state(kB1toA1), PairState::kIdle);
  // A second tunnel gets a different SPI.
  auto r2 = b->tm->handle_tunnel_request(from_peer(), request_from_a({1}, "10.0.0.1", "10.0.1.2"));
  ASSERT_TRUE(r2.ok());
  EXPECT_NE(r2->tunnels.at(0).spi, p.spi);
}

TEST(TunnelManagerServer, ReverseParamsInstallEgress) {
  auto b = make_b();
  auto req = request_from_a({1});
  req.tunnels[0].reverse_params = params_of_a(0x17, 0xab);
  auto r = b->tm->handle_tunnel_request(from_peer(), req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto sa = b->dp.egress(kB1toA1);
  ASSERT_TRUE(sa.has_value());
  EXPECT_EQ(sa->spi, 0x17u);
  EXPECT_EQ(sa->outer_ip, ip("192.0.2.1"));
  EXPECT_EQ(sa->mac, mac("02:00:00:00:00:0A"));
  EXPECT_EQ(sa->version, psp::PspVersion::kAesGcm256);
  EXPECT_EQ(sa->key, std::vector<uint8_t>(32, 0xab));
  EXPECT_EQ(sa->virt_cookie, 0x1122334455667788ULL);
  EXPECT_EQ(b->tm->state(kB1toA1), PairState::kConnected);
}

TEST(TunnelManagerServer, RejectsPairsTheConfigDoesNotAllow) {
  auto b = make_b();
  auto stranger = b->tm->handle_tunnel_request(from_peer(), request_from_a({1}, "10.0.0.9", "10.0.1.1"));
  ASSERT_FALSE(stranger.ok());
  EXPECT_EQ(stranger.error().code, ControlError::kPermissionDenied);
  EXPECT_EQ(stranger.error().message,
            "no peer is configured for a tunnel from 10.0.0.9 to local VIP 10.0.1.1");
  auto not_ours = b->tm->handle_tunnel_request(from_peer(), request_from_a({1}, "10.0.0.1", "10.0.1.7"));
  ASSERT_FALSE(not_ours.ok());
  EXPECT_EQ(not_ours.error().code, ControlError::kPermissionDenied);
  // A request mixing an allowed and a forbidden tunnel installs nothing.
  auto mixed = request_from_a({1});
  mixed.tunnels.push_back(TunnelRequest{ip("10.0.0.9"), ip("10.0.1.2"), std::nullopt});
  EXPECT_FALSE(b->tm->handle_tunnel_request(from_peer(), mixed).ok());
  EXPECT_EQ(b->dp.ingress_count(), 0u);
  EXPECT_TRUE(b->tm->sessions().empty());
}

TEST(TunnelManagerServer, TunnelLimitAndFullTableAreResourceExhausted) {
  auto b = make_b([](TunnelManagerOptions& o) { o.max_tunnels = 1; });
  ASSERT_TRUE(b->tm->handle_tunnel_request(from_peer(), request_from_a({1})).ok());
  auto second = b->tm->handle_tunnel_request(from_peer(), request_from_a({1}, "10.0.0.1", "10.0.1.2"));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ControlError::kResourceExhausted);
  // Re-requesting an existing session is not a new tunnel.
  EXPECT_TRUE(b->tm->handle_tunnel_request(from_peer(), request_from_a({1})).ok());

  auto c = make_b();
  c->dp.fail_next_open(DataPlaneError::kNoSpace);
  auto full = c->tm->handle_tunnel_request(from_peer(), request_from_a({1}));
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code, ControlError::kResourceExhausted);
}

// The limit is kept as a count of active sessions (not a pass over all of them): it follows sessions that
// close, by request or because their SPI died.
TEST(TunnelManagerServer, TheTunnelLimitFollowsSessionsThatClose) {
  auto b = make_b([](TunnelManagerOptions& o) { o.max_tunnels = 1; });
  const auto second = [&] {
    return b->tm->handle_tunnel_request(from_peer(), request_from_a({1}, "10.0.0.1", "10.0.1.2"));
  };
  ASSERT_TRUE(b->tm->handle_tunnel_request(from_peer(), request_from_a({1})).ok());
  EXPECT_FALSE(second().ok());
  ASSERT_TRUE(b->tm->close_session(kB1toA1).ok());
  ASSERT_TRUE(second().ok());
  // Its SPI dies two rotations later: the session closes and its place is free.
  (void)b->tm->rotate_master_key();
  (void)b->tm->rotate_master_key();
  EXPECT_TRUE(b->tm->sessions().empty());
  EXPECT_TRUE(b->tm->handle_tunnel_request(from_peer(), request_from_a({1})).ok());
  EXPECT_FALSE(second().ok());
}

// A session closed while its exchange is in flight leaves the count too.
TEST(TunnelManagerClient, TheTunnelLimitFollowsASessionClosedInFlight) {
  auto a = make_a([](TunnelManagerOptions& o) { o.max_tunnels = 1; });
  auto x = a->tm->begin_exchange(kA1toB1);
  ASSERT_TRUE(x.ok());
  EXPECT_EQ(a->tm->begin_exchange(kA1toB2).error().code, ControlError::kResourceExhausted);
  ASSERT_TRUE(a->tm->close_session(kA1toB1).ok());
  EXPECT_TRUE(a->tm->begin_exchange(kA1toB2).ok());
}

TEST(TunnelManagerServer, SpiExhaustionIsResourceExhausted) {
  FakeDataPlane dp;
  psp::KeyRing ring = psp::KeyRing::with_random_key();
  ring.set_spi_counter(0x7fffffff);  // one SPI left in the active slot
  TunnelManagerOptions o;
  o.local = LocalIdentity{mac("02:00:00:00:00:0B"), ip("192.0.2.2")};
  o.log = [](std::string_view) {};
  TunnelManager b(std::move(ring), {{"A", {kB1toA1, kB2toA1}}}, dp, std::move(o));
  auto last = b.handle_tunnel_request(from_peer(), request_from_a({1}));
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->tunnels[0].spi, 0x7fffffffu);
  auto none = b.handle_tunnel_request(from_peer(), request_from_a({1}, "10.0.0.1", "10.0.1.2"));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ControlError::kResourceExhausted);
  EXPECT_EQ(none.error().message, "no SPI left: spi-exhausted");
  EXPECT_EQ(dp.ingress_count(), 1u);
  // A rotation opens a fresh slot.
  (void)b.rotate_master_key();
  EXPECT_TRUE(b.handle_tunnel_request(from_peer(), request_from_a({1}, "10.0.0.1", "10.0.1.2")).ok());
}

TEST(TunnelManagerServer, InstallFailureIsInternalAndRollsBackTheWholeRequest) {
  auto b = make_b();
  auto req = request_from_a({1});
  req.tunnels[0].reverse_params = params_of_a(0x17, 1);
  req.tunnels.push_back(TunnelRequest{ip("10.0.0.1"), ip("10.0.1.2"), params_of_a(0x18, 2)});
  // The first install succeeds, the second fails.
  b->dp.fail_install(DataPlaneError::kRejected, 1);
  auto r = b->tm->handle_tunnel_request(from_peer(), req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ControlError::kInvalidArgument);  // kRejected: the SA cannot be expressed
  b->dp.fail_install(DataPlaneError::kExists, 1);
  r = b->tm->handle_tunnel_request(from_peer(), req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ControlError::kInternal);
  EXPECT_EQ(r.error().message, "installing egress for 10.0.1.2 -> 10.0.0.1 failed: entry exists");
  // Nothing of the failed requests is left: no ingress, no egress, no session.
  EXPECT_EQ(b->dp.ingress_count(), 0u);
  EXPECT_EQ(b->dp.egress_count(), 0u);
  EXPECT_TRUE(b->tm->sessions().empty());
}

TEST(TunnelManagerServer, KeepsAtMostFourIngressSpisOfASession) {
  auto b = make_b();
  std::vector<uint32_t> spis;
  for (int i = 0; i < 6; ++i) {
    auto r = b->tm->handle_tunnel_request(from_peer(), request_from_a({1}));
    ASSERT_TRUE(r.ok());
    spis.push_back(r->tunnels[0].spi);
  }
  static_assert(kMaxIngressPerSession == 4);
  EXPECT_FALSE(b->dp.ingress_open(spis[0], kB1toA1));
  EXPECT_FALSE(b->dp.ingress_open(spis[1], kB1toA1));
  for (int i = 2; i < 6; ++i) EXPECT_TRUE(b->dp.ingress_open(spis[i], kB1toA1)) << i;
  EXPECT_EQ(b->tm->session(kB1toA1)->ingress_spis,
            (std::vector<uint32_t>{spis[5], spis[4], spis[3], spis[2]}));
}

// ---- client side ----

TEST(TunnelManagerClient, OnDemandOpensIngressBeforeSending) {
  auto a = make_a();
  auto b = make_b();
  LoopbackTransport t;
  t.peers = {b->tm.get()};
  bool checked = false;
  t.before_send = [&](PeerIndex peer, const MultiTunnelRequest& r) {
    EXPECT_EQ(peer, 0u);
    ASSERT_EQ(r.tunnels.size(), 1u);
    EXPECT_EQ(r.versions_accepted, (std::vector<uint32_t>{1}));
    EXPECT_EQ(r.tunnels[0].requester_vip, ip("10.0.0.1"));
    EXPECT_EQ(r.tunnels[0].responder_vip, ip("10.0.1.1"));
    ASSERT_TRUE(r.tunnels[0].reverse_params.has_value());
    const TunnelParams& rp = *r.tunnels[0].reverse_params;
    EXPECT_EQ(rp.outer_ip, ip("192.0.2.1"));
    EXPECT_TRUE(a->dp.ingress_open(rp.spi, kA1toB1)) << "ingress must be open before the request leaves";
    EXPECT_EQ(a->tm->state(kA1toB1), PairState::kInFlight);
    checked = true;
  };
  ASSERT_TRUE(a->tm->connect(kA1toB1, t).ok());
  EXPECT_TRUE(checked);
}

TEST(TunnelManagerClient, ResponseIsAppliedOnBothSides) {
  auto a = make_a();
  auto b = make_b();
  LoopbackTransport t;
  t.peers = {b->tm.get()};
  auto ok = a->tm->connect(kA1toB1, t);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(a->tm->state(kA1toB1), PairState::kConnected);
  EXPECT_EQ(b->tm->state(kB1toA1), PairState::kConnected);  // via reverse params, no second round trip
  // A sends with B's SPI and B's key; B sends with A's SPI and A's key.
  auto a_tx = a->dp.egress(kA1toB1);
  auto b_tx = b->dp.egress(kB1toA1);
  ASSERT_TRUE(a_tx && b_tx);
  EXPECT_TRUE(b->dp.ingress_open(a_tx->spi, kB1toA1));
  EXPECT_TRUE(a->dp.ingress_open(b_tx->spi, kA1toB1));
  EXPECT_EQ(a_tx->key, bytes_of(*b->dp.master_keys()->derive(a_tx->spi, psp::PspVersion::kAesGcm256)));
  EXPECT_EQ(b_tx->key, bytes_of(*a->dp.master_keys()->derive(b_tx->spi, psp::PspVersion::kAesGcm256)));
  EXPECT_EQ(a_tx->outer_ip, ip("192.0.2.2"));
  EXPECT_EQ(b_tx->outer_ip, ip("192.0.2.1"));
  // Connected: a later miss does not start another exchange.
  auto again = a->tm->begin_exchange(kA1toB1);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ControlError::kAlreadyExists);
}

TEST(TunnelManagerClient, OneExchangeInFlightPerPair) {
  auto a = make_a();
  auto x = a->tm->begin_exchange(kA1toB1);
  ASSERT_TRUE(x.ok());
  auto second = a->tm->begin_exchange(kA1toB1);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ControlError::kAlreadyExists);
  EXPECT_TRUE(a->tm->begin_exchange(kA1toB2).ok());  // another pair is independent
  auto unknown = a->tm->begin_exchange(pair("10.0.0.1", "10.9.9.9"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ControlError::kNotFound);
}

TEST(TunnelManagerClient, FailureClosesIngressAndBacksOff) {
  auto a = make_a();
  LoopbackTransport t;  // peer 0 unreachable
  t.scripted_failures[0] = {Error{ControlError::kDeadlineExceeded, "B: Deadline Exceeded"}};
  auto first = a->tm->connect(kA1toB1, t);
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.error().code, ControlError::kDeadlineExceeded);
  EXPECT_EQ(a->dp.ingress_count(), 0u);  // the SPI we offered is closed again
  EXPECT_EQ(a->tm->state(kA1toB1), PairState::kBackoff);
  ASSERT_FALSE(a->log.empty());
  EXPECT_NE(a->log.back().find("retry in 100 ms"), std::string::npos) << a->log.back();

  auto early = a->tm->connect(kA1toB1, t);
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.error().code, ControlError::kFailedPrecondition);
  EXPECT_EQ(t.calls.size(), 1u);  // no RPC while backing off

  a->clock.t += milliseconds(100);
  auto second = a->tm->connect(kA1toB1, t);  // now unreachable: kUnavailable, backoff doubles
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ControlError::kUnavailable);
  EXPECT_NE(a->log.back().find("retry in 200 ms"), std::string::npos) << a->log.back();
  a->clock.t += milliseconds(199);
  EXPECT_EQ(a->tm->state(kA1toB1), PairState::kBackoff);

  auto b = make_b();
  t.peers = {b->tm.get()};
  a->clock.t += milliseconds(1);
  ASSERT_TRUE(a->tm->connect(kA1toB1, t).ok());
  EXPECT_EQ(a->tm->session(kA1toB1)->retry_at, Clock::time_point{});  // success resets the backoff
}

// The tunnel limit counts active sessions only: a pair backing off after a failure keeps its session (its
// retry time) but no tunnel, so the map may hold more sessions than the limit while fewer are active.
// The count is skipped only while the map itself is within the limit (it walked every session per pair).
TEST(TunnelManagerClient, TunnelLimitCountsActiveSessionsNotBackingOffOnes) {
  const VipPair a1_to_b3 = pair("10.0.0.1", "10.0.1.3");
  Gateway a("192.0.2.1", "02:00:00:00:00:0A", {{"B", {kA1toB1, kA1toB2, a1_to_b3}}},
            [](TunnelManagerOptions& o) { o.max_tunnels = 2; });
  LoopbackTransport t;  // peer 0 unreachable
  t.scripted_failures[0] = {Error{ControlError::kDeadlineExceeded, "B: Deadline Exceeded"}};
  ASSERT_FALSE(a.tm->connect(kA1toB1, t).ok());
  ASSERT_EQ(a.tm->state(kA1toB1), PairState::kBackoff);  // a session, not a tunnel
  ASSERT_TRUE(a.tm->begin_exchange(kA1toB2).ok());
  auto third = a.tm->begin_exchange(a1_to_b3);  // three sessions, two of them active: within the limit
  ASSERT_TRUE(third.ok()) << third.error().message;
  a.clock.t += milliseconds(100);  // B1's backoff is over: a third active session would pass the limit
  auto again = a.tm->begin_exchange(kA1toB1);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ControlError::kResourceExhausted);
}

TEST(TunnelManagerClient, MalformedAnswerIsInternal) {
  auto a = make_a();
  auto x = a->tm->begin_exchange(kA1toB1);
  ASSERT_TRUE(x.ok());
  MultiTunnelResponse wrong;
  wrong.request_id = x->request.request_id + 1;
  auto r = a->tm->finish_exchange(std::move(x.value()), std::move(wrong));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ControlError::kInternal);
  EXPECT_EQ(a->dp.ingress_count(), 0u);
  EXPECT_EQ(a->dp.egress_count(), 0u);
}

TEST(TunnelManagerClient, ClosedSessionIgnoresALateAnswer) {
  auto a = make_a();
  auto b = make_b();
  auto x = a->tm->begin_exchange(kA1toB1);
  ASSERT_TRUE(x.ok());
  auto answer = b->tm->handle_tunnel_request(from_peer(), x->request);
  ASSERT_TRUE(answer.ok());
  ASSERT_TRUE(a->tm->close_session(kA1toB1).ok());
  EXPECT_EQ(a->dp.ingress_count(), 0u);
  auto r = a->tm->finish_exchange(std::move(x.value()), std::move(answer));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ControlError::kNotFound);
  EXPECT_EQ(a->dp.egress_count(), 0u);
}

// Several first exchanges toward one peer leave in one request, each tunnel with its reverse params and its
// ingress open; the answer connects them all, on both sides.
TEST(TunnelManagerClient, ABatchOfPairsIsOneRequestAndConnectsEveryPair) {
  auto a = make_a();
  auto b = make_b();
  std::vector<std::pair<VipPair, Error>> refused;
  const std::vector<VipPair> pairs{kA1toB1, kA1toB2};
  auto x = a->tm->begin_exchange(pairs, refused);
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_TRUE(refused.empty());
  ASSERT_EQ(x->request.tunnels.size(), 2u);
  EXPECT_EQ(x->pairs, pairs);
  for (std::size_t i = 0; i < 2; ++i) {
    ASSERT_TRUE(x->request.tunnels[i].reverse_params.has_value());
    EXPECT_EQ(x->request.tunnels[i].responder_vip, pairs[i].remote);
    EXPECT_TRUE(a->dp.ingress_open(x->request.tunnels[i].reverse_params->spi, pairs[i]));
    EXPECT_EQ(a->tm->state(pairs[i]), PairState::kInFlight);
  }
  auto answer = b->tm->handle_tunnel_request(from_peer(), x->request);
  ASSERT_TRUE(answer.ok()) << answer.error().message;
  ASSERT_TRUE(a->tm->finish_exchange(std::move(x.value()), std::move(answer)).ok());
  EXPECT_EQ(a->tm->state(kA1toB1), PairState::kConnected);
  EXPECT_EQ(a->tm->state(kA1toB2), PairState::kConnected);
  EXPECT_EQ(b->tm->state(kB1toA1), PairState::kConnected);
  EXPECT_EQ(b->tm->state(kB2toA1), PairState::kConnected);
  EXPECT_EQ(a->dp.egress_count(), 2u);
}

// What cannot start is left out with its reason (in flight already, no peer for it, another peer's pair,
// beyond one request's size); the rest still goes. Nothing at all: the first reason.
TEST(TunnelManagerClient, ABatchLeavesOutWhatCannotStart) {
  const VipPair to_c = pair("10.0.0.1", "10.0.2.1");
  const VipPair a1_to_b3 = pair("10.0.0.1", "10.0.1.3");
  Gateway a("192.0.2.1", "02:00:00:00:00:0A", {{"B", {kA1toB1, kA1toB2}}, {"C", {to_c}}});
  auto busy = a.tm->begin_exchange(kA1toB2);
  ASSERT_TRUE(busy.ok());
  std::vector<std::pair<VipPair, Error>> refused;
  const VipPair nowhere = pair("10.0.0.1", "10.9.9.9");
  auto x = a.tm->begin_exchange(std::vector<VipPair>{nowhere, kA1toB1, kA1toB2, to_c}, refused);
  ASSERT_TRUE(x.ok());
  EXPECT_EQ(x->pairs, std::vector<VipPair>{kA1toB1});
  ASSERT_EQ(refused.size(), 3u);
  EXPECT_EQ(refused[0].first, nowhere);
  EXPECT_EQ(refused[0].second.code, ControlError::kNotFound);
  EXPECT_EQ(refused[1].first, kA1toB2);
  EXPECT_EQ(refused[1].second.code, ControlError::kAlreadyExists);
  EXPECT_EQ(refused[2].first, to_c);
  EXPECT_EQ(refused[2].second.code, ControlError::kInvalidArgument);
  EXPECT_EQ(a.tm->state(to_c), PairState::kIdle);  // nothing opened for it

  // One request carries at most client_request_chunk (2 here) pairs.
  Gateway c("192.0.2.3", "02:00:00:00:00:0C", {{"B", {kA1toB1, kA1toB2, a1_to_b3}}},
            [](TunnelManagerOptions& o) { o.client_request_chunk = 2; });
  refused.clear();
  auto y = c.tm->begin_exchange(std::vector<VipPair>{kA1toB1, kA1toB2, a1_to_b3}, refused);
  ASSERT_TRUE(y.ok());
  EXPECT_EQ(y->pairs, (std::vector<VipPair>{kA1toB1, kA1toB2}));
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].first, a1_to_b3);
  EXPECT_EQ(refused[0].second.code, ControlError::kResourceExhausted);
  EXPECT_EQ(c.tm->state(a1_to_b3), PairState::kIdle);

  refused.clear();
  auto none = a.tm->begin_exchange(std::vector<VipPair>{kA1toB1, nowhere}, refused);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ControlError::kAlreadyExists);
  EXPECT_EQ(refused.size(), 2u);
}

// A session of a batch closed while the request was in flight is left out of the answer; the others are
// connected by it (before, the whole answer was dropped and the rest stayed in flight).
TEST(TunnelManagerClient, ABatchAnswerStillConnectsThePairsNotClosedMeanwhile) {
  auto a = make_a();
  auto b = make_b();
  std::vector<std::pair<VipPair, Error>> refused;
  auto x = a->tm->begin_exchange(std::vector<VipPair>{kA1toB1, kA1toB2}, refused);
  ASSERT_TRUE(x.ok());
  auto answer = b->tm->handle_tunnel_request(from_peer(), x->request);
  ASSERT_TRUE(answer.ok());
  ASSERT_TRUE(a->tm->close_session(kA1toB1).ok());
  ASSERT_TRUE(a->tm->finish_exchange(std::move(x.value()), std::move(answer)).ok());
  EXPECT_EQ(a->tm->state(kA1toB1), PairState::kIdle);
  EXPECT_EQ(a->tm->state(kA1toB2), PairState::kConnected);
  EXPECT_EQ(a->dp.egress_count(), 1u);
  ASSERT_TRUE(a->dp.egress(kA1toB2).has_value());
}

TEST(TunnelManagerClient, CloseSessionFreesIngressAndEgress) {
  auto a = make_a();
  auto b = make_b();
  LoopbackTransport t;
  t.peers = {b->tm.get()};
  ASSERT_TRUE(a->tm->connect(kA1toB1, t).ok());
  ASSERT_TRUE(b->tm->close_session(kB1toA1).ok());
  EXPECT_EQ(b->dp.ingress_count(), 0u);
  EXPECT_EQ(b->dp.egress_count(), 0u);
  EXPECT_FALSE(b->tm->session(kB1toA1).has_value());
  EXPECT_EQ(b->tm->close_session(kB1toA1).error().code, ControlError::kNotFound);
}

TEST(TunnelManagerClient, StaticModeSendsAllPairsWithoutReverseParams) {
  auto a = make_a();
  auto b = make_b();
  LoopbackTransport t;
  t.peers = {b->tm.get()};
  t.before_send = [&](PeerIndex, const MultiTunnelRequest& r) {
    ASSERT_EQ(r.tunnels.size(), 2u);
    EXPECT_FALSE(r.tunnels[0].reverse_params.has_value());
    EXPECT_FALSE(r.tunnels[1].reverse_params.has_value());
    EXPECT_EQ(a->dp.ingress_count(), 0u);
  };
  ASSERT_TRUE(a->tm->connect_peer_static(0, t).ok());
  EXPECT_EQ(a->dp.egress_count(), 2u);
  EXPECT_EQ(b->dp.ingress_count(), 2u);
  EXPECT_EQ(b->dp.egress_count(), 0u);  // B learns A's params when B runs its own static pass
  t.before_send = nullptr;
  ASSERT_TRUE(a->tm->connect_peer_static(0, t).ok());  // all connected: nothing sent
  EXPECT_EQ(t.calls.size(), 1u);
}

TEST(TunnelManagerClient, StaticModeRetriesFailedPeersAfterTheOthers) {
  // A with three peers; B0 answers, B1 fails twice, B2 fails once.
  std::vector<PeerPolicy> peers = {{"B0", {pair("10.0.0.1", "10.0.1.1")}},
                                   {"B1", {pair("10.0.0.1", "10.0.2.1")}},
                                   {"B2", {pair("10.0.0.1", "10.0.3.1")}}};
  Gateway a("192.0.2.1", "02:00:00:00:00:0A", peers);
  std::vector<std::unique_ptr<Gateway>> remotes;
  LoopbackTransport t;
  for (int i = 0; i < 3; ++i) {
    const std::string vip = "10.0.";
    remotes.push_back(std::make_unique<Gateway>(
        "192.0.2.9", "02:00:00:00:00:0B",
        std::vector<PeerPolicy>{{"A", {pair(vip + std::to_string(i + 1) + ".1", "10.0.0.1")}}}));
    t.peers.push_back(remotes.back()->tm.get());
  }
  const Error down{ControlError::kUnavailable, "down"};
  t.scripted_failures[1] = {down, down};
  t.scripted_failures[2] = {down};
  std::vector<Clock::duration> sleeps;
  StaticReport report =
      a.tm->connect_all_static(t, StaticOptions{[&](Clock::duration d) { sleeps.push_back(d); }, {}, 0});
  EXPECT_EQ(report.attempts, (std::vector<PeerIndex>{0, 1, 2, 1, 2, 1}));
  EXPECT_TRUE(report.failed.empty());
  EXPECT_EQ(report.rounds, 3u);
  EXPECT_EQ(sleeps, (std::vector<Clock::duration>{milliseconds(100), milliseconds(200)}));
  EXPECT_EQ(a.dp.egress_count(), 3u);

  // Bounded: a peer that never answers is reported, not retried forever.
  Gateway a2("192.0.2.1", "02:00:00:00:00:0A", peers);
  t.scripted_failures[1] = std::vector<Error>(10, down);
  report = a2.tm->connect_all_static(t, StaticOptions{[](Clock::duration) {}, {}, 4});
  EXPECT_EQ(report.failed, (std::vector<PeerIndex>{1}));
  EXPECT_EQ(report.attempts, (std::vector<PeerIndex>{0, 1, 2, 1, 1, 1}));
}

// ---- peer restart, stale state, large requests ----

// x's egress for `xp` is an SPI y has open for `yp`, under y's current master keys: x -> y works.
void expect_sends_to(const Gateway& x, const VipPair& xp, const Gateway& y, const VipPair& yp) {
  auto tx = x.dp.egress(xp);
  ASSERT_TRUE(tx.has_value());
  EXPECT_TRUE(y.dp.ingress_open(tx->spi, yp)) << "SPI " << tx->spi;
  auto key = y.dp.master_keys()->derive(tx->spi, psp::PspVersion::kAesGcm256);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(tx->key, bytes_of(*key));
}

std::function<void(TunnelManagerOptions&)> count_refresh_wakeups(int& n) {
  return [&n](TunnelManagerOptions& o) { o.on_refresh_due = [&n] { ++n; }; };
}

TEST(TunnelManagerRestart, OnDemandReRequestFromARestartedPeerReplacesBothDirections) {
  auto a = make_a();
  auto b = make_b();
  LoopbackTransport t;
  t.peers = {b->tm.get()};
  ASSERT_TRUE(a->tm->connect(kA1toB1, t).ok());
  const std::vector<uint8_t> old_b_egress_key = b->dp.egress(kB1toA1)->key;
  const uint32_t old_b_ingress = a->dp.egress(kA1toB1)->spi;

  a = make_a();  // A restarts: fresh master keys, no sessions
  ASSERT_TRUE(a->tm->connect(kA1toB1, t).ok());
  expect_sends_to(*a, kA1toB1, *b, kB1toA1);
  expect_sends_to(*b, kB1toA1, *a, kA1toB1);
  EXPECT_NE(b->dp.egress(kB1toA1)->key, old_b_egress_key);  // A's new master key (SPIs restart at 1)
  EXPECT_EQ(b->dp.egress_count(), 1u);
  // B's previous ingress SPI stays open for packets in flight; never more than kMaxIngressPerSession.
  EXPECT_EQ(b->dp.ingress_spis(kB1toA1).size(), 2u);
  EXPECT_TRUE(b->dp.ingress_open(old_b_ingress, kB1toA1));
  for (std::size_t i = 2; i <= kMaxIngressPerSession; ++i) {  // more restarts: the oldest SPI goes first
    a = make_a();
    ASSERT_TRUE(a->tm->connect(kA1toB1, t).ok());
    EXPECT_LE(b->dp.ingress_spis(kB1toA1).size(), kMaxIngressPerSession);
    expect_sends_to(*a, kA1toB1, *b, kB1toA1);
  }
  EXPECT_FALSE(b->dp.ingress_open(old_b_ingress, kB1toA1));
  EXPECT_EQ(b->tm->state(kB1toA1), PairState::kConnected);
}

TEST(TunnelManagerRestart, StaticReRequestForAHeldPairRefreshesOurEgressMakeBeforeBreak) {
  int wakeups = 0;
  auto a = make_a(count_refresh_wakeups(wakeups));
  auto b = make_b();
  LoopbackTransport to_b;
  to_b.peers = {b->tm.get()};
  ASSERT_TRUE(a->tm->connect(kA1toB1, to_b).ok());
  ASSERT_TRUE(a->tm->connect(kA1toB2, to_b).ok());
  const uint32_t stale = a->dp.egress(kA1toB1)->spi;

  b = make_b();  // B restarts and connects statically: no reverse params
  to_b.peers = {b->tm.get()};
  LoopbackTransport to_a;
  to_a.peers = {a->tm.get()};
  ASSERT_TRUE(b->tm->connect_peer_static(0, to_a).ok());
  expect_sends_to(*b, kB1toA1, *a, kA1toB1);  // B -> A works at once
  EXPECT_EQ(wakeups, 1);                      // A was told to refresh ...
  EXPECT_EQ(a->tm->refresh_due_peers(), (std::vector<PeerIndex>{0}));
  EXPECT_EQ(a->dp.egress(kA1toB1)->spi, stale);  // ... and keeps its old egress until then
  EXPECT_EQ(a->tm->state(kA1toB1), PairState::kConnected);

  ASSERT_TRUE(a->tm->refresh_peer(0, to_b).ok());
  EXPECT_EQ(to_b.calls.size(), 3u);  // two connects, one refresh request for both pairs
  expect_sends_to(*a, kA1toB1, *b, kB1toA1);
  expect_sends_to(*a, kA1toB2, *b, kB2toA1);
  expect_sends_to(*b, kB1toA1, *a, kA1toB1);
  expect_sends_to(*b, kB2toA1, *a, kA1toB2);
  EXPECT_TRUE(a->tm->refresh_due_peers().empty());
  ASSERT_TRUE(a->tm->refresh_peer(0, to_b).ok());  // nothing due: no request
  EXPECT_EQ(to_b.calls.size(), 3u);
}

TEST(TunnelManagerRestart, FailedRefreshKeepsTheOldEgressAndStaysDue) {
  auto a = make_a();
  auto b = make_b();
  LoopbackTransport t;
  t.peers = {b->tm.get()};
  ASSERT_TRUE(a->tm->connect(kA1toB1, t).ok());
  const uint32_t egress = a->dp.egress(kA1toB1)->spi;
  ASSERT_TRUE(a->tm->note_stale_peer(0, "test"));
  t.scripted_failures[0] = {Error{ControlError::kUnavailable, "down"}};
  EXPECT_FALSE(a->tm->refresh_peer(0, t).ok());
  EXPECT_EQ(a->dp.egress(kA1toB1)->spi, egress);
  EXPECT_EQ(a->dp.ingress_spis(kA1toB1).size(), 1u);  // the SPI offered in the failed request is closed
  EXPECT_EQ(a->tm->refresh_due_peers(), (std::vector<PeerIndex>{0}));
  EXPECT_TRUE(a->tm->refresh_peer(0, t).ok());  // backing off: nothing sent yet
  EXPECT_EQ(t.calls.size(), 2u);
  a->clock.t += milliseconds(100);
  ASSERT_TRUE(a->tm->refresh_peer(0, t).ok());
  expect_sends_to(*a, kA1toB1, *b, kB1toA1);
  EXPECT_NE(a->dp.egress(kA1toB1)->spi, egress);
  EXPECT_TRUE(a->tm->refresh_due_peers().empty());
}

TEST(TunnelManagerRestart, ARefreshStaysWithinTheIngressLimitAndRetiresOlderSpis) {
  auto a = make_a();
  auto b = make_b();
  LoopbackTransport to_b, to_a;
  to_b.peers = {b->tm.get()};
  to_a.peers = {a->tm.get()};
  ASSERT_TRUE(a->tm->connect(kA1toB1, to_b).ok());
  ASSERT_TRUE(b->tm->close_session(kB1toA1).ok());
  ASSERT_TRUE(b->tm->connect(kB1toA1, to_a).ok());  // A now holds two ingress SPIs for the pair
  ASSERT_EQ(a->dp.ingress_spis(kA1toB1).size(), 2u);
  ASSERT_TRUE(a->tm->note_stale_peer(0, "test"));
  to_b.before_send = [&](PeerIndex, const MultiTunnelRequest&) {
    EXPECT_LE(a->dp.ingress_spis(kA1toB1).size(), kMaxIngressPerSession);
  };
  ASSERT_TRUE(a->tm->refresh_peer(0, to_b).ok());
  EXPECT_EQ(a->dp.ingress_spis(kA1toB1).size(), 3u);  // the new SPI, and the older two until they retire
  expect_sends_to(*a, kA1toB1, *b, kB1toA1);
  expect_sends_to(*b, kB1toA1, *a, kA1toB1);
  a->clock.t += std::chrono::seconds(1);  // retire_delay: packets sealed with the older SPIs have arrived
  (void)a->tm->maintain_rotation();
  EXPECT_EQ(a->dp.ingress_spis(kA1toB1).size(), 1u);
  expect_sends_to(*b, kB1toA1, *a, kA1toB1);
}

TEST(TunnelManagerRestart, StaleSignalsAreRateLimitedPerPeerWithGrowingSpacing) {
  int wakeups = 0;
  auto a = make_a(count_refresh_wakeups(wakeups));
  auto b = make_b();
  LoopbackTransport t;
  t.peers = {b->tm.get()};
  // No connected session: the peer is due a static connect instead.
  ASSERT_TRUE(a->tm->note_stale_peer(0, "test"));
  EXPECT_EQ(a->tm->take_static_due(), (std::vector<PeerIndex>{0}));
  EXPECT_TRUE(a->tm->take_static_due().empty());
  ASSERT_TRUE(a->tm->connect(kA1toB1, t).ok());
  EXPECT_FALSE(a->tm->note_stale_peer(0, "test"));  // within the interval
  a->clock.t += milliseconds(1000);
  EXPECT_TRUE(a->tm->note_stale_peer(0, "test"));  // again right away: the spacing doubles
  EXPECT_EQ(a->tm->refresh_due_peers(), (std::vector<PeerIndex>{0}));
  a->clock.t += milliseconds(1999);
  EXPECT_FALSE(a->tm->note_stale_peer(0, "test"));
  a->clock.t += milliseconds(1);
  EXPECT_TRUE(a->tm->note_stale_peer(0, "test"));
  a->clock.t += std::chrono::seconds(30);  // quiet for longer than the spacing: back to 1 s
  EXPECT_TRUE(a->tm->note_stale_peer(0, "test"));
  a->clock.t += milliseconds(1000);
  EXPECT_TRUE(a->tm->note_stale_peer(0, "test"));
  EXPECT_EQ(wakeups, 5);
  EXPECT_FALSE(a->tm->note_stale_peer(7, "test"));  // no such peer
}

TEST(TunnelManagerRestart, PeerByOuterAddressUsesThePolicyThenWhatItsSasSay) {
  std::vector<PeerPolicy> peers = {
      {"B", {kA1toB1, kA1toB2}, std::nullopt, ip("192.0.2.99")}};  // a hint, not a binding
  Gateway a("192.0.2.1", "02:00:00:00:00:0A", peers);
  EXPECT_EQ(a.tm->peer_by_outer(ip("192.0.2.99")), PeerIndex{0});
  EXPECT_EQ(a.tm->peer_by_outer(ip("192.0.2.2")), std::nullopt);
  auto b = make_b();
  LoopbackTransport t;
  t.peers = {b->tm.get()};
  ASSERT_TRUE(a.tm->connect(kA1toB1, t).ok());
  EXPECT_EQ(a.tm->peer_by_outer(ip("192.0.2.2")), PeerIndex{0});
}

TEST(TunnelManagerClient, StaticModeSplitsRequestsLargerThanThePeersLimit) {
  auto a = make_a([](TunnelManagerOptions& o) { o.client_request_chunk = 1; });
  auto b = make_b([](TunnelManagerOptions& o) { o.max_tunnels_per_request = 1; });
  LoopbackTransport t;
  t.peers = {b->tm.get()};
  t.before_send = [](PeerIndex, const MultiTunnelRequest& r) { EXPECT_EQ(r.tunnels.size(), 1u); };
  ASSERT_TRUE(a->tm->connect_peer_static(0, t).ok());
  EXPECT_EQ(t.calls.size(), 2u);
  EXPECT_EQ(a->dp.egress_count(), 2u);
  EXPECT_EQ(b->dp.ingress_count(), 2u);
}

TEST(TunnelManagerClient, StaticModeConnectsTenThousandPairsInChunks) {
  std::vector<VipPair> a_pairs, b_pairs;
  for (uint32_t i = 0; i < 10000; ++i) {
    const std::string remote = "10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    a_pairs.push_back(pair("10.0.0.1", remote));
    b_pairs.push_back(pair(remote, "10.0.0.1"));
  }
  Gateway a("192.0.2.1", "02:00:00:00:00:0A", {{"B", a_pairs}},
            [](TunnelManagerOptions& o) { o.max_tunnels = 20000; });
  Gateway b("192.0.2.2", "02:00:00:00:00:0B", {{"A", b_pairs}},
            [](TunnelManagerOptions& o) { o.max_tunnels = 20000; });
  LoopbackTransport t;
  t.peers = {b.tm.get()};
  ASSERT_TRUE(a.tm->connect_peer_static(0, t).ok());
  EXPECT_EQ(t.calls.size(), 3u);  // 4096 + 4096 + 1808
  EXPECT_EQ(a.dp.egress_count(), 10000u);
  EXPECT_EQ(b.dp.ingress_count(), 10000u);
}

// ---- keys ----

TEST(TunnelManagerKeys, RotationMarksReKeyAndReKeyMovesThePeerToTheNewSlot) {
  auto a = make_a();
  auto b = make_b();
  LoopbackTransport to_b, to_a;
  to_b.peers = {b->tm.get()};
  to_a.peers = {a->tm.get()};
  ASSERT_TRUE(a->tm->connect(kA1toB1, to_b).ok());
  const uint32_t old_spi = a->dp.egress(kA1toB1)->spi;  // B's SPI that A sends with
  EXPECT_EQ(psp::spi_slot(old_spi), 0);

  RotationReport first = b->tm->rotate_master_key();
  EXPECT_EQ(first.rekey_due, 1u);
  EXPECT_EQ(first.closed_ingress, 0u);
  EXPECT_EQ(b->tm->rekey_due(), (std::vector<VipPair>{kB1toA1}));
  EXPECT_TRUE(b->dp.ingress_open(old_spi, kB1toA1));  // still valid until the next rotation

  ASSERT_TRUE(b->tm->rekey(kB1toA1, to_a).ok());
  const uint32_t new_spi = a->dp.egress(kA1toB1)->spi;
  EXPECT_NE(new_spi, old_spi);
  EXPECT_EQ(psp::spi_slot(new_spi), 1);
  EXPECT_EQ(a->dp.egress(kA1toB1)->key,
            bytes_of(*b->dp.master_keys()->derive(new_spi, psp::PspVersion::kAesGcm256)));
  EXPECT_TRUE(b->tm->rekey_due().empty());
  EXPECT_EQ(b->tm->rekey(kB1toA1, to_a).error().code, ControlError::kNotFound);  // not due any more

  RotationReport second = b->tm->rotate_master_key();
  EXPECT_EQ(second.lost, 0u);
  EXPECT_EQ(second.closed_ingress, 1u);  // old_spi's slot now holds a new key
  EXPECT_FALSE(b->dp.ingress_open(old_spi, kB1toA1));
  EXPECT_TRUE(b->dp.ingress_open(new_spi, kB1toA1));  // the tunnel survives two rotations
  EXPECT_EQ(second.rekey_due, 1u);
}

TEST(TunnelManagerKeys, WithoutReKeyTheSecondRotationLosesTheTunnelWhichIsMadeAgainOnDemand) {
  auto a = make_a();
  auto b = make_b();
  LoopbackTransport to_b, to_a;
  to_b.peers = {b->tm.get()};
  to_a.peers = {a->tm.get()};
  ASSERT_TRUE(a->tm->connect(kA1toB1, to_b).ok());
  const uint32_t spi = a->dp.egress(kA1toB1)->spi;
  (void)b->tm->rotate_master_key();
  RotationReport second = b->tm->rotate_master_key();
  EXPECT_EQ(second.lost, 1u);
  EXPECT_EQ(second.closed, 1u);
  EXPECT_EQ(second.closed_ingress, 1u);
  EXPECT_FALSE(b->dp.ingress_open(spi, kB1toA1));
  // Nothing is left of B's half (its egress toward A is gone too), so B's next packet makes it again.
  EXPECT_FALSE(b->tm->session(kB1toA1).has_value());
  EXPECT_EQ(b->dp.egress_count(), 0u);
  EXPECT_TRUE(b->tm->rekey_due().empty());
  ASSERT_TRUE(b->tm->connect(kB1toA1, to_a).ok());
  EXPECT_TRUE(b->dp.ingress_open(a->dp.egress(kA1toB1)->spi, kB1toA1));
}

TEST(TunnelManagerKeys, IssueNewKeysWakesTheControlThread) {
  auto a = make_a();
  auto b = make_b();
  LoopbackTransport to_b;
  to_b.peers = {b->tm.get()};
  ASSERT_TRUE(a->tm->connect(kA1toB1, to_b).ok());
  LoopbackTransport to_a;
  to_a.peers = {a->tm.get()};
  const auto generation = b->dp.master_keys()->generation();
  auto r = b->tm->handle_key_rotation(from_peer(), KeyRotationRequest{8, true});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->request_id, 8u);
  EXPECT_EQ(b->rekey_wakeups, 1);
  ASSERT_TRUE(b->tm->rekey(kB1toA1, to_a).ok());
  b->clock.t += std::chrono::minutes(1);  // a peer may trigger one rotation a minute (and A's old-SPI
                                          // packets have long arrived)
  ASSERT_TRUE(b->tm->handle_key_rotation(from_peer(), KeyRotationRequest{9, false}).ok());
  EXPECT_EQ(b->rekey_wakeups, 1);  // rotation only; the re-key is due, done on the next control pass
  EXPECT_EQ(b->tm->rekey_due(), (std::vector<VipPair>{kB1toA1}));
  EXPECT_EQ(b->dp.master_keys()->generation(), generation + 2);  // published on every rotation
}

// ---- authorisation ----

// B with two peers: A owns kB1toA1, C owns kB1toC1.
const VipPair kB1toC1 = pair("10.0.1.1", "10.0.2.1");
std::unique_ptr<Gateway> make_b_with_c(std::optional<net::IpAddr> a_pip = std::nullopt,
                                       const std::function<void(TunnelManagerOptions&)>& tweak = {}) {
  return std::make_unique<Gateway>(
      "192.0.2.2", "02:00:00:00:00:0B",
      std::vector<PeerPolicy>{{"A", {kB1toA1, kB2toA1}, a_pip}, {"C", {kB1toC1}, std::nullopt}}, tweak);
}

std::size_t count_lines(const std::vector<std::string>& log, const std::string& part) {
  return static_cast<std::size_t>(std::count_if(
      log.begin(), log.end(), [&](const std::string& l) { return l.find(part) != std::string::npos; }));
}

TEST(TunnelManagerAuthorisation, APeerMayRequestOnlyItsOwnPairs) {
  auto b = make_b_with_c();
  // C asks for A's pair (with reverse params pointing at itself): refused, nothing changes.
  auto req = request_from_a({1});
  req.tunnels[0].reverse_params = params_of_a(0x17, 0xab);
  req.tunnels[0].reverse_params->outer_ip = ip("203.0.113.3");
  auto r = b->tm->handle_tunnel_request(from_peer(1), req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ControlError::kPermissionDenied);
  EXPECT_EQ(b->dp.ingress_count(), 0u);
  EXPECT_EQ(b->dp.egress_count(), 0u);
  EXPECT_TRUE(b->tm->sessions().empty());
  EXPECT_FALSE(b->tm->bound_pip(0).has_value());
  EXPECT_EQ(count_lines(b->log, "refused peer C (test): tunnel 10.0.1.1 -> 10.0.0.1 belongs to peer A"), 1u);
  // A mixed request (one own pair, one foreign) changes nothing either.
  auto mixed = request_from_a({1}, "10.0.2.1", "10.0.1.1");
  mixed.tunnels.push_back(TunnelRequest{ip("10.0.0.1"), ip("10.0.1.1"), std::nullopt});
  EXPECT_EQ(b->tm->handle_tunnel_request(from_peer(1), mixed).error().code, ControlError::kPermissionDenied);
  EXPECT_EQ(b->dp.ingress_count(), 0u);
  // The owner gets it.
  req.tunnels[0].reverse_params->outer_ip = ip("192.0.2.1");
  EXPECT_TRUE(b->tm->handle_tunnel_request(from_peer(0), req).ok());
  // A caller on a host shared by A and C acts for both.
  EXPECT_TRUE(b->tm->handle_tunnel_request(Caller{{0, 1}, "shared"}, request_from_a({1}, "10.0.2.1")).ok());
  // A caller that is no peer gets nothing.
  EXPECT_FALSE(b->tm->handle_tunnel_request(Caller{{}, "nobody"}, request_from_a({1})).ok());
}

TEST(TunnelManagerAuthorisation, ReverseParamsMustNameThePeersBoundPip) {
  // Configured: A is at 198.51.100.1, so A's params naming 192.0.2.1 are refused.
  auto b = make_b_with_c(ip("198.51.100.1"));
  auto req = request_from_a({1});
  req.tunnels[0].reverse_params = params_of_a(0x17, 0xab);
  auto r = b->tm->handle_tunnel_request(from_peer(), req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ControlError::kPermissionDenied);
  EXPECT_EQ(r.error().message, "A names PIP 192.0.2.1, but is bound to PIP 198.51.100.1");
  EXPECT_EQ(b->dp.ingress_count(), 0u);
  EXPECT_EQ(b->dp.egress_count(), 0u);
  EXPECT_EQ(count_lines(b->log, "refused peer A (test): tunnel 10.0.1.1 -> 10.0.0.1"), 1u);

  // Not configured: pinned at the first exchange; later params must name the same address.
  auto pinned = make_b_with_c();
  ASSERT_TRUE(pinned->tm->handle_tunnel_request(from_peer(), req).ok());
  EXPECT_EQ(pinned->tm->bound_pip(0), ip("192.0.2.1"));
  auto moved = request_from_a({1}, "10.0.0.1", "10.0.1.2");
  moved.tunnels[0].reverse_params = params_of_a(0x18, 0xcd);
  moved.tunnels[0].reverse_params->outer_ip = ip("203.0.113.9");
  EXPECT_EQ(pinned->tm->handle_tunnel_request(from_peer(), moved).error().code,
            ControlError::kPermissionDenied);
  EXPECT_EQ(pinned->dp.egress_count(), 1u);
  EXPECT_FALSE(pinned->dp.egress(kB2toA1).has_value());
  EXPECT_EQ(pinned->dp.egress(kB1toA1)->outer_ip, ip("192.0.2.1"));
  // Before the pin, one request cannot name two addresses for one peer.
  auto split = make_b_with_c();
  auto two = request_from_a({1});
  two.tunnels[0].reverse_params = params_of_a(0x17, 0xab);
  two.tunnels.push_back(TunnelRequest{ip("10.0.0.1"), ip("10.0.1.2"), params_of_a(0x18, 0xcd)});
  two.tunnels[1].reverse_params->outer_ip = ip("203.0.113.9");
  EXPECT_EQ(split->tm->handle_tunnel_request(from_peer(), two).error().code, ControlError::kPermissionDenied);
  EXPECT_EQ(split->dp.ingress_count(), 0u);
  EXPECT_FALSE(split->tm->bound_pip(0).has_value());
}

TEST(TunnelManagerAuthorisation, AnAnswerNamingAnotherPipFailsThePair) {
  // A is told B is at 198.51.100.2; B answers with its real outer address 192.0.2.2.
  auto a = std::make_unique<Gateway>("192.0.2.1", "02:00:00:00:00:0A",
                                     std::vector<PeerPolicy>{{"B", {kA1toB1, kA1toB2}, ip("198.51.100.2")}});
  auto b = make_b();
  LoopbackTransport to_b;
  to_b.peers = {b->tm.get()};
  auto r = a->tm->connect(kA1toB1, to_b);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ControlError::kPermissionDenied);
  EXPECT_EQ(a->dp.egress_count(), 0u);
  EXPECT_EQ(a->dp.ingress_count(), 0u);
  EXPECT_EQ(a->tm->state(kA1toB1), PairState::kBackoff);
}

TEST(TunnelManagerAuthorisation, PeerRotationsAreRateLimitedPerPeer) {
  auto b = make_b_with_c();
  const auto g0 = b->dp.master_keys()->generation();
  ASSERT_TRUE(b->tm->handle_key_rotation(from_peer(0), KeyRotationRequest{1, false}).ok());
  for (int i = 0; i < 100; ++i) {  // a flood: refused, and logged a few times only
    auto again = b->tm->handle_key_rotation(from_peer(0), KeyRotationRequest{2, false});
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code, ControlError::kResourceExhausted);
  }
  EXPECT_EQ(b->dp.master_keys()->generation(), g0 + 1);
  EXPECT_GE(count_lines(b->log, "refused key rotation requested by peer A"), 1u);
  EXPECT_LE(count_lines(b->log, "refused key rotation requested by peer A"), 10u);
  // Another peer has its own budget; the operator has none.
  EXPECT_TRUE(b->tm->handle_key_rotation(from_peer(1), KeyRotationRequest{3, false}).ok());
  (void)b->tm->rotate_master_key();
  EXPECT_EQ(b->dp.master_keys()->generation(), g0 + 3);
  // A shared-host caller is limited by each of its peers.
  EXPECT_FALSE(b->tm->handle_key_rotation(Caller{{0, 1}, "shared"}, KeyRotationRequest{4, false}).ok());
  b->clock.t += std::chrono::seconds(59);
  EXPECT_FALSE(b->tm->handle_key_rotation(from_peer(0), KeyRotationRequest{5, false}).ok());
  b->clock.t += std::chrono::seconds(1);
  EXPECT_TRUE(b->tm->handle_key_rotation(from_peer(0), KeyRotationRequest{6, false}).ok());
  EXPECT_FALSE(b->tm->handle_key_rotation(Caller{{}, "nobody"}, KeyRotationRequest{7, false}).ok());
  // The interval is an option.
  auto free = make_b_with_c(std::nullopt, [](TunnelManagerOptions& o) { o.peer_rotation_interval = {}; });
  EXPECT_TRUE(free->tm->handle_key_rotation(from_peer(0), KeyRotationRequest{1, false}).ok());
  EXPECT_TRUE(free->tm->handle_key_rotation(from_peer(0), KeyRotationRequest{2, false}).ok());
}

// A data plane whose key publication blocks until released: holds a rotation "in flight".
class GatedDataPlane final : public DataPlane {
 public:
  Status<DataPlaneError> open_ingress(uint32_t spi, const net::IpAddr& r, const net::IpAddr& l) override {
    return inner.open_ingress(spi, r, l);
  }
  Status<DataPlaneError> close_ingress(uint32_t spi, const net::IpAddr& r, const net::IpAddr& l) override {
    return inner.close_ingress(spi, r, l);
  }
  Status<DataPlaneError> install_egress(const VipPair& pair, TxSa sa) override {
    return inner.install_egress(pair, std::move(sa));
  }
  Status<DataPlaneError> remove_egress(const VipPair& pair) override { return inner.remove_egress(pair); }
  void publish_master_keys(std::shared_ptr<const psp::MasterKeySnapshot> keys) override {
    std::unique_lock lock(mu);
    ++publishing;
    cv.notify_all();
    cv.wait(lock, [&] { return !gated; });
    inner.publish_master_keys(std::move(keys));
  }
  FakeDataPlane inner;
  std::mutex mu;
  std::condition_variable cv;
  bool gated = false;
  int publishing = 0;
};

TEST(TunnelManagerAuthorisation, OnlyOnePeerRotationIsInFlight) {
  GatedDataPlane dp;
  TunnelManagerOptions o;
  o.local = LocalIdentity{mac("02:00:00:00:00:0B"), ip("192.0.2.2")};
  o.log = [](std::string_view) {};
  TunnelManager b(psp::KeyRing::with_random_key(), {{"A", {kB1toA1}}, {"C", {kB1toC1}}}, dp, std::move(o));
  {
    std::lock_guard lock(dp.mu);
    dp.gated = true;
    dp.publishing = 0;
  }
  std::thread first([&] {
    EXPECT_TRUE(b.handle_key_rotation(from_peer(0), KeyRotationRequest{1, false}).ok());
  });
  {
    std::unique_lock lock(dp.mu);
    ASSERT_TRUE(dp.cv.wait_for(lock, std::chrono::seconds(10), [&] { return dp.publishing == 1; }));
  }
  // Peer C, within its own rate limit, is refused while A's rotation is in flight.
  auto second = b.handle_key_rotation(from_peer(1), KeyRotationRequest{2, false});
  {
    std::lock_guard lock(dp.mu);
    dp.gated = false;
  }
  dp.cv.notify_all();
  first.join();
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ControlError::kResourceExhausted);
  EXPECT_EQ(second.error().message, "a key rotation is in progress");
  // Once it is done, C may rotate.
  EXPECT_TRUE(b.handle_key_rotation(from_peer(1), KeyRotationRequest{3, false}).ok());
}

TEST(TunnelManagerAuthorisation, OversizedRequestIsInvalidAndChangesNothing) {
  auto b = make_b_with_c(std::nullopt, [](TunnelManagerOptions& o) { o.max_tunnels_per_request = 1; });
  auto req = request_from_a({1});
  req.tunnels[0].reverse_params = params_of_a(0x17, 0xab);
  req.tunnels.push_back(TunnelRequest{ip("10.0.0.1"), ip("10.0.1.2"), params_of_a(0x18, 0xcd)});
  auto r = b->tm->handle_tunnel_request(from_peer(), req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ControlError::kInvalidArgument);
  EXPECT_EQ(r.error().message, "request has 2 tunnels, at most 1 are accepted");
  EXPECT_EQ(b->dp.ingress_count(), 0u);
  EXPECT_EQ(b->dp.egress_count(), 0u);
  EXPECT_TRUE(b->tm->sessions().empty());
  EXPECT_FALSE(b->tm->bound_pip(0).has_value());  // nothing pinned by a refused request
}

TEST(TunnelManagerAuthorisation, RefusalLogIsRateLimited) {
  auto b = make_b_with_c();
  for (int i = 0; i < 1000; ++i) {
    ASSERT_FALSE(b->tm->handle_tunnel_request(from_peer(1), request_from_a({1})).ok());
  }
  const std::size_t lines = count_lines(b->log, "belongs to peer A");
  EXPECT_GE(lines, 1u);
  EXPECT_LE(lines, 10u);
  b->clock.t += std::chrono::seconds(5);
  ASSERT_FALSE(b->tm->handle_tunnel_request(from_peer(1), request_from_a({1})).ok());
  EXPECT_EQ(count_lines(b->log, "similar lines suppressed"), 1u);
}

TEST(TunnelManagerKeys, KeysAreLoggedOnlyWithDebugKeys) {
  for (bool debug : {false, true}) {
    auto a = make_a([&](TunnelManagerOptions& o) { o.debug_keys = debug; });
    auto b = make_b();
    LoopbackTransport t;
    t.peers = {b->tm.get()};
    ASSERT_TRUE(a->tm->connect(kA1toB1, t).ok());
    const std::string key_hex = to_hex(a->dp.egress(kA1toB1)->key);
    const bool logged = std::any_of(a->log.begin(), a->log.end(), [&](const std::string& l) {
      return l.find(key_hex) != std::string::npos;
    });
    EXPECT_EQ(logged, debug);
  }
}

// ---- rotation and re-key (issue 7 §3) ----

namespace rotation {

// A connected A <-> B pair with both transports.
struct Connected {
  std::unique_ptr<Gateway> a = make_a();
  std::unique_ptr<Gateway> b = make_b();
  LoopbackTransport to_a, to_b;
  Connected() {
    to_a.peers = {a->tm.get()};
    to_b.peers = {b->tm.get()};
    EXPECT_TRUE(a->tm->connect(kA1toB1, to_b).ok());
  }
  // The SPI A sends with is open on B (and B's on A): the tunnel carries traffic both ways.
  bool both_ways() const {
    auto ab = a->dp.egress(kA1toB1);
    auto ba = b->dp.egress(kB1toA1);
    return ab && ba && b->dp.ingress_open(ab->spi, kB1toA1) && a->dp.ingress_open(ba->spi, kA1toB1);
  }
};

TEST(TunnelManagerRotation, EveryRotationMarksReKeysWhateverIssueNewKeysSaid) {
  Connected c;
  ASSERT_TRUE(c.b->tm->handle_key_rotation(from_peer(), KeyRotationRequest{1, false}).ok());
  EXPECT_EQ(c.b->rekey_wakeups, 0);  // issue_new_keys=false: the control thread's next tick runs it
  EXPECT_EQ(c.b->tm->rekey_due(), (std::vector<VipPair>{kB1toA1}));
  ASSERT_TRUE(c.b->tm->rekey(kB1toA1, c.to_a).ok());
  EXPECT_EQ(c.b->tm->rekeys_pending(), 0u);

  c.b->clock.t += std::chrono::seconds(1);
  RotationOutcome pspctl = c.b->tm->request_rotation();
  EXPECT_FALSE(pspctl.deferred);
  EXPECT_EQ(pspctl.report.rekey_due, 1u);
  EXPECT_EQ(pspctl.report.lost, 0u);
  ASSERT_TRUE(c.b->tm->rekey(kB1toA1, c.to_a).ok());
  EXPECT_TRUE(c.both_ways());

  // The timer: nothing before the interval, a rotation (and a re-key due) after it.
  auto t = make_b([](TunnelManagerOptions& o) { o.rotation_interval = std::chrono::minutes(10); });
  LoopbackTransport to_t;
  to_t.peers = {t->tm.get()};
  auto a2 = make_a();
  ASSERT_TRUE(a2->tm->connect(kA1toB1, to_t).ok());
  t->clock.t += std::chrono::minutes(10) - milliseconds(1);
  EXPECT_FALSE(t->tm->maintain_rotation().has_value());
  t->clock.t += milliseconds(1);
  auto timed = t->tm->maintain_rotation();
  ASSERT_TRUE(timed.has_value());
  EXPECT_EQ(timed->rekey_due, 1u);
  EXPECT_EQ(t->tm->rekey_due(), (std::vector<VipPair>{kB1toA1}));
  EXPECT_FALSE(t->tm->maintain_rotation().has_value());  // the next one is an interval away
  // The log says it once per rotation, with counts.
  EXPECT_EQ(std::count_if(t->log.begin(), t->log.end(),
                          [](const std::string& l) { return l.rfind("master key rotated", 0) == 0; }),
            1);
}

TEST(TunnelManagerRotation, FailedReKeyIsRetriedWithCappedBackoffAndNotLoggedPerTunnel) {
  Connected c;
  c.b->tm->rotate_master_key();
  const std::size_t log_lines = c.b->log.size();
  for (int i = 0; i < 6; ++i)  // 250, 500, 1000, 2000, 2000 (capped), 2000 ms
    c.to_a.scripted_failures[0].push_back(Error{ControlError::kUnavailable, "A: unavailable"});
  std::vector<milliseconds> waits;
  for (int i = 0; i < 6; ++i) {
    ASSERT_EQ(c.b->tm->rekey_due(), (std::vector<VipPair>{kB1toA1})) << i;
    EXPECT_FALSE(c.b->tm->rekey(kB1toA1, c.to_a).ok());
    EXPECT_TRUE(c.b->tm->rekey_due().empty());  // backing off
    waits.push_back(
        std::chrono::duration_cast<milliseconds>(c.b->tm->session(kB1toA1)->retry_at - c.b->clock.t));
    c.b->clock.t = c.b->tm->session(kB1toA1)->retry_at;
    EXPECT_TRUE(c.both_ways()) << "the old SPI carries traffic while the re-key is retried";
  }
  EXPECT_EQ(waits, (std::vector<milliseconds>{milliseconds(100), milliseconds(200), milliseconds(400),
                                              milliseconds(800), milliseconds(1600), milliseconds(2000)}));
  EXPECT_EQ(c.b->log.size(), log_lines);  // failures are summarised, not one line per tunnel and try
  ASSERT_TRUE(c.b->tm->rekey(kB1toA1, c.to_a).ok());
  EXPECT_EQ(c.b->tm->rekeys_pending(), 0u);
  EXPECT_EQ(c.b->tm->session(kB1toA1)->retry_at, Clock::time_point{});
  EXPECT_FALSE(c.b->tm->maintain_rotation().has_value());
  EXPECT_NE(c.b->log.back().find("1 tunnels re-keyed in 5100 ms (6 failed tries retried)"), std::string::npos)
      << c.b->log.back();
  // The next rotation finds nothing lost.
  EXPECT_EQ(c.b->tm->rotate_master_key().lost, 0u);
  EXPECT_TRUE(c.both_ways());
}

TEST(TunnelManagerRotation, SecondRotationWaitsForPendingReKeys) {
  Connected c;
  const uint32_t first_spi = c.a->dp.egress(kA1toB1)->spi;
  EXPECT_FALSE(c.b->tm->request_rotation().deferred);
  // pspctl (or a peer) asks again before the re-key ran: rotating now would kill first_spi.
  RotationOutcome again = c.b->tm->request_rotation();
  EXPECT_TRUE(again.deferred);
  EXPECT_EQ(again.rekeys_pending, 1u);
  EXPECT_EQ(again.report.generation, 1u);
  EXPECT_FALSE(c.b->tm->handle_key_rotation(from_peer(), KeyRotationRequest{5, true}).value().request_id !=
               5);
  EXPECT_FALSE(c.b->tm->maintain_rotation().has_value());
  EXPECT_EQ(c.b->dp.master_keys()->generation(), 1u);
  EXPECT_TRUE(c.b->dp.ingress_open(first_spi, kB1toA1));

  ASSERT_TRUE(c.b->tm->rekey(kB1toA1, c.to_a).ok());
  // Re-keyed, but A may still have packets sealed with first_spi in flight: a second's grace.
  c.b->clock.t += milliseconds(999);
  EXPECT_FALSE(c.b->tm->maintain_rotation().has_value());
  c.b->clock.t += milliseconds(1);
  auto second = c.b->tm->maintain_rotation();  // the deferred one, now that nothing is pending
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->generation, 2u);
  EXPECT_EQ(second->lost, 0u);
  EXPECT_TRUE(c.both_ways());
  EXPECT_FALSE(c.b->tm->maintain_rotation().has_value());  // the queued third waits for its re-key
  ASSERT_TRUE(c.b->tm->rekey(kB1toA1, c.to_a).ok());
  c.b->clock.t += std::chrono::seconds(1);
  auto third = c.b->tm->maintain_rotation();
  ASSERT_TRUE(third.has_value());
  EXPECT_EQ(third->generation, 3u);
  EXPECT_TRUE(c.both_ways());
}

TEST(TunnelManagerRotation, AnUnreachablePeerDelaysARotationAtMostTheReKeyWindow) {
  Connected c;
  c.b->tm->rotate_master_key();
  c.to_a.peers = {nullptr};  // A stops answering
  EXPECT_FALSE(c.b->tm->rekey(kB1toA1, c.to_a).ok());
  EXPECT_TRUE(c.b->tm->request_rotation().deferred);
  c.b->clock.t += std::chrono::seconds(30) - milliseconds(1);
  EXPECT_FALSE(c.b->tm->maintain_rotation().has_value());
  c.b->clock.t += milliseconds(1);
  auto forced = c.b->tm->maintain_rotation();
  ASSERT_TRUE(forced.has_value());
  EXPECT_EQ(forced->lost, 1u);    // counted
  EXPECT_EQ(forced->closed, 1u);  // and closed: re-made on demand once A answers again
  EXPECT_FALSE(c.b->tm->session(kB1toA1).has_value());
  c.to_a.peers = {c.a->tm.get()};
  ASSERT_TRUE(c.b->tm->connect(kB1toA1, c.to_a).ok());
  EXPECT_TRUE(c.both_ways());
}

// Both sides re-key the same pair at once (B's request reaches A while A's is in flight): each keeps
// the params of the other's request, which is what the other counts as done, and nothing in use closes.
TEST(TunnelManagerRotation, CrossingReKeysAgreeOnTheSpisInUse) {
  Connected c;
  c.a->tm->rotate_master_key();
  c.b->tm->rotate_master_key();
  bool crossed = false;
  c.to_b.before_send = [&](PeerIndex, const MultiTunnelRequest&) {
    if (crossed) return;
    crossed = true;
    ASSERT_TRUE(c.b->tm->rekey(kB1toA1, c.to_a).ok());  // served by A while A's own is in flight
  };
  ASSERT_TRUE(c.a->tm->rekey(kA1toB1, c.to_b).ok());
  ASSERT_TRUE(crossed);
  EXPECT_TRUE(c.both_ways());
  EXPECT_EQ(c.a->tm->rekeys_pending(), 0u);
  EXPECT_EQ(c.b->tm->rekeys_pending(), 0u);
  // Superseded SPIs close after the retire delay, the ones in use stay.
  c.a->clock.t += std::chrono::seconds(1);
  c.b->clock.t += std::chrono::seconds(1);
  (void)c.a->tm->maintain_rotation();
  (void)c.b->tm->maintain_rotation();
  EXPECT_TRUE(c.both_ways());
  EXPECT_LE(c.a->tm->session(kA1toB1)->ingress_spis.size(), 2u);
  // Two more rotations on each side, re-keyed in between: nothing lost.
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(c.a->tm->rotate_master_key().lost, 0u);
    EXPECT_EQ(c.b->tm->rotate_master_key().lost, 0u);
    EXPECT_TRUE(c.both_ways());
    ASSERT_TRUE(c.a->tm->rekey(kA1toB1, c.to_b).ok());
    ASSERT_TRUE(c.b->tm->rekey(kB1toA1, c.to_a).ok());
    EXPECT_TRUE(c.both_ways());
  }
}

// A transport whose answers reach the caller only after `between` ran: an answer delayed in the network.
struct DelayedAnswers final : PeerTransport {
  LoopbackTransport& inner;
  std::function<void()> between;
  explicit DelayedAnswers(LoopbackTransport& t) : inner(t) {}
  CResult<MultiTunnelResponse> request_tunnels(PeerIndex peer, const MultiTunnelRequest& request) override {
    auto answer = inner.request_tunnels(peer, request);
    if (between) std::exchange(between, {})();
    return answer;
  }
  CResult<KeyRotationResponse> request_key_rotation(PeerIndex peer, const KeyRotationRequest& r) override {
    return inner.request_key_rotation(peer, r);
  }
};

// The other crossing: A answers B's re-key, then rotates and re-keys itself; B serves A's request before
// A's (older) answer to B arrives. B must keep A's newer SPI: the one A counts as done. Installing the
// late answer would make B send with an SPI that A retires (and whose slot A's next rotation kills).
TEST(TunnelManagerRotation, ALateAnswerDoesNotUndoANewerReKey) {
  Connected c;
  c.b->tm->rotate_master_key();
  DelayedAnswers slow_to_a(c.to_a);
  slow_to_a.between = [&] {
    c.a->tm->rotate_master_key();
    ASSERT_TRUE(c.a->tm->rekey(kA1toB1, c.to_b).ok());
  };
  ASSERT_TRUE(c.b->tm->rekey(kB1toA1, slow_to_a).ok());
  EXPECT_EQ(psp::spi_slot(c.b->dp.egress(kB1toA1)->spi), 1);  // A's new slot, not the late answer's
  c.a->clock.t += std::chrono::seconds(1);
  (void)c.a->tm->maintain_rotation();  // retires what A's re-key superseded
  EXPECT_TRUE(c.both_ways());
  EXPECT_EQ(c.a->tm->rotate_master_key().lost, 0u);
  EXPECT_TRUE(c.both_ways());
}

// 256 tunnels (the default -x) in a data plane with room for kMaxIngressPerSession SPIs each: every one
// re-keys through three rotations of each side, none is lost, no open fails.
TEST(TunnelManagerRotation, TwoHundredFiftySixTunnelsAllReKey) {
  constexpr std::size_t kTunnels = 256;
  std::vector<VipPair> a_pairs, b_pairs;
  for (std::size_t i = 0; i < kTunnels; ++i) {
    const std::string remote = "10.1." + std::to_string(i / 250) + "." + std::to_string(1 + i % 250);
    a_pairs.push_back(pair("10.0.0.1", remote));
    b_pairs.push_back(pair(remote, "10.0.0.1"));
  }
  auto sized = [](TunnelManagerOptions& o) { o.max_tunnels = kTunnels; };
  Gateway a("192.0.2.1", "02:00:00:00:00:0A", {{"B", a_pairs}}, sized);
  Gateway b("192.0.2.2", "02:00:00:00:00:0B", {{"A", b_pairs}}, sized);
  a.dp.set_ingress_capacity(kMaxIngressPerSession * kTunnels);
  b.dp.set_ingress_capacity(kMaxIngressPerSession * kTunnels);
  LoopbackTransport to_a, to_b;
  to_a.peers = {a.tm.get()};
  to_b.peers = {b.tm.get()};
  for (const VipPair& p : a_pairs) ASSERT_TRUE(a.tm->connect(p, to_b).ok());
  for (int round = 0; round < 3; ++round) {
    for (Gateway* g : {&a, &b}) {
      RotationOutcome r = g->tm->request_rotation();
      ASSERT_FALSE(r.deferred) << round;
      EXPECT_EQ(r.report.lost, 0u);
      EXPECT_EQ(r.report.rekey_due, kTunnels);
    }
    for (const VipPair& p : a.tm->rekey_due()) ASSERT_TRUE(a.tm->rekey(p, to_b).ok());
    for (const VipPair& p : b.tm->rekey_due()) ASSERT_TRUE(b.tm->rekey(p, to_a).ok());
    EXPECT_EQ(a.tm->rekeys_pending() + b.tm->rekeys_pending(), 0u);
    for (std::size_t i = 0; i < kTunnels; ++i) {
      const auto ab = a.dp.egress(a_pairs[i]);
      const auto ba = b.dp.egress(b_pairs[i]);
      ASSERT_TRUE(ab && ba);
      ASSERT_TRUE(b.dp.ingress_open(ab->spi, b_pairs[i]) && a.dp.ingress_open(ba->spi, a_pairs[i])) << i;
    }
    a.clock.t += std::chrono::seconds(1);
    b.clock.t += std::chrono::seconds(1);
    EXPECT_FALSE(a.tm->maintain_rotation().has_value());  // retires the superseded SPIs
    EXPECT_FALSE(b.tm->maintain_rotation().has_value());
    // Between windows a tunnel is back to at most two SPIs: the one its peer uses, and the one its peer's
    // last answer carried if that came later.
    EXPECT_LE(a.dp.ingress_count(), 2 * kTunnels);
    EXPECT_LE(b.dp.ingress_count(), 2 * kTunnels);
  }
}

TEST(TunnelManagerIdle, QuietTunnelsAgeOutAndBusyOnesStay) {
  Connected c;
  ASSERT_TRUE(c.a->tm->connect(kA1toB2, c.to_b).ok());
  ActivityMap activity{{kA1toB1, 0}, {kA1toB2, 0}};
  const auto timeout = std::chrono::seconds(60);
  EXPECT_EQ(c.a->tm->expire_idle(activity, timeout), 0u);
  c.a->clock.t += std::chrono::seconds(40);
  activity[kA1toB1] = 7;  // packets on A1 -> B1 only
  EXPECT_EQ(c.a->tm->expire_idle(activity, timeout), 0u);
  c.a->clock.t += std::chrono::seconds(20);
  EXPECT_EQ(c.a->tm->expire_idle(activity, timeout), 1u);
  EXPECT_FALSE(c.a->tm->session(kA1toB2).has_value());
  EXPECT_TRUE(c.a->tm->session(kA1toB1).has_value());
  EXPECT_EQ(c.a->dp.egress_count(), 1u);
  EXPECT_EQ(c.a->dp.ingress_spis(kA1toB2).size(), 0u);
  EXPECT_NE(c.a->log.back().find("1 idle tunnel(s) closed"), std::string::npos) << c.a->log.back();
  c.a->clock.t += std::chrono::seconds(60);
  EXPECT_EQ(c.a->tm->expire_idle(activity, timeout), 1u);
  EXPECT_TRUE(c.a->tm->sessions().empty());
  EXPECT_EQ(c.a->dp.ingress_count() + c.a->dp.egress_count(), 0u);
  // Traffic afterwards makes it again on demand.
  ASSERT_TRUE(c.a->tm->connect(kA1toB1, c.to_b).ok());
  EXPECT_TRUE(c.both_ways());
}

}  // namespace rotation
}  // namespace
}  // namespace pspgw::control

namespace pspgw::control {
namespace {

// ---- reconfiguration (reload) ----

TEST(TunnelManagerReconfigure, UnaffectedSessionsStayRemovedOnesCloseIndicesAreStable) {
  auto a = make_a();
  auto b = make_b();
  LoopbackTransport t;
  t.peers = {b->tm.get()};
  ASSERT_TRUE(a->tm->connect(kA1toB1, t).ok());
  ASSERT_TRUE(a->tm->connect(kA1toB2, t).ok());
  const auto before = a->tm->session(kA1toB1);
  ASSERT_TRUE(before && before->egress_spi);

  // B loses the pair A1->B2; a peer C is added.
  const VipPair a1_to_c = pair("10.0.0.1", "10.0.2.1");
  ReconfigureReport r = a->tm->reconfigure({{"B", {kA1toB1}}, {"C", {a1_to_c}}}, {});
  EXPECT_EQ(r.index, (std::vector<PeerIndex>{0, 1}));
  EXPECT_EQ(r.added, std::vector<PeerIndex>{1});
  EXPECT_TRUE(r.removed.empty());
  EXPECT_EQ(r.pairs_added, 1u);
  EXPECT_EQ(r.pairs_removed, 1u);
  EXPECT_EQ(r.sessions_closed, 1u);
  EXPECT_FALSE(a->dp.egress(kA1toB2).has_value());  // torn down: egress and ingress
  EXPECT_TRUE(a->dp.ingress_spis(kA1toB2).empty());
  const auto after = a->tm->session(kA1toB1);  // untouched: same SPIs, same egress
  ASSERT_TRUE(after);
  EXPECT_EQ(after->egress_spi, before->egress_spi);
  EXPECT_EQ(after->ingress_spis, before->ingress_spis);
  EXPECT_EQ(a->tm->peer_of(a1_to_c), PeerIndex{1});
  EXPECT_FALSE(a->tm->peer_of(kA1toB2).has_value());
  EXPECT_EQ(a->tm->begin_exchange(kA1toB2).error().code, ControlError::kNotFound);

  // B removed: its slot stays (index 0, empty), C keeps index 1.
  r = a->tm->reconfigure({{"C", {a1_to_c}}}, {});
  EXPECT_EQ(r.index, std::vector<PeerIndex>{1});
  EXPECT_EQ(r.removed, std::vector<PeerIndex>{0});
  EXPECT_EQ(r.sessions_closed, 1u);
  EXPECT_TRUE(a->tm->removed(0));
  EXPECT_EQ(a->tm->peer_count(), 2u);
  EXPECT_FALSE(a->tm->session(kA1toB1).has_value());
  EXPECT_FALSE(a->tm->peer_by_outer(ip("192.0.2.2")).has_value());  // a removed slot matches nothing

  // B back: it takes its old slot again.
  r = a->tm->reconfigure({{"C", {a1_to_c}}, {"B", {kA1toB1}}}, {});
  EXPECT_EQ(r.index, (std::vector<PeerIndex>{1, 0}));
  EXPECT_EQ(r.added, std::vector<PeerIndex>{0});
  EXPECT_FALSE(a->tm->removed(0));
  EXPECT_TRUE(a->tm->connect(kA1toB1, t).ok());
}

// CloseTunnels: a reload that closes tunnels tells their peers, which close their halves; a peer that
// cannot (unreachable, or a DOCA peer: kUnimplemented) is named for the log.
TEST(TunnelManagerReconfigure, ClosedTunnelsCloseOnThePeerToo) {
  auto a = make_a();
  auto b = make_b();
  LoopbackTransport t;
  t.peers = {b->tm.get()};
  ASSERT_TRUE(a->tm->connect(kA1toB1, t).ok());
  ASSERT_TRUE(a->tm->connect(kA1toB2, t).ok());
  ASSERT_TRUE(b->tm->session(kB2toA1).has_value());
  const ReconfigureReport r = a->tm->reconfigure({{"B", {kA1toB1}}}, {});
  ASSERT_EQ(r.closed.size(), 1u);
  EXPECT_EQ(r.closed[0].first, PeerIndex{0});
  EXPECT_EQ(r.closed[0].second, kA1toB2);
  EXPECT_TRUE(a->tm->notify_closed(r.closed, t).empty());
  EXPECT_FALSE(b->tm->session(kB2toA1).has_value());  // B's half: egress and ingress gone
  EXPECT_FALSE(b->dp.egress(kB2toA1).has_value());
  EXPECT_TRUE(b->dp.ingress_spis(kB2toA1).empty());
  const auto kept = b->tm->session(kB1toA1);  // the other tunnel untouched on both sides
  ASSERT_TRUE(kept && kept->egress_spi);
  // The peer gone: one line saying so, nothing else happens.
  t.peers = {nullptr};
  const auto lines = a->tm->notify_closed({{0, kA1toB1}}, t);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("did not close its half"), std::string::npos) << lines[0];
}

TEST(TunnelManagerServer, CloseRequestsAreAuthorisedBoundedAndRateLimited) {
  auto a = make_a();
  auto b = make_b();
  LoopbackTransport t;
  t.peers = {b->tm.get()};
  ASSERT_TRUE(a->tm->connect(kA1toB1, t).ok());
  // Not A's to close: B1 <-> A1 belongs to peer 0 (A); a caller acting for another peer only is refused.
  Caller other;
  other.proof = "certificate 10.9.9.9";
  (void)b->tm->reconfigure({{"A", {kB1toA1, kB2toA1}}, {"X", {pair("10.0.1.1", "10.0.9.9")}}}, {});
  other.peers = {1};
  auto refused = b->tm->handle_close_request(other, {1, {{ip("10.0.0.1"), ip("10.0.1.1")}}});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ControlError::kPermissionDenied);
  EXPECT_TRUE(b->tm->session(kB1toA1).has_value());
  // Too many tunnels in one request.
  CloseTunnelsRequest big{2, {}};
  big.tunnels.assign(kMaxClosePerRequest + 1, TunnelClose{ip("10.0.0.1"), ip("10.0.1.1")});
  auto too_big = b->tm->handle_close_request(from_peer(0), big);
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.error().code, ControlError::kInvalidArgument);
  // A burst, then the rate limit; time refills it.
  for (int i = 0; i < static_cast<int>(kCloseBurst); ++i)
    EXPECT_TRUE(b->tm->handle_close_request(from_peer(0), {3, {}}).ok()) << i;
  auto limited = b->tm->handle_close_request(from_peer(0), {4, {}});
  ASSERT_FALSE(limited.ok());
  EXPECT_EQ(limited.error().code, ControlError::kResourceExhausted);
  b->clock.t += std::chrono::seconds(1);
  auto closed = b->tm->handle_close_request(from_peer(0), {5, {{ip("10.0.0.1"), ip("10.0.1.1")}}});
  ASSERT_TRUE(closed.ok()) << closed.error().message;
  EXPECT_EQ(closed->closed, 1u);
  EXPECT_FALSE(b->tm->session(kB1toA1).has_value());
}

TEST(TunnelManagerReconfigure, RequestsForARemovedPairAreRefused) {
  auto a = make_a();
  auto b = make_b();
  LoopbackTransport t;
  t.peers = {b->tm.get()};
  (void)b->tm->reconfigure({{"A", {kB2toA1}}}, {});  // B no longer allows B1 <-> A1
  auto r = a->tm->connect(kA1toB1, t);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ControlError::kPermissionDenied);
}

TEST(TunnelManagerReconfigure, MovedVipsAndChangedPipsCloseTheirSessions) {
  auto a = make_a();
  auto b = make_b();
  LoopbackTransport t;
  t.peers = {b->tm.get()};
  ASSERT_TRUE(a->tm->connect(kA1toB1, t).ok());
  ReconfigureReport r = a->tm->reconfigure({{"B", {kA1toB1, kA1toB2}}}, {ip("10.0.0.1")});
  EXPECT_EQ(r.sessions_closed, 1u);
  EXPECT_EQ(r.pairs_added + r.pairs_removed, 0u);
  ASSERT_TRUE(a->tm->connect(kA1toB1, t).ok());
  r = a->tm->reconfigure({{"B", {kA1toB1, kA1toB2}, ip("192.0.2.99")}}, {});
  EXPECT_EQ(r.sessions_closed, 1u);
  EXPECT_EQ(a->tm->bound_pip(0), ip("192.0.2.99"));
}

}  // namespace
}  // namespace pspgw::control
