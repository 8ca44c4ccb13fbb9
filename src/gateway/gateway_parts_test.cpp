// Unit tests of the gateway's parts: FrameRing, HoldQueue, PendingPairs, the outer headers of the UDP port
// (outer.hpp), SaTable, flow_hash, Topology and the PSP actions run through a real pipeline (gateway A
// encapsulates and encrypts, gateway B decrypts and decapsulates).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "crypto/aead.hpp"
#include "gateway/frame_ring.hpp"
#include "gateway/hold_queue.hpp"
#include "gateway/outer.hpp"
#include "gateway/psp_actions.hpp"
#include "gateway/sa_table.hpp"
#include "gateway/test_frames.hpp"
#include "gateway/topology.hpp"
#include "psp/header.hpp"
#include "psp/key_ring.hpp"
#include "psp/seal.hpp"

namespace pspgw::gateway {
namespace {

using test::ip;
using test::mac;
using test::mac_bits;
using test::udp_frame;
using test::UdpSpec;

std::vector<uint8_t> bytes_of(std::span<const uint8_t> s) {
  return {s.begin(), s.end()};
}

// ---------------------------------------------------------------------------------------------- FrameRing

std::vector<uint8_t> numbered(uint32_t n, std::size_t len) {
  std::vector<uint8_t> v(len);
  for (std::size_t i = 0; i < len; ++i) v[i] = static_cast<uint8_t>(n * 31 + i);
  return v;
}

TEST(FrameRing, PushPopInOrderWithInfo) {
  FrameRing r(4, 64);
  EXPECT_TRUE(r.empty());
  std::vector<uint8_t> out;
  FrameInfo info;
  EXPECT_FALSE(r.pop(out, info));
  for (uint32_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(
        r.push(numbered(i, 10 + i), {static_cast<uint16_t>(i + 1), PortId{static_cast<uint16_t>(i)}}));
  }
  EXPECT_FALSE(r.push(numbered(9, 8), {}));  // full
  for (uint32_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(r.pop(out, info));
    EXPECT_EQ(out, numbered(i, 10 + i));
    EXPECT_EQ(info.reason, i + 1);
    EXPECT_EQ(info.port, PortId{static_cast<uint16_t>(i)});
  }
  EXPECT_TRUE(r.empty());
  EXPECT_FALSE(r.pop(out, info));
}

TEST(FrameRing, OversizeFrameIsRefusedAndMaxFitsExactly) {
  FrameRing r(2, 64);
  EXPECT_EQ(r.max_frame(), 64u);
  EXPECT_FALSE(r.push(numbered(1, 65), {}));
  EXPECT_TRUE(r.empty());
  EXPECT_TRUE(r.push(numbered(2, 64), {}));
  EXPECT_TRUE(r.push({}, {7, PortId{3}}));  // an empty frame is a frame
  std::vector<uint8_t> out;
  FrameInfo info;
  ASSERT_TRUE(r.pop(out, info));
  EXPECT_EQ(out, numbered(2, 64));
  ASSERT_TRUE(r.pop(out, info));
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(info.reason, 7);
}

TEST(FrameRing, PeekDoesNotConsumeUntilRelease) {
  FrameRing r(2, 32);
  ASSERT_TRUE(r.push(numbered(1, 5), {1, PortId{1}}));
  ASSERT_TRUE(r.push(numbered(2, 6), {2, PortId{2}}));
  EXPECT_FALSE(r.push(numbered(3, 7), {}));
  std::span<const uint8_t> f;
  FrameInfo info;
  ASSERT_TRUE(r.peek(f, info));
  EXPECT_EQ(bytes_of(f), numbered(1, 5));
  ASSERT_TRUE(r.peek(f, info));  // still the same one
  EXPECT_EQ(bytes_of(f), numbered(1, 5));
  EXPECT_EQ(info.reason, 1);
  r.release();
  EXPECT_TRUE(r.push(numbered(3, 7), {3, PortId{3}}));  // the released slot is free again
  ASSERT_TRUE(r.peek(f, info));
  EXPECT_EQ(bytes_of(f), numbered(2, 6));
  r.release();
  ASSERT_TRUE(r.peek(f, info));
  EXPECT_EQ(bytes_of(f), numbered(3, 7));
  EXPECT_EQ(info.port, PortId{3});
  r.release();
  EXPECT_TRUE(r.empty());
  EXPECT_FALSE(r.peek(f, info));
}

TEST(FrameRing, WrapsAroundManyTimes) {
  FrameRing r(8, 128);
  std::vector<uint8_t> out;
  FrameInfo info;
  uint32_t pushed = 0;
  uint32_t popped = 0;
  for (int round = 0; round < 100; ++round) {
    const uint32_t burst = 1 + static_cast<uint32_t>(round % 8);  // 1..8: every slot offset is crossed
    for (uint32_t i = 0; i < burst; ++i, ++pushed) {
      ASSERT_TRUE(r.push(numbered(pushed, pushed % 129), {static_cast<uint16_t>(pushed), PortId{}}));
    }
    for (uint32_t i = 0; i < burst; ++i, ++popped) {
      ASSERT_TRUE(r.pop(out, info));
      ASSERT_EQ(out, numbered(popped, popped % 129));
      ASSERT_EQ(info.reason, static_cast<uint16_t>(popped));
    }
  }
  EXPECT_TRUE(r.empty());
}

// One producer, one consumer thread, ~1M frames of varying length; every frame checked byte for byte.
TEST(FrameRing, SpscStress) {
  constexpr uint32_t kFrames = 1'000'000;
  FrameRing r(1024, 96);
  std::atomic<bool> failed{false};
  std::thread producer([&] {
    uint8_t buf[96];
    for (uint32_t n = 0; n < kFrames && !failed.load(std::memory_order_relaxed);) {
      const std::size_t len = 4 + n % 93;
      std::memcpy(buf, &n, 4);
      for (std::size_t i = 4; i < len; ++i) buf[i] = static_cast<uint8_t>(n + i);
      if (r.push({buf, len}, {static_cast<uint16_t>(n), PortId{}})) {
        ++n;
      } else {
        std::this_thread::yield();
      }
    }
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::span<const uint8_t> f;
  FrameInfo info;
  uint32_t expect = 0;
  while (expect < kFrames && !failed.load()) {
    if (!r.peek(f, info)) {
      if (std::chrono::steady_clock::now() > deadline) failed = true;
      std::this_thread::yield();
      continue;
    }
    uint32_t n = 0;
    bool ok = f.size() == 4 + expect % 93 && info.reason == static_cast<uint16_t>(expect);
    if (ok) std::memcpy(&n, f.data(), 4);
    ok = ok && n == expect;
    for (std::size_t i = 4; ok && i < f.size(); ++i) ok = f[i] == static_cast<uint8_t>(expect + i);
    if (!ok) failed = true;
    r.release();
    ++expect;
  }
  producer.join();
  EXPECT_FALSE(failed.load()) << "frame " << expect;
  EXPECT_EQ(expect, kFrames);
  EXPECT_TRUE(r.empty());
}

// ---------------------------------------------------------------------------------------------- HoldQueue

control::VipPair vp(std::string_view local, std::string_view remote) {
  return {ip(local), ip(remote)};
}

HeldPacket held(uint8_t tag, uint16_t worker = 0) {
  return {std::vector<uint8_t>(3, tag), worker};
}

TEST(HoldQueue, BoundsPerPairAndTotal) {
  HoldQueue q(2, 3);
  const auto p1 = vp("10.0.0.1", "10.0.0.2");
  const auto p2 = vp("10.0.0.1", "10.0.0.3");
  const auto p3 = vp("10.0.0.1", "10.0.0.4");
  EXPECT_EQ(q.hold(p1, held(1)), HoldQueue::Verdict::kHeld);
  EXPECT_EQ(q.hold(p1, held(2)), HoldQueue::Verdict::kHeld);
  EXPECT_EQ(q.hold(p1, held(3)), HoldQueue::Verdict::kPairFull);
  EXPECT_EQ(q.hold(p2, held(4)), HoldQueue::Verdict::kHeld);
  EXPECT_EQ(q.hold(p3, held(5)), HoldQueue::Verdict::kTotalFull);
  EXPECT_EQ(q.total(), 3u);
  EXPECT_EQ(q.held(p1), 2u);
  EXPECT_EQ(q.held(p2), 1u);
  EXPECT_EQ(q.held(p3), 0u);
  auto pairs = q.pairs();
  std::sort(pairs.begin(), pairs.end());
  EXPECT_EQ(pairs, (std::vector<control::VipPair>{p1, p2}));  // a refused pair leaves no empty queue
}

TEST(HoldQueue, TakeReturnsOldestFirstAndFreesRoom) {
  HoldQueue q(4, 4);
  const auto p1 = vp("fd00::1", "fd00::2");
  const auto p2 = vp("fd00::1", "fd00::3");
  for (uint8_t i = 0; i < 3; ++i) ASSERT_EQ(q.hold(p1, held(i, i)), HoldQueue::Verdict::kHeld);
  ASSERT_EQ(q.hold(p2, held(9)), HoldQueue::Verdict::kHeld);
  EXPECT_EQ(q.hold(p2, held(10)), HoldQueue::Verdict::kTotalFull);
  auto got = q.take(p1);
  ASSERT_EQ(got.size(), 3u);
  for (uint8_t i = 0; i < 3; ++i) {
    EXPECT_EQ(got[i].frame, std::vector<uint8_t>(3, i));
    EXPECT_EQ(got[i].worker, i);
  }
  EXPECT_EQ(q.total(), 1u);
  EXPECT_EQ(q.held(p1), 0u);
  EXPECT_TRUE(q.take(p1).empty());
  EXPECT_EQ(q.pairs(), std::vector<control::VipPair>{p2});
  EXPECT_EQ(q.hold(p2, held(10)), HoldQueue::Verdict::kHeld);  // room again
  EXPECT_EQ(q.take(p2).size(), 2u);
  EXPECT_EQ(q.total(), 0u);
  EXPECT_TRUE(q.pairs().empty());
}

// A first exchange waits once per pair, oldest first, and the set is bounded apart from the held packets.
TEST(PendingPairs, EachPairOnceInArrivalOrderAndBounded) {
  PendingPairs q(3);
  const auto p1 = vp("10.0.0.1", "10.0.0.2");
  const auto p2 = vp("10.0.0.1", "10.0.0.3");
  const auto p3 = vp("fd00::1", "fd00::4");
  const auto p4 = vp("10.0.0.1", "10.0.0.5");
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.push(p2), PendingPairs::Verdict::kQueued);
  EXPECT_EQ(q.push(p1), PendingPairs::Verdict::kQueued);
  EXPECT_EQ(q.push(p2), PendingPairs::Verdict::kAlreadyQueued);
  EXPECT_EQ(q.push(p3), PendingPairs::Verdict::kQueued);
  EXPECT_EQ(q.push(p4), PendingPairs::Verdict::kFull);
  EXPECT_EQ(q.push(p1), PendingPairs::Verdict::kAlreadyQueued);  // queued beats full: nothing to count
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.take(), (std::vector<control::VipPair>{p2, p1, p3}));
  EXPECT_TRUE(q.empty());
  EXPECT_TRUE(q.take().empty());
  EXPECT_EQ(q.push(p4), PendingPairs::Verdict::kQueued);  // room again, and p2 may wait again
  EXPECT_EQ(q.push(p2), PendingPairs::Verdict::kQueued);
  EXPECT_EQ(q.take(), (std::vector<control::VipPair>{p4, p2}));
}

// ------------------------------------------------------------------------------------------------ outer

struct PoolPacket {
  net::PacketPool pool{4};
  net::Packet* pkt = pool.alloc();
};

std::vector<uint8_t> pattern(std::size_t n) {
  std::vector<uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 7 + 3);
  return v;
}

TEST(Outer, WrapIpv4WritesExactHeaders) {
  PoolPacket p;
  const auto payload = pattern(100);
  ASSERT_TRUE(p.pkt->assign(payload));
  p.pkt->meta.peer = ip("192.0.2.7");
  p.pkt->meta.peer_port = 49999;
  const OuterEndpoint local{ip("192.0.2.1"), 1000, mac("02:aa:bb:cc:dd:01")};
  net::PacketBatch b;
  b.push(p.pkt);
  ASSERT_EQ(wrap_received(b, local, 0x77), 1u);
  EXPECT_EQ(p.pkt->meta.drop_reason, 0);
  ASSERT_EQ(p.pkt->size(), 14u + 20 + 8 + 100);
  const uint8_t* f = p.pkt->data();
  EXPECT_EQ(std::vector<uint8_t>(f, f + 6), bytes_of(local.local_mac.bytes));
  EXPECT_EQ(std::vector<uint8_t>(f + 6, f + 12), std::vector<uint8_t>(6, 0));
  EXPECT_EQ(load_be16(f + 12), net::kEtherTypeIpv4);
  const uint8_t* iph = f + 14;
  EXPECT_EQ(iph[0], 0x45);
  EXPECT_EQ(load_be16(iph + 2), 20 + 8 + 100);
  EXPECT_EQ(iph[8], 64);
  EXPECT_EQ(iph[9], net::kIpProtoUdp);
  EXPECT_EQ(net::IpAddr::v4(std::span<const uint8_t, 4>(iph + 12, 4)), ip("192.0.2.7"));
  EXPECT_EQ(net::IpAddr::v4(std::span<const uint8_t, 4>(iph + 16, 4)), ip("192.0.2.1"));
  EXPECT_TRUE(net::ipv4_checksum_ok(iph));
  EXPECT_EQ(net::csum_fold(net::csum_partial({iph, 20})), 0);  // independently: the header sums to ~0
  const uint8_t* udp = iph + 20;
  EXPECT_EQ(load_be16(udp), 49999);
  EXPECT_EQ(load_be16(udp + 2), 1000);
  EXPECT_EQ(load_be16(udp + 4), 8 + 100);
  EXPECT_EQ(load_be16(udp + 6), 0);
  EXPECT_EQ(std::vector<uint8_t>(udp + 8, udp + 108), payload);
}

TEST(Outer, WrapIpv6WritesExactHeaders) {
  PoolPacket p;
  const auto payload = pattern(333);
  ASSERT_TRUE(p.pkt->assign(payload));
  p.pkt->meta.peer = ip("2001:db8::7");
  p.pkt->meta.peer_port = 50123;
  const OuterEndpoint local{ip("2001:db8::1"), 1000, mac("02:aa:bb:cc:dd:01")};
  net::PacketBatch b;
  b.push(p.pkt);
  ASSERT_EQ(wrap_received(b, local, 0x77), 1u);
  ASSERT_EQ(p.pkt->size(), 14u + 40 + 8 + 333);
  const uint8_t* f = p.pkt->data();
  EXPECT_EQ(load_be16(f + 12), net::kEtherTypeIpv6);
  const uint8_t* iph = f + 14;
  EXPECT_EQ(load_be32(iph), 0x60000000u);
  EXPECT_EQ(load_be16(iph + 4), 8 + 333);
  EXPECT_EQ(iph[6], net::kIpProtoUdp);
  EXPECT_EQ(iph[7], 64);
  EXPECT_EQ(net::IpAddr::v6(std::span<const uint8_t, 16>(iph + 8, 16)), ip("2001:db8::7"));
  EXPECT_EQ(net::IpAddr::v6(std::span<const uint8_t, 16>(iph + 24, 16)), ip("2001:db8::1"));
  const uint8_t* udp = iph + 40;
  EXPECT_EQ(load_be16(udp), 50123);
  EXPECT_EQ(load_be16(udp + 2), 1000);
  EXPECT_EQ(load_be16(udp + 4), 8 + 333);
  EXPECT_EQ(load_be16(udp + 6), 0);  // zero UDP checksum (spec §1; UDP_NO_CHECK6_RX)
  EXPECT_EQ(std::vector<uint8_t>(udp + 8, udp + 8 + 333), payload);
}

// wrap then unwrap: the payload comes back untouched, addressed to the frame's outer destination.
TEST(Outer, RoundTripRestoresPayloadAndAddressesTheOuterDestination) {
  for (const char* family : {"v4", "v6"}) {
    const bool v4 = std::string_view(family) == "v4";
    PoolPacket p;
    const auto payload = pattern(77);
    ASSERT_TRUE(p.pkt->assign(payload));
    const uint32_t headroom = p.pkt->headroom();
    p.pkt->meta.peer = ip(v4 ? "198.51.100.9" : "2001:db8::9");
    p.pkt->meta.peer_port = 12345;
    const OuterEndpoint local{ip(v4 ? "198.51.100.1" : "2001:db8::1"), 1000, {}};
    net::PacketBatch b;
    b.push(p.pkt);
    ASSERT_EQ(wrap_received(b, local, 1), 1u) << family;
    p.pkt->meta.peer = {};
    p.pkt->meta.peer_port = 0;
    ASSERT_TRUE(unwrap_for_send(*p.pkt)) << family;
    EXPECT_EQ(bytes_of(p.pkt->bytes()), payload) << family;
    EXPECT_EQ(p.pkt->headroom(), headroom) << family;
    EXPECT_EQ(p.pkt->meta.peer, local.local) << family;
    EXPECT_EQ(p.pkt->meta.peer_port, 1000) << family;
  }
}

TEST(Outer, NoHeadroomOrFamilyMismatchGetsTheDropReason) {
  net::PacketPool pool(4);
  net::Packet* tight = pool.alloc();
  tight->reset(20);  // less than Eth + IPv4 + UDP
  ASSERT_TRUE(tight->assign(pattern(10)));
  tight->meta.peer = ip("192.0.2.7");
  net::Packet* mismatch = pool.alloc();
  ASSERT_TRUE(mismatch->assign(pattern(10)));
  mismatch->meta.peer = ip("2001:db8::7");
  net::Packet* fine = pool.alloc();
  ASSERT_TRUE(fine->assign(pattern(10)));
  fine->meta.peer = ip("192.0.2.8");
  net::PacketBatch b;
  b.push(tight);
  b.push(mismatch);
  b.push(fine);
  const OuterEndpoint local{ip("192.0.2.1"), 1000, {}};
  EXPECT_EQ(wrap_received(b, local, 0x42), 1u);
  EXPECT_EQ(tight->meta.drop_reason, 0x42);
  EXPECT_EQ(mismatch->meta.drop_reason, 0x42);
  EXPECT_EQ(bytes_of(mismatch->bytes()), pattern(10));  // untouched
  EXPECT_EQ(fine->meta.drop_reason, 0);
  EXPECT_EQ(fine->size(), 10u + 42);
}

TEST(Outer, UnwrapRefusesWhatIsNotEthernetIpUdp) {
  PoolPacket p;
  auto tcp = udp_frame({});
  tcp[14 + 9] = net::kIpProtoTcp;
  ASSERT_TRUE(p.pkt->assign(tcp));
  EXPECT_FALSE(unwrap_for_send(*p.pkt));
  EXPECT_EQ(bytes_of(p.pkt->bytes()), tcp);
  auto arp = test::arp_request(mac("02:00:00:00:00:01"), ip("10.0.0.1"), ip("10.0.0.2"));
  ASSERT_TRUE(p.pkt->assign(arp));
  EXPECT_FALSE(unwrap_for_send(*p.pkt));
  auto shortf = udp_frame({});
  shortf.resize(14 + 20 + 4);
  ASSERT_TRUE(p.pkt->assign(shortf));
  EXPECT_FALSE(unwrap_for_send(*p.pkt));
  auto bad_ihl = udp_frame({});
  bad_ihl[14] = 0x42;  // IHL 2: not an IPv4 header
  ASSERT_TRUE(p.pkt->assign(bad_ihl));
  EXPECT_FALSE(unwrap_for_send(*p.pkt));
}

// -------------------------------------------------------------------------------------------------- SaTable

std::unique_ptr<TxSa> sa_with_spi(uint32_t spi) {
  psp::SealParams p;
  p.spi = spi;
  const psp::OuterHeaders outer{*net::IpAddr::parse("192.0.2.1"), *net::IpAddr::parse("192.0.2.2")};
  return std::make_unique<TxSa>(p, outer, Secret<32>{}, 1);
}

TEST(SaTable, InstallReplaceRemoveAndCapacity) {
  flow::EpochDomain epoch(1);
  SaTable t(2, epoch);
  EXPECT_EQ(t.capacity(), 2u);
  EXPECT_EQ(t.install(nullptr).error(), SaError::kBadKey);
  EXPECT_EQ(t.install(std::make_unique<TxSa>()).error(), SaError::kBadKey);  // no key
  auto a = t.install(sa_with_spi(0x11));
  auto b = t.install(sa_with_spi(0x22));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_EQ(t.install(sa_with_spi(0x33)).error(), SaError::kFull);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.get(*a)->tmpl->spi(), 0x11u);
  EXPECT_EQ(t.get(*b)->tmpl->spi(), 0x22u);
  EXPECT_EQ(t.get(7), nullptr);

  ASSERT_TRUE(t.replace(*a, sa_with_spi(0x44)).ok());
  EXPECT_EQ(t.get(*a)->tmpl->spi(), 0x44u);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.replace(9, sa_with_spi(1)).error(), SaError::kNotFound);
  EXPECT_EQ(t.replace(*a, std::make_unique<TxSa>()).error(), SaError::kBadKey);

  ASSERT_TRUE(t.remove(*b).ok());
  EXPECT_EQ(t.get(*b), nullptr);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.remove(*b).error(), SaError::kNotFound);
  EXPECT_EQ(t.remove(99).error(), SaError::kNotFound);
  EXPECT_EQ(t.replace(*b, sa_with_spi(1)).error(), SaError::kNotFound);
}

// A removed crypto id may still tag a packet in a batch that began before the removal: it is handed out
// again only after every online reader passed a quiescent point.
TEST(SaTable, IdsAreReusedOnlyAfterAGracePeriod) {
  flow::EpochDomain epoch(1);
  SaTable t(1, epoch);
  epoch.online(0);  // a worker, mid-batch
  auto id = t.install(sa_with_spi(1));
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(t.remove(*id).ok());
  epoch.poll();
  EXPECT_EQ(t.install(sa_with_spi(2)).error(), SaError::kFull);  // the worker may still use it
  epoch.quiescent(0);                                            // its batch ended
  EXPECT_GE(epoch.poll(), 1u);
  auto again = t.install(sa_with_spi(3));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *id);
  EXPECT_EQ(t.get(*again)->tmpl->spi(), 3u);
  epoch.offline(0);
}

// The table goes away before its epoch domain has run the id's grace-period callback (the gateway's
// members are destroyed in that order): the callback must not touch the destroyed table.
TEST(SaTable, DestroyedBeforeTheGracePeriodEnds) {
  flow::EpochDomain epoch(1);
  epoch.online(0);
  {
    auto t = std::make_unique<SaTable>(4, epoch);
    auto id = t->install(sa_with_spi(1));
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE(t->remove(*id).ok());
    EXPECT_GE(epoch.pending(), 1u);
  }
  epoch.quiescent(0);
  epoch.synchronize();  // runs the callbacks (under ASan/valgrind a use-after-free shows here)
  EXPECT_EQ(epoch.pending(), 0u);
  epoch.offline(0);
}

// An SA holds its key bytes; each worker prepares its key on its first packet with the SA, once, and the
// SA holds none for a worker that sent nothing with it (a prepared key is ~1.1 KB).
TEST(TxSa, EachWorkerPreparesItsKeyOnFirstUse) {
  auto backend = crypto::make_default_backend();
  ASSERT_NE(backend, nullptr);
  std::array<uint8_t, 32> bytes{};
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(0xa0 + i);
  for (const psp::PspVersion v : {psp::PspVersion::kAesGcm128, psp::PspVersion::kAesGcm256}) {
    psp::SealParams p;
    p.version = v;
    const TxSa sa(p, {*net::IpAddr::parse("192.0.2.1"), *net::IpAddr::parse("192.0.2.2")},
                  Secret<32>(std::span<const uint8_t, 32>(bytes)), 2);
    EXPECT_EQ(sa.keys.get(0), nullptr);
    const crypto::AeadKey* k0 = sa.key_for(0, *backend);
    ASSERT_NE(k0, nullptr);
    EXPECT_EQ(sa.key_for(0, *backend), k0);       // made once
    EXPECT_EQ(sa.keys.get(1), nullptr);           // worker 1 sent nothing with it
    EXPECT_EQ(sa.key_for(2, *backend), nullptr);  // no slot for a third worker

    // It is the SA's key (the first 16 bytes for version 0): it seals as one made from the bytes directly.
    const crypto::AeadAlg alg = *psp::aead_alg(static_cast<uint8_t>(v));
    auto direct = backend->make_key(alg, std::span<const uint8_t>(bytes).first(crypto::key_size(alg)));
    ASSERT_NE(direct, nullptr);
    std::array<uint8_t, 40> text{}, out_a{}, out_b{};
    std::array<uint8_t, crypto::kGcmTagSize> tag_a{}, tag_b{};
    std::array<crypto::AeadOp, 2> ops;
    ops[0] = {k0, {}, {}, text.data(), out_a.data(), text.size(), tag_a.data(), false};
    ops[1] = {direct.get(), {}, {}, text.data(), out_b.data(), text.size(), tag_b.data(), false};
    backend->seal(ops);
    EXPECT_TRUE(ops[0].ok && ops[1].ok);
    EXPECT_EQ(out_a, out_b);
    EXPECT_EQ(tag_a, tag_b);
  }
}

// A slot takes one key: a TxKeys without a slot for the worker keeps nothing.
TEST(TxKeys, SlotsAreFilledOncePerWorker) {
  auto backend = crypto::make_default_backend();
  ASSERT_NE(backend, nullptr);
  const std::array<uint8_t, 16> bytes{};
  TxKeys none;
  EXPECT_EQ(none.size(), 0u);
  EXPECT_EQ(none.get(0), nullptr);
  EXPECT_EQ(none.set(0, backend->make_key(crypto::AeadAlg::kAesGcm128, bytes)), nullptr);
  TxKeys keys(3);
  EXPECT_EQ(keys.size(), 3u);
  const crypto::AeadKey* k = keys.set(2, backend->make_key(crypto::AeadAlg::kAesGcm128, bytes));
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(keys.get(2), k);
  EXPECT_EQ(keys.get(0), nullptr);
  EXPECT_EQ(keys.set(1, nullptr), nullptr);
  TxKeys one(1);  // the one slot inline
  EXPECT_EQ(one.get(0), nullptr);
  const crypto::AeadKey* k1 = one.set(0, backend->make_key(crypto::AeadAlg::kAesGcm128, bytes));
  ASSERT_NE(k1, nullptr);
  EXPECT_EQ(one.get(0), k1);
  EXPECT_EQ(one.get(1), nullptr);
  EXPECT_EQ(one.set(1, backend->make_key(crypto::AeadAlg::kAesGcm128, bytes)), nullptr);
}

// --------------------------------------------------------------------------------------------- flow_hash

TEST(FlowHash, SameFlowSameHashOtherPortsDiffer) {
  for (const char* family : {"v4", "v6"}) {
    const bool v4 = std::string_view(family) == "v4";
    UdpSpec s;
    s.src = ip(v4 ? "10.0.0.1" : "fd00::1");
    s.dst = ip(v4 ? "10.0.0.2" : "fd00::2");
    const uint32_t h = flow_hash(udp_frame(s));
    UdpSpec other_payload = s;
    other_payload.payload = pattern(300);
    other_payload.src_mac = mac("02:00:00:00:00:99");
    EXPECT_EQ(flow_hash(udp_frame(other_payload)), h) << family;
    UdpSpec sport = s;
    ++sport.sport;
    EXPECT_NE(flow_hash(udp_frame(sport)), h) << family;
    UdpSpec dport = s;
    ++dport.dport;
    EXPECT_NE(flow_hash(udp_frame(dport)), h) << family;
    UdpSpec dst = s;
    dst.dst = ip(v4 ? "10.0.0.3" : "fd00::3");
    EXPECT_NE(flow_hash(udp_frame(dst)), h) << family;
  }
  EXPECT_EQ(flow_hash(test::arp_request(mac("02:00:00:00:00:01"), ip("10.0.0.1"), ip("10.0.0.2"))), 0u);
}

// Every fragment of a datagram hashes alike (addresses and protocol only): the first one carries the
// ports, the others do not, and one datagram must stay on one worker and one UDP source port.
TEST(FlowHash, FragmentsFallBackToAddresses) {
  UdpSpec first;
  first.ipv4_frag = net::kIpv4FlagMf;  // offset 0, more fragments
  UdpSpec middle;
  middle.ipv4_frag = net::kIpv4FlagMf | 185;
  middle.sport = 1;  // whatever bytes sit where ports would be
  middle.dport = 2;
  UdpSpec last;
  last.ipv4_frag = 370;
  last.sport = 3;
  const uint32_t h = flow_hash(udp_frame(first));
  EXPECT_EQ(flow_hash(udp_frame(middle)), h);
  EXPECT_EQ(flow_hash(udp_frame(last)), h);
  UdpSpec other_dst = first;
  other_dst.dst = ip("10.0.0.9");
  EXPECT_NE(flow_hash(udp_frame(other_dst)), h);
  EXPECT_NE(flow_hash(udp_frame(UdpSpec{})), 0u);
}

// ------------------------------------------------------------------------------------ test pipeline state

// One gateway's data-plane state: what Gateway::build() assembles, minus ports and threads.
class RecordSink final : public flow::Sink {
 public:
  struct Out {
    flow::Target target;
    std::vector<uint8_t> bytes;
    net::Metadata meta;
  };
  explicit RecordSink(net::PacketPool& pool) : pool_(pool) {}
  void to_port(PortId port, std::span<net::Packet* const> pkts) override {
    add({flow::TargetKind::kPort, port.value()}, pkts);
  }
  void to_cpu(uint16_t reason, std::span<net::Packet* const> pkts) override {
    add({flow::TargetKind::kCpu, reason}, pkts);
  }
  void to_kernel(std::span<net::Packet* const> pkts) override { add({flow::TargetKind::kKernel, 0}, pkts); }
  void dropped(uint8_t reason, std::span<net::Packet* const> pkts) override {
    add({flow::TargetKind::kDrop, reason}, pkts);
  }
  std::vector<Out> out;

 private:
  void add(flow::Target t, std::span<net::Packet* const> pkts) {
    for (net::Packet* p : pkts) {
      out.push_back({t, bytes_of(p->bytes()), p->meta});
      pool_.free(p);
    }
  }
  net::PacketPool& pool_;
};

flow::Target port_target(uint16_t p) {
  return {flow::TargetKind::kPort, p};
}
flow::Target cpu_target(CpuReason r) {
  return {flow::TargetKind::kCpu, static_cast<uint16_t>(r)};
}
flow::Target drop_target(uint8_t r) {
  return {flow::TargetKind::kDrop, r};
}
uint8_t code(psp::DropReason r) {
  return static_cast<uint8_t>(r);
}

struct Side {
  explicit Side(TopologyOptions o, net::IpAddr pip_, net::MacAddr gw_mac = mac("02:50:00:00:00:01"),
                uint64_t decap_dmac = 0)
      : pip(pip_), local_mac(mac("02:50:00:00:ff:01")) {
    if (o.host_ports.empty()) o.host_ports = {PortId{1}};
    workers.push_back(std::make_unique<WorkerPsp>(0, crypto::make_default_backend(), 64));
    for (std::size_t i = 0; i < o.host_ports.size(); ++i) {
      auto hp = std::make_unique<HostPortInfo>();
      hp->gateway_mac = gw_mac;
      host_ports.push_back(std::move(hp));
    }
    PspContext ctx;
    ctx.sas = &sas;
    ctx.master_keys = &keys;
    ctx.workers = &workers;
    ctx.host_ports = &host_ports;
    ctx.local_mac = local_mac;
    ctx.nexthop_mac = mac("02:50:00:00:ee:01");
    ctx.decap_dmac = decap_dmac;
    auto t = Topology::build(o, ctx);
    EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error());
    if (!t.ok()) return;
    topo = std::move(*t);
    auto w = topo->pipeline().attach_worker({&pool, 7});
    EXPECT_TRUE(w.ok());
    if (!w.ok()) return;
    worker = std::move(*w);
    worker->offline();  // between batches, as an idle PacketWorker: grace periods need not wait for it
  }
  ~Side() {
    worker.reset();
    epoch.synchronize();
  }
  Side(const Side&) = delete;
  Side& operator=(const Side&) = delete;

  // Runs frames through the pipeline from ROOT, each as received on `in_port`.
  void run(const std::vector<std::vector<uint8_t>>& frames, PortId in_port,
           const std::vector<net::IpAddr>& peers = {}) {
    net::PacketBatch b;
    for (std::size_t i = 0; i < frames.size(); ++i) {
      net::Packet* p = pool.alloc();
      ASSERT_NE(p, nullptr);
      ASSERT_TRUE(p->assign(frames[i]));
      p->meta.in_port = in_port;
      if (i < peers.size()) p->meta.peer = peers[i];
      b.push(p);
    }
    process(b);
  }
  void process(net::PacketBatch& b) {
    worker->online();
    worker->process(b, sink);
    worker->offline();
  }
  flow::PipeStats stats(std::string_view pipe) const {
    return *topo->pipeline().pipe_stats(*topo->pipeline().find_pipe(pipe));
  }

  net::IpAddr pip;
  net::MacAddr local_mac;
  std::vector<std::unique_ptr<WorkerPsp>> workers;
  flow::EpochDomain epoch{1};
  SaTable sas{8, epoch};
  MasterKeyBoard keys;
  std::vector<std::unique_ptr<HostPortInfo>> host_ports;
  std::unique_ptr<Topology> topo;
  net::PacketPool pool{256, net::kDefaultBufferSize};
  RecordSink sink{pool};
  std::unique_ptr<flow::Worker> worker;
};

// ---------------------------------------------------------------------------------------------- Topology

struct TopoCase {
  net::IpFamily inner;
  net::IpFamily outer;
  uint32_t sample_rate;
  bool ingress_acl;
};

std::string name_of(const TopoCase& c) {
  return std::string(c.inner == net::IpFamily::kV4 ? "i4" : "i6") +
         (c.outer == net::IpFamily::kV4 ? "o4" : "o6") + (c.sample_rate > 0 ? "_samp" : "") +
         (c.ingress_acl ? "" : "_noacl");
}

class TopologyMatrix : public ::testing::TestWithParam<TopoCase> {};

TEST_P(TopologyMatrix, BuildsTheSeedPipesAndRoutesAtRoot) {
  const TopoCase c = GetParam();
  TopologyOptions o;
  o.inner = c.inner;
  o.outer = c.outer;
  o.sample_rate = c.sample_rate;
  o.ingress_acl = c.ingress_acl;
  const bool v4 = c.inner == net::IpFamily::kV4;
  Side s(o, ip(c.outer == net::IpFamily::kV4 ? "192.0.2.1" : "2001:db8::1"));
  ASSERT_NE(s.topo, nullptr);
  const flow::Pipeline& pl = s.topo->pipeline();
  std::vector<std::string> names{"ROOT",       "EGR_ACL",   "PSP_ENCRYPT", "PSP_DECRYPT", "INGR_ACL",
                                 "SYND_STATS", "SFC_ENTRY", "SFC_EXIT",    "SFC_HOP"};
  if (c.sample_rate > 0) {
    names.push_back("EGR_SAMP");
    names.push_back("INGR_SAMP");
  }
  EXPECT_EQ(pl.pipe_count(), names.size());
  const std::string mermaid = pl.to_mermaid(s.topo->dump_options({"network", "vm0"}));
  for (const auto& n : names) {
    EXPECT_TRUE(pl.find_pipe(n).has_value()) << n;
    EXPECT_NE(mermaid.find(n), std::string::npos) << n << "\n" << mermaid;
  }
  EXPECT_EQ(pl.find_pipe("EGR_SAMP").has_value(), c.sample_rate > 0);
  // The CPU queue is named by its reason (node ids spell it with '_').
  EXPECT_TRUE(mermaid.find("RSS egress-miss") != std::string::npos ||
              mermaid.find("RSS_egress_miss") != std::string::npos)
      << mermaid;
  EXPECT_NE(mermaid.find("network"), std::string::npos) << mermaid;
  EXPECT_EQ(pl.pipe_name(*pl.find_pipe("EGR_ACL")), "EGR_ACL");
  EXPECT_EQ(s.topo->egr_acl(), *pl.find_pipe("EGR_ACL"));

  // ROOT: the inner family from the host port -> EGR_ACL (empty: miss -> CPU); ARP -> exception; the
  // other family and anything from the network port that is not UDP/1000 of the outer family -> drop.
  UdpSpec mine;
  mine.src = ip(v4 ? "10.0.0.1" : "fd00::1");
  mine.dst = ip(v4 ? "10.0.0.2" : "fd00::2");
  UdpSpec other;
  other.src = ip(v4 ? "fd00::1" : "10.0.0.1");
  other.dst = ip(v4 ? "fd00::2" : "10.0.0.2");
  s.run({udp_frame(mine), test::arp_request(mac("02:00:00:00:00:01"), ip("10.0.0.1"), ip("10.0.0.2")),
         udp_frame(other)},
        PortId{1});
  s.run({udp_frame(mine)}, PortId{0});
  ASSERT_EQ(s.sink.out.size(), 4u);
  const uint8_t root_miss = static_cast<uint8_t>(PipeDrop::kRootMiss);
  std::vector<flow::Target> got;
  for (const auto& o2 : s.sink.out) got.push_back(o2.target);
  EXPECT_EQ(std::count(got.begin(), got.end(), cpu_target(CpuReason::kEgressMiss)), 1);
  EXPECT_EQ(std::count(got.begin(), got.end(), cpu_target(CpuReason::kException)), 1);
  EXPECT_EQ(std::count(got.begin(), got.end(), drop_target(root_miss)), 2);
  EXPECT_EQ(s.stats("EGR_ACL").misses, 1u);
}

std::vector<TopoCase> all_topo_cases() {
  std::vector<TopoCase> out;
  for (auto inner : {net::IpFamily::kV4, net::IpFamily::kV6}) {
    for (auto outer : {net::IpFamily::kV4, net::IpFamily::kV6}) {
      for (uint32_t rate : {0u, 3u}) {
        for (bool acl : {true, false}) out.push_back({inner, outer, rate, acl});
      }
    }
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(All, TopologyMatrix, ::testing::ValuesIn(all_topo_cases()),
                         [](const auto& p) { return name_of(p.param); });

TEST(Topology, EgressEntriesRoundTripAndTypedErrors) {
  TopologyOptions o;
  o.max_tunnels = 2;
  Side s(o, ip("2001:db8::1"));
  ASSERT_NE(s.topo, nullptr);
  auto e1 = s.topo->add_egress(ip("10.0.0.1"), ip("10.0.0.2"), 0, 0);
  ASSERT_TRUE(e1.ok());
  EXPECT_EQ(s.stats("EGR_ACL").entries, 1u);
  EXPECT_EQ(s.stats("PSP_ENCRYPT").entries, 1u);
  // The same VIP pair again (with another crypto id): refused, and nothing half-made stays behind.
  auto dup = s.topo->add_egress(ip("10.0.0.1"), ip("10.0.0.2"), 1, 0);
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error(), flow::FlowError::kDuplicateEntry);
  EXPECT_EQ(s.stats("PSP_ENCRYPT").entries, 1u);
  auto e2 = s.topo->add_egress(ip("10.0.0.1"), ip("10.0.0.3"), 1, 0);
  ASSERT_TRUE(e2.ok());
  auto full = s.topo->add_egress(ip("10.0.0.1"), ip("10.0.0.4"), 2, 0);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error(), flow::FlowError::kTableFull);
  EXPECT_EQ(s.stats("PSP_ENCRYPT").entries, 2u);

  ASSERT_TRUE(s.topo->remove_egress(*e1).ok());
  EXPECT_EQ(s.stats("EGR_ACL").entries, 1u);
  EXPECT_EQ(s.stats("PSP_ENCRYPT").entries, 1u);
  auto stale = s.topo->remove_egress(*e1);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error(), flow::FlowError::kStaleHandle);
  s.topo->pipeline().synchronize();
  auto again = s.topo->add_egress(ip("10.0.0.1"), ip("10.0.0.2"), 0, 0);
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again->acl, e1->acl);  // a new generation, whatever slot it took
}

TEST(Topology, IngressEntriesRoundTripAndTypedErrors) {
  TopologyOptions o;
  o.max_tunnels = 1;  // INGR_ACL holds max_tunnels x ingress_per_tunnel (4) + 16
  Side s(o, ip("2001:db8::1"));
  ASSERT_NE(s.topo, nullptr);
  auto h = s.topo->add_ingress(0x10, ip("10.0.0.2"), ip("10.0.0.1"), 0);
  ASSERT_TRUE(h.ok());
  auto dup = s.topo->add_ingress(0x10, ip("10.0.0.2"), ip("10.0.0.1"), 0);
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error(), flow::FlowError::kDuplicateEntry);
  std::size_t added = 1;
  for (uint32_t spi = 0x100;; ++spi) {
    auto e = s.topo->add_ingress(spi, ip("10.0.0.2"), ip("10.0.0.1"), 0);
    if (!e) {
      EXPECT_EQ(e.error(), flow::FlowError::kTableFull);
      break;
    }
    ASSERT_LT(++added, 100u);
  }
  EXPECT_EQ(added, 4u + 16u);
  ASSERT_TRUE(s.topo->remove(*h).ok());
  EXPECT_EQ(s.topo->remove(*h).error(), flow::FlowError::kStaleHandle);
  EXPECT_EQ(s.stats("INGR_ACL").entries, added - 1);
}

// A mass re-key at full size: every one of 256 tunnels holds its two SPIs and opens two more, then the
// older half is removed and replaced at once, before any grace period ends (the worker is not running):
// records waiting out their grace period never make an insert fail.
TEST(Topology, IngressAclHoldsEveryTunnelsSpisThroughAMassReKey) {
  TopologyOptions o;
  o.max_tunnels = 256;
  Side s(o, ip("2001:db8::1"));
  ASSERT_NE(s.topo, nullptr);
  auto remote = [](uint32_t t) {
    return ip("10.1." + std::to_string(t / 250) + "." + std::to_string(t % 250));
  };
  std::vector<flow::EntryHandle> old;
  for (uint32_t spi = 1; spi <= 4 * 256; ++spi) {
    auto h = s.topo->add_ingress(spi, remote(spi % 256), ip("10.0.0.1"), 0);
    ASSERT_TRUE(h.ok()) << spi << ": " << flow::to_string(h.error());
    if (spi <= 2 * 256) old.push_back(*h);
  }
  for (const auto& h : old) ASSERT_TRUE(s.topo->remove(h).ok());
  for (uint32_t spi = 0x80000001u; spi <= 0x80000000u + 2 * 256; ++spi) {
    auto h = s.topo->add_ingress(spi, remote(spi % 256), ip("10.0.0.1"), 0);
    ASSERT_TRUE(h.ok()) << spi << ": " << flow::to_string(h.error());
  }
  EXPECT_EQ(s.stats("INGR_ACL").entries, 4u * 256u);
}

// -a: one entry per local VIP accepts any SPI and any source.
TEST(Topology, IngressAnyWithoutTheAcl) {
  TopologyOptions o;
  o.ingress_acl = false;
  Side s(o, ip("2001:db8::1"));
  ASSERT_NE(s.topo, nullptr);
  auto h = s.topo->add_ingress_any(ip("10.0.0.1"), 0);
  ASSERT_TRUE(h.ok());
  auto dup = s.topo->add_ingress_any(ip("10.0.0.1"), 0);
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error(), flow::FlowError::kDuplicateEntry);
  ASSERT_TRUE(s.topo->remove(*h).ok());
  EXPECT_EQ(s.stats("INGR_ACL").entries, 0u);
}

// ------------------------------------------------------------------------------- PSP actions, A to B

struct PspCase {
  net::IpFamily inner;
  net::IpFamily outer;
  bool vc;
};

class PspPipeline : public ::testing::TestWithParam<PspCase> {
 protected:
  void SetUp() override {
    const PspCase c = GetParam();
    v4_inner_ = c.inner == net::IpFamily::kV4;
    const bool v4_outer = c.outer == net::IpFamily::kV4;
    const TopologyOptions o = options();
    a_ = std::make_unique<Side>(o, ip(v4_outer ? "192.0.2.1" : "2001:db8::1"), mac("02:50:00:00:0a:01"));
    b_ = std::make_unique<Side>(o, ip(v4_outer ? "192.0.2.2" : "2001:db8::2"), mac("02:50:00:00:0b:01"));
    ASSERT_NE(a_->worker, nullptr);
    ASSERT_NE(b_->worker, nullptr);
    vip_a_ = ip(v4_inner_ ? "10.1.0.1" : "fd00:a::1");
    vip_b_ = ip(v4_inner_ ? "10.2.0.1" : "fd00:b::1");
    b_->keys.publish(ring_b_.snapshot());
    b_->host_ports[0]->workload_mac = mac_bits(vm_b_);
    auto spi = ring_b_.allocate_spi();
    ASSERT_TRUE(spi.ok());
    spi_ = *spi;
  }

  // Both sides' topology options (a test may rebuild a side with changes).
  virtual TopologyOptions options() const {
    TopologyOptions o;
    o.inner = GetParam().inner;
    o.outer = GetParam().outer;
    return o;
  }

  // A's egress SA toward B for `spi`, with B's key for it (what the key exchange sets up).
  CryptoId install_egress(uint32_t spi) {
    auto id = a_->sas.install(make_sa(spi));
    EXPECT_TRUE(id.ok());
    EXPECT_TRUE(a_->topo->add_egress(vip_a_, vip_b_, *id, egress_port_).ok());
    return *id;
  }
  std::unique_ptr<TxSa> make_sa(uint32_t spi) const {
    psp::SealParams p;
    p.spi = spi;
    p.version = psp::PspVersion::kAesGcm256;
    p.has_vc = GetParam().vc;
    p.vc = 0x778899aabbccddeeULL;
    p.crypt_offset = static_cast<uint8_t>((v4_inner_ ? 5 : 10) + (p.has_vc ? 2 : 0));
    auto key = ring_b_.derive(spi & ~psp::kSpiSlotBit, p.version);  // slot 0's key whatever the SPI says
    EXPECT_TRUE(key.ok());
    return std::make_unique<TxSa>(p, psp::OuterHeaders{a_->pip, b_->pip}, key->bytes.clone(), 1);
  }
  void open_ingress() { ASSERT_TRUE(b_->topo->add_ingress(spi_, vip_a_, vip_b_, 0).ok()); }

  std::vector<uint8_t> vm_a_frame(std::size_t payload = 200) const {
    UdpSpec s;
    s.src_mac = vm_a_;
    s.dst_mac = a_->host_ports[0]->gateway_mac;
    s.src = vip_a_;
    s.dst = vip_b_;
    s.payload = pattern(payload);
    return udp_frame(s);
  }

  // A: host port -> pipeline -> the frame it sends toward the network port.
  std::vector<uint8_t> encrypt_on_a(const std::vector<uint8_t>& frame) {
    a_->sink.out.clear();
    a_->run({frame}, PortId{1});
    EXPECT_EQ(a_->sink.out.size(), 1u);
    if (a_->sink.out.size() != 1) return {};
    EXPECT_EQ(a_->sink.out[0].target, port_target(0));
    return a_->sink.out[0].bytes;
  }

  // The wire between the UDP sockets: A's frame reduced to its UDP payload, then B's outer headers
  // synthesized around it (as recvmmsg reported it), then B's pipeline.
  void deliver_to_b(const std::vector<uint8_t>& wire_frame, std::size_t tamper_at = 0) {
    net::PacketPool pool(2);
    net::Packet* p = pool.alloc();
    ASSERT_TRUE(p->assign(wire_frame));
    ASSERT_TRUE(unwrap_for_send(*p));
    EXPECT_EQ(p->meta.peer, b_->pip);
    EXPECT_EQ(p->meta.peer_port, psp::kPspUdpPort);
    std::vector<uint8_t> datagram = bytes_of(p->bytes());
    if (tamper_at != 0) datagram[datagram.size() - tamper_at] ^= 0x01;
    net::Packet* q = b_->pool.alloc();
    ASSERT_TRUE(q->assign(datagram));
    q->meta.in_port = PortId{0};
    q->meta.peer = a_->pip;
    q->meta.peer_port = load_be16(&wire_frame[wire_frame.size() - p->size() - 8]);  // UDP source
    net::PacketBatch b;
    b.push(q);
    ASSERT_EQ(wrap_received(b, {b_->pip, psp::kPspUdpPort, b_->local_mac}, 0x99), 1u);
    // B's synthesized IP/UDP headers carry what A's encap wrote, but for what the kernel keeps.
    const std::size_t ip_len = b_->pip.is_v4() ? 20 : 40;
    const uint8_t* mine = q->data() + 14;
    const uint8_t* sent = wire_frame.data() + 14;
    if (b_->pip.is_v4()) {
      EXPECT_EQ(std::vector<uint8_t>(mine + 2, mine + 4), std::vector<uint8_t>(sent + 2, sent + 4));
      EXPECT_EQ(std::vector<uint8_t>(mine + 9, mine + 10), std::vector<uint8_t>(sent + 9, sent + 10));
      EXPECT_EQ(std::vector<uint8_t>(mine + 12, mine + 20), std::vector<uint8_t>(sent + 12, sent + 20));
    } else {
      EXPECT_EQ(std::vector<uint8_t>(mine + 4, mine + 7), std::vector<uint8_t>(sent + 4, sent + 7));
      EXPECT_EQ(std::vector<uint8_t>(mine + 8, mine + 40), std::vector<uint8_t>(sent + 8, sent + 40));
    }
    EXPECT_EQ(std::vector<uint8_t>(mine + ip_len, mine + ip_len + 6),
              std::vector<uint8_t>(sent + ip_len, sent + ip_len + 6));  // ports and length
    b_->sink.out.clear();
    b_->process(b);
  }

  std::unique_ptr<Side> a_, b_;
  bool v4_inner_ = true;
  net::IpAddr vip_a_, vip_b_;
  net::MacAddr vm_a_ = mac("02:00:00:00:0a:0a");
  net::MacAddr vm_b_ = mac("02:00:00:00:0b:0b");
  psp::KeyRing ring_b_ = psp::KeyRing::with_random_key();
  uint32_t spi_ = 0;
  std::size_t egress_port_ = 0;  // the host-port index vip_a_ sits behind on A (EGR_ACL's in-port)
};

TEST_P(PspPipeline, EncryptOnAThenDecryptOnBDeliversTheInnerPacket) {
  install_egress(spi_);
  open_ingress();
  const auto frame = vm_a_frame();
  const auto wire = encrypt_on_a(frame);
  ASSERT_FALSE(wire.empty());
  const bool v4_outer = a_->pip.is_v4();
  const std::size_t outer = 14 + (v4_outer ? 20 : 40) + 8;
  const std::size_t hdr = psp::kPspHeaderSize + (GetParam().vc ? psp::kPspVcSize : 0);
  const std::size_t inner_len = frame.size() - 14;
  ASSERT_EQ(wire.size(), outer + hdr + inner_len + psp::kPspIcvSize);
  EXPECT_EQ(load_be16(&wire[12]), v4_outer ? net::kEtherTypeIpv4 : net::kEtherTypeIpv6);
  EXPECT_EQ(load_be16(&wire[outer - 6]), psp::kPspUdpPort);
  EXPECT_GE(load_be16(&wire[outer - 8]), 0xc000);  // source port: the flow's hash, dynamic range
  if (v4_outer) {
    EXPECT_TRUE(net::ipv4_checksum_ok(&wire[14]));
  }
  auto h = psp::decode_header({&wire[outer], hdr});
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->spi, spi_);
  EXPECT_EQ(h->has_vc, GetParam().vc);
  EXPECT_EQ(h->next_header, v4_inner_ ? net::kIpProtoIpv4 : net::kIpProtoIpv6);
  // The inner header stays clear (crypt offset), the payload does not.
  const std::size_t clear = (v4_inner_ ? 20 : 40);
  EXPECT_TRUE(std::equal(frame.begin() + 14, frame.begin() + 14 + clear, wire.begin() + outer + hdr));
  EXPECT_EQ(std::search(wire.begin(), wire.end(), frame.end() - 64, frame.end()), wire.end());
  EXPECT_EQ(a_->workers[0]->counters.tx_packets, 1u);

  deliver_to_b(wire);
  ASSERT_EQ(b_->sink.out.size(), 1u);
  const auto& got = b_->sink.out[0];
  EXPECT_EQ(got.target, port_target(1));
  ASSERT_EQ(got.bytes.size(), frame.size());
  EXPECT_EQ(std::vector<uint8_t>(got.bytes.begin(), got.bytes.begin() + 6), bytes_of(vm_b_.bytes));
  EXPECT_EQ(std::vector<uint8_t>(got.bytes.begin() + 6, got.bytes.begin() + 12),
            bytes_of(b_->host_ports[0]->gateway_mac.bytes));
  EXPECT_EQ(load_be16(&got.bytes[12]), v4_inner_ ? net::kEtherTypeIpv4 : net::kEtherTypeIpv6);
  EXPECT_TRUE(std::equal(frame.begin() + 12, frame.end(), got.bytes.begin() + 12));
  EXPECT_EQ(b_->workers[0]->counters.rx_packets, 1u);
  EXPECT_EQ(b_->stats("INGR_ACL").hits, 1u);
}

// A re-key replaces the SA behind a crypto id between encap(), which wrote the old SPI into the header, and
// encrypt(), which seals with the new SA's key: the packet must name the new SPI (the peer has both open),
// or the peer counts an authentication failure for a packet sent during the swap.
TEST_P(PspPipeline, SaReplacedBetweenEncapAndEncryptSealsUnderTheNewSpi) {
  const CryptoId id = install_egress(spi_);
  open_ingress();
  auto next = ring_b_.allocate_spi();
  ASSERT_TRUE(next.ok());
  ASSERT_TRUE(b_->topo->add_ingress(*next, vip_a_, vip_b_, 0).ok());
  PspContext ctx;
  ctx.sas = &a_->sas;
  ctx.master_keys = &a_->keys;
  ctx.workers = &a_->workers;
  ctx.host_ports = &a_->host_ports;
  ctx.local_mac = a_->local_mac;
  auto encap = make_encap_action(ctx, psp::Mode::kTunnel);
  auto encrypt = make_encrypt_action(ctx);
  net::Packet* p = a_->pool.alloc();
  ASSERT_TRUE(p != nullptr && p->assign(vm_a_frame()));
  const uint64_t arg = id;
  const flow::ActionContext ac{0, &a_->pool};
  encap->apply({&p, 1}, {&arg, 1}, ac);
  ASSERT_EQ(p->meta.drop_reason, 0);
  ASSERT_TRUE(a_->sas.replace(id, make_sa(*next)).ok());  // the re-key, between the two pipes
  encrypt->apply({&p, 1}, {&arg, 1}, ac);
  ASSERT_EQ(p->meta.drop_reason, 0);
  const std::vector<uint8_t> wire(p->data(), p->data() + p->size());
  a_->pool.free(p);
  deliver_to_b(wire);
  ASSERT_EQ(b_->sink.out.size(), 1u);
  EXPECT_EQ(b_->sink.out[0].target, port_target(1));
  EXPECT_EQ(b_->workers[0]->counters.auth_failures, 0u);
}

// The S and D bits as the sender sealed them (they are in the AAD): S asks the receiver to sample, D is
// carried and not acted on (DOCA's pipeline matches neither for delivery). The packet is delivered.
TEST_P(PspPipeline, SenderSetSAndDBitsAreAuthenticatedAndDelivered) {
  install_egress(spi_);
  open_ingress();
  const auto frame = vm_a_frame();
  auto wire = encrypt_on_a(frame);
  ASSERT_FALSE(wire.empty());
  const std::size_t at = 14 + (a_->pip.is_v4() ? 20 : 40) + 8;  // the PSP header
  auto h = psp::decode_header({&wire[at], wire.size() - at});
  ASSERT_TRUE(h.ok());
  h->sample = true;
  h->drop = true;
  std::vector<uint8_t> psp(wire.size() - at);  // header, the inner packet in the clear, room for the ICV
  psp::encode_header(*h, psp);
  std::copy(frame.begin() + 14, frame.end(), psp.begin() + static_cast<std::ptrdiff_t>(h->size()));
  auto key = ring_b_.derive(spi_ & ~psp::kSpiSlotBit, psp::PspVersion::kAesGcm256);
  ASSERT_TRUE(key.ok());
  auto& aead = *a_->workers[0]->aead;
  const auto sealing = aead.make_key(crypto::AeadAlg::kAesGcm256, key->view());
  ASSERT_TRUE(psp::seal_packet(psp, *h, *sealing, aead).ok());
  std::copy(psp.begin(), psp.end(), wire.begin() + static_cast<std::ptrdiff_t>(at));
  EXPECT_EQ(wire[at + 3] & 0xc0, 0xc0);
  deliver_to_b(wire);
  ASSERT_EQ(b_->sink.out.size(), 1u);
  EXPECT_EQ(b_->sink.out[0].target, port_target(1));
  EXPECT_TRUE(std::equal(frame.begin() + 12, frame.end(), b_->sink.out[0].bytes.begin() + 12));
  EXPECT_EQ(b_->workers[0]->counters.auth_failures, 0u);
}

TEST_P(PspPipeline, TamperedIcvIsCountedAsAuthFailedInSyndStats) {
  install_egress(spi_);
  open_ingress();
  const auto wire = encrypt_on_a(vm_a_frame());
  deliver_to_b(wire, 1);  // the ICV's last byte
  ASSERT_EQ(b_->sink.out.size(), 1u);
  EXPECT_EQ(b_->sink.out[0].target, drop_target(code(psp::DropReason::kAuthFailed)));
  const auto st = b_->stats("SYND_STATS");
  EXPECT_EQ(st.hits, 1u);
  ASSERT_EQ(st.drops.size(), 1u);
  EXPECT_EQ(st.drops[0], std::make_pair(code(psp::DropReason::kAuthFailed), uint64_t{1}));
  EXPECT_EQ(b_->workers[0]->counters.auth_failures, 1u);
  deliver_to_b(wire, 20);  // a ciphertext byte
  ASSERT_EQ(b_->sink.out.size(), 1u);
  EXPECT_EQ(b_->sink.out[0].target, drop_target(code(psp::DropReason::kAuthFailed)));
}

TEST_P(PspPipeline, NoIngressAclEntryIsAnAclMiss) {
  install_egress(spi_);
  const auto wire = encrypt_on_a(vm_a_frame());
  deliver_to_b(wire);
  ASSERT_EQ(b_->sink.out.size(), 1u);
  EXPECT_EQ(b_->sink.out[0].target, drop_target(static_cast<uint8_t>(PipeDrop::kIngressAclMiss)));
  EXPECT_EQ(b_->stats("INGR_ACL").misses, 1u);
  EXPECT_EQ(b_->workers[0]->counters.auth_failures, 0u);  // it decrypted fine
}

// An SPI of B's other key slot, which holds no key: B never handed it out; nothing derived, counted.
TEST_P(PspPipeline, SpiOfADeadSlotIsUnissued) {
  spi_ |= psp::kSpiSlotBit;
  install_egress(spi_);
  open_ingress();
  deliver_to_b(encrypt_on_a(vm_a_frame()));
  ASSERT_EQ(b_->sink.out.size(), 1u);
  EXPECT_EQ(b_->sink.out[0].target, drop_target(code(psp::DropReason::kUnissuedSpi)));
  EXPECT_EQ(b_->workers[0]->counters.unissued_spi, 1u);
  EXPECT_EQ(b_->workers[0]->keys.stats().misses, 0u);  // no derivation
}

// Issue 7 §6: a flood of packets with SPIs B never handed out is dropped before key derivation, counted
// under its own reason in SYND_STATS, and evicts nothing: B's key for the real SPI stays cached.
TEST_P(PspPipeline, RandomSpiFloodDerivesNothingAndEvictsNothing) {
  install_egress(spi_);
  open_ingress();
  const auto wire = encrypt_on_a(vm_a_frame());
  ASSERT_FALSE(wire.empty());
  deliver_to_b(wire);
  ASSERT_EQ(b_->sink.out.size(), 1u);
  ASSERT_EQ(b_->sink.out[0].target, port_target(1));
  const psp::KeyCacheStats before = b_->workers[0]->keys.stats();
  ASSERT_EQ(before.misses, 1u);
  const std::size_t spi_at = 14 + (a_->pip.is_v4() ? 20 : 40) + 8 + 4;
  uint64_t x = 0x243f6a8885a308d3ull;
  constexpr int kFlood = 500;  // against 64 cache entries: without the check the real key is evicted
  for (int i = 0; i < kFlood; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    auto forged = wire;
    store_be32(&forged[spi_at], static_cast<uint32_t>(x) | 0x100u);  // never spi_ (1)
    deliver_to_b(forged);
    ASSERT_EQ(b_->sink.out.size(), 1u);
    EXPECT_EQ(b_->sink.out[0].target, drop_target(code(psp::DropReason::kUnissuedSpi)));
  }
  const psp::KeyCacheStats after = b_->workers[0]->keys.stats();
  EXPECT_EQ(after.misses, before.misses);  // zero derivations for the flood
  EXPECT_EQ(after.unissued, uint64_t{kFlood});
  EXPECT_EQ(b_->workers[0]->counters.unissued_spi, uint64_t{kFlood});
  EXPECT_EQ(b_->workers[0]->counters.auth_failures, 0u);
  const auto st = b_->stats("SYND_STATS");
  ASSERT_EQ(st.drops.size(), 1u);
  EXPECT_EQ(st.drops[0], std::make_pair(code(psp::DropReason::kUnissuedSpi), uint64_t{kFlood}));
  deliver_to_b(wire);  // the real SPI: still a cache hit
  ASSERT_EQ(b_->sink.out.size(), 1u);
  EXPECT_EQ(b_->sink.out[0].target, port_target(1));
  EXPECT_EQ(b_->workers[0]->keys.stats().hits, before.hits + 1);
  EXPECT_EQ(b_->workers[0]->keys.stats().misses, before.misses);
}

// --decap-dmac: the decapsulated frame goes to the configured MAC, whatever workload MAC was learned (and
// also before any was, where it would otherwise be dropped as no-workload-mac).
TEST_P(PspPipeline, DecapDmacOverridesTheLearnedMac) {
  const net::MacAddr dmac = mac("0a:0b:0c:0d:0e:0f");
  b_ = std::make_unique<Side>(options(), b_->pip, mac("02:50:00:00:0b:01"),
                              HostPortInfo::pack_mac(dmac.bytes.data()));
  b_->keys.publish(ring_b_.snapshot());  // no workload MAC learned
  install_egress(spi_);
  open_ingress();
  const auto frame = vm_a_frame();
  const auto wire = encrypt_on_a(frame);
  for (int learned = 0; learned < 2; ++learned) {
    if (learned == 1) b_->host_ports[0]->workload_mac = mac_bits(vm_b_);
    deliver_to_b(wire);
    ASSERT_EQ(b_->sink.out.size(), 1u);
    const auto& got = b_->sink.out[0];
    EXPECT_EQ(got.target, port_target(1));
    EXPECT_EQ(std::vector<uint8_t>(got.bytes.begin(), got.bytes.begin() + 6), bytes_of(dmac.bytes));
    EXPECT_TRUE(std::equal(frame.begin() + 12, frame.end(), got.bytes.begin() + 12, got.bytes.end()));
  }
}

// EGR_ACL matches the in-port: port 1's workload sending as the VIP behind port 2 is not encrypted. It
// misses EGR_ACL and goes to the CPU, where the slow path drops it (SlowPathStats::dropped_wrong_port)
// instead of resubmitting it into the same miss.
TEST_P(PspPipeline, EgressAclMatchesTheInPort) {
  TopologyOptions o = options();
  o.host_ports = {PortId{1}, PortId{2}};
  a_ = std::make_unique<Side>(o, a_->pip, mac("02:50:00:00:0a:01"));
  egress_port_ = 1;  // vip_a_ sits behind host port 2
  install_egress(spi_);
  open_ingress();
  const auto frame = vm_a_frame();
  a_->run({frame}, PortId{1});
  ASSERT_EQ(a_->sink.out.size(), 1u);
  EXPECT_EQ(a_->sink.out[0].target, cpu_target(CpuReason::kEgressMiss));
  EXPECT_EQ(a_->sink.out[0].bytes, frame);  // unchanged: not encapsulated, not encrypted
  EXPECT_EQ(a_->workers[0]->counters.tx_packets, 0u);
  EXPECT_EQ(a_->stats("EGR_ACL").misses, 1u);
  a_->sink.out.clear();
  a_->run({frame}, PortId{2});  // from its own port: encrypted and sent
  ASSERT_EQ(a_->sink.out.size(), 1u);
  EXPECT_EQ(a_->sink.out[0].target, port_target(0));
  EXPECT_EQ(a_->workers[0]->counters.tx_packets, 1u);
  deliver_to_b(a_->sink.out[0].bytes);
  ASSERT_EQ(b_->sink.out.size(), 1u);
  EXPECT_EQ(b_->sink.out[0].target, port_target(1));
}

TEST_P(PspPipeline, UnknownWorkloadMacIsDropped) {
  install_egress(spi_);
  open_ingress();
  b_->host_ports[0]->workload_mac = 0;
  deliver_to_b(encrypt_on_a(vm_a_frame()));
  ASSERT_EQ(b_->sink.out.size(), 1u);
  EXPECT_EQ(b_->sink.out[0].target, drop_target(static_cast<uint8_t>(GatewayDrop::kNoWorkload)));
}

TEST_P(PspPipeline, EgressMissAndExceptionGoToTheCpuUnchanged) {
  const auto frame = vm_a_frame();
  const auto arp = test::arp_request(vm_a_, ip("10.1.0.1"), ip("10.2.0.1"));
  a_->run({frame, arp}, PortId{1});
  ASSERT_EQ(a_->sink.out.size(), 2u);
  for (const auto& o : a_->sink.out) {
    if (o.target == cpu_target(CpuReason::kEgressMiss)) {
      EXPECT_EQ(o.bytes, frame);
      EXPECT_EQ(o.meta.in_port, PortId{1});
    } else {
      EXPECT_EQ(o.target, cpu_target(CpuReason::kException));
      EXPECT_EQ(o.bytes, arp);
    }
  }
}

// The SA went away while EGR_ACL still named its crypto id (a packet in flight during removal).
TEST_P(PspPipeline, EntryWithoutSaIsDroppedAsNoSa) {
  const CryptoId id = install_egress(spi_);
  ASSERT_TRUE(a_->sas.remove(id).ok());
  a_->run({vm_a_frame()}, PortId{1});
  ASSERT_EQ(a_->sink.out.size(), 1u);
  EXPECT_EQ(a_->sink.out[0].target.kind, flow::TargetKind::kDrop);
  EXPECT_EQ(a_->sink.out[0].target.id, static_cast<uint8_t>(GatewayDrop::kNoSa));
}

TEST_P(PspPipeline, ManyFramesInOneBatchAllArriveInOrder) {
  install_egress(spi_);
  open_ingress();
  std::vector<std::vector<uint8_t>> frames;
  for (std::size_t i = 0; i < net::kMaxBatch; ++i) frames.push_back(vm_a_frame(20 + i * 13));
  a_->sink.out.clear();
  a_->run(frames, PortId{1});
  ASSERT_EQ(a_->sink.out.size(), frames.size());
  std::vector<std::vector<uint8_t>> wire;
  for (const auto& o : a_->sink.out) wire.push_back(o.bytes);
  for (std::size_t i = 0; i < wire.size(); ++i) {
    deliver_to_b(wire[i]);
    ASSERT_EQ(b_->sink.out.size(), 1u) << i;
    EXPECT_TRUE(std::equal(frames[i].begin() + 12, frames[i].end(), b_->sink.out[0].bytes.begin() + 12,
                           b_->sink.out[0].bytes.end()))
        << i;
  }
}

INSTANTIATE_TEST_SUITE_P(All, PspPipeline,
                         ::testing::Values(PspCase{net::IpFamily::kV4, net::IpFamily::kV6, false},
                                           PspCase{net::IpFamily::kV4, net::IpFamily::kV4, false},
                                           PspCase{net::IpFamily::kV6, net::IpFamily::kV4, false},
                                           PspCase{net::IpFamily::kV6, net::IpFamily::kV6, true},
                                           PspCase{net::IpFamily::kV4, net::IpFamily::kV6, true}),
                         [](const auto& p) {
                           return std::string(p.param.inner == net::IpFamily::kV4 ? "i4" : "i6") +
                                  (p.param.outer == net::IpFamily::kV4 ? "o4" : "o6") +
                                  (p.param.vc ? "_vc" : "");
                         });

// With --sample-rate: EGR_SAMP on A sets the S bit on 1 in 2 packets and mirrors a copy to the CPU;
// INGR_SAMP on B mirrors the packets that arrive with the S bit set, once they have authenticated.
class SampledPipeline : public PspPipeline {
 protected:
  TopologyOptions options() const override {
    TopologyOptions o = PspPipeline::options();
    o.sample_rate = 1;
    return o;
  }
  static bool sampled(const std::vector<uint8_t>& wire, bool v4_outer) {
    return (wire[14 + (v4_outer ? 20 : 40) + 8 + 3] & 0x80) != 0;  // the S bit of the PSP header
  }
  std::size_t count(const std::vector<RecordSink::Out>& out, flow::Target t) const {
    return static_cast<std::size_t>(
        std::count_if(out.begin(), out.end(), [&](const auto& o) { return o.target == t; }));
  }
};

// Issue 7 §6: a packet whose S bit is set but that fails authentication (forged, or tampered) is not
// mirrored to the log; an authenticated sampled one is.
TEST_P(SampledPipeline, IngressSamplesOnlyAuthenticatedPackets) {
  install_egress(spi_);
  open_ingress();
  const bool v4_outer = a_->pip.is_v4();
  std::vector<uint8_t> wire;
  for (int i = 0; i < 200 && wire.empty(); ++i) {  // 1 in 2 is sampled
    a_->sink.out.clear();
    a_->run({vm_a_frame()}, PortId{1});
    for (const auto& o : a_->sink.out) {
      if (o.target == port_target(0) && sampled(o.bytes, v4_outer)) wire = o.bytes;
    }
  }
  ASSERT_FALSE(wire.empty());
  deliver_to_b(wire);
  EXPECT_EQ(count(b_->sink.out, cpu_target(CpuReason::kSampleIngress)), 1u);
  EXPECT_EQ(count(b_->sink.out, port_target(1)), 1u);
  deliver_to_b(wire, 1);  // the ICV's last byte: fails authentication
  EXPECT_EQ(count(b_->sink.out, cpu_target(CpuReason::kSampleIngress)), 0u);
  EXPECT_EQ(count(b_->sink.out, drop_target(code(psp::DropReason::kAuthFailed))), 1u);
  EXPECT_EQ(b_->stats("INGR_SAMP").mirrored, 1u);
}

// --maintain-order: sampling never takes an original out of its flow (the sample is a mirrored copy), so
// a batch leaves A and arrives at B's workload in order, sampled or not.
TEST_P(SampledPipeline, SamplingKeepsTheFlowInOrder) {
  install_egress(spi_);
  open_ingress();
  std::vector<std::vector<uint8_t>> frames;
  for (std::size_t i = 0; i < net::kMaxBatch; ++i) frames.push_back(vm_a_frame(20 + i * 13));
  a_->sink.out.clear();
  a_->run(frames, PortId{1});
  std::vector<std::vector<uint8_t>> wire;
  for (const auto& o : a_->sink.out) {
    if (o.target == port_target(0)) wire.push_back(o.bytes);
  }
  ASSERT_EQ(wire.size(), frames.size());
  const std::size_t samples = count(a_->sink.out, cpu_target(CpuReason::kSampleEgress));
  EXPECT_GT(samples, 0u);
  EXPECT_LT(samples, frames.size());
  std::size_t ingress_samples = 0;
  for (std::size_t i = 0; i < wire.size(); ++i) {
    deliver_to_b(wire[i]);
    ingress_samples += count(b_->sink.out, cpu_target(CpuReason::kSampleIngress));
    std::vector<uint8_t> delivered;
    for (const auto& o : b_->sink.out) {
      if (o.target == port_target(1)) delivered = o.bytes;
    }
    ASSERT_EQ(delivered.size(), frames[i].size()) << i;
    EXPECT_TRUE(std::equal(frames[i].begin() + 12, frames[i].end(), delivered.begin() + 12)) << i;
  }
  EXPECT_EQ(ingress_samples, samples);
}

INSTANTIATE_TEST_SUITE_P(All, SampledPipeline,
                         ::testing::Values(PspCase{net::IpFamily::kV4, net::IpFamily::kV6, false},
                                           PspCase{net::IpFamily::kV6, net::IpFamily::kV4, true}),
                         [](const auto& p) {
                           return std::string(p.param.inner == net::IpFamily::kV4 ? "i4" : "i6") +
                                  (p.param.outer == net::IpFamily::kV4 ? "o4" : "o6") +
                                  (p.param.vc ? "_vc" : "");
                         });

}  // namespace
}  // namespace pspgw::gateway
