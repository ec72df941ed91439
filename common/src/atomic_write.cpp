#include "pnn/common/atomic_write.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace pnn::common {
namespace {

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& step, int err) {
  throw std::runtime_error(path.string() + ": cannot write: " + step + ": " + std::strerror(err) +
                           " (check that the directory exists, is writable and has space)");
}

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

}  // namespace

void write_file_atomic(const std::filesystem::path& path, std::string_view content) {
  namespace fs = std::filesystem;
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail(path, "creating " + dir.string(), ec.value());
  const fs::path tmp = path.string() + ".tmp." + std::to_string(::getpid());
  const int fd = open_retrying(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, "creating " + tmp.string(), errno);
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::close(fd);
      ::unlink(tmp.c_str());
      fail(path, "writing " + tmp.string(), err);
    }
    done += static_cast<std::size_t>(n);
  }
  if (const int err = fsync_retrying(fd); err != 0) {
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(path, "fsync of " + tmp.string(), err);
  }
  if (::close(fd) != 0 && errno != EINTR) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail(path, "closing " + tmp.string(), err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail(path, "renaming " + tmp.string() + " over it", err);
  }
  const int dfd = open_retrying(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) fail(path, "opening its directory to fsync it", errno);
  const int err = fsync_retrying(dfd);
  ::close(dfd);
  if (err != 0) fail(path, "fsync of its directory " + dir.string(), err);
}

}  // namespace pnn::common
