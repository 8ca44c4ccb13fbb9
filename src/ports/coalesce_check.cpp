#include "ports/coalesce_check.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "base/byteorder.hpp"
#include "net/packet.hpp"
#include "ports/gso.hpp"

namespace pspgw::ports {
namespace {

// Cuts one flattened multi-frame write back into segments and compares them with its frames.
bool splits_back(const CoalescedWrite& w, std::span<const uint8_t> flat,
                 std::span<const std::span<const uint8_t>> frames) {
  if (std::size_t{w.vnet.csum_start} + w.vnet.csum_offset + 2 > w.hdr_len) return false;
  auto seg = GsoSegmenter::start(flat, w.vnet.gso_size);
  if (!seg || seg->header_len() != w.hdr_len || seg->segment_count() != w.count) return false;
  net::PacketPool pool(w.count, net::kDefaultHeadroom + kMaxCoalescedHeader + w.vnet.gso_size);
  net::PacketBatch out;
  auto n = seg->next(pool, out, net::Metadata{});
  bool same = n && *n == w.count && seg->done();
  for (std::size_t k = 0; same && k < out.size(); ++k) {
    const auto f = frames[w.first + k];
    same = out[k]->size() == f.size() && std::memcmp(out[k]->data(), f.data(), f.size()) == 0;
  }
  for (net::Packet* p : out) pool.free(p);
  return same;
}

}  // namespace

bool coalesce_round_trips(std::span<const std::span<const uint8_t>> frames, const CoalesceOptions& opt) {
  std::vector<CoalescedWrite> writes(frames.size());
  const std::size_t n = plan_coalesced_writes(frames, opt, writes);
  std::vector<uint8_t> flat(kMaxCoalescedHeader + 65536);
  std::size_t next = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const CoalescedWrite& w = writes[i];
    if (w.first != next || w.count == 0) return false;
    next += w.count;
    if (w.count == 1) continue;
    const std::size_t len = flatten_write(w, frames, flat);
    if (len == 0 || !splits_back(w, {flat.data(), len}, frames)) return false;
  }
  return next == frames.size();
}

bool coalesce_round_trips(std::span<const uint8_t> data) {
  if (data.empty()) return true;
  const CoalesceOptions opt{.tcp = (data[0] & 1) != 0, .udp = (data[0] & 2) != 0};
  std::array<std::span<const uint8_t>, net::kMaxBatch> frames;
  std::size_t count = 0;
  std::size_t at = 1;
  while (at < data.size() && count < frames.size()) {
    std::size_t len = data.size() - at;
    if (len >= 2) {
      len = std::min<std::size_t>(load_be16(data.data() + at), len - 2);
      at += 2;
    } else {
      len = data.size() - at;
    }
    frames[count++] = data.subspan(at, len);
    at += len;
  }
  return coalesce_round_trips({frames.data(), count}, opt);
}

}  // namespace pspgw::ports
