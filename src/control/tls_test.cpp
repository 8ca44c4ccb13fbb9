// Mutual TLS on the key exchange, in process over real gRPC on 127.0.0.1: loading and checking the
// material, who is let in (certificate chain, subjectAltName), what a let-in peer may do (its own pairs,
// its own PIP, rotation rate limit), and the insecure mode's source-address check.
#include "control/tls.hpp"

#include <gtest/gtest.h>

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "control/fake_data_plane.hpp"
#include "control/grpc_peer_client.hpp"
#include "control/grpc_service.hpp"
#include "control/test_util.hpp"
#include "control/testing/test_certs.hpp"

namespace pspgw::control {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace)

const VipPair kA1toB1 = pair("10.0.0.1", "10.0.1.1");
const VipPair kB1toA1 = pair("10.0.1.1", "10.0.0.1");
const VipPair kC1toB1 = pair("10.0.2.1", "10.0.1.1");  // C's pair with B
const VipPair kB1toC1 = pair("10.0.1.1", "10.0.2.1");

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/pspgw-tls-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// ---- loading ----

TEST(LoadTls, GoodMaterialLoads) {
  TempDir dir;
  TestCa ca;
  auto files = ca.write(dir.path, "a", ca.issue("a", {"IP:127.0.0.1"}));
  auto m = load_tls(files);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_NE(m->key_pem.find("PRIVATE KEY"), std::string::npos);
}

TEST(LoadTls, EachBadFileFailsAtStartNamingIt) {
  TempDir dir;
  TestCa ca;
  TestCa other("another CA");
  const auto good = ca.write(dir.path, "good", ca.issue("a", {"IP:127.0.0.1"}));
  auto expect_fails = [](const TlsFiles& f, const std::string& file, const std::string& what) {
    auto m = load_tls(f);
    ASSERT_FALSE(m.ok()) << what;
    EXPECT_EQ(m.error().code, ControlError::kInvalidArgument);
    EXPECT_EQ(m.error().message.rfind(file + ": ", 0), 0u) << m.error().message;
    EXPECT_NE(m.error().message.find(what), std::string::npos) << m.error().message;
  };
  TlsFiles f = good;
  f.cert = dir.path + "/missing.crt";
  expect_fails(f, f.cert, "cannot read (--grpc-tls-cert)");
  std::ofstream(dir.path + "/junk.pem") << "not pem\n";
  f = good;
  f.key = dir.path + "/junk.pem";
  expect_fails(f, f.key, "not an unencrypted PEM private key");
  f = good;
  f.ca = dir.path + "/junk.pem";
  expect_fails(f, f.ca, "no PEM certificate");
  // A key of another certificate.
  const auto stranger = ca.write(dir.path, "stranger", ca.issue("b", {"IP:127.0.0.1"}));
  f = good;
  f.key = stranger.key;
  expect_fails(f, f.key, "does not belong to the certificate " + good.cert);
  // A certificate of another CA.
  const auto foreign = other.write(dir.path, "foreign", other.issue("c", {"IP:127.0.0.1"}));
  f = foreign;
  f.ca = good.ca;
  expect_fails(f, f.cert, "not signed by the CA in " + good.ca);
}

// ---- over the wire ----

// One gateway's control plane behind a gRPC server on 127.0.0.1, peers named by host.
struct Node {
  FakeDataPlane dp;
  std::mutex log_mu;
  std::vector<std::string> log;
  std::unique_ptr<TunnelManager> tm;
  std::unique_ptr<GrpcServer> server;

  // tls: the server's material (mutual TLS); null: plaintext, callers by source address.
  Node(std::string_view pip, std::vector<PeerPolicy> peers, std::vector<std::string> hosts,
       const TlsMaterial* tls) {
    TunnelManagerOptions o;
    o.local = LocalIdentity{mac("02:00:00:00:00:01"), ip(pip)};
    o.log = [this](std::string_view line) { add_log(line); };
    tm = std::make_unique<TunnelManager>(psp::KeyRing::with_random_key(), std::move(peers), dp, std::move(o));
    GrpcServerOptions so;
    if (tls) so.tls = tls_server_credentials(*tls);
    so.peers = PeerDirectory(std::move(hosts));
    so.log = [this](std::string_view line) { add_log(line); };
    auto s = GrpcServer::start("127.0.0.1:0", *tm, std::move(so));
    EXPECT_TRUE(s.ok());
    if (s.ok()) server = std::move(s.value());
  }
  void add_log(std::string_view line) {
    std::lock_guard lock(log_mu);
    log.emplace_back(line);
  }
  bool logged(const std::string& a, const std::string& b) {
    std::lock_guard lock(log_mu);
    return std::any_of(log.begin(), log.end(), [&](const std::string& l) {
      return l.find(a) != std::string::npos && l.find(b) != std::string::npos;
    });
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(server->port()); }
  void expect_untouched() {
    EXPECT_EQ(dp.ingress_count(), 0u);
    EXPECT_EQ(dp.egress_count(), 0u);
    EXPECT_TRUE(tm->sessions().empty());
  }
};

GrpcPeerClient client_to(const Node& n, const TlsMaterial& tls) {
  GrpcClientOptions o;
  o.credentials = tls_channel_credentials(tls);
  return GrpcPeerClient({n.address()}, o);
}

class Mtls : public ::testing::Test {
 protected:
  TestCa ca_;
  TlsMaterial b_tls_ = ca_.material(ca_.issue("b", {"IP:127.0.0.1"}));
  TlsMaterial a_tls_ = ca_.material(ca_.issue("a", {"IP:127.0.0.1", "DNS:a.example"}));

  // B: peer A at 127.0.0.1 owns kB1toA1; optionally peer C (elsewhere) owns kB1toC1.
  std::unique_ptr<Node> make_b(std::optional<net::IpAddr> a_pip = std::nullopt) {
    std::vector<PeerPolicy> peers{{"A", {kB1toA1}, a_pip}, {"C", {kB1toC1}, std::nullopt}};
    return std::make_unique<Node>("192.0.2.2", std::move(peers),
                                  std::vector<std::string>{"127.0.0.1", "c.example"}, &b_tls_);
  }
  std::unique_ptr<Node> make_a(std::vector<VipPair> pairs = {kA1toB1}) {
    return std::make_unique<Node>("192.0.2.1", std::vector<PeerPolicy>{{"B", std::move(pairs)}},
                                  std::vector<std::string>{"127.0.0.1"}, &a_tls_);
  }
};

TEST_F(Mtls, AGoodPeerExchangesKeys) {
  auto b = make_b();
  auto a = make_a();
  auto to_b = client_to(*b, a_tls_);
  auto r = a->tm->connect(kA1toB1, to_b);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(b->dp.egress(kB1toA1)->outer_ip, ip("192.0.2.1"));
  EXPECT_EQ(a->dp.egress(kA1toB1)->outer_ip, ip("192.0.2.2"));
  EXPECT_EQ(b->tm->bound_pip(0), ip("192.0.2.1"));  // pinned at the first exchange
  EXPECT_EQ(a->tm->bound_pip(0), ip("192.0.2.2"));
}

TEST_F(Mtls, AClientCertificateOfAnotherCaIsRefused) {
  auto b = make_b();
  auto a = make_a();
  TestCa other("another CA");
  const TestCert foreign = other.issue("a", {"IP:127.0.0.1"});
  // A trusts B's CA (so it would accept B), but presents a certificate B's CA never signed.
  auto to_b = client_to(*b, TlsMaterial(foreign.cert_pem, foreign.key_pem, ca_.cert_pem()));
  auto r = a->tm->connect(kA1toB1, to_b);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ControlError::kUnavailable) << r.error().message;  // the handshake fails
  b->expect_untouched();
}

TEST_F(Mtls, APlaintextClientIsRefused) {
  auto b = make_b();
  auto a = make_a();
  GrpcPeerClient to_b({b->address()});  // no credentials: plaintext
  auto r = a->tm->connect(kA1toB1, to_b);
  ASSERT_FALSE(r.ok());
  b->expect_untouched();
}

TEST_F(Mtls, AServerWhoseCertificateDoesNotNameItsHostIsRefusedByTheClient) {
  TlsMaterial wrong = ca_.material(ca_.issue("b", {"IP:127.0.0.9", "DNS:b.example"}));
  Node b("192.0.2.2", {{"A", {kB1toA1}}}, {"127.0.0.1"}, &wrong);
  auto a = make_a();
  auto to_b = client_to(b, a_tls_);
  auto r = a->tm->connect(kA1toB1, to_b);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ControlError::kUnavailable) << r.error().message;
  b.expect_untouched();
  EXPECT_EQ(a->dp.ingress_count(), 0u);
}

TEST_F(Mtls, AValidCertificateNamingNoConfiguredPeerIsRefused) {
  auto b = make_b();
  auto a = make_a();
  // Signed by the right CA, but its names are no peer's host (B's peers: 127.0.0.1, c.example).
  auto to_b = client_to(*b, ca_.material(ca_.issue("x", {"IP:127.0.0.7", "DNS:x.example"})));
  auto r = a->tm->connect(kA1toB1, to_b);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ControlError::kPermissionDenied) << r.error().message;
  b->expect_untouched();
  EXPECT_TRUE(b->logged("names no configured peer", "127.0.0.7"));
  // The same certificate cannot rotate B's keys either.
  ASSERT_FALSE(a->tm->request_peer_rotation(0, true, to_b).ok());
  EXPECT_EQ(b->dp.master_keys()->generation(), 0u);
}

TEST_F(Mtls, APeerAskingForAnotherPeersPairIsDeniedAndNothingIsInstalled) {
  auto b = make_b();
  // A (certificate 127.0.0.1 = peer A at B) claims C's VIP 10.0.2.1 and asks for C's pair.
  auto a = make_a({kC1toB1});
  auto to_b = client_to(*b, a_tls_);
  auto r = a->tm->connect(kC1toB1, to_b);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ControlError::kPermissionDenied) << r.error().message;
  b->expect_untouched();
  EXPECT_TRUE(b->logged("peer A", "10.0.1.1 -> 10.0.2.1"));
}

TEST_F(Mtls, ReverseParamsWithAForeignPipAreRefused) {
  auto b = make_b(ip("198.51.100.1"));  // A's PIP configured: A sends 192.0.2.1 in its params
  auto a = make_a();
  auto to_b = client_to(*b, a_tls_);
  auto r = a->tm->connect(kA1toB1, to_b);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ControlError::kPermissionDenied) << r.error().message;
  b->expect_untouched();
  EXPECT_TRUE(b->logged("peer A", "192.0.2.1"));
  EXPECT_EQ(a->dp.ingress_count(), 0u);  // A closed the ingress it had opened for the exchange
}

TEST_F(Mtls, PeerRotationIsRateLimited) {
  auto b = make_b();
  auto a = make_a();
  auto to_b = client_to(*b, a_tls_);
  ASSERT_TRUE(a->tm->request_peer_rotation(0, false, to_b).ok());
  auto again = a->tm->request_peer_rotation(0, false, to_b);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ControlError::kResourceExhausted) << again.error().message;
  EXPECT_EQ(b->dp.master_keys()->generation(), 1u);
  EXPECT_TRUE(b->logged("refused key rotation", "peer A"));
  (void)b->tm->rotate_master_key();  // the operator's pspctl rotate-keys is never limited
  EXPECT_EQ(b->dp.master_keys()->generation(), 2u);
}

// ---- key bytes ----

// Runs after ResponseWipe on the way out (gRPC runs POST hooks in reverse order): sees the sent response.
class SentResponseProbe final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  struct Seen {
    std::mutex mu;
    std::vector<std::string> keys_before, keys_after;
  };
  explicit SentResponseProbe(std::shared_ptr<Seen> seen) : seen_(std::move(seen)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo*) override {
    return new Probe(seen_);  // NOLINT: gRPC owns it
  }

 private:
  class Probe final : public grpc::experimental::Interceptor {
   public:
    explicit Probe(std::shared_ptr<Seen> seen) : seen_(std::move(seen)) {}
    void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
      using H = grpc::experimental::InterceptionHookPoints;
      if (m->QueryInterceptionHookPoint(H::PRE_SEND_MESSAGE)) msg_ = m->GetSendMessage();
      const bool pre = m->QueryInterceptionHookPoint(H::PRE_SEND_MESSAGE);
      const bool post = m->QueryInterceptionHookPoint(H::POST_SEND_MESSAGE);
      if ((pre || post) && msg_ != nullptr) {
        const auto* r = static_cast<const psp_gateway::MultiTunnelResponse*>(msg_);
        std::lock_guard lock(seen_->mu);
        for (const auto& p : r->tunnels_params())
          (pre ? seen_->keys_before : seen_->keys_after).push_back(p.encryption_key());
      }
      m->Proceed();
    }

   private:
    std::shared_ptr<Seen> seen_;
    const void* msg_ = nullptr;
  };
  std::shared_ptr<Seen> seen_;
};

TEST(ServerKeyWipe, TheResponseKeyBytesAreZeroedOnceSent) {
  auto seen = std::make_shared<SentResponseProbe::Seen>();
  FakeDataPlane dp;
  TunnelManagerOptions o;
  o.local = LocalIdentity{mac("02:00:00:00:00:01"), ip("192.0.2.2")};
  o.log = [](std::string_view) {};
  TunnelManager b(psp::KeyRing::with_random_key(), {{"A", {kB1toA1}}}, dp, std::move(o));
  GrpcServerOptions so;
  so.peers = PeerDirectory({"127.0.0.1"});
  so.log = [](std::string_view) {};
  so.interceptors.push_back(std::make_unique<SentResponseProbe>(seen));
  auto server = GrpcServer::start("127.0.0.1:0", b, std::move(so));
  ASSERT_TRUE(server.ok());
  Node a("192.0.2.1", {{"B", {kA1toB1}}}, {"127.0.0.1"}, nullptr);
  GrpcPeerClient to_b({"127.0.0.1:" + std::to_string((*server)->port())});
  ASSERT_TRUE(a.tm->connect(kA1toB1, to_b).ok());
  // The server's POST hooks may run just after the client has its answer: wait for them (bounded).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(seen->mu);
      if (!seen->keys_after.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::lock_guard lock(seen->mu);
  ASSERT_EQ(seen->keys_before.size(), 1u);
  ASSERT_EQ(seen->keys_after.size(), 1u);
  EXPECT_EQ(seen->keys_before[0].size(), 32u);
  EXPECT_NE(seen->keys_before[0], std::string(32, '\0'));  // the key went out...
  EXPECT_EQ(a.dp.egress(kA1toB1)->key,
            std::vector<uint8_t>(seen->keys_before[0].begin(), seen->keys_before[0].end()));
  EXPECT_TRUE(seen->keys_after[0].empty());  // ...and is gone from the response (wipe_keys: zeroed, emptied)
}

// ---- --grpc-insecure ----

TEST(Insecure, ARequestFromAnAddressOfNoConfiguredPeerIsRefused) {
  // B believes its only peer is at 127.0.0.2; the request comes from 127.0.0.1.
  Node b("192.0.2.2", {{"A", {kB1toA1}}}, {"127.0.0.2"}, nullptr);
  Node a("192.0.2.1", {{"B", {kA1toB1}}}, {"127.0.0.1"}, nullptr);
  GrpcPeerClient to_b({b.address()});
  auto r = a.tm->connect(kA1toB1, to_b);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ControlError::kPermissionDenied) << r.error().message;
  b.expect_untouched();
  EXPECT_TRUE(b.logged("insecure mode", "127.0.0.1"));
  ASSERT_FALSE(a.tm->request_peer_rotation(0, false, to_b).ok());
  EXPECT_EQ(b.dp.master_keys()->generation(), 0u);
  // The configured address gets in.
  Node b2("192.0.2.2", {{"A", {kB1toA1}}}, {"127.0.0.1"}, nullptr);
  Node a2("192.0.2.1", {{"B", {kA1toB1}}}, {"127.0.0.1"}, nullptr);  // a has kA1toB1 in backoff
  GrpcPeerClient to_b2({b2.address()});
  EXPECT_TRUE(a2.tm->connect(kA1toB1, to_b2).ok());
}

}  // namespace
}  // namespace pspgw::control
