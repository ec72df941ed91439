// The migration from schema version 4 (forward arrays as BLOBs in SQLite) to version 5 (the
// arrays in segment files, SQLite the index): the version-4 rows stay readable bit for bit, new
// records go to segments, ids are not reused, a second open changes nothing, retention deletes
// the migrated rows as one unit before any segment, and a failing step leaves version 4.
#include <doctest/doctest.h>

#include "daemon/run_store_test_util.hpp"
#include "pnn/daemon/run_store.hpp"

namespace pnn::daemon {
namespace {

using namespace store_test;

// forward_records as schema versions 2 to 4 had it (run_store_schema.cpp, forward_records_sql).
constexpr const char* kVersion4ForwardRecordsSql = R"sql(
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

void insert_v4_forward(RawDb& raw, std::int64_t record_id, int elem_bytes, const std::string& x,
                       const std::string& theta, const std::string& y) {
  sqlite3_stmt* stmt = nullptr;
  const char* sql =
      "INSERT INTO forward_records (record_id, client_id, request_id, device_serial, t_start_ns, "
      "t_end_ns, elem_bytes, x_rows, x_cols, x, theta_size, theta, y_rows, y_cols, y) VALUES "
      "(?1, 'v4', ?1, 'SIM-0001', 100, 200, ?2, 1, 2, ?3, 1, ?4, 1, 1, ?5)";
  REQUIRE(sqlite3_prepare_v2(raw.get(), sql, -1, &stmt, nullptr) == SQLITE_OK);
  sqlite3_bind_int64(stmt, 1, record_id);
  sqlite3_bind_int(stmt, 2, elem_bytes);
  sqlite3_bind_blob(stmt, 3, x.data(), static_cast<int>(x.size()), SQLITE_TRANSIENT);
  sqlite3_bind_blob(stmt, 4, theta.data(), static_cast<int>(theta.size()), SQLITE_TRANSIENT);
  sqlite3_bind_blob(stmt, 5, y.data(), static_cast<int>(y.size()), SQLITE_TRANSIENT);
  const int rc = sqlite3_step(stmt);
  sqlite3_finalize(stmt);
  REQUIRE_MESSAGE(rc == SQLITE_DONE, sqlite3_errmsg(raw.get()));
}

const double kNanPayload = std::bit_cast<double>(std::uint64_t{0x7ff8000000001234});

// A version-4 store: a run, record 1 (float32 arrays, as pnnd wrote since version 2), record 2
// (float64, migrated from version 1 once), and a sequence of 40 (records 3..40 were deleted).
// Version 4 is version 5 with the BLOB-only forward_records table, which replaces it here.
void make_version_4_store(const std::string& path) {
  {
    RunStore store(path);
    (void)store.create_run("v4-run", "name: x", {"SIM-0001"}, "bob");
  }
  RawDb raw(path);
  raw.exec("BEGIN");
  raw.exec("DROP TABLE forward_records");
  raw.exec(kVersion4ForwardRecordsSql);
  insert_v4_forward(raw, 1, 4, le_bytes_f32({0.5f, -0.0f}), le_bytes_f64({kNanPayload}),
                    le_bytes_f32({3.25f}));
  insert_v4_forward(raw, 2, 8, le_bytes_f64({0.1, 1.0 / 3}), le_bytes_f64({2.5}),
                    le_bytes_f64({1e300}));
  raw.exec("UPDATE sqlite_sequence SET seq = 40 WHERE name = 'forward_records'");
  raw.exec("PRAGMA user_version = 4");
  raw.exec("COMMIT");
}

void check_v4_records(const RunStore& store) {
  const auto first = store.get_forward(1);
  REQUIRE(first.has_value());
  CHECK(first->client_id == "v4");
  REQUIRE(first->x.size() == 2);
  CHECK(bits(first->x(0, 0)) == bits(0.5));
  CHECK(bits(first->x(0, 1)) == bits(-0.0));
  CHECK(bits(first->theta[0]) == bits(kNanPayload));
  CHECK(bits(first->y(0, 0)) == bits(3.25));
  const auto second = store.get_forward(2);
  REQUIRE(second.has_value());
  CHECK(bits(second->x(0, 0)) == bits(0.1));  // float64 kept
  CHECK(bits(second->x(0, 1)) == bits(1.0 / 3));
  CHECK(bits(second->theta[0]) == bits(2.5));
  CHECK(bits(second->y(0, 0)) == bits(1e300));
}

TEST_CASE("run_store: a version-4 file is migrated to version 5, its BLOB rows kept readable") {
  TempDir dir;
  const std::string path = dir.file("v4.db");
  make_version_4_store(path);
  std::uint64_t new_id = 0;
  {
    RunStore store(path);
    CHECK(store.integrity_ok());
    CHECK(store.forward_recovery_notes().empty());
    check_v4_records(store);
    CHECK(store.get_run(1)->owner == "bob");
    const ForwardStats f = store.forward_stats();
    CHECK(f.records == 2);
    CHECK(f.bytes == (8 + 8 + 4) + (16 + 8 + 8));
    CHECK(f.segments == 0);
    new_id = store.record_forward(make_forward(9));
    CHECK(new_id == 41);  // above the old sequence
    const auto all = store.device_forwards("SIM-0001", 1000);
    REQUIRE(all.size() == 3);
    CHECK(all[0].record_id == 41);
    CHECK(all[2].record_id == 1);
    CHECK(bit_equal(all[0].x, float32_rounded(make_forward(9).x)));
  }
  const std::string schema_before = [&] {
    RawDb raw(path);
    CHECK(raw.scalar("PRAGMA user_version") == "5");
    CHECK(raw.column("SELECT coalesce(segment_id, 0) FROM forward_records ORDER BY record_id") ==
          std::vector<std::string>{"0", "0", "1"});
    CHECK(raw.scalar("SELECT count(*) FROM sqlite_schema WHERE name LIKE 'forward_records%'") ==
          "1");
    CHECK(raw.scalar("SELECT seq FROM sqlite_sequence WHERE name = 'forward_records'") == "41");
    return raw.scalar("SELECT group_concat(sql, ';') FROM sqlite_schema");
  }();
  // A second open finds version 5 and changes nothing.
  {
    RunStore store(path);
    check_v4_records(store);
    CHECK(store.get_forward(new_id).has_value());
  }
  RawDb raw(path);
  CHECK(raw.scalar("PRAGMA user_version") == "5");
  CHECK(raw.scalar("SELECT group_concat(sql, ';') FROM sqlite_schema") == schema_before);
}

TEST_CASE("run_store: retention deletes the migrated BLOB rows as one unit before any segment") {
  TempDir dir;
  const std::string path = dir.file("v4-retention.db");
  make_version_4_store(path);
  RunStore store(path);
  const ForwardRecord r = make_forward(3);
  const std::uint64_t payload =
      static_cast<std::uint64_t>(r.x.size() + r.y.size()) * 4 + r.theta.size() * 8;
  store.set_forward_retention(payload + payload / 2);  // room for one record and the old rows
  const std::uint64_t a = store.record_forward(r);
  CHECK(store.get_forward(1).has_value());  // 52 bytes of old rows + one record still fit
  const std::uint64_t b = store.record_forward(make_forward(4));
  // Over the limit: the old rows (segment "0") go first, both at once, then segment 1.
  CHECK_FALSE(store.get_forward(1).has_value());
  CHECK_FALSE(store.get_forward(2).has_value());
  CHECK_FALSE(store.get_forward(a).has_value());
  CHECK(store.get_forward(b).has_value());
  CHECK(store.forward_stats().oldest_record_id == b);
}

TEST_CASE("run_store: a migration from version 4 that fails leaves the file at version 4") {
  TempDir dir;
  const std::string path = dir.file("v4-bad.db");
  make_version_4_store(path);
  {
    // A row whose x is shorter than its shape, as only a damaged file has: the copy into the
    // version-5 table fails its CHECK half-way through the step.
    RawDb raw(path);
    raw.exec("PRAGMA ignore_check_constraints = ON");
    insert_v4_forward(raw, 3, 4, le_bytes_f32({1.0f}), le_bytes_f64({2.0}), le_bytes_f32({3.0f}));
  }
  const std::string message = error_message_of([&] { RunStore store(path); });
  CAPTURE(message);
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("migrating the schema from version 4 to 5") != std::string::npos);
  CHECK(message.find("left at version 4") != std::string::npos);
  RawDb raw(path);
  CHECK(raw.scalar("PRAGMA user_version") == "4");
  CHECK(raw.scalar("SELECT count(*) FROM forward_records") == "3");
  CHECK(raw.scalar("SELECT count(*) FROM sqlite_schema WHERE name = 'forward_records_new'") == "0");
  CHECK(raw.scalar("SELECT x FROM forward_records WHERE record_id = 2") ==
        le_bytes_f64({0.1, 1.0 / 3}));
}

}  // namespace
}  // namespace pnn::daemon
