// The run store over the SQLite C API. Schema, durability argument and recovery are described in
// docs/run-store.md; the contract is in run_store.hpp.
#include "pnn/daemon/run_store.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include "pnn/common/bytes.hpp"

namespace pnn::daemon {
namespace {

namespace fs = std::filesystem;

constexpr int kSchemaVersion = 3;
// "PNNR" in the header's application_id field tells a run store apart from any other SQLite file
// (file(1) prints it as well).
constexpr int kApplicationId = 0x504E4E52;
constexpr int kBusyTimeoutMs = 5000;
// Once a checkpoint has copied the WAL into the database, truncate the WAL to this size, so that
// a burst of forward records does not leave a huge WAL file behind.
constexpr int kJournalSizeLimitBytes = 64 << 20;

constexpr const char* kAbortedMessage =
    "aborted: the run was still RUNNING when the run store was opened again (the previous daemon "
    "ended without finishing it); resumable from its last checkpoint";

// Version 3, without forward_records (forward_records_sql, which the migration from version 1
// also uses). The numeric run states are RunState's values (those of proto/pnn.proto). `owner`
// is the last column of runs, where the migration from version 2 (ALTER TABLE ADD COLUMN) puts it.
constexpr const char* kSchemaSql = R"sql(
CREATE TABLE runs (
  run_id          INTEGER PRIMARY KEY AUTOINCREMENT,
  name            TEXT    NOT NULL,
  config_yaml     TEXT    NOT NULL,
  state           INTEGER NOT NULL CHECK (state IN (2, 3, 4, 5, 6)),
  started_ns      INTEGER NOT NULL,
  finished_ns     INTEGER NOT NULL DEFAULT 0,
  epochs_done     INTEGER NOT NULL DEFAULT 0,
  checkpoint_path TEXT    NOT NULL DEFAULT '',
  summary_json    TEXT    NOT NULL DEFAULT '',
  message         TEXT    NOT NULL DEFAULT '',
  owner           TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX runs_by_state ON runs (state);

CREATE TABLE run_devices (
  run_id        INTEGER NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
  position      INTEGER NOT NULL,
  device_serial TEXT    NOT NULL,
  PRIMARY KEY (run_id, position)
) WITHOUT ROWID;
CREATE INDEX run_devices_by_serial ON run_devices (device_serial);

-- The four values have no declared type on purpose: REAL affinity would store -0.0 as the
-- integer 0. NaN is stored as NULL (SQLite has no NaN) and read back as a quiet NaN.
CREATE TABLE metrics (
  metric_id      INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id         INTEGER NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
  phase          TEXT    NOT NULL,
  epoch          INTEGER NOT NULL,
  train_loss,
  train_accuracy,
  test_accuracy,
  seconds
);
CREATE INDEX metrics_by_run ON metrics (run_id, metric_id);
-- One metric per (run, phase, epoch): add_metric replaces (INSERT OR REPLACE).
CREATE UNIQUE INDEX metrics_by_key ON metrics (run_id, phase, epoch);

CREATE TABLE calibrations (
  calibration_id INTEGER PRIMARY KEY AUTOINCREMENT,
  device_serial  TEXT    NOT NULL,
  phi_size       INTEGER NOT NULL CHECK (phi_size >= 0),
  phi            BLOB    NOT NULL CHECK (length(phi) = 8 * phi_size),
  mse_before,
  mse_after,
  created_ns     INTEGER NOT NULL
);
CREATE INDEX calibrations_by_device ON calibrations (device_serial, calibration_id);
)sql";

// Named counters that must survive restarts ('job_id': the last job id handed out). New in
// version 3; the schema of a new file and the migration from version 2 both create it.
constexpr const char* kCountersSql = R"sql(
CREATE TABLE counters (
  name  TEXT    PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

// The forward_records table of version 2, named `table`. x and y are little-endian IEEE-754
// values of elem_bytes bytes each (4: float32, what this build writes; 8: float64, rows migrated
// from version 1), theta is always float64; matrices row-major (one sample per row).
std::string forward_records_sql(std::string_view table) {
  return "CREATE TABLE " + std::string(table) + R"sql( (
  record_id     INTEGER PRIMARY KEY AUTOINCREMENT,
  client_id     TEXT    NOT NULL,
  request_id    INTEGER NOT NULL,
  device_serial TEXT    NOT NULL,
  t_start_ns    INTEGER NOT NULL,
  t_end_ns      INTEGER NOT NULL,
  elem_bytes    INTEGER NOT NULL CHECK (elem_bytes IN (4, 8)),
  x_rows        INTEGER NOT NULL CHECK (x_rows >= 0),
  x_cols        INTEGER NOT NULL CHECK (x_cols >= 0),
  x             BLOB    NOT NULL CHECK (length(x) = elem_bytes * x_rows * x_cols),
  theta_size    INTEGER NOT NULL CHECK (theta_size >= 0),
  theta         BLOB    NOT NULL CHECK (length(theta) = 8 * theta_size),
  y_rows        INTEGER NOT NULL CHECK (y_rows >= 0),
  y_cols        INTEGER NOT NULL CHECK (y_cols >= 0),
  y             BLOB    NOT NULL CHECK (length(y) = elem_bytes * y_rows * y_cols)
);
)sql";
}

// Version 1 -> 2: forward_records gains elem_bytes; the version-1 rows keep their float64 bytes
// (elem_bytes 8), so the migration is lossless. ALTER TABLE cannot change the CHECKs on the
// lengths of x and y, hence the rebuild (SQLite's documented "create, copy, drop, rename"
// procedure); only SQL runs, the BLOBs are copied as they are. AUTOINCREMENT: the copy sets the new table's sqlite_sequence to the
// highest copied id, which is below the old sequence when the newest rows had been deleted; the
// old value is carried over before DROP TABLE deletes it, so that ids are never reused. RENAME
// renames the sequence row along with the table. Run inside the caller's transaction.
std::string migration_1_to_2_sql() {
  constexpr const char* kColumns =
      "record_id, client_id, request_id, device_serial, t_start_ns, t_end_ns, x_rows, x_cols, x, "
      "theta_size, theta, y_rows, y_cols, y";
  return forward_records_sql("forward_records_v2") +
         "INSERT INTO forward_records_v2 (" + kColumns + ", elem_bytes) SELECT " + kColumns +
         ", 8 FROM forward_records ORDER BY record_id;\n"
         "UPDATE sqlite_sequence SET seq = max(seq, (SELECT seq FROM sqlite_sequence WHERE name = "
         "'forward_records')) WHERE name = 'forward_records_v2' AND EXISTS (SELECT 1 FROM "
         "sqlite_sequence WHERE name = 'forward_records');\n"
         "INSERT INTO sqlite_sequence (name, seq) SELECT 'forward_records_v2', seq FROM "
         "sqlite_sequence WHERE name = 'forward_records' AND NOT EXISTS (SELECT 1 FROM "
         "sqlite_sequence WHERE name = 'forward_records_v2');\n"
         "DROP TABLE forward_records;\n"
         "ALTER TABLE forward_records_v2 RENAME TO forward_records;\n";
}

// Version 2 -> 3: metrics become one row per (run_id, phase, epoch): of each key the last
// written row (highest metric_id) is kept and the others are deleted, then the UNIQUE index makes
// add_metric's INSERT OR REPLACE idempotent; runs gain `owner` ('' for the old rows); the counters
// table (the persistent job id) is created empty. Pure SQL, run inside the caller's transaction.
std::string migration_2_to_3_sql() {
  return std::string(R"sql(
DELETE FROM metrics WHERE metric_id NOT IN
  (SELECT max(metric_id) FROM metrics GROUP BY run_id, phase, epoch);
CREATE UNIQUE INDEX metrics_by_key ON metrics (run_id, phase, epoch);
ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
)sql") + kCountersSql;
}

constexpr const char* kRunColumns =
    "run_id, name, config_yaml, state, started_ns, finished_ns, epochs_done, checkpoint_path, "
    "summary_json, message, owner";

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

// ---- BLOBs: little-endian float32 and float64 arrays ---------------------------------------------

using RowMajorMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMajorMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// The row-major little-endian float32 bytes of `m` in `bytes` (both buffers reused between
// calls). The cast rounds to nearest, keeps ±∞ and NaN, and overflows to ±∞: the conversion
// to_tensor applies to a Forward reply (protocol.cpp), so a recorded y is exactly what the client
// received.
void encode_matrix_f32(const Matrix& m, std::vector<float>& scratch,
                       std::vector<std::uint8_t>& bytes) {
  scratch.resize(static_cast<std::size_t>(m.size()));
  Eigen::Map<RowMajorMatrixF>(scratch.data(), m.rows(), m.cols()) = m.cast<float>();
  bytes.clear();
  common::ByteWriter w(bytes);
  w.f32_array(scratch);
}

// The little-endian float64 bytes of `v` in `bytes` (reused between calls).
void encode_vector(const Vector& v, std::vector<std::uint8_t>& bytes) {
  bytes.clear();
  common::ByteWriter w(bytes);
  w.f64_array({v.data(), static_cast<std::size_t>(v.size())});
}

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

  [[noreturn]] void fail(std::string_view what, int rc, const char* sql = nullptr) const {
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
  // An array of `rows` x `cols` (row-major) from a BLOB column of little-endian float64
  // (`elem_bytes` 8) or float32 (4) values, as doubles.
  RowMajorMatrix doubles_at(int col, std::int64_t rows, std::int64_t cols,
                            std::int64_t elem_bytes = 8) const {
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
  explicit FileLock(const std::string& db_path) {
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
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // also releases the flock
  }
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

std::int64_t pragma_int(const Db& db, const std::string& pragma) {
  const std::string sql = "PRAGMA " + pragma;
  const std::string what = "reading PRAGMA " + pragma;
  Stmt stmt(db, sql);
  Query q(db, stmt, what);
  if (!q.step()) db.fail(what, SQLITE_ERROR, sql.c_str());
  return q.int_at(0);
}

// The first column of the first row of a PRAGMA that sets and reports a value ("" if no row).
std::string pragma_text(const Db& db, const std::string& pragma) {
  const std::string sql = "PRAGMA " + pragma;
  const std::string what = "setting PRAGMA " + pragma;
  Stmt stmt(db, sql);
  Query q(db, stmt, what);
  if (!q.step()) return "";
  return q.text_at(0);
}

RunState run_state_from_int(const Db& db, std::int64_t value) {
  if (value < static_cast<int>(RunState::kRunning) ||
      value > static_cast<int>(RunState::kAborted)) {
    throw StoreError("run store " + db.path + ": a run has state " + std::to_string(value) +
                     ", which is not a RunState (the database is corrupt)");
  }
  return static_cast<RunState>(value);
}

}  // namespace

// Member order matters for destruction: statements are finalized first, then the connection is
// closed (which checkpoints the WAL into the database and deletes it), then the lock is released.
struct RunStore::Impl {
  explicit Impl(const std::string& path);

  // Marks RUNNING runs ABORTED in one transaction; returns their ids.
  std::vector<std::uint64_t> abort_running_runs();
  RunRecord read_run(const Query& q);
  void read_devices(RunRecord& run);
  void check_changed(std::string_view what, std::uint64_t run_id) const;
  // One forward_records row (inside the caller's transaction, if any); returns its record_id.
  std::uint64_t insert_forward_row(const ForwardRecord& record);
  // What prune_forwards deleted.
  struct Pruned {
    std::uint64_t records = 0, bytes = 0;
    std::uint64_t oldest_left = 0;  // the oldest record still held (when records > 0)
  };
  // Inside the caller's transaction, after its inserts: while the records' bytes (`total`)
  // exceed the retention limit, deletes the oldest, never `newest`, down to 90 % of it.
  Pruned prune_forwards(std::uint64_t total, std::uint64_t newest);
  // The rows in one transaction with the retention check (one fsync); their record_ids.
  // forward_stats follows once the transaction has committed.
  std::vector<std::uint64_t> write_forwards(std::span<const ForwardRecord> records);

  // Retention (forward_retention): the records' BLOB bytes and the limit (0 = none).
  std::atomic<std::uint64_t> forward_max_bytes{0};  // set without the mutex (pnnd's SIGHUP)
  ForwardStats forward_stats;

  FileLock lock;
  Db db;
  mutable std::mutex mutex;
  // Scratch buffers for forward-record BLOBs, reused so that record_forward does not allocate.
  std::vector<float> f32_scratch;
  std::vector<std::uint8_t> x_bytes, y_bytes, theta_bytes;

  TxStmts tx;
  Stmt insert_run, insert_run_device, reopen_run, insert_metric, set_checkpoint, finish_run;
  Stmt next_job_id;
  Stmt select_run, select_runs, select_devices, select_metrics;
  Stmt insert_forward, select_forward, insert_calibration, select_latest_calibration;
  Stmt select_oldest_forwards, delete_forwards_upto, select_oldest_forward_id;
  Stmt integrity_check;
};

RunStore::Impl::Impl(const std::string& path) : lock(path), db{path, nullptr} {
  sqlite3* raw = nullptr;
  const int open_rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  db.handle.reset(raw);  // closed even when the open failed
  if (open_rc != SQLITE_OK) db.fail("opening the database", open_rc);
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);

  // Identify the file before writing anything to it: a foreign or newer file is left untouched.
  const std::int64_t application_id = pragma_int(db, "application_id");
  const std::int64_t version = pragma_int(db, "user_version");
  if (application_id != 0 && application_id != kApplicationId) {
    throw StoreError("run store " + path +
                     ": the file is an SQLite database of another application (application_id " +
                     std::to_string(application_id) +
                     "), not a pnn run store; configure another "
                     "path");
  }
  if (application_id == kApplicationId && version > kSchemaVersion) {
    throw StoreError("run store " + path + ": schema version " + std::to_string(version) +
                     " is newer than the versions this pnnd supports (1 to " +
                     std::to_string(kSchemaVersion) +
                     "); upgrade pnnd or configure another run store path");
  }
  if (application_id == 0) {
    Stmt count(db, "SELECT count(*) FROM sqlite_schema");
    Query q(db, count, "reading the schema");
    const bool empty = q.step() && q.int_at(0) == 0;
    if (!empty || version != 0) {
      throw StoreError("run store " + path +
                       ": the file is an SQLite database but not a pnn run store (it has tables "
                       "or a user_version, and no run-store application_id); configure another "
                       "path");
    }
  }

  // WAL needs shared memory that network file systems do not provide; SQLite then silently keeps
  // the old journal mode, which we refuse rather than run with weaker guarantees.
  const std::string mode = pragma_text(db, "journal_mode = WAL");
  if (mode != "wal") {
    throw StoreError("run store " + path + ": cannot switch to WAL mode (journal_mode is '" + mode +
                     "'); the run store must be on a local disk");
  }
  // FULL: in WAL mode, NORMAL may lose the last commits on power loss; FULL syncs the WAL at every
  // commit, which is what "acknowledged" promises.
  db.exec("PRAGMA synchronous = FULL", "setting synchronous = FULL");
  db.exec("PRAGMA foreign_keys = ON", "enabling foreign keys");
  db.exec(("PRAGMA journal_size_limit = " + std::to_string(kJournalSizeLimitBytes)).c_str(),
          "setting journal_size_limit");

  tx.begin = Stmt(db, "BEGIN IMMEDIATE");
  tx.commit = Stmt(db, "COMMIT");
  tx.rollback = Stmt(db, "ROLLBACK");

  if (version == 0) {
    Transaction schema_tx(db, tx, "creating the schema");
    db.exec(kSchemaSql, "creating the schema");
    db.exec(forward_records_sql("forward_records").c_str(), "creating the schema");
    db.exec(kCountersSql, "creating the schema");
    db.exec(("PRAGMA application_id = " + std::to_string(kApplicationId)).c_str(),
            "setting application_id");
    db.exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str(),
            "setting user_version");
    schema_tx.commit("creating the schema");
  }
  // Older versions are migrated one step per transaction: a crash in a step leaves the file at
  // the version before it, and the next open runs the step again.
  const auto migrate = [&](std::int64_t from, const std::string& sql) {
    const std::string what = "migrating the schema from version " + std::to_string(from) +
                             " to " + std::to_string(from + 1);
    try {
      Transaction migration_tx(db, tx, what);
      db.exec(sql.c_str(), what);
      db.exec(("PRAGMA user_version = " + std::to_string(from + 1)).c_str(), what);
      migration_tx.commit(what);
    } catch (const StoreError& e) {
      throw StoreError(std::string(e.what()) +
                           "; the migration was rolled back and the file is left at version " +
                           std::to_string(from) +
                           ": check it with sqlite3 (PRAGMA integrity_check), or move it aside "
                           "and configure another run store path",
                       e.disk_full());
    }
  };
  if (version == 1) migrate(1, migration_1_to_2_sql());
  if (version == 1 || version == 2) migrate(2, migration_2_to_3_sql());

  insert_run = Stmt(db,
                    "INSERT INTO runs (name, config_yaml, state, started_ns, owner) VALUES (?1, "
                    "?2, 2, ?3, ?4)");
  insert_run_device =
      Stmt(db, "INSERT INTO run_devices (run_id, position, device_serial) VALUES (?1, ?2, ?3)");
  reopen_run = Stmt(db,
                    "UPDATE runs SET state = 2, finished_ns = 0, summary_json = '', message = '' "
                    "WHERE run_id = ?1");
  // OR REPLACE: on the UNIQUE (run_id, phase, epoch) the old row is deleted and the new one
  // inserted with a new metric_id, in one statement (one transaction).
  insert_metric = Stmt(db,
                       "INSERT OR REPLACE INTO metrics (run_id, phase, epoch, train_loss, "
                       "train_accuracy, test_accuracy, seconds) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                       "?7)");
  set_checkpoint =
      Stmt(db, "UPDATE runs SET checkpoint_path = ?2, epochs_done = ?3 WHERE run_id = ?1");
  finish_run = Stmt(db,
                    "UPDATE runs SET state = ?2, finished_ns = ?3, summary_json = ?4, message = ?5 "
                    "WHERE run_id = ?1");
  // One statement, so one transaction: the increment and the value read back commit together.
  next_job_id = Stmt(db,
                     "INSERT INTO counters (name, value) VALUES ('job_id', 1) ON CONFLICT (name) "
                     "DO UPDATE SET value = value + 1 RETURNING value");
  select_run = Stmt(db, std::string("SELECT ") + kRunColumns + " FROM runs WHERE run_id = ?1");
  select_runs =
      Stmt(db, std::string("SELECT ") + kRunColumns + " FROM runs ORDER BY run_id DESC LIMIT ?1");
  select_devices =
      Stmt(db, "SELECT device_serial FROM run_devices WHERE run_id = ?1 ORDER BY position");
  select_metrics = Stmt(db,
                        "SELECT phase, epoch, train_loss, train_accuracy, test_accuracy, seconds "
                        "FROM metrics WHERE run_id = ?1 ORDER BY metric_id");
  insert_forward =
      Stmt(db,
           "INSERT INTO forward_records (client_id, request_id, device_serial, "
           "t_start_ns, t_end_ns, x_rows, x_cols, x, theta_size, theta, y_rows, "
           "y_cols, y, elem_bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
           "?13, 4)");
  select_forward = Stmt(db,
                        "SELECT record_id, client_id, request_id, device_serial, t_start_ns, "
                        "t_end_ns, x_rows, x_cols, x, theta_size, theta, y_rows, y_cols, y, "
                        "elem_bytes FROM forward_records WHERE record_id = ?1");
  insert_calibration = Stmt(db,
                            "INSERT INTO calibrations (device_serial, phi_size, phi, mse_before, "
                            "mse_after, created_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  select_latest_calibration =
      Stmt(db,
           "SELECT calibration_id, device_serial, phi_size, phi, mse_before, mse_after, created_ns "
           "FROM calibrations WHERE device_serial = ?1 ORDER BY calibration_id DESC LIMIT 1");
  select_oldest_forwards =
      Stmt(db, "SELECT record_id, length(x) + length(theta) + length(y) FROM forward_records "
               "ORDER BY record_id");
  delete_forwards_upto = Stmt(db, "DELETE FROM forward_records WHERE record_id <= ?1");
  select_oldest_forward_id = Stmt(db, "SELECT coalesce(min(record_id), 0) FROM forward_records");
  integrity_check = Stmt(db, "PRAGMA integrity_check");

  // length() of a BLOB reads the row header only, not the overflow pages: a scan of the table's
  // leaves, once per open.
  Stmt sizes(db,
             "SELECT count(*), coalesce(sum(length(x) + length(theta) + length(y)), 0), "
             "coalesce(min(record_id), 0), coalesce(max(record_id), 0) FROM forward_records");
  Query q(db, sizes, "sizing the forward records");
  if (q.step()) {
    forward_stats.records = static_cast<std::uint64_t>(q.int_at(0));
    forward_stats.bytes = static_cast<std::uint64_t>(q.int_at(1));
    forward_stats.oldest_record_id = static_cast<std::uint64_t>(q.int_at(2));
    forward_stats.newest_record_id = static_cast<std::uint64_t>(q.int_at(3));
  }
}

RunStore::Impl::Pruned RunStore::Impl::prune_forwards(std::uint64_t total, std::uint64_t newest) {
  constexpr std::string_view kWhat = "deleting the oldest forward records (retention)";
  const std::uint64_t max_bytes = forward_max_bytes.load();
  Pruned pruned;
  if (max_bytes == 0 || total <= max_bytes) return pruned;
  const std::uint64_t target = max_bytes - max_bytes / 10;
  std::uint64_t upto = 0;
  {
    Query q(db, select_oldest_forwards, kWhat);
    while (total - pruned.bytes > target && q.step()) {
      const auto id = static_cast<std::uint64_t>(q.int_at(0));
      if (id >= newest) break;  // the record just written stays, even if it alone is too big
      pruned.bytes += static_cast<std::uint64_t>(q.int_at(1));
      upto = id;
      ++pruned.records;
    }
  }
  if (pruned.records == 0) return pruned;
  Query(db, delete_forwards_upto, kWhat).bind_uint(1, upto).run();
  Query q(db, select_oldest_forward_id, kWhat);
  pruned.oldest_left = q.step() ? static_cast<std::uint64_t>(q.int_at(0)) : 0;
  return pruned;
}

std::vector<std::uint64_t> RunStore::Impl::abort_running_runs() {
  constexpr const char* kWhat = "marking RUNNING runs as ABORTED";
  std::vector<std::uint64_t> ids;
  Transaction transaction(db, tx, kWhat);
  {
    Stmt select(db, "SELECT run_id FROM runs WHERE state = 2 ORDER BY run_id");
    Query q(db, select, kWhat);
    while (q.step()) ids.push_back(static_cast<std::uint64_t>(q.int_at(0)));
  }
  if (!ids.empty()) {
    Stmt update(db, "UPDATE runs SET state = 6, finished_ns = ?1, message = ?2 WHERE state = 2");
    Query(db, update, kWhat).bind_int(1, now_ns()).bind_text(2, kAbortedMessage).run();
  }
  transaction.commit(kWhat);
  return ids;
}

RunRecord RunStore::Impl::read_run(const Query& q) {
  RunRecord run;
  run.run_id = static_cast<std::uint64_t>(q.int_at(0));
  run.name = q.text_at(1);
  run.config_yaml = q.text_at(2);
  run.state = run_state_from_int(db, q.int_at(3));
  run.started_ns = q.int_at(4);
  run.finished_ns = q.int_at(5);
  run.epochs_done = static_cast<int>(q.int_at(6));
  run.checkpoint_path = q.text_at(7);
  run.summary_json = q.text_at(8);
  run.message = q.text_at(9);
  run.owner = q.text_at(10);
  return run;
}

void RunStore::Impl::read_devices(RunRecord& run) {
  Query q(db, select_devices, "reading the devices of a run");
  q.bind_uint(1, run.run_id);
  while (q.step()) run.device_serials.push_back(q.text_at(0));
}

void RunStore::Impl::check_changed(std::string_view what, std::uint64_t run_id) const {
  if (sqlite3_changes(db.get()) == 0) {
    throw StoreError("run store " + db.path + ": " + std::string(what) + ": no run with id " +
                     std::to_string(run_id));
  }
}

RunStore::RunStore(const std::string& path) {
  auto impl = std::make_unique<Impl>(path);
  aborted_on_open_ = impl->abort_running_runs();
  impl_ = impl.release();
}

RunStore::~RunStore() { delete impl_; }

std::uint64_t RunStore::create_run(const std::string& name, const std::string& config_yaml,
                                   const std::vector<std::string>& device_serials,
                                   const std::string& owner) {
  constexpr const char* kWhat = "creating a run";
  std::lock_guard lock(impl_->mutex);
  Transaction transaction(impl_->db, impl_->tx, kWhat);
  Query(impl_->db, impl_->insert_run, kWhat)
      .bind_text(1, name)
      .bind_text(2, config_yaml)
      .bind_int(3, now_ns())
      .bind_text(4, owner)
      .run();
  const auto run_id = static_cast<std::uint64_t>(sqlite3_last_insert_rowid(impl_->db.get()));
  for (std::size_t i = 0; i < device_serials.size(); ++i) {
    Query(impl_->db, impl_->insert_run_device, kWhat)
        .bind_uint(1, run_id)
        .bind_int(2, static_cast<std::int64_t>(i))
        .bind_text(3, device_serials[i])
        .run();
  }
  transaction.commit(kWhat);
  return run_id;
}

void RunStore::reopen_run(std::uint64_t run_id) {
  constexpr const char* kWhat = "reopening a run";
  std::lock_guard lock(impl_->mutex);
  // A single statement in autocommit mode is its own transaction, committed (and, with
  // synchronous = FULL, synced) before sqlite3_step returns.
  Query(impl_->db, impl_->reopen_run, kWhat).bind_uint(1, run_id).run();
  impl_->check_changed(kWhat, run_id);
}

void RunStore::add_metric(std::uint64_t run_id, const MetricRecord& metric) {
  std::lock_guard lock(impl_->mutex);
  Query(impl_->db, impl_->insert_metric, "adding a metric (does the run exist?)")
      .bind_uint(1, run_id)
      .bind_text(2, metric.phase)
      .bind_int(3, metric.epoch)
      .bind_real(4, metric.train_loss)
      .bind_real(5, metric.train_accuracy)
      .bind_real(6, metric.test_accuracy)
      .bind_real(7, metric.seconds)
      .run();
}

void RunStore::set_checkpoint(std::uint64_t run_id, const std::string& path, int epochs_done) {
  constexpr const char* kWhat = "setting the checkpoint of a run";
  std::lock_guard lock(impl_->mutex);
  Query(impl_->db, impl_->set_checkpoint, kWhat)
      .bind_uint(1, run_id)
      .bind_text(2, path)
      .bind_int(3, epochs_done)
      .run();
  impl_->check_changed(kWhat, run_id);
}

void RunStore::finish_run(std::uint64_t run_id, RunState state, const std::string& summary_json,
                          const std::string& message) {
  constexpr const char* kWhat = "finishing a run";
  const int value = static_cast<int>(state);
  if (value <= static_cast<int>(RunState::kRunning) ||
      value > static_cast<int>(RunState::kAborted)) {
    throw std::invalid_argument("RunStore::finish_run: state " + std::to_string(value) +
                                " is not a final RunState (use SUCCEEDED, FAILED, CANCELLED or "
                                "ABORTED)");
  }
  std::lock_guard lock(impl_->mutex);
  Query(impl_->db, impl_->finish_run, kWhat)
      .bind_uint(1, run_id)
      .bind_int(2, value)
      .bind_int(3, now_ns())
      .bind_text(4, summary_json)
      .bind_text(5, message)
      .run();
  impl_->check_changed(kWhat, run_id);
}

std::optional<RunRecord> RunStore::get_run(std::uint64_t run_id) const {
  std::lock_guard lock(impl_->mutex);
  std::optional<RunRecord> run;
  {
    Query q(impl_->db, impl_->select_run, "reading a run");
    q.bind_uint(1, run_id);
    if (!q.step()) return std::nullopt;
    run = impl_->read_run(q);
  }
  impl_->read_devices(*run);
  return run;
}

std::vector<RunRecord> RunStore::list_runs(std::size_t limit) const {
  std::lock_guard lock(impl_->mutex);
  std::vector<RunRecord> runs;
  {
    Query q(impl_->db, impl_->select_runs, "listing runs");
    q.bind_int(1, static_cast<std::int64_t>(
                      std::min<std::size_t>(limit, std::numeric_limits<std::int64_t>::max())));
    while (q.step()) runs.push_back(impl_->read_run(q));
  }
  for (RunRecord& run : runs) impl_->read_devices(run);
  return runs;
}

std::vector<MetricRecord> RunStore::metrics(std::uint64_t run_id) const {
  std::lock_guard lock(impl_->mutex);
  std::vector<MetricRecord> out;
  Query q(impl_->db, impl_->select_metrics, "reading metrics");
  q.bind_uint(1, run_id);
  while (q.step()) {
    MetricRecord m;
    m.phase = q.text_at(0);
    m.epoch = static_cast<int>(q.int_at(1));
    m.train_loss = q.real_at(2);
    m.train_accuracy = q.real_at(3);
    m.test_accuracy = q.real_at(4);
    m.seconds = q.real_at(5);
    out.push_back(std::move(m));
  }
  return out;
}

std::uint64_t RunStore::allocate_job_id() {
  constexpr std::string_view kWhat = "allocating a job id";
  std::lock_guard lock(impl_->mutex);
  std::uint64_t id = 0;
  {
    Query q(impl_->db, impl_->next_job_id, kWhat);
    if (!q.step()) impl_->db.fail(kWhat, SQLITE_ERROR, sqlite3_sql(impl_->next_job_id.get()));
    id = static_cast<std::uint64_t>(q.int_at(0));
    // RETURNING: the statement commits when it has run to completion, not at its first row.
    if (q.step()) impl_->db.fail(kWhat, SQLITE_MISUSE, sqlite3_sql(impl_->next_job_id.get()));
  }
  return id;
}

std::uint64_t RunStore::Impl::insert_forward_row(const ForwardRecord& record) {
  encode_matrix_f32(record.x, f32_scratch, x_bytes);
  encode_vector(record.theta, theta_bytes);
  encode_matrix_f32(record.y, f32_scratch, y_bytes);
  Query(db, insert_forward, "recording a forward call")
      .bind_text(1, record.client_id)
      .bind_uint(2, record.request_id)
      .bind_text(3, record.device_serial)
      .bind_int(4, record.t_start_ns)
      .bind_int(5, record.t_end_ns)
      .bind_int(6, record.x.rows())
      .bind_int(7, record.x.cols())
      .bind_blob(8, x_bytes)
      .bind_int(9, record.theta.size())
      .bind_blob(10, theta_bytes)
      .bind_int(11, record.y.rows())
      .bind_int(12, record.y.cols())
      .bind_blob(13, y_bytes)
      .run();
  return static_cast<std::uint64_t>(sqlite3_last_insert_rowid(db.get()));
}

std::uint64_t RunStore::record_forward(const ForwardRecord& record) {
  std::lock_guard lock(impl_->mutex);
  return impl_->write_forwards(std::span<const ForwardRecord>(&record, 1)).front();
}

std::vector<std::uint64_t> RunStore::record_forwards(const std::vector<ForwardRecord>& records) {
  if (records.empty()) return {};
  std::lock_guard lock(impl_->mutex);
  return impl_->write_forwards(records);
}

std::vector<std::uint64_t> RunStore::Impl::write_forwards(std::span<const ForwardRecord> records) {
  constexpr std::string_view kWhat = "recording forward calls";
  std::vector<std::uint64_t> ids;
  ids.reserve(records.size());
  std::uint64_t added = 0;  // BLOB bytes: float32 x and y, float64 θ
  Pruned pruned;
  {
    Transaction transaction(db, tx, kWhat);
    for (const auto& record : records) {
      ids.push_back(insert_forward_row(record));
      added += static_cast<std::uint64_t>(record.x.size() + record.y.size()) * sizeof(float) +
               static_cast<std::uint64_t>(record.theta.size()) * sizeof(double);
    }
    pruned = prune_forwards(forward_stats.bytes + added, ids.back());
    transaction.commit(kWhat);
  }
  // Committed (a throw above rolled back and left the counters as they were).
  ForwardStats& f = forward_stats;
  f.bytes = f.bytes + added - pruned.bytes;
  f.records = f.records + ids.size() - pruned.records;
  f.pruned += pruned.records;
  f.newest_record_id = ids.back();
  if (f.oldest_record_id == 0) f.oldest_record_id = ids.front();
  if (pruned.records > 0) f.oldest_record_id = pruned.oldest_left;
  return ids;
}

std::optional<ForwardRecord> RunStore::get_forward(std::uint64_t record_id) const {
  std::lock_guard lock(impl_->mutex);
  Query q(impl_->db, impl_->select_forward, "reading a forward record");
  q.bind_uint(1, record_id);
  if (!q.step()) return std::nullopt;
  ForwardRecord r;
  r.record_id = static_cast<std::uint64_t>(q.int_at(0));
  r.client_id = q.text_at(1);
  r.request_id = static_cast<std::uint64_t>(q.int_at(2));
  r.device_serial = q.text_at(3);
  r.t_start_ns = q.int_at(4);
  r.t_end_ns = q.int_at(5);
  const std::int64_t elem_bytes = q.int_at(14);
  r.x = q.doubles_at(8, q.int_at(6), q.int_at(7), elem_bytes);
  r.theta = q.doubles_at(10, q.int_at(9), 1);
  r.y = q.doubles_at(13, q.int_at(11), q.int_at(12), elem_bytes);
  return r;
}

std::uint64_t RunStore::add_calibration(const CalibrationRecord& record) {
  std::lock_guard lock(impl_->mutex);
  encode_vector(record.phi, impl_->theta_bytes);
  Query(impl_->db, impl_->insert_calibration, "adding a calibration")
      .bind_text(1, record.device_serial)
      .bind_int(2, record.phi.size())
      .bind_blob(3, impl_->theta_bytes)
      .bind_real(4, record.mse_before)
      .bind_real(5, record.mse_after)
      .bind_int(6, record.created_ns != 0 ? record.created_ns : now_ns())
      .run();
  return static_cast<std::uint64_t>(sqlite3_last_insert_rowid(impl_->db.get()));
}

std::optional<CalibrationRecord> RunStore::latest_calibration(
    const std::string& device_serial) const {
  std::lock_guard lock(impl_->mutex);
  Query q(impl_->db, impl_->select_latest_calibration, "reading the latest calibration");
  q.bind_text(1, device_serial);
  if (!q.step()) return std::nullopt;
  CalibrationRecord c;
  c.calibration_id = static_cast<std::uint64_t>(q.int_at(0));
  c.device_serial = q.text_at(1);
  c.phi = q.doubles_at(3, q.int_at(2), 1);
  c.mse_before = q.real_at(4);
  c.mse_after = q.real_at(5);
  c.created_ns = q.int_at(6);
  return c;
}

void RunStore::set_forward_retention(std::uint64_t max_bytes) {
  impl_->forward_max_bytes.store(max_bytes);  // the next write applies it
}

ForwardStats RunStore::forward_stats() const {
  std::lock_guard lock(impl_->mutex);
  ForwardStats f = impl_->forward_stats;
  f.max_bytes = impl_->forward_max_bytes.load();
  return f;
}

void RunStore::set_max_page_count_for_testing(std::uint64_t pages) {
  std::lock_guard lock(impl_->mutex);
  // PRAGMA takes no bound parameters; the value is a number, so the text is safe.
  impl_->db.exec(("PRAGMA max_page_count = " + std::to_string(pages)).c_str(),
                 "setting max_page_count (tests)");
}

bool RunStore::integrity_ok() const {
  std::lock_guard lock(impl_->mutex);
  Query q(impl_->db, impl_->integrity_check, "checking integrity");
  std::vector<std::string> rows;
  while (q.step()) rows.push_back(q.text_at(0));
  return rows.size() == 1 && rows[0] == "ok";
}

}  // namespace pnn::daemon
