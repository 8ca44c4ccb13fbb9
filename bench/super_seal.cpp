// A TSO super-packet sealed into PSP segments: the daemon's fused path against the path it replaced and
// against raw intel-ipsec-mb, same run, same AEAD work (issue 9 step 2).
//
//   fused/<v>        what the worker runs for a 64 KiB TCP super-packet leaving for the network
//                    (gateway/segment_seal.hpp): SegmentSeal::start, then per batch of segments the
//                    segment written (GsoSegmenter::write_segment: headers, payload copied and summed),
//                    prepare_segment_seal and one AeadBackend::seal call; the segments go back to the pool
//   copy_then_seal/<v>  the path before the fusion: GsoSegmenter::next (payload copied and summed), then per
//                    segment encap_tunnel + prepare_frame_seal, one seal call per batch, unwrap_for_send
//   raw/<v>          IMB_AESxxx_GCM_ENC (v0/v1) / IMB_AESxxx_GMAC_* (v2/v3) on 45 buffers of the segments'
//                    shape ([PSP header][inner IPv4 + TCP headers][1448 B]), in place: no project code
//   csum_copy        net::csum_copy of the 45 payloads of a 64 KiB super-packet into 45 buffers (the
//                    fused path's copy-and-sum pass)
//
// The super-packet: IPv4 + TCP with timestamps (32-byte header), 45 segments of 1448 bytes (an MSS on a
// 1500-byte TAP), the outer IPv6 of the default, no VC, crypt offset 0. Each reports ns/segment:
//   build/bin/bench_super_seal --benchmark_min_time=0.3 --benchmark_repetitions=3
#include <benchmark/benchmark.h>
#include <intel-ipsec-mb.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "gateway/outer.hpp"
#include "gateway/segment_seal.hpp"
#include "net/checksum.hpp"
#include "ports/gso.hpp"
#include "ports/port.hpp"
#include "ports/test_frames.hpp"

namespace pspgw::bench {
namespace {

constexpr uint16_t kMss = 1448;
constexpr std::size_t kSegments = 45;
constexpr std::size_t kInnerHeaders = 20 + 32;  // IPv4 + TCP with timestamps
constexpr psp::PspVersion kVersions[] = {psp::PspVersion::kAesGcm128, psp::PspVersion::kAesGcm256,
                                         psp::PspVersion::kAesGmac128, psp::PspVersion::kAesGmac256};

class Fixture {
 public:
  explicit Fixture(psp::PspVersion v)
      : aead_(crypto::make_ipsec_mb_backend()), pool_(2 * net::kMaxBatch + 2, ports::kGsoRxBufferSize) {
    if (!aead_) return;
    psp::SealParams p;
    p.version = v;
    p.spi = 0x80000021;
    psp::OuterHeaders o;
    o.local = *net::IpAddr::parse("2001:db8::1");
    o.peer = *net::IpAddr::parse("2001:db8::2");
    t_ = psp::EncapTemplate::make(p, o).value();
    const crypto::AeadAlg alg = *psp::aead_alg(static_cast<uint8_t>(v));
    std::vector<uint8_t> key(crypto::key_size(alg), 0x5a);
    key_ = aead_->make_key(alg, key);
    ports::test::L4Spec s;
    s.payload = kMss * kSegments;
    s.tcp_options = 12;
    frame_ = ports::test::build_frame(s);
    eth_ =
        psp::eth_addrs(*net::MacAddr::parse("02:00:00:00:00:02"), *net::MacAddr::parse("02:00:00:00:00:01"));
    // The super-packet as encrypt() leaves it for the worker: encapsulated, reduced to its UDP payload.
    sp_ = pool_.alloc();
    sp_->assign(frame_);
    sp_->meta.gso_size = kMss;
    psp::encap_tunnel_gso(*sp_, t_, eth_, 1, 0x1234, kInnerHeaders + kMss);
    sp_->meta.gso_encapped = true;
    gateway::unwrap_for_send(*sp_);
    tso_ = pool_.alloc();
    tso_->assign(frame_);
  }
  bool valid() const { return aead_ != nullptr; }

  [[gnu::noinline]] std::size_t fused() {
    auto seal = gateway::SegmentSeal::start(*sp_, t_, *key_, pool_.buffer_size());
    std::size_t n = 0;
    while (seal && !seal->done()) {
      net::PacketBatch out;
      n += seal->next(pool_, out, *aead_, iv_, ops_);
      for (net::Packet* p : out) pool_.free(p);
    }
    return n;
  }

  [[gnu::noinline]] std::size_t copy_then_seal() {
    auto seg = ports::GsoSegmenter::start(tso_->bytes(), kMss);
    std::size_t sent = 0;
    while (seg && !seg->done()) {
      net::PacketBatch out;
      (void)seg->next(pool_, out, tso_->meta);
      std::size_t n = 0;
      for (net::Packet* p : out) {
        psp::encap_tunnel(*p, t_, eth_, iv_.next(), 0x1234);
        if (psp::prepare_frame_seal(*p, t_, *key_, ops_.fill(n)) == psp::DropReason::kNone) ++n;
      }
      aead_->seal({ops_.data(), n});
      for (net::Packet* p : out) {
        gateway::unwrap_for_send(*p);
        pool_.free(p);
      }
      sent += n;
    }
    return sent;
  }

 private:
  std::unique_ptr<crypto::AeadBackend> aead_;
  net::PacketPool pool_;
  psp::EncapTemplate t_;
  std::unique_ptr<crypto::AeadKey> key_;
  std::vector<uint8_t> frame_;
  psp::EthAddrs eth_{};
  net::Packet* sp_ = nullptr;
  net::Packet* tso_ = nullptr;
  gateway::IvCounter iv_{0};
  gateway::AeadOps ops_;
};

// Raw intel-ipsec-mb on buffers of the segments' shape, in place.
class Raw {
 public:
  explicit Raw(psp::PspVersion v) : v_(v), mgr_(alloc_mb_mgr(0)) {
    init_mb_mgr_auto(mgr_, nullptr);
    std::vector<uint8_t> key(crypto::key_size(*psp::aead_alg(static_cast<uint8_t>(v))), 0x5a);
    if (key.size() == 16) {
      IMB_AES128_GCM_PRE(mgr_, key.data(), &key_);
    } else {
      IMB_AES256_GCM_PRE(mgr_, key.data(), &key_);
    }
    for (auto& b : bufs_) b.assign(16 + kInnerHeaders + kMss + 16, 0x33);
  }
  ~Raw() { free_mb_mgr(mgr_); }
  Raw(const Raw&) = delete;
  Raw& operator=(const Raw&) = delete;

  [[gnu::noinline]] void seal() {
    const bool k128 = v_ == psp::PspVersion::kAesGcm128 || v_ == psp::PspVersion::kAesGmac128;
    const bool gmac = v_ == psp::PspVersion::kAesGmac128 || v_ == psp::PspVersion::kAesGmac256;
    const std::size_t text = kInnerHeaders + kMss;
    for (auto& b : bufs_) {
      uint8_t* d = b.data();
      uint8_t iv[12] = {};
      if (gmac) {
        if (k128) {
          IMB_AES128_GMAC_INIT(mgr_, &key_, &ctx_, iv, sizeof(iv));
          IMB_AES128_GMAC_UPDATE(mgr_, &key_, &ctx_, d, 16 + text);
          IMB_AES128_GMAC_FINALIZE(mgr_, &key_, &ctx_, d + 16 + text, 16);
        } else {
          IMB_AES256_GMAC_INIT(mgr_, &key_, &ctx_, iv, sizeof(iv));
          IMB_AES256_GMAC_UPDATE(mgr_, &key_, &ctx_, d, 16 + text);
          IMB_AES256_GMAC_FINALIZE(mgr_, &key_, &ctx_, d + 16 + text, 16);
        }
      } else if (k128) {
        IMB_AES128_GCM_ENC(mgr_, &key_, &ctx_, d + 16, d + 16, text, iv, d, 16, d + 16 + text, 16);
      } else {
        IMB_AES256_GCM_ENC(mgr_, &key_, &ctx_, d + 16, d + 16, text, iv, d, 16, d + 16 + text, 16);
      }
    }
  }

 private:
  psp::PspVersion v_;
  IMB_MGR* mgr_;
  alignas(64) gcm_key_data key_{};
  gcm_context_data ctx_{};
  std::array<std::vector<uint8_t>, kSegments> bufs_;
};

std::string label(const char* what, psp::PspVersion v) {
  return std::string(what) + "/v" + std::to_string(static_cast<int>(v));
}

void per_segment(benchmark::State& state, std::size_t segments) {
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * segments));
  state.counters["ns/segment"] =
      benchmark::Counter(static_cast<double>(state.iterations() * segments),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// One of the daemon's two paths (Fixture::fused or Fixture::copy_then_seal) per iteration.
void BM_Path(benchmark::State& state, psp::PspVersion v, std::size_t (Fixture::*path)()) {
  Fixture f(v);
  if (!f.valid()) {
    state.SkipWithError("ipsec-mb unavailable");
    return;
  }
  for (auto _ : state) {
    if ((f.*path)() != kSegments) state.SkipWithError("segments lost");
  }
  per_segment(state, kSegments);
}

void BM_Raw(benchmark::State& state, psp::PspVersion v, void (Raw::*seal)()) {
  Raw r(v);
  for (auto _ : state) (r.*seal)();
  per_segment(state, kSegments);
}

void BM_CsumCopy(benchmark::State& state) {
  const std::vector<uint8_t> super(kSegments * kMss, 0x5a);
  std::vector<uint8_t> segments(kSegments * kMss);
  for (auto _ : state) {
    uint32_t sum = 0;
    for (std::size_t i = 0; i < kSegments; ++i) {
      sum += net::csum_copy(segments.data() + i * kMss, {super.data() + i * kMss, kMss});
    }
    benchmark::DoNotOptimize(sum);
    benchmark::ClobberMemory();
  }
  per_segment(state, kSegments);
}

}  // namespace
}  // namespace pspgw::bench

int main(int argc, char** argv) {
  using namespace pspgw::bench;  // NOLINT(google-build-using-namespace)
  for (const auto v : kVersions) {
    benchmark::RegisterBenchmark(label("fused", v).c_str(), BM_Path, v, &Fixture::fused);
    benchmark::RegisterBenchmark(label("copy_then_seal", v).c_str(), BM_Path, v, &Fixture::copy_then_seal);
    benchmark::RegisterBenchmark(label("raw", v).c_str(), BM_Raw, v, &Raw::seal);
  }
  benchmark::RegisterBenchmark("csum_copy", BM_CsumCopy);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
