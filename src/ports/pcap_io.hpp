// Classic libpcap capture files: a streaming reader and a buffered, batched writer.
//
// Format (https://www.tcpdump.org/manpages/pcap-savefile.5.html): a 24-byte file header, then per
// packet a 16-byte record header and caplen bytes. The magic number gives the byte order of every
// header field and the timestamp unit (micro- or nanoseconds).
//
// Reader: reads both byte orders and both timestamp units, delivering microsecond timestamps the way
// libpcap's pcap_open_offline() does (nanoseconds / 1000), so tools that copy timestamps through
// produce the same output as the google/psp reference tools. It rejects pcapng and anything else with
// an error that names the file, the record and the byte offset.
// Writer: produces exactly what libpcap's pcap_open_dead() + pcap_dump_open() + pcap_dump() write:
// microsecond magic, version 2.4, thiszone 0, sigfigs 0, host byte order.
//
// Packets are read straight into net::Packet buffers (after their headroom) so an encap needs no copy.
// Used by tools/psp-pcap and by the gateway's --sample-pcap.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "net/packet.hpp"

namespace pspgw::ports {

// Spec constants.
inline constexpr uint32_t kPcapMagicMicro = 0xa1b2c3d4;
inline constexpr uint32_t kPcapMagicNano = 0xa1b23c4d;
inline constexpr uint32_t kPcapngMagic = 0x0a0d0d0a;  // pcapng Section Header Block type
inline constexpr uint16_t kPcapVersionMajor = 2;
inline constexpr uint16_t kPcapVersionMinor = 4;
inline constexpr uint32_t kLinktypeEthernet = 1;
inline constexpr uint32_t kPcapMaxCaplen = 262144;  // libpcap's MAXIMUM_SNAPLEN

// Both headers are written in the writer's host byte order (the magic tells readers which one).
struct PcapFileHeader {
  uint32_t magic;
  uint16_t version_major;
  uint16_t version_minor;
  int32_t thiszone;
  uint32_t sigfigs;
  uint32_t snaplen;
  uint32_t linktype;
};
static_assert(sizeof(PcapFileHeader) == 24);

struct PcapRecordHeader {
  uint32_t ts_sec;
  uint32_t ts_frac;  // micro- or nanoseconds, per the file's magic
  uint32_t caplen;
  uint32_t len;
};
static_assert(sizeof(PcapRecordHeader) == 16);

// Microsecond timestamp, as libpcap hands it to a reader that did not ask for nanoseconds. Not
// normalised: usec may exceed 999999 (the reference create_pcap writes such values) and is kept as is.
struct PcapTimestamp {
  uint32_t sec = 0;
  uint32_t usec = 0;
};

struct PcapRecord {
  PcapTimestamp ts;
  uint32_t caplen = 0;    // bytes present (== packet size)
  uint32_t orig_len = 0;  // length on the wire
  uint64_t index = 0;     // 1-based record number, for messages
};

struct PcapError {
  std::string message;  // names the file, and the record where there is one
};

struct FileCloser {
  void operator()(std::FILE* f) const;
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

class PcapReader {
 public:
  static Result<PcapReader, PcapError> open(const std::string& path);

  uint32_t linktype() const { return linktype_; }
  uint32_t snaplen() const { return snaplen_; }
  bool nanosecond() const { return nano_; }
  bool swapped() const { return swapped_; }
  const std::string& path() const { return path_; }

  // Reads the next record into pkt (whose current contents are replaced; headroom is kept).
  // Returns false at a clean end of file.
  Result<bool, PcapError> next(net::Packet& pkt, PcapRecord& rec);
  // Appends up to kMaxBatch - batch.size() packets allocated from pool, recs[i] describing batch[i].
  // Returns false once the file is exhausted (the batch may still hold packets). On error the packets
  // already in the batch are valid and owned by the caller.
  Result<bool, PcapError> read_batch(net::PacketPool& pool, net::PacketBatch& batch,
                                     std::span<PcapRecord, net::kMaxBatch> recs);

 private:
  PcapReader(std::string path, FilePtr file) : path_(std::move(path)), file_(std::move(file)) {}
  Status<PcapError> read_file_header();
  uint32_t field(uint32_t v) const { return swapped_ ? __builtin_bswap32(v) : v; }
  PcapError record_error(const std::string& what) const;

  std::string path_;
  FilePtr file_;
  uint32_t linktype_ = 0;
  uint32_t snaplen_ = 0;
  bool nano_ = false;
  bool swapped_ = false;
  uint8_t lengths_swapped_ = 0;  // libpcap's quirk for files older than version 2.4
  uint64_t records_ = 0;
  uint64_t offset_ = 0;  // byte offset of the next record header
};

class PcapWriter {
 public:
  // Creates (truncates) path and writes the file header libpcap writes for
  // pcap_dump_open(pcap_open_dead(linktype, snaplen)).
  static Result<PcapWriter, PcapError> create(const std::string& path, uint32_t snaplen,
                                              uint32_t linktype = kLinktypeEthernet);
  PcapWriter(PcapWriter&&) noexcept = default;
  PcapWriter& operator=(PcapWriter&&) noexcept = default;
  PcapWriter(const PcapWriter&) = delete;
  PcapWriter& operator=(const PcapWriter&) = delete;
  // Best-effort flush; call close() to learn whether everything reached the file.
  ~PcapWriter();

  // One record: caplen = frame.size(), len = orig_len (pcap_dump writes both as given).
  Status<PcapError> write(std::span<const uint8_t> frame, PcapTimestamp ts, uint32_t orig_len);
  Status<PcapError> write(std::span<const uint8_t> frame, PcapTimestamp ts) {
    return write(frame, ts, static_cast<uint32_t>(frame.size()));
  }
  // The whole batch, ts[i] for batch[i], caplen = len = packet size.
  Status<PcapError> write_batch(const net::PacketBatch& batch, std::span<const PcapTimestamp> ts);
  // Writes what is buffered to the file now (the buffer otherwise fills to 1 MiB first). A failed write
  // (disk full) cuts the file back to its last complete record, drops the buffered records and fails every
  // later call at once, without touching the disk again: the file stays readable up to the failure.
  Status<PcapError> flush();
  // Flushes and closes; reports a failed write (disk full) that buffering may have deferred.
  Status<PcapError> close();
  uint64_t records() const { return records_; }
  uint64_t records_on_disk() const { return records_on_disk_; }  // records a successful flush wrote

 private:
  PcapWriter(std::string path, FilePtr file) : path_(std::move(path)), file_(std::move(file)) {}
  Status<PcapError> append(const void* p, std::size_t n);

  static constexpr std::size_t kBufferSize = 1 << 20;
  std::string path_;
  FilePtr file_;
  std::vector<uint8_t> buf_;
  uint64_t records_ = 0;
  uint64_t records_on_disk_ = 0;
  uint64_t bytes_on_disk_ = 0;
  std::optional<PcapError> failed_;  // the first failed write: every later call returns it
};

}  // namespace pspgw::ports
