#include "ports/pcap_io.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace pspgw::ports {
namespace {

std::string errno_text(int err) {
  return std::error_code(err, std::generic_category()).message();
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// libpcap (sf-pcap.c): files before 2.3 store caplen and len the other way round; 2.3 files may.
enum : uint8_t { kNotSwapped, kSwapped, kMaybeSwapped };

}  // namespace

void FileCloser::operator()(std::FILE* f) const {
  if (f != nullptr) std::fclose(f);
}

// ---- reader ---------------------------------------------------------------------------------------

Result<PcapReader, PcapError> PcapReader::open(const std::string& path) {
  FilePtr f(std::fopen(path.c_str(), "rb"));
  if (!f) return Err{PcapError{"cannot open " + path + ": " + errno_text(errno)}};
  PcapReader r(path, std::move(f));
  if (auto st = r.read_file_header(); !st) return Err{st.error()};
  return r;
}

Status<PcapError> PcapReader::read_file_header() {
  PcapFileHeader h{};
  const std::size_t got = std::fread(&h, 1, sizeof h, file_.get());
  if (got < sizeof h) {
    if (got >= 4 && (h.magic == kPcapngMagic)) {
      return Err{PcapError{path_ + ": pcapng is not supported; convert it with `editcap -F pcap`"}};
    }
    return Err{PcapError{path_ + ": truncated pcap file header (" + std::to_string(got) + " of 24 bytes)"}};
  }
  switch (h.magic) {
    case kPcapMagicMicro:
      break;
    case kPcapMagicNano:
      nano_ = true;
      break;
    case __builtin_bswap32(kPcapMagicMicro):
      swapped_ = true;
      break;
    case __builtin_bswap32(kPcapMagicNano):
      swapped_ = true;
      nano_ = true;
      break;
    case kPcapngMagic:
      return Err{PcapError{path_ + ": pcapng is not supported; convert it with `editcap -F pcap`"}};
    default:
      return Err{PcapError{path_ + ": not a pcap file (magic " + hex32(h.magic) + ")"}};
  }
  uint16_t major = h.version_major;
  uint16_t minor = h.version_minor;
  if (swapped_) {
    major = __builtin_bswap16(major);
    minor = __builtin_bswap16(minor);
  }
  if (major != kPcapVersionMajor) {
    return Err{PcapError{path_ + ": unsupported pcap version " + std::to_string(major) + "." +
                         std::to_string(minor)}};
  }
  lengths_swapped_ = minor < 3 ? kSwapped : minor == 3 ? kMaybeSwapped : kNotSwapped;
  snaplen_ = field(h.snaplen);
  linktype_ = field(h.linktype);
  offset_ = sizeof h;
  return {};
}

PcapError PcapReader::record_error(const std::string& what) const {
  return PcapError{path_ + ": record " + std::to_string(records_ + 1) + " (byte offset " +
                   std::to_string(offset_) + "): " + what};
}

Result<bool, PcapError> PcapReader::next(net::Packet& pkt, PcapRecord& rec) {
  PcapRecordHeader h{};
  const std::size_t got = std::fread(&h, 1, sizeof h, file_.get());
  if (got == 0 && std::feof(file_.get()) != 0) return false;
  if (got < sizeof h) {
    if (std::ferror(file_.get()) != 0) return Err{record_error("read error: " + errno_text(errno))};
    return Err{record_error("truncated record header (" + std::to_string(got) + " of 16 bytes)")};
  }
  uint32_t caplen = field(h.caplen);
  uint32_t len = field(h.len);
  if (lengths_swapped_ == kSwapped || (lengths_swapped_ == kMaybeSwapped && caplen > len)) {
    std::swap(caplen, len);
  }
  if (caplen > kPcapMaxCaplen) {
    return Err{record_error("captured length " + std::to_string(caplen) + " exceeds the pcap maximum " +
                            std::to_string(kPcapMaxCaplen) + " (corrupt file?)")};
  }
  pkt.reset(pkt.headroom());
  if (!pkt.set_size(caplen)) {
    return Err{record_error("frame of " + std::to_string(caplen) + " bytes is too large (at most " +
                            std::to_string(pkt.capacity() - pkt.headroom()) + ")")};
  }
  const std::size_t body = std::fread(pkt.data(), 1, caplen, file_.get());
  if (body < caplen) {
    return Err{record_error("truncated packet data (" + std::to_string(body) + " of " +
                            std::to_string(caplen) + " bytes)")};
  }
  const uint32_t frac = field(h.ts_frac);
  rec.ts = PcapTimestamp{field(h.ts_sec), nano_ ? frac / 1000 : frac};
  rec.caplen = caplen;
  rec.orig_len = len;
  rec.index = ++records_;
  offset_ += sizeof h + caplen;
  return true;
}

Result<bool, PcapError> PcapReader::read_batch(net::PacketPool& pool, net::PacketBatch& batch,
                                               std::span<PcapRecord, net::kMaxBatch> recs) {
  while (!batch.full()) {
    net::Packet* p = pool.alloc();
    if (p == nullptr) return true;  // pool exhausted: the caller drains the batch and calls again
    auto more = next(*p, recs[batch.size()]);
    if (!more || !*more) {
      pool.free(p);
      if (!more) return Err{more.error()};
      return false;
    }
    batch.push(p);
  }
  return true;
}

// ---- writer ---------------------------------------------------------------------------------------

Result<PcapWriter, PcapError> PcapWriter::create(const std::string& path, uint32_t snaplen,
                                                 uint32_t linktype) {
  FilePtr f(std::fopen(path.c_str(), "wb"));
  if (!f) return Err{PcapError{"cannot create " + path + ": " + errno_text(errno)}};
  PcapWriter w(path, std::move(f));
  w.buf_.reserve(kBufferSize);
  const PcapFileHeader h{kPcapMagicMicro, kPcapVersionMajor, kPcapVersionMinor, 0, 0, snaplen, linktype};
  if (auto st = w.append(&h, sizeof h); !st) return Err{st.error()};
  return w;
}

PcapWriter::~PcapWriter() {
  if (file_) (void)flush();
}

Status<PcapError> PcapWriter::append(const void* p, std::size_t n) {
  if (buf_.size() + n > kBufferSize) {
    if (auto st = flush(); !st) return st;
  }
  const auto* b = static_cast<const uint8_t*>(p);
  buf_.insert(buf_.end(), b, b + n);
  return {};
}

Status<PcapError> PcapWriter::flush() {
  if (failed_) return Err{*failed_};
  if (!file_) return Err{PcapError{path_ + ": write after close"}};
  if (buf_.empty()) return {};
  if (std::fwrite(buf_.data(), 1, buf_.size(), file_.get()) != buf_.size() || std::fflush(file_.get()) != 0) {
    failed_ = PcapError{"write to " + path_ + " failed: " + errno_text(errno)};
    // A partial record would end the file mid-record: cut back to the last complete flush (best effort;
    // a device such as /dev/full has no length to cut).
    (void)::ftruncate(::fileno(file_.get()), static_cast<off_t>(bytes_on_disk_));
    buf_.clear();
    return Err{*failed_};
  }
  bytes_on_disk_ += buf_.size();
  records_on_disk_ = records_;
  buf_.clear();
  return {};
}

Status<PcapError> PcapWriter::write(std::span<const uint8_t> frame, PcapTimestamp ts, uint32_t orig_len) {
  if (failed_) return Err{*failed_};
  const PcapRecordHeader h{ts.sec, ts.usec, static_cast<uint32_t>(frame.size()), orig_len};
  // A flush writes whole records only (it may fail and cut the file back to one).
  if (buf_.size() + sizeof h + frame.size() > kBufferSize) {
    if (auto st = flush(); !st) return st;
  }
  if (auto st = append(&h, sizeof h); !st) return st;
  if (auto st = append(frame.data(), frame.size()); !st) return st;
  ++records_;
  return {};
}

Status<PcapError> PcapWriter::write_batch(const net::PacketBatch& batch, std::span<const PcapTimestamp> ts) {
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (auto st = write(batch[i]->bytes(), ts[i]); !st) return st;
  }
  return {};
}

Status<PcapError> PcapWriter::close() {
  if (auto st = flush(); !st) return st;
  std::FILE* f = file_.release();
  if (std::fclose(f) != 0) return Err{PcapError{"closing " + path_ + " failed: " + errno_text(errno)}};
  return {};
}

}  // namespace pspgw::ports
