#include "run_store_sqlite.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <span>
#include <system_error>

#include "pnn/common/bytes.hpp"

namespace pnn::daemon::sqlite {
namespace {

namespace fs = std::filesystem;

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

}  // namespace

void encode_matrix_f32(const Matrix& m, std::vector<float>& scratch,
                       std::vector<std::uint8_t>& bytes) {
  scratch.resize(static_cast<std::size_t>(m.size()));
  Eigen::Map<RowMajorMatrixF>(scratch.data(), m.rows(), m.cols()) = m.cast<float>();
  common::ByteWriter w(bytes);
  w.f32_array(scratch);
}

void encode_vector(const Vector& v, std::vector<std::uint8_t>& bytes) {
  common::ByteWriter w(bytes);
  w.f64_array({v.data(), static_cast<std::size_t>(v.size())});
}

void Db::fail(std::string_view what, int rc, const char* sql) const {
  std::string message =
      "run store " + path + ": " + std::string(what) + ": " + sqlite3_errstr(rc);
  const char* detail = handle ? sqlite3_errmsg(handle.get()) : nullptr;
  if (detail != nullptr && std::strcmp(detail, sqlite3_errstr(rc)) != 0) {
    message += std::string(" (") + detail + ")";
  }
  const int primary = rc & 0xff;
  if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT) {
    message +=
        "; the file is not an SQLite database or is corrupt: move it aside (keep it for "
        "forensics) or configure another run store path";
  }
  // SQLite maps ENOSPC to SQLITE_FULL where it knows the call (write, truncate); an I/O error
  // it could not classify still carries the errno of the failing system call.
  const bool disk_full =
      primary == SQLITE_FULL ||
      (primary == SQLITE_IOERR && handle && sqlite3_system_errno(handle.get()) == ENOSPC);
  if (disk_full) {
    message +=
        "; the disk holding the run store is full: nothing of this write was kept; free space "
        "(or lower store.forward_records_max_bytes) and retry";
  }
  if (sql != nullptr) message += std::string(" [statement: ") + sql + "]";
  throw StoreError(message, disk_full);
}

RowMajorMatrix Query::doubles_at(int col, std::int64_t rows, std::int64_t cols,
                          std::int64_t elem_bytes) const {
  const void* blob = sqlite3_column_blob(stmt_, col);
  const auto bytes = static_cast<std::uint64_t>(sqlite3_column_bytes(stmt_, col));
  if (elem_bytes != 4 && elem_bytes != 8) {
    throw StoreError("run store " + db_.path + ": " + std::string(what_) + ": column " +
                     sqlite3_column_name(stmt_, col) + " has elem_bytes " +
                     std::to_string(elem_bytes) + ", not 4 or 8 (the database is corrupt)");
  }
  constexpr std::int64_t kMaxDim = std::int64_t{1} << 31;
  if (rows < 0 || cols < 0 || rows > kMaxDim || cols > kMaxDim ||
      static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(cols) *
              static_cast<std::uint64_t>(elem_bytes) !=
          bytes) {
    throw StoreError("run store " + db_.path + ": " + std::string(what_) + ": column " +
                     sqlite3_column_name(stmt_, col) + " holds " + std::to_string(bytes) +
                     " bytes, not " + std::to_string(elem_bytes) + " x " + std::to_string(rows) +
                     " x " + std::to_string(cols) + " (the database is corrupt)");
  }
  // The size is checked above; the reader copies (the blob need not be aligned).
  common::ByteReader in({static_cast<const std::uint8_t*>(blob), static_cast<std::size_t>(bytes)});
  if (elem_bytes == 4) {
    RowMajorMatrixF f(rows, cols);
    in.array(std::span<float>(f.data(), static_cast<std::size_t>(f.size())));
    return f.cast<double>();
  }
  RowMajorMatrix m(rows, cols);
  in.array(std::span<double>(m.data(), static_cast<std::size_t>(m.size())));
  return m;
}

FileLock::FileLock(const std::string& db_path) {
  // Resolved, so that a symlink and its target share one lock.
  std::error_code ignored;
  const fs::path resolved = fs::weakly_canonical(db_path, ignored);
  const std::string path = (resolved.empty() ? db_path : resolved.string()) + ".lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    const int err = errno;
    throw StoreError("run store " + db_path + ": cannot open the lock file " + path + ": " +
                         errno_text(err) +
                         (err == ENOENT ? " (the parent directory must exist)" : ""),
                     err == ENOSPC);
  }
  int rc = 0;
  while ((rc = ::flock(fd_, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {
  }
  if (rc != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK) {
      throw StoreError("run store " + db_path +
                       ": already open in another RunStore (is another pnnd using this file?); "
                       "only one store may own a database file at a time (lock file " +
                       path + ")");
    }
    throw StoreError("run store " + db_path + ": cannot lock " + path + ": " + errno_text(err));
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // also releases the flock
}

std::int64_t pragma_int(const Db& db, const std::string& pragma) {
  const std::string sql = "PRAGMA " + pragma;
  const std::string what = "reading PRAGMA " + pragma;
  Stmt stmt(db, sql);
  Query q(db, stmt, what);
  if (!q.step()) db.fail(what, SQLITE_ERROR, sql.c_str());
  return q.int_at(0);
}

std::string pragma_text(const Db& db, const std::string& pragma) {
  const std::string sql = "PRAGMA " + pragma;
  const std::string what = "setting PRAGMA " + pragma;
  Stmt stmt(db, sql);
  Query q(db, stmt, what);
  if (!q.step()) return "";
  return q.text_at(0);
}

}  // namespace pnn::daemon::sqlite
