#pragma once
// The SQLite C API in the few shapes the run store needs (private to daemon/src): a connection
// whose errors name the file, statements prepared once, one execution of a statement that resets
// it afterwards, BEGIN IMMEDIATE transactions, the lock file, and the BLOB codec of the float
// arrays. Every failure throws StoreError. Not thread-safe: the store serialises all use.
#include <sqlite3.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pnn/daemon/run_store.hpp"

namespace pnn::daemon::sqlite {

using RowMajorMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMajorMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// The row-major little-endian float32 bytes of `m` appended to `bytes` (both buffers reused
// between calls). The cast rounds to nearest, keeps ±∞ and NaN, and overflows to ±∞: the conversion
// to_tensor applies to a Forward reply (protocol.cpp), so a recorded y is exactly what the client
// received. Query::doubles_at reads them back.
void encode_matrix_f32(const Matrix& m, std::vector<float>& scratch,
                       std::vector<std::uint8_t>& bytes);
// The little-endian float64 bytes of `v` appended to `bytes` (reused between calls).
void encode_vector(const Vector& v, std::vector<std::uint8_t>& bytes);

// ---- SQLite handles ----------------------------------------------------------------------------

struct DbCloser {
  // close_v2: if a statement were still alive the close is deferred, never refused.
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const noexcept { sqlite3_finalize(stmt); }
};
using DbHandle = std::unique_ptr<sqlite3, DbCloser>;
using StmtHandle = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// The connection plus the path, so that every error names the file.
struct Db {
  std::string path;
  DbHandle handle;

  sqlite3* get() const { return handle.get(); }

  [[noreturn]] void fail(std::string_view what, int rc, const char* sql = nullptr) const;

  // Runs one or more statements that return no rows the caller needs.
  void exec(const char* sql, std::string_view what) const {
    const int rc = sqlite3_exec(handle.get(), sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) fail(what, rc, sql);
  }
};

// A statement prepared once and reused for the lifetime of the store.
class Stmt {
 public:
  Stmt() = default;
  Stmt(const Db& db, const std::string& sql) {
    sqlite3_stmt* raw = nullptr;
    const int rc = sqlite3_prepare_v3(db.get(), sql.c_str(), static_cast<int>(sql.size() + 1),
                                      SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    handle_.reset(raw);
    if (rc != SQLITE_OK) db.fail("preparing a statement", rc, sql.c_str());
  }
  sqlite3_stmt* get() const { return handle_.get(); }

 private:
  StmtHandle handle_;
};

// One execution of a prepared statement. The destructor resets it, so that no statement keeps a
// read transaction open (which would stop WAL checkpoints) and bound buffers are released.
class Query {
 public:
  Query(const Db& db, const Stmt& stmt, std::string_view what)
      : db_(db), stmt_(stmt.get()), what_(what) {}
  ~Query() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  Query& bind_int(int index, std::int64_t value) {
    return check_bind(sqlite3_bind_int64(stmt_, index, value));
  }
  Query& bind_uint(int index, std::uint64_t value) {
    // Two's complement: values >= 2^63 read as negative in SQL, and back exactly here.
    return bind_int(index, static_cast<std::int64_t>(value));
  }
  Query& bind_real(int index, double value) {
    if (std::isnan(value)) return check_bind(sqlite3_bind_null(stmt_, index));
    return check_bind(sqlite3_bind_double(stmt_, index, value));
  }
  Query& bind_text(int index, std::string_view text) {
    return check_bind(
        sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  // `bytes` must stay alive and unchanged until this Query is destroyed (SQLITE_STATIC).
  Query& bind_blob(int index, const std::vector<std::uint8_t>& bytes) {
    if (bytes.empty()) return check_bind(sqlite3_bind_zeroblob(stmt_, index, 0));
    return check_bind(
        sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_STATIC));
  }

  Query& bind_bytes(int index, std::string_view bytes) {
    return check_bind(sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_TRANSIENT));
  }

  // True when a row is available, false when the statement has finished.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    db_.fail(what_, rc, sqlite3_sql(stmt_));
  }
  void run() {
    if (step()) db_.fail(what_, SQLITE_MISUSE, sqlite3_sql(stmt_));
  }

  std::int64_t int_at(int col) const { return sqlite3_column_int64(stmt_, col); }
  bool null_at(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  double real_at(int col) const {
    if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) {
      return std::numeric_limits<double>::quiet_NaN();
    }
    return sqlite3_column_double(stmt_, col);
  }
  std::string text_at(int col) const {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    const int bytes = sqlite3_column_bytes(stmt_, col);
    return text == nullptr ? std::string() : std::string(text, static_cast<std::size_t>(bytes));
  }
  std::string bytes_at(int col) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
    const int n = sqlite3_column_bytes(stmt_, col);
    return p == nullptr ? std::string() : std::string(p, static_cast<std::size_t>(n));
  }
  // An array of `rows` x `cols` (row-major) from a BLOB column of little-endian float64
  // (`elem_bytes` 8) or float32 (4) values, as doubles.
  RowMajorMatrix doubles_at(int col, std::int64_t rows, std::int64_t cols,
                            std::int64_t elem_bytes = 8) const;

 private:
  Query& check_bind(int rc) {
    if (rc != SQLITE_OK) db_.fail(what_, rc, sqlite3_sql(stmt_));
    return *this;
  }

  const Db& db_;
  sqlite3_stmt* stmt_;
  std::string_view what_;
};

// An advisory exclusive lock (flock) on `<path>.lock`, held while the store is open. It makes
// "RUNNING at open means the previous owner died" true: a second daemon on the same file is
// refused instead of aborting the first one's runs. The kernel drops the lock when the process
// dies, kill -9 included. A separate file, not the database itself: closing any descriptor of the
// database file drops every POSIX lock the process holds on it, SQLite's included, and a refused
// second store in the same process would have to close the descriptor it opened.
class FileLock {
 public:
  explicit FileLock(const std::string& db_path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

// The statements of a transaction, prepared once.
struct TxStmts {
  Stmt begin, commit, rollback;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back unless committed. IMMEDIATE takes the write lock up
// front, so the transaction cannot fail half-way with SQLITE_BUSY on its first write.
class Transaction {
 public:
  Transaction(const Db& db, const TxStmts& stmts, std::string_view what) : db_(db), stmts_(stmts) {
    Query(db, stmts.begin, what).run();
  }
  void commit(std::string_view what) {
    Query(db_, stmts_.commit, what).run();
    committed_ = true;
  }
  ~Transaction() {
    // After a failed COMMIT SQLite may already have rolled back; only roll back what is open.
    if (!committed_ && sqlite3_get_autocommit(db_.get()) == 0) {
      sqlite3_step(stmts_.rollback.get());
      sqlite3_reset(stmts_.rollback.get());
    }
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

 private:
  const Db& db_;
  const TxStmts& stmts_;
  bool committed_ = false;
};

// The integer a PRAGMA reports.
std::int64_t pragma_int(const Db& db, const std::string& pragma);
// The first column of the first row of a PRAGMA that sets and reports a value ("" if no row).
std::string pragma_text(const Db& db, const std::string& pragma);

}  // namespace pnn::daemon::sqlite
