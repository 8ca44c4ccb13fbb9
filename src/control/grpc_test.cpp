// In-process gRPC: two gateways, each a TunnelManager behind a GrpcService on 127.0.0.1:<ephemeral>,
// each reaching the other through a GrpcPeerClient.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

#include "base/hex.hpp"
#include "control/fake_data_plane.hpp"
#include "control/grpc_peer_client.hpp"
#include "control/grpc_service.hpp"
#include "control/test_util.hpp"

namespace pspgw::control {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace)
using std::chrono::milliseconds;

const VipPair kA1toB1 = pair("10.0.0.1", "10.0.1.1");
const VipPair kA1toB9 = pair("10.0.0.1", "10.0.1.9");  // A thinks B serves 10.0.1.9; B does not agree
const VipPair kB1toA1 = pair("10.0.1.1", "10.0.0.1");
const VipPair kB2toA1 = pair("10.0.1.2", "10.0.0.1");
const VipPair kA1toB2 = pair("10.0.0.1", "10.0.1.2");

struct Node {
  FakeDataPlane dp;
  std::atomic<int> rekey_wakeups{0};
  std::unique_ptr<TunnelManager> tm;
  std::unique_ptr<GrpcServer> server;

  Node(std::string_view pip, std::vector<PeerPolicy> peers) {
    TunnelManagerOptions o;
    o.local = LocalIdentity{mac("02:00:00:00:00:01"), ip(pip)};
    o.log = [](std::string_view) {};
    o.on_rekey_due = [this] { ++rekey_wakeups; };
    o.peer_rotation_interval = {};  // these tests rotate back to back; the limit has its own (tls_test.cpp)
    const std::size_t n = peers.size();
    tm = std::make_unique<TunnelManager>(psp::KeyRing::with_random_key(), std::move(peers), dp, std::move(o));
    // Plaintext (--grpc-insecure): every peer is at 127.0.0.1. Mutual TLS: tls_test.cpp.
    GrpcServerOptions so;
    so.peers = PeerDirectory(std::vector<std::string>(n, "127.0.0.1"));
    so.log = [](std::string_view) {};
    auto s = GrpcServer::start("127.0.0.1:0", *tm, std::move(so));
    EXPECT_TRUE(s.ok());
    if (s.ok()) server = std::move(s.value());
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(server->port()); }
};

class GrpcPair : public ::testing::Test {
 protected:
  Node a{"192.0.2.1", {{"B", {kA1toB1, kA1toB2, kA1toB9}}}};
  Node b{"192.0.2.2", {{"A", {kB1toA1, kB2toA1}}}};
  GrpcPeerClient a_to_b{{b.address()}};
  GrpcPeerClient b_to_a{{a.address()}};
};

TEST_F(GrpcPair, OnDemandExchangeBothWays) {
  ASSERT_NE(a.server->port(), 0);
  auto ab = a.tm->connect(kA1toB1, a_to_b);
  ASSERT_TRUE(ab.ok()) << ab.error().message;
  auto ba = b.tm->connect(kB2toA1, b_to_a);
  ASSERT_TRUE(ba.ok()) << ba.error().message;

  for (const auto& [x, y, xy, yx] :
       {std::tuple{&a, &b, kA1toB1, kB1toA1}, std::tuple{&b, &a, kB2toA1, kA1toB2}}) {
    auto tx = x->dp.egress(xy);
    auto rx = y->dp.egress(yx);
    ASSERT_TRUE(tx && rx);
    EXPECT_TRUE(y->dp.ingress_open(tx->spi, yx));
    EXPECT_TRUE(x->dp.ingress_open(rx->spi, xy));
    // The key that crossed the wire is the one the receiver derives from its master key.
    EXPECT_EQ(tx->key, bytes_of(*y->dp.master_keys()->derive(tx->spi, psp::PspVersion::kAesGcm256)));
    EXPECT_EQ(rx->key, bytes_of(*x->dp.master_keys()->derive(rx->spi, psp::PspVersion::kAesGcm256)));
  }
  EXPECT_EQ(a.dp.egress(kA1toB1)->outer_ip, ip("192.0.2.2"));
  EXPECT_EQ(a.dp.egress(kA1toB1)->virt_cookie, 0x778899aabbccddeeULL);
}

// Both sides miss at once and request each other: the manager holds no lock across an RPC, so neither
// blocks the other's server, and both end connected with consistent SAs.
TEST_F(GrpcPair, SimultaneousOpenFromBothSides) {
  CStatus ab, ba;
  std::thread t1([&] { ab = a.tm->connect(kA1toB1, a_to_b); });
  std::thread t2([&] { ba = b.tm->connect(kB1toA1, b_to_a); });
  t1.join();
  t2.join();
  ASSERT_TRUE(ab.ok()) << ab.error().message;
  ASSERT_TRUE(ba.ok()) << ba.error().message;
  auto a_tx = a.dp.egress(kA1toB1);
  auto b_tx = b.dp.egress(kB1toA1);
  ASSERT_TRUE(a_tx && b_tx);
  EXPECT_TRUE(b.dp.ingress_open(a_tx->spi, kB1toA1));
  EXPECT_TRUE(a.dp.ingress_open(b_tx->spi, kA1toB1));
  EXPECT_LE(a.dp.ingress_spis(kA1toB1).size(), 2u);
}

TEST_F(GrpcPair, PeerStatusArrivesAsTypedError) {
  auto r = a.tm->connect(kA1toB9, a_to_b);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ControlError::kPermissionDenied);
  EXPECT_NE(r.error().message.find("no peer is configured for a tunnel from 10.0.0.1 to local VIP 10.0.1.9"),
            std::string::npos)
      << r.error().message;
  EXPECT_EQ(a.dp.ingress_count(), 0u);
  EXPECT_EQ(b.dp.ingress_count(), 0u);
}

TEST_F(GrpcPair, KeyRotationWithNewKeysReKeysThePeer) {
  ASSERT_TRUE(a.tm->connect(kA1toB1, a_to_b).ok());
  const uint32_t old_spi = a.dp.egress(kA1toB1)->spi;
  ASSERT_TRUE(a.tm->request_peer_rotation(0, true, a_to_b).ok());
  EXPECT_EQ(b.rekey_wakeups.load(), 1);
  EXPECT_EQ(b.dp.master_keys()->generation(), 1u);
  // B's control thread: re-key every due pair.
  for (const VipPair& p : b.tm->rekey_due()) ASSERT_TRUE(b.tm->rekey(p, b_to_a).ok());
  const uint32_t new_spi = a.dp.egress(kA1toB1)->spi;
  EXPECT_NE(new_spi, old_spi);
  EXPECT_EQ(psp::spi_slot(new_spi), 1);
  EXPECT_EQ(a.dp.egress(kA1toB1)->key,
            bytes_of(*b.dp.master_keys()->derive(new_spi, psp::PspVersion::kAesGcm256)));
  // A second rotation kills the old SPI but not the tunnel. Right after the re-key it is deferred a moment
  // (A's packets sealed with the old SPI may still be on the way); B's control thread makes it then.
  ASSERT_TRUE(a.tm->request_peer_rotation(0, false, a_to_b).ok());
  EXPECT_TRUE(b.dp.ingress_open(old_spi, kB1toA1));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!b.tm->maintain_rotation() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE(b.dp.ingress_open(old_spi, kB1toA1));
  EXPECT_TRUE(b.dp.ingress_open(new_spi, kB1toA1));
}

// A port nobody listens on: bind an ephemeral port and close it again.
int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), len), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len), 0);
  ::close(fd);
  return ntohs(sa.sin_port);
}

TEST(GrpcPeerClient, UnreachablePeerFailsWithinTheDeadline) {
  Node a{"192.0.2.1", {{"B", {kA1toB1}}}};
  GrpcPeerClient client({"127.0.0.1:" + std::to_string(closed_port())},
                        GrpcClientOptions{milliseconds(1000)});
  const auto start = std::chrono::steady_clock::now();
  auto r = a.tm->connect(kA1toB1, client);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().code == ControlError::kUnavailable ||
              r.error().code == ControlError::kDeadlineExceeded)
      << to_string(r.error().code) << ": " << r.error().message;
  EXPECT_LT(took, std::chrono::seconds(3));
  EXPECT_EQ(a.dp.ingress_count(), 0u);
  EXPECT_EQ(a.tm->state(kA1toB1), PairState::kBackoff);
}

// A peer that accepts the call and never answers: only the deadline ends it.
class SilentService final : public psp_gateway::PSP_Gateway::Service {
 public:
  std::atomic<int> calls{0};
  grpc::Status RequestMultipleTunnelParams(grpc::ServerContext* context,
                                           const psp_gateway::MultiTunnelRequest*,
                                           psp_gateway::MultiTunnelResponse*) override {
    ++calls;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!context->IsCancelled() && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    return grpc::Status(grpc::StatusCode::INTERNAL, "too late");
  }
};

TEST(GrpcPeerClient, SilentPeerHitsTheDeadline) {
  SilentService silent;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&silent);
  auto server = builder.BuildAndStart();
  ASSERT_NE(port, 0);
  Node a{"192.0.2.1", {{"B", {kA1toB1}}}};
  GrpcPeerClient client({"127.0.0.1:" + std::to_string(port)}, GrpcClientOptions{milliseconds(300)});
  const auto start = std::chrono::steady_clock::now();
  auto r = a.tm->connect(kA1toB1, client);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ControlError::kDeadlineExceeded) << r.error().message;
  EXPECT_GE(took, milliseconds(250));
  EXPECT_LT(took, std::chrono::seconds(3));
  EXPECT_EQ(a.dp.ingress_count(), 0u);
  server->Shutdown(std::chrono::system_clock::now() + milliseconds(100));
}

// Answers every request with no tunnels, as DOCA's gateway answers a request for none, and counts them.
class CountingService final : public psp_gateway::PSP_Gateway::Service {
 public:
  std::atomic<int> calls{0};
  std::atomic<int> empty{0};
  grpc::Status RequestMultipleTunnelParams(grpc::ServerContext*,
                                           const psp_gateway::MultiTunnelRequest* request,
                                           psp_gateway::MultiTunnelResponse*) override {
    ++calls;
    if (request->tunnels_size() == 0) ++empty;
    return grpc::Status::OK;
  }
};

template <class Service>
std::unique_ptr<grpc::Server> serve(Service& service, int& port) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  return builder.BuildAndStart();
}

bool wait_until(const std::function<bool()>& done, std::chrono::seconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return true;
}

// Issue 7 §5: the first packet of a tunnel must not pay either end's first-call set-up.
TEST(GrpcPeerClient, AChannelThatComesUpIsWarmedUpWithOneCallForNoTunnels) {
  CountingService peer;
  int port = 0;
  auto server = serve(peer, port);
  ASSERT_NE(port, 0);
  GrpcPeerClient client({"127.0.0.1:" + std::to_string(port)});
  client.connect_ahead();
  ASSERT_TRUE(wait_until([&] { return peer.calls.load() >= 1; })) << "no warm-up call";
  std::this_thread::sleep_for(milliseconds(200));  // a second one would show here
  EXPECT_EQ(peer.calls.load(), 1);
  EXPECT_EQ(peer.empty.load(), 1);
  client.stop_watching();
  server->Shutdown(std::chrono::system_clock::now() + milliseconds(100));
}

// Counts the statuses a server sends, by code (a server interceptor sees each call's before it leaves).
class StatusCounter final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  struct Counts {
    std::atomic<int> ok{0};
    std::atomic<int> invalid_argument{0};
  };
  explicit StatusCounter(std::shared_ptr<Counts> counts) : counts_(std::move(counts)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo*) override {
    return new Hook(counts_);
  }

 private:
  class Hook final : public grpc::experimental::Interceptor {
   public:
    explicit Hook(std::shared_ptr<Counts> counts) : counts_(std::move(counts)) {}
    void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
      if (m->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
        const grpc::StatusCode code = m->GetSendStatus().error_code();
        if (code == grpc::StatusCode::OK) ++counts_->ok;
        if (code == grpc::StatusCode::INVALID_ARGUMENT) ++counts_->invalid_argument;
      }
      m->Proceed();
    }

   private:
    std::shared_ptr<Counts> counts_;
  };
  std::shared_ptr<Counts> counts_;
};

// Our own server refuses the warm-up call (no tunnels: INVALID_ARGUMENT) and keeps nothing of it.
TEST(GrpcPeerClient, OurServerRefusesTheWarmUpCallAndKeepsNothing) {
  auto counts = std::make_shared<StatusCounter::Counts>();
  FakeDataPlane dp;
  TunnelManagerOptions o;
  o.local = LocalIdentity{mac("02:00:00:00:00:01"), ip("192.0.2.2")};
  o.log = [](std::string_view) {};
  TunnelManager b(psp::KeyRing::with_random_key(), {{"A", {kB1toA1}}}, dp, std::move(o));
  GrpcServerOptions so;
  so.peers = PeerDirectory({"127.0.0.1"});
  so.log = [](std::string_view) {};
  so.interceptors.push_back(std::make_unique<StatusCounter>(counts));
  auto server = GrpcServer::start("127.0.0.1:0", b, std::move(so));
  ASSERT_TRUE(server.ok());
  Node a{"192.0.2.1", {{"B", {kA1toB1}}}};
  GrpcPeerClient a_to_b({"127.0.0.1:" + std::to_string((*server)->port())});
  a_to_b.connect_ahead();
  ASSERT_TRUE(wait_until([&] { return counts->invalid_argument.load() >= 1; })) << "no warm-up call";
  EXPECT_EQ(counts->ok.load(), 0);
  EXPECT_TRUE(b.sessions().empty());
  EXPECT_EQ(dp.ingress_count(), 0u);
  auto ab = a.tm->connect(kA1toB1, a_to_b);  // and the channel serves a real exchange
  ASSERT_TRUE(ab.ok()) << ab.error().message;
  EXPECT_EQ(counts->ok.load(), 1);
  EXPECT_EQ(b.sessions().size(), 1u);
}

// A warm-up call that is never answered does not hold up stop (it is cancelled), nor does it wait for
// its deadline.
TEST(GrpcPeerClient, StopCancelsAWarmUpCallThePeerNeverAnswers) {
  SilentService silent;
  int port = 0;
  auto server = serve(silent, port);
  ASSERT_NE(port, 0);
  GrpcPeerClient client({"127.0.0.1:" + std::to_string(port)}, GrpcClientOptions{milliseconds(5000)});
  client.connect_ahead();
  ASSERT_TRUE(wait_until([&] { return silent.calls.load() >= 1; }));
  const auto start = std::chrono::steady_clock::now();
  client.stop_watching();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  server->Shutdown(std::chrono::system_clock::now() + milliseconds(100));
}

}  // namespace
}  // namespace pspgw::control

namespace pspgw::control {
namespace {

// --log-level debug: one line per RPC on each side (method, request id, tunnels, outcome), never a key
// byte; every call counted per peer by status code; a reload's new peer table takes effect at once.
TEST(GrpcDebugAndCounters, OneLinePerRpcNoKeysEveryOutcomeCounted) {
  Node a{"192.0.2.1", {{"B", {kA1toB1, kA1toB9, kA1toB2}}}};
  std::mutex mu;
  std::vector<std::string> lines;
  auto sink = [&](std::string_view l) {
    std::lock_guard lock(mu);
    lines.emplace_back(l);
  };
  RpcCounters a_counts, b_counts;
  // B with debug lines and counters on its server.
  FakeDataPlane dp;
  TunnelManagerOptions o;
  o.local = LocalIdentity{mac("02:00:00:00:00:02"), ip("192.0.2.2")};
  o.log = [](std::string_view) {};
  TunnelManager btm(psp::KeyRing::with_random_key(), {{"A", {kB1toA1}}}, dp, o);
  GrpcServerOptions so;
  so.peers = PeerDirectory({"127.0.0.1"});
  so.log = [](std::string_view) {};
  so.debug = sink;
  so.counters = &b_counts;
  auto server = GrpcServer::start("127.0.0.1:0", btm, std::move(so));
  ASSERT_TRUE(server.ok());
  GrpcClientOptions co;
  co.debug = sink;
  co.counters = &a_counts;
  GrpcPeerClient a_to_b({"127.0.0.1:" + std::to_string((*server)->port())}, co);

  ASSERT_TRUE(a.tm->connect(kA1toB1, a_to_b).ok());
  EXPECT_FALSE(a.tm->connect(kA1toB9, a_to_b).ok());  // B refuses: not its pair
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(lines.size(), 4u);  // sent + received, twice
    int sent = 0, received = 0;
    for (const auto& l : lines) {
      sent += l.rfind("gRPC: sent RequestMultipleTunnelParams to 127.0.0.1:", 0) == 0 ? 1 : 0;
      received += l.rfind("gRPC: received RequestMultipleTunnelParams (request ", 0) == 0 ? 1 : 0;
      EXPECT_EQ(l.find("key"), std::string::npos) << l;
    }
    EXPECT_EQ(sent, 2);
    EXPECT_EQ(received, 2);
  }
  const auto key = dp.egress(kB1toA1)->key;  // the key A sent B: in no line, in any form
  const std::string hex = to_hex(std::span<const uint8_t>(key.data(), key.size()));
  for (const auto& l : lines) EXPECT_EQ(l.find(hex.substr(0, 16)), std::string::npos) << l;

  const auto sent = a_counts.snapshot();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].sent[0], 1u);  // ok
  EXPECT_EQ(sent[0].sent[7], 1u);  // permission_denied
  EXPECT_NE(sent[0].last_error.find("sent permission_denied"), std::string::npos) << sent[0].last_error;
  const auto received = b_counts.snapshot();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].received[0], 1u);
  EXPECT_EQ(received[0].received[7], 1u);
  EXPECT_TRUE(rpc_code_is_refusal(7));
  EXPECT_FALSE(rpc_code_is_refusal(14));  // unavailable: a failure

  // A reload that removes the only peer: its requests are refused before they reach the manager, and
  // counted as unattributed.
  (*server)->set_peers(PeerDirectory({""}));
  EXPECT_FALSE(a.tm->connect(kA1toB2, a_to_b).ok());
  EXPECT_EQ(b_counts.unattributed(), 1u);
  // The client's table too: a removed peer's slot answers kNotFound without a call.
  a_to_b.set_peers({std::nullopt});
  MultiTunnelRequest r;
  EXPECT_EQ(a_to_b.request_tunnels(0, r).error().code, ControlError::kNotFound);
}

}  // namespace
}  // namespace pspgw::control
