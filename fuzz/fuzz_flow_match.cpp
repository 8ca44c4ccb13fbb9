// The flow engine's lookups (src/flow) against a deliberately naive reference: the bytes are a program of
// entry adds, removes and packet batches on one exact or ternary pipe over (ipv4.src, ipv4.dst, ip.proto,
// l4.dst, pkt_meta); values and masks come from small sets so that keys collide and masks overlap.
//
// Invariants: every packet leaves exactly once, by the port of the live entry with the lowest priority that
// matches it under the entry's mask, or to the kernel (the miss target) when none does; add_entry reports a
// duplicate exactly when a live entry has the same masked key, and otherwise fails only for the mask budget
// (ternary) or a slot awaiting reclaim; remove_entry of a live entry succeeds. The bytes left at the end go
// through as one raw frame: it leaves exactly once, whatever it holds.
#include <array>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "flow/builder.hpp"
#include "flow/pipeline.hpp"
#include "flow/testing.hpp"
#include "fuzz/fuzz_target.hpp"

namespace {

using namespace pspgw;
using namespace pspgw::flow;

constexpr std::array<Field, 5> kFields = {Field::kIpv4Src, Field::kIpv4Dst, Field::kIpProto, Field::kL4Dst,
                                          Field::kPktMeta};
using Values = std::array<uint64_t, 5>;

struct Rule {
  Values value, mask;
  uint32_t priority;
  uint16_t port;
  EntryHandle handle;
};

class Bytes {
 public:
  Bytes(const uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool empty() const { return at_ >= size_; }
  uint8_t next() { return at_ < size_ ? data_[at_++] : 0; }
  std::span<const uint8_t> rest() const { return {data_ + at_, size_ - std::min(at_, size_)}; }

 private:
  const uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
};

template <std::size_t N>
uint64_t pick(const std::array<uint64_t, N>& xs, uint8_t b) {
  return xs[b % N];
}

Values packet_values(Bytes& in) {
  const uint8_t a = in.next(), b = in.next(), c = in.next();
  return {0x0a000000U | (a % 4U), 0x0a010000U | ((b >> 3) % 8U) << 8 | (b % 8U),
          pick(std::array<uint64_t, 2>{6, 17}, c), pick(std::array<uint64_t, 4>{53, 80, 443, 8080}, c >> 1),
          (c >> 3) % 4U};
}

Values mask_values(Bytes& in) {
  const uint8_t a = in.next(), b = in.next();
  return {pick(std::array<uint64_t, 3>{0, 0xffffffff, 0xfffffffc}, a),
          pick(std::array<uint64_t, 3>{0, 0xffffffff, 0xffffff00}, a >> 2),
          pick(std::array<uint64_t, 2>{0, 0xff}, a >> 4), pick(std::array<uint64_t, 3>{0, 0xffff, 0xff00}, b),
          pick(std::array<uint64_t, 3>{0, 0xffffffff, 0x1}, b >> 2)};
}

// The reference: every live rule in full; the lowest priority wins (priorities are unique).
std::optional<uint16_t> naive(const std::vector<Rule>& rules, const Values& pkt) {
  const Rule* best = nullptr;
  for (const Rule& r : rules) {
    bool all = true;
    for (std::size_t f = 0; f < kFields.size(); ++f) all &= (pkt[f] & r.mask[f]) == r.value[f];
    if (all && (best == nullptr || r.priority < best->priority)) best = &r;
  }
  return best != nullptr ? std::optional<uint16_t>(best->port) : std::nullopt;
}

std::vector<uint8_t> frame_of(const Values& p) {
  testing::FrameSpec s;
  std::array<uint8_t, 4> a{};
  for (int i = 0; i < 4; ++i) a[i] = static_cast<uint8_t>(p[0] >> (24 - 8 * i));
  s.src = net::IpAddr::v4(a);
  for (int i = 0; i < 4; ++i) a[i] = static_cast<uint8_t>(p[1] >> (24 - 8 * i));
  s.dst = net::IpAddr::v4(a);
  s.proto = static_cast<uint8_t>(p[2]);
  s.dport = static_cast<uint16_t>(p[3]);
  return testing::frame(s);
}

struct Harness {
  bool exact;
  Values template_mask;
  net::PacketPool pool{64, 2048};
  testing::CollectSink sink{pool};
  std::unique_ptr<Pipeline> pl;
  std::unique_ptr<Worker> worker;
  std::vector<Rule> rules;
  uint32_t added = 0;

  explicit Harness(bool exact_lookup)
      : exact(exact_lookup),
        template_mask{0xffffffff, 0xffffffff, 0xff, 0xffff, exact ? 0xffU : 0xffffffffU} {
    PipeSpec spec{.name = "P",
                  .lookup = exact ? LookupKind::kExact : LookupKind::kTernary,
                  .fwd = TargetRef::drop(),
                  .miss = TargetRef::kernel(),
                  .max_entries = 256};
    for (std::size_t f = 0; f < kFields.size(); ++f)
      spec.match.push_back(match(kFields[f], template_mask[f]));
    auto built = PipelineBuilder{}.add_pipe(spec).build();
    PSPGW_FUZZ_CHECK(built.ok());
    pl = std::move(built).value();
    auto w = pl->attach_worker({.pool = &pool});
    PSPGW_FUZZ_CHECK(w.ok());
    worker = std::move(w).value();
  }

  void add(Bytes& in) {
    Rule r{packet_values(in), exact ? template_mask : mask_values(in), 0, 0, {}};
    r.priority = uint32_t{in.next()} << 16 | added;  // unique: ties would make the reference ambiguous
    r.port = static_cast<uint16_t>(1 + added++);
    EntrySpec e{.fwd = TargetRef::port(PortId(r.port)), .priority = r.priority};
    for (std::size_t f = 0; f < kFields.size(); ++f) {
      r.value[f] &= r.mask[f];
      if (exact) {
        e.match.push_back(eq(kFields[f], r.value[f]));
      } else if (r.mask[f] != 0) {
        e.match.push_back(masked(kFields[f], r.value[f], r.mask[f]));
      }
    }
    bool duplicate = false;
    for (const Rule& o : rules) duplicate |= o.mask == r.mask && o.value == r.value;
    auto h = pl->add_entry(PipeId(0), e);
    if (!h) {
      const FlowError err = h.error();
      PSPGW_FUZZ_CHECK((err == FlowError::kDuplicateEntry) == duplicate);
      PSPGW_FUZZ_CHECK(duplicate || (err == FlowError::kTooManyMasks && !exact) ||
                       err == FlowError::kReclaimPending || err == FlowError::kTableFull);
      return;
    }
    PSPGW_FUZZ_CHECK(!duplicate);
    r.handle = *h;
    rules.push_back(r);
  }

  void remove(Bytes& in) {
    if (rules.empty()) return;
    const std::size_t i = in.next() % rules.size();
    PSPGW_FUZZ_CHECK(pl->remove_entry(rules[i].handle).ok());
    PSPGW_FUZZ_CHECK(!pl->remove_entry(rules[i].handle).ok());  // a stale handle is refused
    rules.erase(rules.begin() + static_cast<std::ptrdiff_t>(i));
  }

  void batch(Bytes& in) {
    const std::size_t n = 1 + in.next() % 16;
    std::vector<Values> pkts(n);
    std::vector<std::vector<uint8_t>> frames;
    for (auto& p : pkts) {
      p = packet_values(in);
      frames.push_back(frame_of(p));
    }
    auto b = testing::make_batch(pool, frames);
    for (uint32_t i = 0; i < b.size(); ++i) {
      b[i]->meta.pkt_meta = static_cast<uint32_t>(pkts[i][4]);
      b[i]->meta.regs[0] = i;
    }
    worker->process(b, sink);
    PSPGW_FUZZ_CHECK(sink.out.size() == pkts.size());
    std::vector<bool> seen(pkts.size());
    for (const auto& d : sink.out) {
      const uint32_t i = d.pkt->meta.regs[0];
      PSPGW_FUZZ_CHECK(i < pkts.size() && !seen[i]);
      seen[i] = true;
      const auto want = naive(rules, pkts[i]);
      const Target expect = want ? Target{TargetKind::kPort, *want} : Target{TargetKind::kKernel, 0};
      PSPGW_FUZZ_CHECK(d.target == expect);
    }
    sink.clear();
  }

  void raw(std::span<const uint8_t> bytes) {
    if (bytes.size() > 1500) bytes = bytes.first(1500);
    auto b = testing::make_batch(pool, {std::vector<uint8_t>(bytes.begin(), bytes.end())});
    worker->process(b, sink);
    PSPGW_FUZZ_CHECK(sink.out.size() == 1);
    sink.clear();
  }
};

}  // namespace

PSPGW_FUZZ_TARGET(flow_match) {
  Bytes in(data, size);
  Harness h((in.next() & 1) != 0);
  for (int ops = 0; ops < 256 && !in.empty(); ++ops) {
    const uint8_t op = in.next();
    if (op == 0xff) break;  // the rest is one raw frame
    switch (op % 4) {
      case 0:
      case 1:
        h.add(in);
        break;
      case 2:
        h.remove(in);
        break;
      default:
        h.batch(in);
        break;
    }
  }
  h.raw(in.rest());
  return 0;
}
