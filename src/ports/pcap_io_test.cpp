#include "ports/pcap_io.hpp"

#include <gtest/gtest.h>

#include <sys/resource.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

namespace pspgw::ports {
namespace {

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "pcap_io_test_" + name;
}

std::vector<uint8_t> slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void spill(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void put32(std::vector<uint8_t>& v, uint32_t x, bool big) {
  for (int i = 0; i < 4; ++i) v.push_back(static_cast<uint8_t>(big ? x >> (24 - 8 * i) : x >> (8 * i)));
}
void put16(std::vector<uint8_t>& v, uint16_t x, bool big) {
  v.push_back(static_cast<uint8_t>(big ? x >> 8 : x));
  v.push_back(static_cast<uint8_t>(big ? x : x >> 8));
}

// A pcap file built by hand, in either byte order and timestamp unit.
std::vector<uint8_t> file_header(uint32_t magic, bool big, uint16_t minor = 4, uint32_t linktype = 1) {
  std::vector<uint8_t> v;
  put32(v, magic, big);
  put16(v, 2, big);
  put16(v, minor, big);
  put32(v, 0, big);
  put32(v, 0, big);
  put32(v, 65535, big);
  put32(v, linktype, big);
  return v;
}
void add_record(std::vector<uint8_t>& v, uint32_t sec, uint32_t frac, uint32_t caplen, uint32_t len, bool big,
                uint8_t fill = 0xab) {
  put32(v, sec, big);
  put32(v, frac, big);
  put32(v, caplen, big);
  put32(v, len, big);
  v.insert(v.end(), caplen, fill);
}

struct Env {
  net::PacketPool pool{4};
  net::Packet* pkt = pool.alloc();
  PcapRecord rec;
};

std::string open_error(const std::vector<uint8_t>& bytes, const std::string& name) {
  const std::string path = temp_path(name);
  spill(path, bytes);
  auto r = PcapReader::open(path);
  return r ? std::string() : r.error().message;
}

std::string first_read_error(const std::vector<uint8_t>& bytes, const std::string& name, int reads = 1) {
  const std::string path = temp_path(name);
  spill(path, bytes);
  auto r = PcapReader::open(path);
  EXPECT_TRUE(r.ok());
  if (!r) return {};
  Env env;
  for (int i = 0; i < reads; ++i) {
    auto more = r->next(*env.pkt, env.rec);
    if (!more) return more.error().message;
  }
  return {};
}

TEST(PcapWriter, WritesLibpcapDumpFormat) {
  const std::string path = temp_path("writer.pcap");
  auto w = PcapWriter::create(path, 9014);
  ASSERT_TRUE(w.ok());
  const std::vector<uint8_t> frame = {1, 2, 3, 4, 5};
  ASSERT_TRUE(w->write(frame, PcapTimestamp{0x01020304, 1000001}).ok());
  ASSERT_TRUE(w->close().ok());

  // pcap_dump_open(pcap_open_dead(DLT_EN10MB, 9014)) on a little-endian host, then one pcap_dump().
  std::vector<uint8_t> want = file_header(kPcapMagicMicro, false);
  want[16] = 9014 & 0xff;
  want[17] = 9014 >> 8;
  want[18] = want[19] = 0;
  add_record(want, 0x01020304, 1000001, 5, 5, false);
  std::copy(frame.begin(), frame.end(), want.end() - 5);
  ASSERT_EQ(std::endian::native, std::endian::little) << "expected bytes assume a little-endian host";
  EXPECT_EQ(slurp(path), want);
}

TEST(PcapReader, ReadsWhatTheWriterWrote) {
  const std::string path = temp_path("roundtrip.pcap");
  {
    auto w = PcapWriter::create(path, 1434);
    ASSERT_TRUE(w.ok());
    for (uint32_t i = 0; i < 3; ++i) {
      std::vector<uint8_t> f(60 + i, static_cast<uint8_t>(i));
      ASSERT_TRUE(w->write(f, PcapTimestamp{100, i}).ok());
    }
    ASSERT_TRUE(w->close().ok());
  }
  auto r = PcapReader::open(path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->snaplen(), 1434u);
  EXPECT_EQ(r->linktype(), kLinktypeEthernet);
  EXPECT_FALSE(r->nanosecond());
  Env env;
  for (uint32_t i = 0; i < 3; ++i) {
    auto more = r->next(*env.pkt, env.rec);
    ASSERT_TRUE(more.ok() && *more);
    EXPECT_EQ(env.pkt->size(), 60 + i);
    EXPECT_EQ(env.pkt->data()[0], i);
    EXPECT_EQ(env.pkt->headroom(), net::kDefaultHeadroom);
    EXPECT_EQ(env.rec.ts.usec, i);
    EXPECT_EQ(env.rec.index, i + 1);
  }
  auto end = r->next(*env.pkt, env.rec);
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(*end);
}

TEST(PcapReader, BigEndianAndNanosecondFiles) {
  for (bool big : {false, true}) {
    for (bool nano : {false, true}) {
      auto bytes = file_header(nano ? kPcapMagicNano : kPcapMagicMicro, big);
      add_record(bytes, 7, nano ? 123456789 : 123456, 20, 20, big);
      const std::string path = temp_path("order.pcap");
      spill(path, bytes);
      auto r = PcapReader::open(path);
      ASSERT_TRUE(r.ok()) << r.error().message;
      EXPECT_EQ(r->swapped(), big != (std::endian::native == std::endian::big));
      EXPECT_EQ(r->nanosecond(), nano);
      EXPECT_EQ(r->snaplen(), 65535u);
      Env env;
      auto more = r->next(*env.pkt, env.rec);
      ASSERT_TRUE(more.ok() && *more);
      EXPECT_EQ(env.rec.ts.sec, 7u);
      EXPECT_EQ(env.rec.ts.usec, 123456u);  // nanoseconds scaled down as libpcap does
      EXPECT_EQ(env.pkt->size(), 20u);
    }
  }
}

TEST(PcapReader, OldVersionsSwapLengthsLikeLibpcap) {
  auto bytes = file_header(kPcapMagicMicro, false, 2);  // 2.2: caplen and len stored the other way round
  add_record(bytes, 0, 0, 100, 0, false);               // "caplen" 100 is the wire length here
  bytes.resize(bytes.size() - 100);
  EXPECT_EQ(first_read_error(bytes, "v22.pcap"), "");  // 0 bytes captured of 100
}

TEST(PcapReader, RejectsBadHeaders) {
  EXPECT_NE(open_error({0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0}, "short.pcap")
                .find("truncated pcap file header (10 of 24"),
            std::string::npos);
  EXPECT_NE(
      open_error(file_header(0x12345678, false), "magic.pcap").find("not a pcap file (magic 0x12345678)"),
      std::string::npos);
  EXPECT_NE(open_error(file_header(kPcapngMagic, false), "ng.pcap").find("pcapng is not supported"),
            std::string::npos);
  auto v1 = file_header(kPcapMagicMicro, false);
  v1[4] = 1;
  EXPECT_NE(open_error(v1, "v1.pcap").find("unsupported pcap version 1.4"), std::string::npos);
  auto r = PcapReader::open(temp_path("does-not-exist.pcap"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("cannot open"), std::string::npos);
  EXPECT_NE(r.error().message.find("No such file"), std::string::npos);
}

TEST(PcapReader, NamesTheTruncatedRecord) {
  auto bytes = file_header(kPcapMagicMicro, false);
  add_record(bytes, 1, 0, 60, 60, false);
  add_record(bytes, 1, 1, 60, 60, false);
  auto cut_body = bytes;
  cut_body.resize(cut_body.size() - 55);
  EXPECT_EQ(first_read_error(cut_body, "body.pcap", 2),
            temp_path("body.pcap") + ": record 2 (byte offset 100): truncated packet data (5 of 60 bytes)");
  auto cut_header = bytes;
  cut_header.resize(24 + 76 + 9);
  EXPECT_EQ(first_read_error(cut_header, "hdr.pcap", 2),
            temp_path("hdr.pcap") + ": record 2 (byte offset 100): truncated record header (9 of 16 bytes)");
}

TEST(PcapReader, RejectsOversizedRecords) {
  auto bytes = file_header(kPcapMagicMicro, false);
  add_record(bytes, 0, 0, 0, 0, false);
  bytes[24 + 8] = 0;  // caplen 0x01000000
  bytes[24 + 11] = 1;
  EXPECT_NE(first_read_error(bytes, "huge.pcap").find("exceeds the pcap maximum 262144"), std::string::npos);

  auto big = file_header(kPcapMagicMicro, false);
  add_record(big, 0, 0, 20000, 20000, false);  // legal pcap, larger than the packet buffer
  EXPECT_NE(first_read_error(big, "big.pcap").find("frame of 20000 bytes is too large"), std::string::npos);
}

TEST(PcapReader, ReadsInBatches) {
  const std::string path = temp_path("batch.pcap");
  {
    auto w = PcapWriter::create(path, 1434);
    ASSERT_TRUE(w.ok());
    for (uint32_t i = 0; i < 70; ++i)
      ASSERT_TRUE(w->write(std::vector<uint8_t>(64, static_cast<uint8_t>(i)), {1, i}).ok());
    ASSERT_TRUE(w->close().ok());
  }
  auto r = PcapReader::open(path);
  ASSERT_TRUE(r.ok());
  net::PacketPool pool(net::kMaxBatch);
  std::array<PcapRecord, net::kMaxBatch> recs;
  net::PacketBatch batch;
  auto more = r->read_batch(pool, batch, recs);
  ASSERT_TRUE(more.ok());
  EXPECT_TRUE(*more);
  ASSERT_EQ(batch.size(), net::kMaxBatch);
  EXPECT_EQ(batch[63]->data()[0], 63);
  EXPECT_EQ(recs[63].index, 64u);
  for (net::Packet* p : batch) pool.free(p);
  batch.clear();
  more = r->read_batch(pool, batch, recs);
  ASSERT_TRUE(more.ok());
  EXPECT_FALSE(*more);
  ASSERT_EQ(batch.size(), 6u);
  EXPECT_EQ(recs[5].ts.usec, 69u);
  for (net::Packet* p : batch) pool.free(p);
  EXPECT_EQ(pool.available(), net::kMaxBatch);
}

TEST(PcapWriter, ReportsUncreatableFile) {
  auto w = PcapWriter::create("/nonexistent-dir/x.pcap", 100);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().message.find("cannot create /nonexistent-dir/x.pcap"), std::string::npos);
}

// Disk full: /dev/full fails every write with ENOSPC. The failure is reported once it happens (flush or a
// full buffer) and every later call fails at once, without writing again.
TEST(PcapWriter, DiskFullFailsOnceAndStaysFailedWithoutWriting) {
  auto w = PcapWriter::create("/dev/full", 100);
  ASSERT_TRUE(w.ok()) << w.error().message;
  const std::vector<uint8_t> frame(60, 0x5a);
  EXPECT_TRUE(w->write(frame, {1, 2}).ok());  // buffered
  auto st = w->flush();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("write to /dev/full failed: No space left on device"), std::string::npos)
      << st.error().message;
  EXPECT_EQ(w->records_on_disk(), 0u);
  EXPECT_FALSE(w->write(frame, {1, 3}).ok());
  EXPECT_EQ(w->records(), 1u);  // the refused record was not taken
  EXPECT_FALSE(w->flush().ok());
  EXPECT_FALSE(w->close().ok());
}

// A file that fills up part-way through a flush (here: RLIMIT_FSIZE, as a small file system would) is cut
// back to its last complete record: a reader gets every record written before, and no torn one.
TEST(PcapWriter, AFileThatFillsUpEndsOnItsLastCompleteRecord) {
  const std::string path = temp_path("full.pcap");
  auto w = PcapWriter::create(path, 200);
  ASSERT_TRUE(w.ok());
  const std::vector<uint8_t> frame(100, 0x11);
  for (uint32_t i = 0; i < 3; ++i) ASSERT_TRUE(w->write(frame, {i, 0}).ok());
  ASSERT_TRUE(w->flush().ok());
  const auto size = static_cast<rlim_t>(slurp(path).size());
  ASSERT_EQ(size, 24u + 3u * (16u + 100u));
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto* const old_handler = std::signal(SIGXFSZ, SIG_IGN);  // EFBIG instead of the signal
  rlimit small = old;
  small.rlim_cur = size + 50;  // room for a record header and part of its frame
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  for (uint32_t i = 3; i < 6; ++i) ASSERT_TRUE(w->write(frame, {i, 0}).ok());
  const auto st = w->flush();
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old), 0);
  std::signal(SIGXFSZ, old_handler);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("File too large"), std::string::npos) << st.error().message;
  EXPECT_EQ(w->records_on_disk(), 3u);
  EXPECT_EQ(slurp(path).size(), size) << "cut back to the last complete record";
  auto r = PcapReader::open(path);
  ASSERT_TRUE(r.ok());
  net::PacketPool pool(1);
  net::Packet* p = pool.alloc();
  PcapRecord rec;
  int n = 0;
  for (auto more = r->next(*p, rec); more.ok() && *more; more = r->next(*p, rec)) ++n;
  EXPECT_EQ(n, 3);
  pool.free(p);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace pspgw::ports
