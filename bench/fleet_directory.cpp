// Fleet directory at scale (issue 11, test 5): 1,000 synthetic host records with 100,000 VIPs in a real
// etcd (started here on loopback), then one gateway's Fleet (the daemon's own: registration, read at one
// revision, watch) converges on them. Reports the convergence time, the memory it took (RSS growth of this
// process) and the time one later change (a VIP moving host) takes to reach the directory. A plain
// program, one-shot timings; targets ≤ 2 s and ≤ 200 MB.
//   build/bin/bench_fleet_directory [hosts [vips-per-host]]
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "base/proc_status.hpp"
#include "fleet/etcd_client.hpp"
#include "fleet/fleet.hpp"
#include "fleet/testing/etcd_process.hpp"

namespace {

using namespace pspgw;
using Clock = std::chrono::steady_clock;

net::IpAddr vip(uint32_t i) {
  const std::array<uint8_t, 4> b{10, static_cast<uint8_t>(i >> 16), static_cast<uint8_t>(i >> 8),
                                 static_cast<uint8_t>(i)};
  return net::IpAddr::v4(b);
}

fleet::HostRecord host(uint32_t h, uint32_t vips, uint32_t first) {
  const std::array<uint8_t, 4> pip{172, 16, static_cast<uint8_t>(h >> 8), static_cast<uint8_t>(h)};
  fleet::HostRecord r{"host" + std::to_string(h),
                      net::IpAddr::v4(pip).to_string() + ":3000",
                      net::IpAddr::v4(pip),
                      "",
                      {{"psp0", {}}}};
  for (uint32_t v = 0; v < vips; ++v) r.ports[0].vips.push_back(vip(first + v));
  return r;
}

double ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

}  // namespace

int main(int argc, char** argv) {
  const uint32_t hosts = argc > 1 ? static_cast<uint32_t>(std::atoi(argv[1])) : 1000;
  const uint32_t per_host = argc > 2 ? static_cast<uint32_t>(std::atoi(argv[2])) : 100;
  if (!fleet::testing::EtcdCluster::available()) {
    std::fprintf(stderr, "no etcd binary (Debian etcd-server)\n");
    return 77;
  }
  fleet::testing::EtcdCluster etcd(1);
  if (!etcd.start()) return 1;
  auto client = fleet::EtcdClient::create({etcd.urls(), {}, std::chrono::milliseconds(5000)});
  if (!client) return 1;
  const auto w0 = Clock::now();
  for (uint32_t h = 0; h < hosts; ++h) {
    const auto r = host(h, per_host, h * per_host);
    for (int tries = 0;
         !(*client)->put(fleet::host_key(fleet::kDefaultPrefix, r.host), fleet::encode_record(r)); ++tries) {
      if (tries > 100) return 1;  // etcd still electing itself
    }
  }
  std::printf("wrote %u host records, %u VIPs, in %.0f ms\n", hosts, hosts * per_host, ms(Clock::now() - w0));

  std::mutex mu;
  std::condition_variable cv;
  std::size_t seen_vips = 0;
  std::optional<std::string> moved_to;
  const net::IpAddr probe = vip(0);
  fleet::FleetOptions o;
  o.etcd = {etcd.urls(), {}, std::chrono::milliseconds(5000)};
  o.self = host(hosts, 1, hosts * per_host);  // ourselves: one more host
  o.on_change = [&](const fleet::FleetView& v) {
    std::size_t n = 0;
    std::optional<std::string> owner;
    for (const auto& p : v.peers) {
      n += p.vips.size();
      if (std::find(p.vips.begin(), p.vips.end(), probe) != p.vips.end()) owner = p.record.host;
    }
    std::lock_guard lock(mu);
    seen_vips = n;
    moved_to = owner;
    cv.notify_all();
  };
  const long rss0 = proc_status_kib("VmRSS");
  const auto t0 = Clock::now();
  auto f = fleet::Fleet::create(o);
  if (!f) return 1;
  (*f)->start();
  {
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(60),
                     [&] { return seen_vips >= std::size_t{hosts} * per_host; })) {
      std::fprintf(stderr, "did not converge in 60 s (%zu VIPs)\n", seen_vips);
      return 1;
    }
  }
  const double converge = ms(Clock::now() - t0);
  const long rss1 = proc_status_kib("VmRSS");
  std::printf(
      "directory converged: %u hosts, %u VIPs in %.0f ms (target <= 2000); memory +%.1f MB RSS "
      "(target <= 200; process %.1f MB)\n",
      hosts, hosts * per_host, converge, (rss1 - rss0) / 1024.0, rss1 / 1024.0);

  // One change: host0's first VIP moves to host1 (both records rewritten), seen through the watch.
  auto h0 = host(0, per_host, 0);
  h0.ports[0].vips.erase(h0.ports[0].vips.begin());
  auto h1 = host(1, per_host, per_host);
  h1.ports[0].vips.push_back(probe);
  const auto m0 = Clock::now();
  (void)(*client)->put(fleet::host_key(fleet::kDefaultPrefix, h1.host), fleet::encode_record(h1));
  (void)(*client)->put(fleet::host_key(fleet::kDefaultPrefix, h0.host), fleet::encode_record(h0));
  {
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::seconds(10), [&] { return moved_to == h1.host; });
  }
  std::printf("a VIP move (two records rewritten) reached the directory in %.1f ms\n", ms(Clock::now() - m0));
  (*f)->stop();
  return 0;
}
