// Decrypt rate with many active SPIs against one (issue 9 §7: 100,000 active SPIs >= 80% of the 1-SPI
// rate). One worker's receive path as the daemon runs it (bench/psp_seal's psp_open: prepare_open_batch,
// i.e. plan_decap into the packet's metadata, the key cache asked ahead for the batch's entries and keys,
// and prepare_open_op through the worker's KeyCache; one AeadBackend::open per batch of 32, finish_open,
// finish_planned_decap) over a ring of pre-sealed frames in which frame i carries SPI i mod S:
// every batch names 32 different SPIs, and with S SPIs each SPI comes back every S frames. The same frames'
// memory is walked for every S, so only the key lookups differ. Each pass opens every frame in place and
// copies the sealed bytes back, untimed.
//
// Run: build/bin/bench_spi_scale [--table] [inner bytes, default 64: the key lookup's largest share, and
// 100,000 frames of 64 B fit in ~60 MB where 1400 B would take ~300 MB]
// Rows: the key cache at its old fixed size (4096 prepared keys a worker) and at the size the daemon now
// gives it for -x 100064 (131,072); then 10,000 SPIs with the cache -x 10000 gets (16,384), a size at
// which the direct-mapped cache of before re-derived the key of 91% of the SPIs on every packet. Passes
// over the configurations are interleaved and each round's ratio taken, the median of 7 reported: on a
// shared machine the load drifts between rounds.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "base/byteorder.hpp"
#include "crypto/aead.hpp"
#include "net/packet.hpp"
#include "psp/batch.hpp"
#include "psp/encap_template.hpp"
#include "psp/key_cache.hpp"
#include "psp/key_ring.hpp"

namespace pspgw::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kBatch = 32;
constexpr std::size_t kFrames = 100000;
constexpr std::size_t kOpened = kFrames / kBatch * kBatch;  // a pass opens whole batches
constexpr std::size_t kEth = 14;
constexpr psp::PspVersion kVersion = psp::PspVersion::kAesGcm128;

psp::KeyRing bench_ring() {
  std::array<uint8_t, 32> k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(i * 7 + 1);
  psp::KeyRing ring{crypto::MasterKey(std::span<const uint8_t, 32>(k))};
  ring.set_spi_counter(psp::kSpiSlotBit);  // every SPI counts as handed out
  return ring;
}

// kFrames sealed frames, frame i under SPI 0x100 + i % spis, and their sealed bytes to restore.
class Frames {
 public:
  Frames(crypto::AeadBackend& aead, const psp::KeyRing& ring, std::size_t spis, std::size_t len)
      : pool_(kFrames, static_cast<uint32_t>((net::kDefaultHeadroom + len + 128 + 63) / 64 * 64)) {
    psp::OuterHeaders o;
    o.local = *net::IpAddr::parse("2001:db8::1");
    o.peer = *net::IpAddr::parse("2001:db8::2");
    const psp::EthAddrs eth{};
    std::vector<uint8_t> inner(kEth + len, 0x5a);
    store_be16(inner.data() + 12, 0x0800);
    uint8_t* ip = inner.data() + kEth;
    std::memset(ip, 0, 20);
    ip[0] = 0x45;
    store_be16(ip + 2, static_cast<uint16_t>(len));
    ip[8] = 64;
    ip[9] = 253;
    for (std::size_t i = 0; i < kFrames; ++i) {
      psp::SealParams p;
      p.version = kVersion;
      p.spi = 0x100 + static_cast<uint32_t>(i % spis);
      p.crypt_offset = 5;
      const auto t = psp::EncapTemplate::make(p, o).value();
      // One key a frame while sealing (made and dropped): the set-up holds no 100k keys.
      const auto k =
          aead.make_key(*psp::aead_alg(static_cast<uint8_t>(kVersion)), ring.derive(p.spi, kVersion)->view());
      net::Packet* pkt = pool_.alloc();
      (void)pkt->assign(inner);
      (void)psp::encap_tunnel(*pkt, t, eth, i + 1, static_cast<uint32_t>(i));
      crypto::AeadOp op;
      (void)psp::prepare_frame_seal(*pkt, t, *k, op);
      aead.seal({&op, 1});
      pkts_.push_back(pkt);
      sealed_.insert(sealed_.end(), pkt->bytes().begin(), pkt->bytes().end());
    }
    frame_len_ = pkts_[0]->size();
    offset_ = pkts_[0]->headroom();
  }
  net::Packet* operator[](std::size_t i) { return pkts_[i]; }
  // Puts frame i back as sealed (the open worked in place and restored the inner frame).
  void restore(std::size_t i) {
    net::Packet& p = *pkts_[i];
    p.push_front(p.headroom() - offset_);
    p.push_back(frame_len_ - p.size());
    std::memcpy(p.data(), sealed_.data() + i * frame_len_, frame_len_);
  }

 private:
  net::PacketPool pool_;
  std::vector<net::Packet*> pkts_;
  std::vector<uint8_t> sealed_;
  std::size_t frame_len_ = 0;
  uint32_t offset_ = 0;
};

// The daemon's decrypt() + decap() on frames [from, from + kBatch). False if any failed.
bool open_batch(Frames& f, std::size_t from, psp::KeyCache& keys, crypto::AeadBackend& aead,
                psp::detail::OpenScratch& s) {
  std::array<net::Packet*, kBatch> pkts{};
  for (std::size_t j = 0; j < kBatch; ++j) pkts[j] = f[from + j];
  std::array<psp::DropReason, kBatch> results{};
  const std::size_t n = psp::detail::prepare_open_batch(
      std::span<net::Packet* const>(pkts), keys, s,
      [&](std::size_t j) -> psp::DecapPlan& { return pkts[j]->meta.decap_plan; }, results);
  if (n != kBatch) return false;
  aead.open({s.ops.data(), n});
  bool ok = true;
  for (std::size_t j = 0; j < n; ++j) {
    net::Packet& pkt = *f[from + s.pkt_index[j]];
    ok &= psp::finish_open(s.ops[j]) == psp::DropReason::kNone &&
          psp::steps::finish_planned_decap(pkt, pkt.meta.decap_plan) == psp::DropReason::kNone;
  }
  return ok;
}

// One configuration: its frames, its worker's key cache. A pass opens every frame once.
struct Setup {
  Setup(std::size_t spis, std::size_t capacity, std::size_t len)
      : aead(crypto::make_default_backend()),  // intel-ipsec-mb where the CPU has AES-NI, as the daemon
        ring(bench_ring()),
        frames(*aead, ring, spis, len),
        keys(*aead, capacity),
        scratch(std::make_unique<psp::detail::OpenScratch>()) {
    keys.update(ring.snapshot());
    (void)pass();  // warms the cache
  }
  // Seconds to open every frame (the restore afterwards is not timed).
  double pass() {
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i + kBatch <= kFrames; i += kBatch) {
      if (!open_batch(frames, i, keys, *aead, *scratch)) throw std::runtime_error("an open failed");
    }
    const double t = std::chrono::duration<double>(Clock::now() - t0).count();
    for (std::size_t i = 0; i < kFrames; ++i) frames.restore(i);
    return t;
  }
  double mpps(double seconds) const { return static_cast<double>(kOpened) / seconds / 1e6; }

  std::unique_ptr<crypto::AeadBackend> aead;
  psp::KeyRing ring;
  Frames frames;
  psp::KeyCache keys;
  std::unique_ptr<psp::detail::OpenScratch> scratch;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace
}  // namespace pspgw::bench

namespace pspgw::bench {
namespace {

int run(int argc, char** argv) {
  bool table = false;
  std::size_t len = 64;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--table") {
      table = true;
    } else {
      len = std::strtoull(argv[i], nullptr, 10);
    }
  }
  constexpr std::size_t kDaemonCache = 4096;                // gateway.cpp's kKeyCacheEntries (its floor)
  constexpr std::size_t kSized = 131072;                    // gateway.cpp's key_cache_entries(-x 100064)
  constexpr std::size_t kTenK = 10000, kTenKCache = 16384;  // key_cache_entries(-x 10000)
  Setup one(1, kSized, len), many(kFrames, kDaemonCache, len), sized(kFrames, kSized, len),
      ten(kTenK, kTenKCache, len);
  // Passes interleaved, the ratio taken within each round: a shared machine's load drifts between rounds.
  std::vector<double> r_many, r_sized, r_ten, one_mpps;
  for (int round = 0; round < 7; ++round) {
    const double t1 = one.pass(), tm = many.pass(), ts = sized.pass(), tt = ten.pass();
    r_many.push_back(t1 / tm);
    r_sized.push_back(t1 / ts);
    r_ten.push_back(t1 / tt);
    one_mpps.push_back(one.mpps(t1));
  }
  const double rm = median(r_many), rs = median(r_sized), rt = median(r_ten), mp = median(one_mpps);
  std::fprintf(
      stderr,
      "open, %zu B inner, one worker, medians of 7 interleaved rounds: 1 SPI %.2f Mpps; %zu SPIs: %.0f%% of "
      "it with a %zu-key cache, %.0f%% with a %zu-key cache; %zu SPIs (%zu-key cache, -x %zu): %.0f%%\n",
      len, mp, kFrames, 100 * rm, kDaemonCache, 100 * rs, kSized, kTenK, kTenKCache, kTenK, 100 * rt);
  if (table) {
    std::printf(
        "| decrypt, %zu B, 100,000 active SPIs vs 1 (one worker; key cache of 4,096 / 131,072 keys) | "
        "%.0f%% / %.0f%% (1 SPI: %.2f Mpps) | >= 80%% |\n",
        len, 100 * rm, 100 * rs, mp);
    std::printf(
        "| decrypt, %zu B, 10,000 active SPIs vs 1 (one worker; key cache of 16,384 keys, as -x 10000) | "
        "%.0f%% | - |\n",
        len, 100 * rt);
  }
  return 0;
}

}  // namespace
}  // namespace pspgw::bench

int main(int argc, char** argv) {
  try {
    return pspgw::bench::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_spi_scale: %s\n", e.what());
    return 1;
  }
}
