// Segment files of forward-record arrays; segment_log.hpp has the contract, docs/run-store.md
// "Segment files" the format and the argument for the order of writes.
#include "segment_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <system_error>

#include "pnn/common/bytes.hpp"
#include "pnn/daemon/run_store.hpp"
#include "pnn/firmware_iface/crc32c.hpp"

namespace pnn::daemon::detail {
namespace {

namespace fs = std::filesystem;
using firmware_iface::crc32c;

constexpr std::array<std::uint8_t, 8> kFileMagic = {'P', 'N', 'N', 'S', 'E', 'G', 0, 1};
constexpr std::uint32_t kFrameMagic = 0x52464E50;  // "PNFR" little-endian

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

// pwrite of all `n` bytes at `offset`; errno of the failure, or 0.
int write_all(int fd, const std::uint8_t* data, std::size_t n, std::uint64_t offset) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return errno;
    if (w == 0) return ENOSPC;
    data += w;
    n -= static_cast<std::size_t>(w);
    offset += static_cast<std::uint64_t>(w);
  }
  return 0;
}

// pread of up to `n` bytes at `offset`: the number read (short only at the end of the file), or
// -errno.
ssize_t read_all(int fd, std::uint8_t* data, std::size_t n, std::uint64_t offset) {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd, data + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -errno;
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  return static_cast<ssize_t>(got);
}

int sync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  const int rc = ::fsync(fd) == 0 ? 0 : errno;
  ::close(fd);
  return rc;
}

// The id of a file named like segment_path's, or 0.
std::uint64_t segment_id_of(const fs::path& file) {
  const std::string name = file.filename().string();
  if (name.size() != 16 || name.substr(12) != ".seg") return 0;
  std::uint64_t id = 0;
  for (char c : name.substr(0, 12)) {
    if (c < '0' || c > '9') return 0;
    id = id * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return id;
}

const char* const kDamagedFix =
    "; that record cannot be read (the others are not affected): restore the file from a "
    "backup, or leave it, and retention deletes it with its segment in time";

}  // namespace

SegmentLog::SegmentLog(std::string db_path, std::string dir)
    : db_path_(std::move(db_path)), dir_(std::move(dir)) {}

SegmentLog::~SegmentLog() {
  for (int& fd : rotated_fds_) close_fd(fd);
  close_fd(current_fd_);
  for (auto& [id, fd] : read_fds_) close_fd(fd);
}

std::string SegmentLog::segment_path(std::uint64_t segment_id) const {
  char name[32];
  std::snprintf(name, sizeof name, "%012llu.seg", static_cast<unsigned long long>(segment_id));
  return (fs::path(dir_) / name).string();
}

void SegmentLog::fail(const std::string& file, const std::string& what, int err) const {
  const bool full = err == ENOSPC || err == EDQUOT;
  throw StoreError("run store " + db_path_ + ": forward segment " + file + ": " + what + ": " +
                       errno_text(err) +
                       (full ? "; the disk holding the run store is full: nothing of this write "
                               "was kept; free space (or lower store.forward_records_max_bytes) "
                               "and retry"
                             : ""),
                   full);
}

void SegmentLog::close_fd(int& fd) noexcept {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

std::vector<std::string> SegmentLog::recover(std::map<std::uint64_t, Extent> committed) {
  committed_ = std::move(committed);
  std::vector<std::string> notes;
  std::map<std::uint64_t, bool> seen;
  std::error_code ec;
  dir_ready_ = fs::is_directory(dir_, ec);
  if (dir_ready_) {
    for (const auto& entry : fs::directory_iterator(dir_, ec)) {
      const std::uint64_t id = segment_id_of(entry.path());
      if (id == 0) continue;  // not ours: left alone
      const std::string file = entry.path().string();
      next_id_ = std::max(next_id_, id + 1);
      const auto it = committed_.find(id);
      if (it == committed_.end()) {
        // Never committed (or its rows were deleted by retention just before a crash).
        if (::unlink(file.c_str()) != 0) fail(file, "removing an uncommitted segment", errno);
        notes.push_back("removed forward segment " + file +
                        ": no committed record refers to it (a write interrupted before its "
                        "index committed, or retention interrupted by a crash)");
        continue;
      }
      seen[id] = true;
      const int fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
      if (fd < 0) fail(file, "opening it for recovery", errno);
      std::array<std::uint8_t, kFileHeaderBytes> header{};
      struct stat st {};
      const bool stat_ok = ::fstat(fd, &st) == 0;
      const ssize_t got = read_all(fd, header.data(), header.size(), 0);
      const auto size = stat_ok ? static_cast<std::uint64_t>(st.st_size) : 0;
      common::ByteReader in(std::span<const std::uint8_t>(header.data(), header.size()));
      in.get<std::uint64_t>();  // the magic, compared below as bytes
      const bool header_ok = got == static_cast<ssize_t>(header.size()) &&
                             std::equal(kFileMagic.begin(), kFileMagic.end(), header.begin()) &&
                             in.u64() == id;
      const Extent& e = it->second;
      if (!header_ok) {
        notes.push_back("forward segment " + file +
                        " does not start with its segment header: " + std::to_string(e.records) +
                        " committed record(s) in it (up to id " + std::to_string(e.last_record_id) +
                        ") cannot be read; restore the file from a backup or leave it (retention "
                        "deletes it in time)");
      } else if (size < e.end) {
        notes.push_back("forward segment " + file + " is " + std::to_string(size) +
                        " bytes, but its committed records end at byte " + std::to_string(e.end) +
                        " (it was truncated outside pnnd): the records past its end cannot be "
                        "read; restore the file from a backup or leave it (retention deletes it "
                        "in time)");
      } else if (size > e.end) {
        // A torn or uncommitted tail: the bytes of a batch whose index never committed.
        if (::ftruncate(fd, static_cast<off_t>(e.end)) != 0 || ::fdatasync(fd) != 0) {
          const int err = errno;
          ::close(fd);
          fail(file, "truncating its uncommitted tail", err);
        }
        notes.push_back("truncated forward segment " + file + " from " + std::to_string(size) +
                        " to " + std::to_string(e.end) +
                        " bytes: the tail past its last committed record (a write interrupted "
                        "before its index committed)");
      }
      ::close(fd);
    }
    if (ec) fail(dir_, "listing the segment directory", ec.value());
  }
  for (const auto& [id, e] : committed_) {
    next_id_ = std::max(next_id_, id + 1);
    if (id == 0 || seen.count(id) != 0) continue;
    notes.push_back("forward segment " + segment_path(id) +
                    " is missing: " + std::to_string(e.records) +
                    " committed record(s) in it (up to id " + std::to_string(e.last_record_id) +
                    ") cannot be read; restore the file from a backup, or leave it (retention "
                    "deletes their index rows in time)");
  }
  return notes;
}

void SegmentLog::ensure_dir() {
  if (dir_ready_) return;
  if (::mkdir(dir_.c_str(), 0755) != 0 && errno != EEXIST) {
    fail(dir_, "creating the segment directory", errno);
  }
  const fs::path parent = fs::path(dir_).parent_path();
  if (const int err = sync_dir(parent.empty() ? "." : parent.string())) {
    fail(dir_, "syncing the directory that holds it", err);
  }
  dir_ready_ = true;
}

void SegmentLog::open_new_segment() {
  ensure_dir();
  const std::uint64_t id = next_id_++;
  const std::string file = segment_path(id);
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) fail(file, "creating it", errno);
  started_.push_back(id);  // from here on, rollback_batch removes it
  current_fd_ = fd;
  current_id_ = id;
  current_end_ = kFileHeaderBytes;
  current_dirty_ = true;  // its header is synced with the batch
  std::vector<std::uint8_t> header(kFileMagic.begin(), kFileMagic.end());
  common::ByteWriter(header).u64(id);
  if (const int err = write_all(fd, header.data(), header.size(), 0)) {
    fail(file, "writing its header", err);
  }
  // The name must be durable before any index row that names the file commits.
  if (const int err = sync_dir(dir_)) fail(file, "syncing the segment directory", err);
}

void SegmentLog::begin_batch() {
  pending_.clear();
  started_.clear();
  batch_segment_ = current_fd_ >= 0 ? current_id_ : 0;
  batch_end_ = current_end_;
}

SegmentRef SegmentLog::reserve(std::uint64_t length, std::uint32_t crc,
                               std::uint64_t max_segment_bytes) {
  if (length > std::numeric_limits<std::uint32_t>::max()) {
    throw StoreError("run store " + db_path_ + ": a forward record of " + std::to_string(length) +
                     " bytes is larger than a segment frame holds (4 GiB); send smaller batches");
  }
  const std::uint64_t frame = kFrameHeaderBytes + length;
  if (current_fd_ >= 0 && current_end_ > kFileHeaderBytes &&
      current_end_ + frame > max_segment_bytes) {
    if (current_dirty_) {
      rotated_fds_.push_back(current_fd_);  // synced with the batch, then closed
      current_fd_ = -1;
    } else {
      close_fd(current_fd_);  // nothing of this batch in it: no sync needed
    }
  }
  if (current_fd_ < 0) open_new_segment();
  const SegmentRef ref{current_id_, current_end_, length, crc};
  current_end_ += frame;
  return ref;
}

void SegmentLog::write(const SegmentRef& ref, std::uint64_t record_id,
                       std::span<const std::uint8_t> payload) {
  std::vector<std::uint8_t> header;
  header.reserve(kFrameHeaderBytes);
  common::ByteWriter w(header);
  w.u32(kFrameMagic);
  w.u32(static_cast<std::uint32_t>(ref.length));
  w.u64(record_id);
  w.u32(ref.crc);
  w.u32(crc32c(header));
  const std::string file = segment_path(ref.segment_id);
  if (const int err = write_all(current_fd_, header.data(), header.size(), ref.offset)) {
    fail(file, "writing a record", err);
  }
  if (const int err =
          write_all(current_fd_, payload.data(), payload.size(), ref.offset + kFrameHeaderBytes)) {
    fail(file, "writing a record", err);
  }
  current_dirty_ = true;
  pending_.push_back(
      {ref.segment_id, ref.offset + kFrameHeaderBytes + ref.length, ref.length, record_id});
}

void SegmentLog::sync_batch() {
  if (pending_.empty()) return;
  for (int& fd : rotated_fds_) {
    if (::fdatasync(fd) != 0) fail(dir_, "fdatasync of a segment left in this batch", errno);
    ++syncs_;
    close_fd(fd);
  }
  rotated_fds_.clear();
  if (current_fd_ >= 0 && current_dirty_) {
    if (::fdatasync(current_fd_) != 0) fail(segment_path(current_id_), "fdatasync", errno);
    ++syncs_;
  }
  current_dirty_ = false;
}

void SegmentLog::commit_batch() {
  for (const Pending& p : pending_) {
    Extent& e = committed_[p.segment_id];
    ++e.records;
    e.bytes += p.length;
    e.end = p.end;
    e.last_record_id = p.record_id;
  }
  pending_.clear();
  started_.clear();
}

void SegmentLog::rollback_batch() noexcept {
  for (int& fd : rotated_fds_) close_fd(fd);
  rotated_fds_.clear();
  close_fd(current_fd_);  // the next write starts a new segment
  current_dirty_ = false;
  for (std::uint64_t id : started_) {
    if (auto it = read_fds_.find(id); it != read_fds_.end()) {
      close_fd(it->second);
      read_fds_.erase(it);
    }
    (void)::unlink(segment_path(id).c_str());
  }
  if (batch_segment_ != 0) {
    (void)::truncate(segment_path(batch_segment_).c_str(), static_cast<off_t>(batch_end_));
  }
  pending_.clear();
  started_.clear();
}

std::map<std::uint64_t, SegmentLog::Extent> SegmentLog::extents_with_batch() const {
  auto out = committed_;
  for (const Pending& p : pending_) {
    Extent& e = out[p.segment_id];
    ++e.records;
    e.bytes += p.length;
    e.end = p.end;
    e.last_record_id = p.record_id;
  }
  return out;
}

void SegmentLog::drop_upto(std::uint64_t segment_id) noexcept {
  for (auto it = committed_.begin(); it != committed_.end() && it->first <= segment_id;) {
    const std::uint64_t id = it->first;
    it = committed_.erase(it);
    if (auto r = read_fds_.find(id); r != read_fds_.end()) {
      close_fd(r->second);
      read_fds_.erase(r);
    }
    if (id != 0 && !(id == current_id_ && current_fd_ >= 0)) {
      (void)::unlink(segment_path(id).c_str());
    }
  }
}

std::uint64_t SegmentLog::num_segments() const { return committed_.size() - committed_.count(0); }

int SegmentLog::read_fd(std::uint64_t segment_id) {
  if (auto it = read_fds_.find(segment_id); it != read_fds_.end()) return it->second;
  const std::string file = segment_path(segment_id);
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    throw StoreError("run store " + db_path_ + ": forward segment " + file +
                     " cannot be opened: " + errno_text(err) + kDamagedFix);
  }
  read_fds_[segment_id] = fd;
  return fd;
}

void SegmentLog::read(std::uint64_t record_id, const SegmentRef& ref,
                      std::vector<std::uint8_t>& payload) {
  const int fd = read_fd(ref.segment_id);
  const std::string where =
      "run store " + db_path_ + ": forward record " + std::to_string(record_id) + " in segment " +
      segment_path(ref.segment_id) + " at offset " + std::to_string(ref.offset) + ": ";
  std::array<std::uint8_t, kFrameHeaderBytes> header{};
  payload.resize(ref.length);
  const ssize_t got_header = read_all(fd, header.data(), header.size(), ref.offset);
  const ssize_t got =
      got_header == static_cast<ssize_t>(header.size())
          ? read_all(fd, payload.data(), payload.size(), ref.offset + kFrameHeaderBytes)
          : 0;
  if (got_header < 0 || got < 0) {
    throw StoreError(where + "read failed: " +
                     errno_text(static_cast<int>(-std::min(got_header, got))) + kDamagedFix);
  }
  if (got_header != static_cast<ssize_t>(header.size()) ||
      static_cast<std::uint64_t>(got) != ref.length) {
    throw StoreError(where + "the file ends before the record (it was truncated)" + kDamagedFix);
  }
  common::ByteReader in(std::span<const std::uint8_t>(header.data(), header.size()));
  const std::uint32_t magic = in.u32(), length = in.u32();
  const std::uint64_t id = in.u64();
  const std::uint32_t crc = in.u32(), header_crc = in.u32();
  if (magic != kFrameMagic || header_crc != crc32c(std::span(header.data(), 20)) ||
      length != ref.length || id != record_id || crc != ref.crc) {
    throw StoreError(where +
                     "the frame header does not match the index (the segment is "
                     "damaged)" +
                     kDamagedFix);
  }
  if (crc32c(payload) != ref.crc) {
    throw StoreError(where + "CRC-32C mismatch: the record's bytes are damaged on disk" +
                     kDamagedFix);
  }
}

}  // namespace pnn::daemon::detail
