// ports::PcapReader over arbitrary bytes. The reader opens a path, so each input is written to one
// memfd (created once) and opened as /proc/self/fd/N: the reader's stdio code runs unchanged.
// Invariants: records never claim more bytes than the file has; next() and read_batch() agree.
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <string>

#include "fuzz/fuzz_target.hpp"
#include "ports/pcap_io.hpp"

namespace {

using namespace pspgw;

struct Env {
  int fd = memfd_create("fuzz_pcap", MFD_CLOEXEC);
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  net::PacketPool pool{net::kMaxBatch};
  Env() { PSPGW_FUZZ_CHECK(fd >= 0); }
};

bool load(const Env& env, const uint8_t* data, std::size_t size) {
  if (ftruncate(env.fd, 0) != 0) return false;
  return pwrite(env.fd, data, size, 0) == static_cast<ssize_t>(size);
}

// Reads record by record; returns how many records were read before the end or the first error.
uint64_t read_records(Env& env, std::size_t size) {
  auto r = ports::PcapReader::open(env.path);
  if (!r) return 0;
  net::Packet* pkt = env.pool.alloc();
  ports::PcapRecord rec;
  uint64_t n = 0;
  std::size_t consumed = sizeof(ports::PcapFileHeader);
  while (true) {
    auto more = r->next(*pkt, rec);
    if (!more || !*more) break;
    ++n;
    consumed += sizeof(ports::PcapRecordHeader) + rec.caplen;
    PSPGW_FUZZ_CHECK(rec.index == n && rec.caplen == pkt->size() && rec.caplen <= ports::kPcapMaxCaplen);
    PSPGW_FUZZ_CHECK(consumed <= size);
  }
  env.pool.free(pkt);
  return n;
}

uint64_t read_batches(Env& env) {
  auto r = ports::PcapReader::open(env.path);
  if (!r) return 0;
  std::array<ports::PcapRecord, net::kMaxBatch> recs;
  uint64_t n = 0;
  bool more = true;
  while (more) {
    net::PacketBatch batch;
    auto got = r->read_batch(env.pool, batch, recs);
    more = got.ok() && *got;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      PSPGW_FUZZ_CHECK(recs[i].caplen == batch[i]->size() && recs[i].index == n + i + 1);
      env.pool.free(batch[i]);
    }
    n += batch.size();
  }
  return n;
}

}  // namespace

PSPGW_FUZZ_TARGET(pcap_reader) {
  static Env env;
  if (!load(env, data, size)) return 0;
  const uint64_t records = read_records(env, size);
  PSPGW_FUZZ_CHECK(read_batches(env) == records);
  return 0;
}
