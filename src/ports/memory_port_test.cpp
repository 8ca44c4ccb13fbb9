#include "ports/memory_port.hpp"

#include <gtest/gtest.h>
#include <poll.h>

#include <chrono>
#include <thread>

#include "ports/poller.hpp"

namespace pspgw::ports::testing {
namespace {

net::IpAddr ip(const char* s) {
  return *net::IpAddr::parse(s);
}

MemoryPair udp_like_pair() {
  return make_pair(EndpointConfig{"net-a", PortId{1}, ip("192.0.2.1"), 1000},
                   EndpointConfig{"net-b", PortId{2}, ip("2001:db8::2"), 1000});
}

// Sends n packets of `size` bytes from `port`; byte 0 is the sequence number.
std::size_t send(MemoryPort& port, net::PacketPool& pool, int n, uint32_t size = 100, uint8_t first = 0) {
  net::PacketBatch b;
  for (int i = 0; i < n; ++i) {
    net::Packet* p = pool.alloc();
    p->set_size(size);
    std::fill(p->data(), p->data() + size, 0xee);
    p->data()[0] = static_cast<uint8_t>(first + i);
    p->meta.peer = ip("203.0.113.9");
    p->meta.peer_port = 1000;
    p->meta.flow_hash = 42;
    b.push(p);
  }
  const std::size_t sent = port.tx_burst(b);
  for (net::Packet* p : b) pool.free(p);  // tx never takes ownership
  return sent;
}

bool readable(int fd) {
  pollfd pfd{fd, POLLIN, 0};
  return ::poll(&pfd, 1, 0) == 1;
}

TEST(MemoryPort, WhatOneSendsTheOtherReceivesInOrder) {
  auto pair = udp_like_pair();
  net::PacketPool pool(128);
  EXPECT_FALSE(readable(pair.b->fd()));
  ASSERT_EQ(send(*pair.a, pool, 3, 100), 3U);
  EXPECT_EQ(pool.available(), 128U);
  EXPECT_TRUE(readable(pair.b->fd()));
  EXPECT_EQ(pair.b->queued(), 3U);

  net::PacketBatch in;
  ASSERT_EQ(pair.b->rx_burst(pool, in), 3U);
  for (std::size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(in[i]->size(), 100U);
    EXPECT_EQ(in[i]->data()[0], i);
    EXPECT_EQ(in[i]->meta.in_port, PortId{2});
    EXPECT_EQ(in[i]->meta.peer, ip("192.0.2.1"));  // the sender's address, like a UDP source
    EXPECT_EQ(in[i]->meta.peer_port, 1000);
    EXPECT_EQ(in[i]->meta.flow_hash, 0U);  // metadata does not cross the wire
  }
  EXPECT_FALSE(readable(pair.b->fd()));
  EXPECT_EQ(pair.a->stats().tx_packets, 3U);
  EXPECT_EQ(pair.a->stats().tx_bytes, 300U);
  EXPECT_EQ(pair.b->stats().rx_packets, 3U);
  EXPECT_EQ(pair.b->stats().rx_bytes, 300U);
  EXPECT_EQ(pair.a->queued(), 0U);  // nothing looped back
  for (net::Packet* p : in) pool.free(p);
}

TEST(MemoryPort, RxTakesAtMostTheBatchRoomAndStaysReadable) {
  auto pair = udp_like_pair();
  net::PacketPool pool(256);
  ASSERT_EQ(send(*pair.a, pool, 64, 10, 0), 64U);
  ASSERT_EQ(send(*pair.a, pool, 6, 10, 64), 6U);
  net::PacketBatch in;
  for (int i = 0; i < 60; ++i) in.push(pool.alloc());  // room for 4
  EXPECT_EQ(pair.b->rx_burst(pool, in), 4U);
  EXPECT_TRUE(readable(pair.b->fd()));  // level: 66 still queued
  EXPECT_EQ(in[63]->data()[0], 3);
  for (net::Packet* p : in) pool.free(p);
  in.clear();
  EXPECT_EQ(pair.b->rx_burst(pool, in), 64U);
  EXPECT_EQ(in[0]->data()[0], 4);
  for (net::Packet* p : in) pool.free(p);
  in.clear();
  EXPECT_EQ(pair.b->rx_burst(pool, in), 2U);
  EXPECT_EQ(in[1]->data()[0], 69);
  EXPECT_FALSE(readable(pair.b->fd()));
  for (net::Packet* p : in) pool.free(p);
}

TEST(MemoryPort, WireHookDropsMutatesAndCaptures) {
  auto pair = udp_like_pair();
  net::PacketPool pool(64);
  pair.wire->set_capture(true);
  pair.wire->set_hook([](WireFrame& f) {
    if (f.bytes[0] == 1) return Verdict::kDrop;
    if (f.bytes[0] == 2) f.bytes[1] ^= 0xff;  // tamper
    return Verdict::kPass;
  });
  EXPECT_EQ(send(*pair.a, pool, 3), 2U);
  EXPECT_EQ(pair.a->stats().dropped(DropReason::kWire), 1U);
  const auto captured = pair.wire->take_captured();
  ASSERT_EQ(captured.size(), 2U);
  EXPECT_EQ(captured[0].from, 0);
  EXPECT_EQ(captured[0].src, ip("192.0.2.1"));
  EXPECT_EQ(captured[0].dst, ip("203.0.113.9"));  // where the sender addressed it
  EXPECT_EQ(captured[0].flow_hash, 42U);
  EXPECT_EQ(captured[1].bytes[1], 0x11);

  net::PacketBatch in;
  ASSERT_EQ(pair.b->rx_burst(pool, in), 2U);
  EXPECT_EQ(in[0]->data()[0], 0);
  EXPECT_EQ(in[0]->data()[1], 0xee);
  EXPECT_EQ(in[1]->data()[0], 2);
  EXPECT_EQ(in[1]->data()[1], 0x11);
  for (net::Packet* p : in) pool.free(p);
}

TEST(MemoryPort, QueueLimitAndTruncationAreCounted) {
  auto pair = udp_like_pair();
  net::PacketPool pool(64);
  pair.wire->set_queue_limit(2);
  EXPECT_EQ(send(*pair.a, pool, 3), 2U);
  EXPECT_EQ(pair.a->stats().dropped(DropReason::kTxQueueFull), 1U);

  net::PacketPool small(8, 256);  // 128 bytes after headroom
  pair.wire->set_queue_limit(100);
  net::PacketBatch in;
  ASSERT_EQ(pair.b->rx_burst(small, in), 2U);
  for (net::Packet* p : in) small.free(p);
  in.clear();
  ASSERT_EQ(send(*pair.a, pool, 1, 200), 1U);
  EXPECT_EQ(pair.b->rx_burst(small, in), 0U);
  EXPECT_EQ(pair.b->stats().dropped(DropReason::kTruncated), 1U);
  EXPECT_EQ(small.available(), 8U);
  EXPECT_EQ(pair.b->stats().total_drops(), 1U);
}

TEST(Poller, ReportsReadyPortsAndTimesOut) {
  auto p1 = udp_like_pair();
  auto p2 = udp_like_pair();
  net::PacketPool pool(64);
  auto poller = Poller::create();
  ASSERT_TRUE(poller.ok());
  ASSERT_TRUE(poller->add(*p1.b, 11).ok());
  ASSERT_TRUE(poller->add(*p2.b, 22).ok());
  EXPECT_EQ(poller->add(-1, 33).error(), EINVAL);
  std::array<uint32_t, 8> ready{};
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(poller->wait(ready, 20), 0U);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(15));

  send(*p2.a, pool, 1);
  ASSERT_EQ(poller->wait(ready, 1000), 1U);
  EXPECT_EQ(ready[0], 22U);
  ASSERT_TRUE(poller->remove(p2.b->fd()).ok());
  EXPECT_EQ(poller->wait(ready, 0), 0U);
}

TEST(MemoryPort, TwoThreadsThroughPoller) {
  auto pair = udp_like_pair();
  constexpr int kPackets = 5000;
  pair.wire->set_queue_limit(kPackets);  // no drops: a dropped packet would leave a gap in the sequence
  std::thread sender([&] {
    net::PacketPool pool(64);
    for (int sent = 0; sent < kPackets;) {
      const int n = std::min(32, kPackets - sent);
      sent += static_cast<int>(send(*pair.a, pool, n, 64, static_cast<uint8_t>(sent)));
    }
  });
  net::PacketPool pool(128);
  auto poller = Poller::create();
  ASSERT_TRUE(poller->add(*pair.b, 1).ok());
  int got = 0;
  bool in_order = true;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (got < kPackets && std::chrono::steady_clock::now() < deadline) {
    std::array<uint32_t, 1> ready{};
    if (poller->wait(ready, 100) == 0) continue;
    net::PacketBatch in;
    pair.b->rx_burst(pool, in);
    for (net::Packet* p : in) {
      in_order = in_order && p->data()[0] == static_cast<uint8_t>(got);
      ++got;
      pool.free(p);
    }
  }
  sender.join();
  EXPECT_EQ(got, kPackets);
  EXPECT_TRUE(in_order);
  EXPECT_EQ(pair.a->stats().total_drops(), 0U);
}

}  // namespace
}  // namespace pspgw::ports::testing
