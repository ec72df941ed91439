// Run-store tests of the schema migrations from versions 1 and 2 (built here with raw SQL as
// those versions wrote them): lossless, id sequences kept, rolled back on failure.
#include <doctest/doctest.h>
#include <sqlite3.h>

#include "daemon/run_store_test_util.hpp"
#include "pnn/daemon/run_store.hpp"

namespace pnn::daemon {
namespace {

using namespace store_test;

// The complete schema of version 1 (pnnd before float32 forward records), verbatim.
constexpr const char* kVersion1SchemaSql = R"sql(
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
  message         TEXT    NOT NULL DEFAULT ''
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

-- x, theta, y: little-endian IEEE-754 float64, matrices row-major (one sample per row).
CREATE TABLE forward_records (
  record_id     INTEGER PRIMARY KEY AUTOINCREMENT,
  client_id     TEXT    NOT NULL,
  request_id    INTEGER NOT NULL,
  device_serial TEXT    NOT NULL,
  t_start_ns    INTEGER NOT NULL,
  t_end_ns      INTEGER NOT NULL,
  x_rows        INTEGER NOT NULL CHECK (x_rows >= 0),
  x_cols        INTEGER NOT NULL CHECK (x_cols >= 0),
  x             BLOB    NOT NULL CHECK (length(x) = 8 * x_rows * x_cols),
  theta_size    INTEGER NOT NULL CHECK (theta_size >= 0),
  theta         BLOB    NOT NULL CHECK (length(theta) = 8 * theta_size),
  y_rows        INTEGER NOT NULL CHECK (y_rows >= 0),
  y_cols        INTEGER NOT NULL CHECK (y_cols >= 0),
  y             BLOB    NOT NULL CHECK (length(y) = 8 * y_rows * y_cols)
);

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

// A version-1 forward_records row with float64 x (1 x 2) and y (1 x 1) and θ of one entry.
void insert_v1_forward(RawDb& raw, std::int64_t record_id, const std::string& x,
                       const std::string& theta, const std::string& y) {
  sqlite3_stmt* stmt = nullptr;
  const char* sql =
      "INSERT INTO forward_records (record_id, client_id, request_id, device_serial, t_start_ns, "
      "t_end_ns, x_rows, x_cols, x, theta_size, theta, y_rows, y_cols, y) VALUES (?1, 'old', ?1, "
      "'SIM-V1', 100, 200, 1, 2, ?2, 1, ?3, 1, 1, ?4)";
  REQUIRE(sqlite3_prepare_v2(raw.get(), sql, -1, &stmt, nullptr) == SQLITE_OK);
  sqlite3_bind_int64(stmt, 1, record_id);
  sqlite3_bind_blob(stmt, 2, x.data(), static_cast<int>(x.size()), SQLITE_TRANSIENT);
  sqlite3_bind_blob(stmt, 3, theta.data(), static_cast<int>(theta.size()), SQLITE_TRANSIENT);
  sqlite3_bind_blob(stmt, 4, y.data(), static_cast<int>(y.size()), SQLITE_TRANSIENT);
  const int rc = sqlite3_step(stmt);
  sqlite3_finalize(stmt);
  REQUIRE_MESSAGE(rc == SQLITE_DONE, sqlite3_errmsg(raw.get()));
}

// A version-1 run store as pnnd 1 left it: a run, two forward records, and a forward_records
// sequence of 40 (records 3 to 40 were deleted), so that a reused id would show.
void make_version_1_store(const std::string& path) {
  RawDb raw(path);
  raw.exec("PRAGMA journal_mode = WAL");
  raw.exec("BEGIN");
  raw.exec(kVersion1SchemaSql);
  raw.exec("PRAGMA application_id = " + std::to_string(0x504E4E52));  // "PNNR"
  raw.exec("PRAGMA user_version = 1");
  raw.exec("INSERT INTO runs (name, config_yaml, state, started_ns) VALUES ('v1-run', '', 3, 7)");
  const double nan_payload = std::bit_cast<double>(std::uint64_t{0x7ff8000000001234});
  insert_v1_forward(raw, 1, le_bytes_f64({0.1, -0.0}), le_bytes_f64({nan_payload}),
                    le_bytes_f64({1e300}));
  insert_v1_forward(raw, 2, le_bytes_f64({std::numeric_limits<double>::denorm_min(), 1.0 / 3}),
                    le_bytes_f64({2.5}), le_bytes_f64({-std::numeric_limits<double>::infinity()}));
  raw.exec("UPDATE sqlite_sequence SET seq = 40 WHERE name = 'forward_records'");
  raw.exec("COMMIT");
}

TEST_CASE("run_store: a version-1 file is migrated to version 5 losslessly on open") {
  TempDir dir;
  const std::string path = dir.file("v1.db");
  make_version_1_store(path);
  {
    RawDb raw(path);
    REQUIRE(raw.scalar("PRAGMA user_version") == "1");
    REQUIRE(raw.scalar("SELECT seq FROM sqlite_sequence WHERE name = 'forward_records'") == "40");
  }
  const double nan_payload = std::bit_cast<double>(std::uint64_t{0x7ff8000000001234});
  auto check_old_records = [&](const RunStore& store) {
    const auto first = store.get_forward(1);
    REQUIRE(first.has_value());
    CHECK(first->client_id == "old");
    CHECK(first->device_serial == "SIM-V1");
    REQUIRE(first->x.rows() == 1);
    REQUIRE(first->x.cols() == 2);
    CHECK(bits(first->x(0, 0)) == bits(0.1));  // float64 kept: not 0.1f
    CHECK(bits(first->x(0, 1)) == bits(-0.0));
    REQUIRE(first->theta.size() == 1);
    CHECK(bits(first->theta[0]) == bits(nan_payload));
    REQUIRE(first->y.size() == 1);
    CHECK(bits(first->y(0, 0)) == bits(1e300));
    const auto second = store.get_forward(2);
    REQUIRE(second.has_value());
    REQUIRE(second->x.size() == 2);
    CHECK(bits(second->x(0, 0)) == bits(std::numeric_limits<double>::denorm_min()));
    CHECK(bits(second->x(0, 1)) == bits(1.0 / 3));
    CHECK(bits(second->theta[0]) == bits(2.5));
    CHECK(bits(second->y(0, 0)) == bits(-std::numeric_limits<double>::infinity()));
    CHECK_FALSE(store.get_forward(3).has_value());
  };
  std::uint64_t new_id = 0;
  {
    RunStore store(path);
    CHECK(store.integrity_ok());
    check_old_records(store);
    CHECK(store.list_runs().size() == 1);
    CHECK(store.list_runs()[0].owner.empty());  // 2 -> 3 ran after 1 -> 2
    new_id = store.record_forward(make_forward(9));
    CHECK(new_id == 41);  // above the old sequence, not max(record_id) + 1
    const auto fresh = store.get_forward(new_id);
    REQUIRE(fresh.has_value());
    CHECK(bit_equal(fresh->x, float32_rounded(make_forward(9).x)));
  }
  {
    RawDb raw(path);
    CHECK(raw.scalar("PRAGMA user_version") == "5");
    CHECK(raw.scalar("PRAGMA application_id") == std::to_string(0x504E4E52));
    CHECK(raw.column("SELECT elem_bytes FROM forward_records ORDER BY record_id") ==
          std::vector<std::string>{"8", "8", "4"});
    CHECK(raw.scalar("SELECT count(*) FROM sqlite_schema WHERE name LIKE 'forward_records%'") ==
          "1");
    CHECK(raw.scalar("SELECT seq FROM sqlite_sequence WHERE name = 'forward_records'") == "41");
    CHECK(raw.scalar("SELECT count(*) FROM sqlite_sequence WHERE name = 'forward_records'") ==
          "1");
  }
  // A second open finds version 5 and changes nothing.
  const std::string schema_before = [&] {
    RawDb raw(path);
    return raw.scalar("SELECT group_concat(sql, ';') FROM sqlite_schema");
  }();
  {
    RunStore store(path);
    CHECK(store.integrity_ok());
    check_old_records(store);
    const auto fresh = store.get_forward(new_id);
    REQUIRE(fresh.has_value());
    CHECK(bit_equal(fresh->theta, make_forward(9).theta));
    CHECK(store.record_forward(make_forward(10)) == new_id + 1);
  }
  RawDb raw(path);
  CHECK(raw.scalar("PRAGMA user_version") == "5");
  CHECK(raw.scalar("SELECT group_concat(sql, ';') FROM sqlite_schema") == schema_before);
  CHECK(raw.column("SELECT elem_bytes FROM forward_records ORDER BY record_id") ==
        std::vector<std::string>{"8", "8", "4", "4"});
}

TEST_CASE("run_store: a version-1 file without forward records keeps its id sequence") {
  TempDir dir;
  const std::string path = dir.file("v1-empty.db");
  make_version_1_store(path);
  {
    RawDb raw(path);
    raw.exec("DELETE FROM forward_records");  // the sequence stays at 40
  }
  RunStore store(path);
  CHECK_FALSE(store.get_forward(1).has_value());
  CHECK(store.record_forward(make_forward(1)) == 41);
  CHECK(store.integrity_ok());
}

TEST_CASE("run_store: a migration that fails leaves the version-1 file as it was") {
  TempDir dir;
  const std::string path = dir.file("v1-bad.db");
  make_version_1_store(path);
  {
    // A third row whose x is shorter than its shape: only possible with the CHECKs off, as in
    // a damaged file. The copy into the new table then fails half-way through the migration.
    RawDb raw(path);
    raw.exec("PRAGMA ignore_check_constraints = ON");
    insert_v1_forward(raw, 3, le_bytes_f64({1.0}), le_bytes_f64({2.0}), le_bytes_f64({3.0}));
  }
  const std::string message = error_message_of([&] { RunStore store(path); });
  CAPTURE(message);
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("migrating the schema from version 1 to 2") != std::string::npos);
  CHECK(message.find("CHECK constraint failed") != std::string::npos);

  RawDb raw(path);
  CHECK(raw.scalar("PRAGMA user_version") == "1");
  CHECK(raw.scalar("SELECT count(*) FROM sqlite_schema WHERE name = 'forward_records_new'") == "0");
  CHECK(raw.scalar("SELECT count(*) FROM forward_records") == "3");
  CHECK(raw.scalar("SELECT seq FROM sqlite_sequence WHERE name = 'forward_records'") == "40");
  CHECK(raw.scalar("SELECT x FROM forward_records WHERE record_id = 1") ==
        le_bytes_f64({0.1, -0.0}));
  CHECK(raw.scalar("SELECT count(*) FROM runs") == "1");
  CHECK(message.find("left at version 1") != std::string::npos);
}

// The complete schema of version 2 (pnnd before metric idempotency, run owners and the job
// counter), verbatim.
constexpr const char* kVersion2SchemaSql = R"sql(
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
  message         TEXT    NOT NULL DEFAULT ''
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
CREATE TABLE forward_records (
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

// A version-2 run store as pnnd 2 left it: two runs whose metrics repeat some (phase, epoch)
// keys, as a job resumed after kill -9 wrote them (run 1: pat 1 three times, pat 2 twice), and a
// metrics sequence of 50 (rows above 7 were deleted), so that a reused id would show.
void make_version_2_store(const std::string& path) {
  RawDb raw(path);
  raw.exec("PRAGMA journal_mode = WAL");
  raw.exec("BEGIN");
  raw.exec(kVersion2SchemaSql);
  raw.exec("PRAGMA application_id = " + std::to_string(0x504E4E52));  // "PNNR"
  raw.exec("PRAGMA user_version = 2");
  raw.exec(
      "INSERT INTO runs (name, config_yaml, state, started_ns, epochs_done) VALUES "
      "('v2-run', 'yaml', 6, 7, 2), ('v2-other', '', 3, 8, 1)");
  raw.exec("INSERT INTO run_devices VALUES (1, 0, 'SIM-OSC-1')");
  // metric_id: values; the last row of each key holds what migration must keep.
  raw.exec(
      "INSERT INTO metrics (metric_id, run_id, phase, epoch, train_loss, train_accuracy, "
      "test_accuracy, seconds) VALUES "
      "(1, 1, 'pat', 1, 0.5, 0.25, 0.125, 1.0), "
      "(2, 1, 'pat', 2, 0.4, 0.30, 0.150, 1.0), "
      "(3, 2, 'pat', 1, 0.875, 0.10, -1.0, 2.0), "
      "(4, 1, 'pat', 1, 0.45, 0.26, 0.13, 1.5), "
      "(5, 1, 'in-silico', 1, 0.75, 0.2, 0.1, 0.5), "
      "(6, 1, 'pat', 1, NULL, 0.5, 0.0625, 3.0), "
      "(7, 1, 'pat', 2, 0.375, 0.3125, 0.1875, 4.0)");
  raw.exec("UPDATE sqlite_sequence SET seq = 50 WHERE name = 'metrics'");
  raw.exec("COMMIT");
}

TEST_CASE("run_store: a version-2 file is migrated to version 5, keeping the last metric per key") {
  TempDir dir;
  const std::string path = dir.file("v2.db");
  make_version_2_store(path);
  {
    RawDb raw(path);
    REQUIRE(raw.scalar("PRAGMA user_version") == "2");
    REQUIRE(raw.scalar("SELECT count(*) FROM metrics") == "7");
  }
  auto check_migrated = [&](const RunStore& store) {
    const auto m = store.metrics(1);
    REQUIRE(m.size() == 3);
    // In the order of the kept rows: in-silico 1 (id 5), pat 1 (id 6), pat 2 (id 7).
    CHECK(m[0].phase == "in-silico");
    CHECK(m[0].epoch == 1);
    CHECK(bits(m[0].train_loss) == bits(0.75));
    CHECK(m[1].phase == "pat");
    CHECK(m[1].epoch == 1);
    CHECK(std::isnan(m[1].train_loss));
    CHECK(bits(m[1].train_accuracy) == bits(0.5));
    CHECK(bits(m[1].test_accuracy) == bits(0.0625));
    CHECK(bits(m[1].seconds) == bits(3.0));
    CHECK(m[2].phase == "pat");
    CHECK(m[2].epoch == 2);
    CHECK(bits(m[2].train_loss) == bits(0.375));
    CHECK(bits(m[2].seconds) == bits(4.0));
    const auto other = store.metrics(2);
    REQUIRE(other.size() == 1);
    CHECK(bits(other[0].train_loss) == bits(0.875));
    const auto run = store.get_run(1);
    REQUIRE(run.has_value());
    CHECK(run->name == "v2-run");
    CHECK(run->state == RunState::kAborted);
    CHECK(run->epochs_done == 2);
    CHECK(run->owner.empty());
    CHECK(run->device_serials == std::vector<std::string>{"SIM-OSC-1"});
  };
  {
    RunStore store(path);
    CHECK(store.integrity_ok());
    CHECK(store.aborted_on_open().empty());
    check_migrated(store);
    CHECK(store.allocate_job_id() == 1);
    // Idempotent from now on: the same key replaces, and the ids continue above the sequence.
    MetricRecord again = metric_for_epoch(2);
    again.phase = "pat";
    store.add_metric(1, again);
    const auto m = store.metrics(1);
    REQUIRE(m.size() == 3);
    check_metric_equal(m.back(), again);
    const std::uint64_t run = store.create_run("v3-run", "", {}, "bob");
    CHECK(run == 3);
    CHECK(store.get_run(run)->owner == "bob");
  }
  {
    RawDb raw(path);
    CHECK(raw.scalar("PRAGMA user_version") == "5");
    CHECK(raw.scalar("SELECT count(*) FROM metrics") == "4");
    CHECK(raw.scalar("SELECT max(metric_id) FROM metrics") == "51");
    CHECK(raw.scalar("SELECT \"unique\" FROM pragma_index_list('metrics') WHERE name = "
                     "'metrics_by_key'") == "1");
    CHECK(raw.scalar("SELECT value FROM counters WHERE name = 'job_id'") == "1");
  }
  // A second open finds version 5 and changes nothing.
  const std::string schema_before = [&] {
    RawDb raw(path);
    return raw.scalar("SELECT group_concat(sql, ';') FROM sqlite_schema");
  }();
  {
    RunStore store(path);
    CHECK(store.integrity_ok());
    CHECK(store.metrics(1).size() == 3);
    CHECK(store.allocate_job_id() == 2);
  }
  RawDb raw(path);
  CHECK(raw.scalar("PRAGMA user_version") == "5");
  CHECK(raw.scalar("SELECT group_concat(sql, ';') FROM sqlite_schema") == schema_before);
}

TEST_CASE("run_store: a migration from version 2 that fails leaves the file as it was") {
  TempDir dir;
  const std::string path = dir.file("v2-bad.db");
  make_version_2_store(path);
  {
    // A table that version 3 creates, already there: only a damaged or hand-edited file has it.
    // The migration then fails after it has deleted the duplicate metrics.
    RawDb raw(path);
    raw.exec("CREATE TABLE counters (x)");
  }
  const std::string message = error_message_of([&] { RunStore store(path); });
  CAPTURE(message);
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("migrating the schema from version 2 to 3") != std::string::npos);
  CHECK(message.find("left at version 2") != std::string::npos);

  RawDb raw(path);
  CHECK(raw.scalar("PRAGMA user_version") == "2");
  CHECK(raw.scalar("SELECT count(*) FROM metrics") == "7");  // the duplicates are still there
  CHECK(raw.scalar("SELECT count(*) FROM sqlite_schema WHERE name = 'metrics_by_key'") == "0");
  CHECK(raw.scalar("SELECT count(*) FROM pragma_table_info('runs') WHERE name = 'owner'") == "0");
}

}  // namespace
}  // namespace pnn::daemon
