// Creating and migrating the run store's schema; run_store_schema.hpp has the contract.
#include "run_store_schema.hpp"

#include <string>

namespace pnn::daemon::sqlite {
namespace {

// "PNNR" in the header's application_id field tells a run store apart from any other SQLite file
// (file(1) prints it as well).
constexpr int kApplicationId = 0x504E4E52;
// Once a checkpoint has copied the WAL into the database, truncate the WAL to this size, so that
// a burst of forward records does not leave a huge WAL file behind.
constexpr int kJournalSizeLimitBytes = 64 << 20;

// Version 3, without forward_records (a new file gets forward_records_v5_sql; the migration from
// version 1 builds the version-2 table, forward_records_sql). The numeric run states are RunState's values (those of proto/pnn.proto). `owner`
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

// Learned twins (issue 13): the twin's bytes (training::encode_twin: versioned, CRC-protected),
// its report card as JSON, the serial of the device it was fitted on and the hash of its data;
// active_twins holds the twin each device uses (twin_id 0: its datasheet or calibrated twin), so
// that a restarted daemon keeps it. New in version 4; a new file and the migration from version 3
// both create them.
constexpr const char* kTwinsSql = R"sql(
CREATE TABLE twins (
  twin_id       INTEGER PRIMARY KEY AUTOINCREMENT,
  device_serial TEXT    NOT NULL,
  device_kind   TEXT    NOT NULL,
  family        TEXT    NOT NULL,
  data_hash     TEXT    NOT NULL,
  report_json   TEXT    NOT NULL,
  model         BLOB    NOT NULL,
  created_ns    INTEGER NOT NULL
);
CREATE INDEX twins_by_device ON twins (device_serial, twin_id);
CREATE TABLE active_twins (
  device_serial TEXT    PRIMARY KEY,
  twin_id       INTEGER NOT NULL CHECK (twin_id >= 0),
  set_ns        INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

// The forward_records table of versions 2 to 4, named `table`. x and y are little-endian IEEE-754
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

// Version 5: forward_records is the index of the arrays, which are in segment files
// (segment_log.hpp): segment_id, seg_offset (the frame's offset in the file), seg_length (payload
// bytes: float32 x, float64 θ, float32 y) and crc (CRC-32C of the payload). A row with segment_id
// NULL keeps its arrays in the BLOB columns: rows migrated from version 4 (elem_bytes 4, or 8 for
// rows that came from version 1), read as they were. length() of NULL is NULL, which a CHECK
// lets pass, hence the explicit IS NOT NULL.
std::string forward_records_v5_sql(std::string_view table) {
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
  theta_size    INTEGER NOT NULL CHECK (theta_size >= 0),
  y_rows        INTEGER NOT NULL CHECK (y_rows >= 0),
  y_cols        INTEGER NOT NULL CHECK (y_cols >= 0),
  segment_id    INTEGER CHECK (segment_id >= 1),
  seg_offset    INTEGER,
  seg_length    INTEGER,
  crc           INTEGER,
  x             BLOB,
  theta         BLOB,
  y             BLOB,
  CHECK (CASE WHEN segment_id IS NULL THEN
      x IS NOT NULL AND theta IS NOT NULL AND y IS NOT NULL AND
      length(x) = elem_bytes * x_rows * x_cols AND length(theta) = 8 * theta_size AND
      length(y) = elem_bytes * y_rows * y_cols
    ELSE
      x IS NULL AND theta IS NULL AND y IS NULL AND elem_bytes = 4 AND
      seg_offset IS NOT NULL AND seg_offset >= 16 AND crc IS NOT NULL AND
      crc BETWEEN 0 AND 4294967295 AND
      seg_length = 4 * (x_rows * x_cols + y_rows * y_cols) + 8 * theta_size
    END)
);
)sql";
}

// forward_records rebuilt as `new_table_sql` (which creates forward_records_new) with `columns`
// copied (SQLite's documented "create, copy, drop, rename" procedure; only SQL runs, BLOBs are
// copied as they are). AUTOINCREMENT: the copy sets the new table's sqlite_sequence to the
// highest copied id, which is below the old sequence when the newest rows had been deleted; the
// old value is carried over before DROP TABLE deletes it, so that ids are never reused. RENAME
// renames the sequence row along with the table. Run inside the caller's transaction.
std::string rebuild_forward_records_sql(const std::string& new_table_sql, std::string_view columns,
                                        std::string_view select) {
  return new_table_sql + "INSERT INTO forward_records_new (" + std::string(columns) +
         ") SELECT " + std::string(select) + " FROM forward_records ORDER BY record_id;\n"
         "UPDATE sqlite_sequence SET seq = max(seq, (SELECT seq FROM sqlite_sequence WHERE name = "
         "'forward_records')) WHERE name = 'forward_records_new' AND EXISTS (SELECT 1 FROM "
         "sqlite_sequence WHERE name = 'forward_records');\n"
         "INSERT INTO sqlite_sequence (name, seq) SELECT 'forward_records_new', seq FROM "
         "sqlite_sequence WHERE name = 'forward_records' AND NOT EXISTS (SELECT 1 FROM "
         "sqlite_sequence WHERE name = 'forward_records_new');\n"
         "DROP TABLE forward_records;\n"
         "ALTER TABLE forward_records_new RENAME TO forward_records;\n";
}

// Version 1 -> 2: forward_records gains elem_bytes; the version-1 rows keep their float64 bytes
// (elem_bytes 8), so the migration is lossless. ALTER TABLE cannot change the CHECKs on the
// lengths of x and y, hence the rebuild.
std::string migration_1_to_2_sql() {
  constexpr std::string_view kColumns =
      "record_id, client_id, request_id, device_serial, t_start_ns, t_end_ns, x_rows, x_cols, x, "
      "theta_size, theta, y_rows, y_cols, y";
  return rebuild_forward_records_sql(forward_records_sql("forward_records_new"),
                                     std::string(kColumns) + ", elem_bytes",
                                     std::string(kColumns) + ", 8");
}

// Version 4 -> 5: forward_records becomes the index of segment files; every version-4 row is
// kept with its BLOBs (segment_id NULL) and read as before, so the migration is lossless and
// pure SQL (no file is written). New records go to segments.
std::string migration_4_to_5_sql() {
  constexpr std::string_view kColumns =
      "record_id, client_id, request_id, device_serial, t_start_ns, t_end_ns, elem_bytes, x_rows, "
      "x_cols, x, theta_size, theta, y_rows, y_cols, y";
  return rebuild_forward_records_sql(forward_records_v5_sql("forward_records_new"), kColumns,
                                     kColumns);
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

}  // namespace

void prepare_schema(const Db& db, TxStmts& tx) {
  const std::string& path = db.path;
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
    db.exec(forward_records_v5_sql("forward_records").c_str(), "creating the schema");
    db.exec(kCountersSql, "creating the schema");
    db.exec(kTwinsSql, "creating the schema");
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
  if (version >= 1 && version <= 3) migrate(3, kTwinsSql);
  if (version >= 1 && version <= 4) migrate(4, migration_4_to_5_sql());
}

}  // namespace pnn::daemon::sqlite
