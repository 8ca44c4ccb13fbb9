// Fleet mode against real etcd members on loopback (testing/etcd_process.hpp), each case bounded.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "control/testing/test_certs.hpp"
#include "fleet/etcd_client.hpp"
#include "fleet/fleet.hpp"
#include "fleet/testing/etcd_process.hpp"

namespace pspgw::fleet {
namespace {

using namespace std::chrono_literals;
using testing::EtcdCluster;

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

net::IpAddr ip(const char* s) {
  return *net::IpAddr::parse(s);
}

HostRecord host(const std::string& name, const char* pip, std::vector<const char*> vips) {
  HostRecord r{name, std::string(pip) + ":3000", ip(pip), "", {{"psp0", {}}}};
  for (const char* v : vips) r.ports[0].vips.push_back(ip(v));
  return r;
}

std::unique_ptr<EtcdClient> client(std::vector<std::string> urls, EtcdTlsFiles tls = {}) {
  auto c = EtcdClient::create({std::move(urls), std::move(tls), 1000ms});
  EXPECT_TRUE(c) << c.error().message;
  return std::move(*c);
}

bool writable(EtcdClient& c) {
  return eventually([&] { return c.put("/probe", "x").ok(); });
}

class FleetEtcd : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!EtcdCluster::available()) GTEST_SKIP() << "no etcd binary (Debian etcd-server)";
  }
};

TEST_F(FleetEtcd, LeaseKeepsTheRecordAndRevokeRemovesIt) {
  EtcdCluster etcd(1);
  ASSERT_TRUE(etcd.start());
  auto c = client(etcd.urls());
  ASSERT_TRUE(writable(*c));
  auto lease = c->grant_lease(2);
  ASSERT_TRUE(lease) << lease.error().message;
  ASSERT_TRUE(c->put("/psp-gateway/hosts/a", "{}", *lease));
  for (int i = 0; i < 3; ++i) {  // three keep-alives over 3 s: longer than the TTL
    std::this_thread::sleep_for(1s);
    auto ttl = c->keep_alive(*lease);
    ASSERT_TRUE(ttl) << ttl.error().message;
  }
  EXPECT_EQ(c->get("/psp-gateway/hosts/a")->size(), 1u);
  ASSERT_TRUE(c->revoke_lease(*lease));
  EXPECT_TRUE(c->get("/psp-gateway/hosts/a")->empty());
  auto gone = c->keep_alive(*lease);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, FleetError::kLeaseLost);
}

TEST_F(FleetEtcd, WatchFromAPastRevisionMissesNothingAndCompactionSaysSo) {
  EtcdCluster etcd(1);
  ASSERT_TRUE(etcd.start());
  auto c = client(etcd.urls());
  ASSERT_TRUE(writable(*c));
  ASSERT_TRUE(c->put("/p/hosts/a", "1"));
  const int64_t r1 = c->get_prefix("/p/")->revision;
  ASSERT_TRUE(c->put("/p/hosts/b", "2"));
  ASSERT_TRUE(c->erase("/p/hosts/a"));
  // Resume after a disconnect: a new stream from the last revision seen + 1 gets exactly what followed.
  auto w = c->watch("/p/", r1 + 1);
  std::vector<WatchEvent> events;
  while (events.size() < 2) {
    auto b = w->next();
    ASSERT_TRUE(b) << b.error().message;
    events.insert(events.end(), b->events.begin(), b->events.end());
  }
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kv.key, "/p/hosts/b");
  EXPECT_FALSE(events[0].deleted);
  EXPECT_EQ(events[1].kv.key, "/p/hosts/a");
  EXPECT_TRUE(events[1].deleted);
  w.reset();
  ASSERT_TRUE(c->compact(c->get_prefix("/p/")->revision));
  auto old = c->watch("/p/", r1 + 1);
  auto b = old->next();
  while (b && b->created) b = old->next();
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, FleetError::kCompacted);
}

// Two fleets see each other, survive a member's death, resync after a compaction they missed, and a
// stopped gateway's record disappears at once (lease revoked).
TEST_F(FleetEtcd, ThreeMembersFailoverResyncAndDeregistration) {
  EtcdCluster etcd(3);
  ASSERT_TRUE(etcd.start());
  auto admin = client({etcd.url(1), etcd.url(2)});
  ASSERT_TRUE(writable(*admin));

  std::mutex mu;
  FleetView seen;
  FleetOptions a;
  a.etcd = {{etcd.url(0)}, {}, 1000ms};  // only member 0: its death cuts a off
  a.self = host("a", "192.0.2.1", {"10.0.0.1"});
  a.lease_ttl = 3s;
  a.on_change = [&](const FleetView& v) {
    std::lock_guard lock(mu);
    seen = v;
  };
  a.log = [](std::string_view line) {
    std::fprintf(stderr, "a: %.*s\n", static_cast<int>(line.size()), line.data());
  };
  auto fa = Fleet::create(a);
  ASSERT_TRUE(fa) << fa.error().message;
  (*fa)->start();
  FleetOptions b = a;
  b.etcd = {etcd.urls(), {}, 1000ms};
  b.self = host("b", "192.0.2.2", {"10.0.0.2"});
  b.on_change = nullptr;
  b.log = [](std::string_view line) {
    std::fprintf(stderr, "b: %.*s\n", static_cast<int>(line.size()), line.data());
  };
  auto fb = Fleet::create(b);
  ASSERT_TRUE(fb);
  (*fb)->start();
  auto a_sees = [&](const char* vip, const char* owner) {
    std::lock_guard lock(mu);
    for (const auto& p : seen.peers) {
      for (const auto& v : p.vips)
        if (v == ip(vip)) return p.record.host == owner;
    }
    return false;
  };
  ASSERT_TRUE(eventually([&] { return a_sees("10.0.0.2", "b"); }));
  // And a registered (b sees it) before member 0, a's only endpoint, dies: under load a's first put can
  // still be on its way when b's record already reached a, and a would then never register.
  ASSERT_TRUE(eventually([&] { return (*fb)->status().store.hosts == 2; }));

  // Member 0 dies: a's store is unreachable, its directory stays; b (three endpoints) carries on.
  etcd.kill(0);
  ASSERT_TRUE(eventually([&] { return (*fa)->status().store.state == StoreState::kUnreachable; }));
  EXPECT_TRUE(a_sees("10.0.0.2", "b"));
  ASSERT_TRUE(admin->put(host_key(kDefaultPrefix, "c"), encode_record(host("c", "192.0.2.3", {"10.0.0.3"}))));
  ASSERT_TRUE(admin->put("/elsewhere", "1"));  // so that a's next revision is compacted away, not kept
  ASSERT_TRUE(admin->compact(admin->get_prefix("/")->revision));
  ASSERT_TRUE(eventually([&] { return (*fb)->status().store.hosts == 3; }));

  // Member 0 returns: a's watch from its last revision + 1 is compacted away, so it reads everything.
  const uint64_t resyncs = (*fa)->status().store.resyncs;
  ASSERT_TRUE(etcd.restart(0));
  ASSERT_TRUE(eventually([&] { return a_sees("10.0.0.3", "c"); }, 20s));
  EXPECT_GT((*fa)->status().store.resyncs, resyncs);
  EXPECT_EQ((*fa)->status().store.state, StoreState::kConnected);

  (*fb)->stop();
  ASSERT_TRUE(eventually([&] { return !a_sees("10.0.0.2", "b"); }, 5s));
  (*fa)->stop();
}

// RBAC (README "Fleet mode"): a host's etcd user may write only its own record.
TEST_F(FleetEtcd, RbacRefusesAnotherHostsRecord) {
  const std::string dir =
      std::filesystem::temp_directory_path() / ("pspgw-etcd-tls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  control::testing::TestCa ca;
  const auto server = ca.write(dir, "server", ca.issue("etcd", {"IP:127.0.0.1"}));
  const auto root = ca.write(dir, "root", ca.issue("root", {}));
  const auto a = ca.write(dir, "a", ca.issue("a", {}));
  EtcdCluster etcd(1, {server.ca, server.cert, server.key});
  ASSERT_TRUE(etcd.start());
  auto admin = client(etcd.urls(), {root.ca, root.cert, root.key});
  ASSERT_TRUE(writable(*admin));
  // etcdctl's role set-up, through the same API (auth.proto): done here with the CLI the README shows.
  const std::string ctl = "ETCDCTL_API=3 etcdctl --endpoints=" + etcd.url(0) + " --cacert=" + root.ca +
                          " --cert=" + root.cert + " --key=" + root.key + " >/dev/null ";
  for (const std::string cmd :
       {"user add root --no-password", "role add root", "user grant-role root root", "role add psp-host-a",
        "role grant-permission psp-host-a readwrite /psp-gateway/hosts/a",
        "role grant-permission psp-host-a read /psp-gateway/ --prefix", "user add a --no-password",
        "user grant-role a psp-host-a", "auth enable"}) {
    ASSERT_EQ(std::system((ctl + cmd).c_str()), 0) << cmd;
  }
  auto as_a = client(etcd.urls(), {a.ca, a.cert, a.key});
  EXPECT_TRUE(eventually([&] { return as_a->put("/psp-gateway/hosts/a", "{}").ok(); }));
  auto refused = as_a->put("/psp-gateway/hosts/b", "{}");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, FleetError::kPermissionDenied) << refused.error().message;
  EXPECT_TRUE(as_a->get_prefix("/psp-gateway/"));  // it may read everyone's
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pspgw::fleet
