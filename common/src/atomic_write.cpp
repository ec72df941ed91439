#include "pnn/common/atomic_write.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

namespace pnn::common {
namespace {

namespace fs = std::filesystem;
using Step = AtomicWriteError::Step;

int open_retrying(const char* path, int flags, mode_t mode = 0) {
  int fd;
  do {
    fd = ::open(path, flags, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

// 0, or the errno of the failed fsync.
int fsync_retrying(int fd) {
  while (::fsync(fd) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

// Unique per call within the process (the counter) and across live processes (the pid).
fs::path temp_path_for(const fs::path& path) {
  static std::atomic<std::uint64_t> counter{0};
  fs::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
  return tmp;
}

// The temporary file: closed and removed unless the rename took it.
class TempFile {
 public:
  explicit TempFile(fs::path path) : path_(std::move(path)) {}
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!renamed_) ::unlink(path_.c_str());
  }
  const fs::path& path() const { return path_; }
  int fd() const { return fd_; }
  void set_fd(int fd) { fd_ = fd; }
  // close() can be where a write error surfaces (NFS); EINTR still closed the descriptor.
  int close_checked() {
    const int fd = fd_;
    fd_ = -1;
    return ::close(fd) == 0 || errno == EINTR ? 0 : errno;
  }
  void renamed() { renamed_ = true; }

 private:
  fs::path path_;
  int fd_ = -1;
  bool renamed_ = false;
};

}  // namespace

void write_file_atomic(const fs::path& path, std::string_view content,
                       const AtomicWriteOptions& options) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  fs::path tmp_path;
  std::size_t done = 0;
  auto fail = [&](Step step, const std::string& what, int err, const std::string& reason) {
    throw AtomicWriteError(path.string() + ": cannot write: " + what + ": " + reason +
                               " (check that the directory exists, is writable and has space)",
                           step, err, tmp_path, done);
  };
  auto fail_errno = [&](Step step, const std::string& what, int err) {
    fail(step, what, err, std::strerror(err));
  };

  if (options.create_directories) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) fail_errno(Step::kCreateDirectories, "creating " + dir.string(), ec.value());
  }
  TempFile tmp(temp_path_for(path));
  tmp_path = tmp.path();
  const int fd = open_retrying(tmp.path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail_errno(Step::kCreateTemp, "creating " + tmp.path().string(), errno);
  tmp.set_fd(fd);

  std::size_t to_write = content.size();
  if (options.fail_after_bytes >= 0) {
    to_write = std::min(to_write, static_cast<std::size_t>(options.fail_after_bytes));
  }
  while (done < to_write) {
    const ssize_t n = ::write(fd, content.data() + done, to_write - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail_errno(Step::kWrite, "writing " + tmp.path().string(), n < 0 ? errno : EIO);
    done += static_cast<std::size_t>(n);
  }
  if (done < content.size()) {
    fail(Step::kWrite, "writing " + tmp.path().string(), 0,
         "stopped after " + std::to_string(done) +
             " bytes (fault injected by AtomicWriteOptions::fail_after_bytes)");
  }
  if (const int err = fsync_retrying(fd); err != 0) {
    fail_errno(Step::kSyncFile, "fsync of " + tmp.path().string(), err);
  }
  if (const int err = tmp.close_checked(); err != 0) {
    fail_errno(Step::kCloseFile, "closing " + tmp.path().string(), err);
  }
  if (::rename(tmp.path().c_str(), path.c_str()) != 0) {
    fail_errno(Step::kRename, "renaming " + tmp.path().string() + " over it", errno);
  }
  tmp.renamed();
  const int dfd = open_retrying(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) fail_errno(Step::kOpenDirectory, "opening its directory to fsync it", errno);
  int err = fsync_retrying(dfd);
  ::close(dfd);
  // Some file systems cannot fsync a directory; there is nothing more to do there.
  if (err == EINVAL || err == EROFS) err = 0;
  if (err != 0) fail_errno(Step::kSyncDirectory, "fsync of its directory " + dir.string(), err);
}

}  // namespace pnn::common
