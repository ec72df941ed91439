// Tests for the SQLite run store: round trips, ordering, recovery on open, refusal of files it
// must not touch, thread safety, and durability of acknowledged writes under kill -9.
#include "pnn/daemon/run_store.hpp"

#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace pnn::daemon {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the system temp directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            ("pnn-run-store-test-" + std::to_string(::getpid()) + "-" +
             std::to_string(counter.fetch_add(1)) + "-" + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

std::uint64_t bits(double value) { return std::bit_cast<std::uint64_t>(value); }

bool bit_equal(const Matrix& a, const Matrix& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) return false;
  for (Index i = 0; i < a.rows(); ++i) {
    for (Index j = 0; j < a.cols(); ++j) {
      if (bits(a(i, j)) != bits(b(i, j))) return false;
    }
  }
  return true;
}

// What the store keeps of a forward record's x or y: each entry rounded to float32.
Matrix float32_rounded(const Matrix& m) { return m.cast<float>().cast<double>(); }

// Entries N(0, 1) with a few values that text or REAL storage would not keep exactly.
Matrix tricky_matrix(Index rows, Index cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Matrix m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
  const double specials[] = {-0.0,
                             std::numeric_limits<double>::denorm_min(),
                             std::numeric_limits<double>::infinity(),
                             -std::numeric_limits<double>::infinity(),
                             std::bit_cast<double>(std::uint64_t{0x7ff8000000001234}),  // NaN
                             0.1,
                             1e300};
  for (Index k = 0; k < static_cast<Index>(std::size(specials)) && k < m.size(); ++k) {
    m.data()[k * 7 % m.size()] = specials[k];
  }
  return m;
}

ForwardRecord make_forward(std::uint64_t seed) {
  ForwardRecord r;
  r.client_id = "client-" + std::to_string(seed);
  r.request_id = seed * 1000 + 7;
  r.device_serial = "SIM-0001";
  r.t_start_ns = 1'700'000'000'000'000'000 + static_cast<std::int64_t>(seed);
  r.t_end_ns = r.t_start_ns + 12345;
  r.x = tricky_matrix(32, 64, seed);
  r.theta = tricky_matrix(96, 1, seed + 1);
  r.y = tricky_matrix(32, 10, seed + 2);
  return r;
}

MetricRecord metric_for_epoch(int epoch) {
  MetricRecord m;
  m.phase = epoch % 2 == 0 ? "train" : "pat";
  m.epoch = epoch;
  m.train_loss = 1.0 / (epoch + 3.0);
  m.train_accuracy = std::sqrt(epoch + 0.5) / 100.0;
  m.test_accuracy = epoch % 3 == 0 ? -1.0 : 0.1 * epoch;
  m.seconds = 0.001 * epoch + 1e-17;
  return m;
}

void check_metric_equal(const MetricRecord& got, const MetricRecord& want) {
  CHECK(got.phase == want.phase);
  CHECK(got.epoch == want.epoch);
  CHECK(bits(got.train_loss) == bits(want.train_loss));
  CHECK(bits(got.train_accuracy) == bits(want.train_accuracy));
  CHECK(bits(got.test_accuracy) == bits(want.test_accuracy));
  CHECK(bits(got.seconds) == bits(want.seconds));
}

std::int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

template <typename F>
std::string error_message_of(F&& f) {
  try {
    f();
  } catch (const StoreError& e) {
    return e.what();
  }
  FAIL("expected a StoreError");
  return "";
}

TEST_CASE("run_store: a new store is empty and passes the integrity check") {
  TempDir dir;
  RunStore store(dir.file("runs.db"));
  CHECK(store.aborted_on_open().empty());
  CHECK(store.list_runs().empty());
  CHECK_FALSE(store.get_run(1).has_value());
  CHECK_FALSE(store.get_forward(1).has_value());
  CHECK_FALSE(store.latest_calibration("SIM-0001").has_value());
  CHECK(store.integrity_ok());
}

TEST_CASE("run_store: runs round-trip with their device serials, checkpoint and result") {
  TempDir dir;
  RunStore store(dir.file("runs.db"));
  const std::string yaml = std::string("model: pat\nlr: 0.01\nnote: \"\xc3\xa9t\xc3\xa9\"\n") +
                           std::string(1, '\0') + "after-nul";
  const std::int64_t before = wall_ns();
  const std::uint64_t id = store.create_run("fmnist-pat", yaml, {"SIM-B", "SIM-A", "SIM-B"});
  const std::int64_t after = wall_ns();

  auto run = store.get_run(id);
  REQUIRE(run.has_value());
  CHECK(run->run_id == id);
  CHECK(run->name == "fmnist-pat");
  CHECK(run->config_yaml == yaml);
  CHECK(run->state == RunState::kRunning);
  CHECK(run->started_ns >= before);
  CHECK(run->started_ns <= after);
  CHECK(run->finished_ns == 0);
  CHECK(run->epochs_done == 0);
  CHECK(run->checkpoint_path.empty());
  CHECK(run->summary_json.empty());
  CHECK(run->message.empty());
  CHECK(run->device_serials == std::vector<std::string>{"SIM-B", "SIM-A", "SIM-B"});

  store.set_checkpoint(id, "/var/lib/pnn/runs/1/epoch-3.ckpt", 3);
  store.finish_run(id, RunState::kFailed, R"({"accuracy":0.5})", "device SIM-A faulted");
  run = store.get_run(id);
  REQUIRE(run.has_value());
  CHECK(run->state == RunState::kFailed);
  CHECK(run->checkpoint_path == "/var/lib/pnn/runs/1/epoch-3.ckpt");
  CHECK(run->epochs_done == 3);
  CHECK(run->summary_json == R"({"accuracy":0.5})");
  CHECK(run->message == "device SIM-A faulted");
  CHECK(run->finished_ns >= run->started_ns);

  // Resume: RUNNING again, result cleared, checkpoint and metrics kept.
  store.add_metric(id, metric_for_epoch(0));
  store.reopen_run(id);
  run = store.get_run(id);
  REQUIRE(run.has_value());
  CHECK(run->state == RunState::kRunning);
  CHECK(run->finished_ns == 0);
  CHECK(run->summary_json.empty());
  CHECK(run->message.empty());
  CHECK(run->epochs_done == 3);
  CHECK(run->checkpoint_path == "/var/lib/pnn/runs/1/epoch-3.ckpt");
  CHECK(store.metrics(id).size() == 1);

  const std::uint64_t no_devices = store.create_run("twin-only", "", {});
  run = store.get_run(no_devices);
  REQUIRE(run.has_value());
  CHECK(run->device_serials.empty());
  CHECK(store.integrity_ok());
}

TEST_CASE("run_store: list_runs is newest first and honours the limit") {
  TempDir dir;
  RunStore store(dir.file("runs.db"));
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(store.create_run("run-" + std::to_string(i), "", {"SIM-" + std::to_string(i)}));
  }
  store.finish_run(ids[1], RunState::kSucceeded, "{}");

  const auto all = store.list_runs();
  REQUIRE(all.size() == 5);
  for (std::size_t k = 0; k < all.size(); ++k) {
    CHECK(all[k].run_id == ids[4 - k]);
    CHECK(all[k].name == "run-" + std::to_string(4 - k));
    CHECK(all[k].device_serials == std::vector<std::string>{"SIM-" + std::to_string(4 - k)});
  }
  CHECK(all[3].state == RunState::kSucceeded);

  const auto two = store.list_runs(2);
  REQUIRE(two.size() == 2);
  CHECK(two[0].run_id == ids[4]);
  CHECK(two[1].run_id == ids[3]);
  CHECK(store.list_runs(0).empty());
}

TEST_CASE("run_store: metrics round-trip bit-exactly in insertion order, per run") {
  TempDir dir;
  RunStore store(dir.file("runs.db"));
  const std::uint64_t a = store.create_run("a", "", {});
  const std::uint64_t b = store.create_run("b", "", {});

  std::vector<MetricRecord> want;
  for (int epoch : {3, 1, 2, 2, 0}) want.push_back(metric_for_epoch(epoch));
  want[1].train_loss = -0.0;
  want[1].train_accuracy = std::numeric_limits<double>::denorm_min();
  want[2].train_loss = std::numeric_limits<double>::infinity();
  want[2].seconds = -std::numeric_limits<double>::infinity();
  want[3].train_accuracy = 1e300;
  want[3].phase = "pat/with spaces and \xce\xb8";
  for (std::size_t k = 0; k < want.size(); ++k) {
    store.add_metric(a, want[k]);
    store.add_metric(b, metric_for_epoch(90 + static_cast<int>(k)));
  }

  const auto got = store.metrics(a);
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    CAPTURE(i);
    check_metric_equal(got[i], want[i]);
  }
  CHECK(store.metrics(b).size() == want.size());
  CHECK(store.metrics(b + 100).empty());

  // SQLite has no NaN: a NaN metric is stored as NULL and comes back as a NaN.
  MetricRecord diverged = metric_for_epoch(7);
  diverged.train_loss = std::numeric_limits<double>::quiet_NaN();
  store.add_metric(b, diverged);
  const auto b_metrics = store.metrics(b);
  REQUIRE(b_metrics.size() == want.size() + 1);
  CHECK(std::isnan(b_metrics.back().train_loss));
  CHECK(bits(b_metrics.back().seconds) == bits(diverged.seconds));
}

TEST_CASE("run_store: forward records keep x and y as float32 and theta bit-exactly") {
  TempDir dir;
  RunStore store(dir.file("runs.db"));
  const ForwardRecord first = make_forward(1);
  ForwardRecord second = make_forward(2);
  second.request_id = std::numeric_limits<std::uint64_t>::max();
  second.client_id = "";
  second.theta.resize(0);
  second.y.resize(0, 10);

  const std::uint64_t id1 = store.record_forward(first);
  const std::uint64_t id2 = store.record_forward(second);
  CHECK(id2 > id1);

  for (const auto& [id, want] : {std::pair{id1, first}, std::pair{id2, second}}) {
    CAPTURE(id);
    const auto got = store.get_forward(id);
    REQUIRE(got.has_value());
    CHECK(got->record_id == id);
    CHECK(got->client_id == want.client_id);
    CHECK(got->request_id == want.request_id);
    CHECK(got->device_serial == want.device_serial);
    CHECK(got->t_start_ns == want.t_start_ns);
    CHECK(got->t_end_ns == want.t_end_ns);
    CHECK(bit_equal(got->x, float32_rounded(want.x)));
    CHECK(bit_equal(got->theta, want.theta));  // float64, NaN payloads included
    CHECK(bit_equal(got->y, float32_rounded(want.y)));
  }
  const auto got2 = store.get_forward(id2);
  REQUIRE(got2.has_value());
  CHECK(got2->y.rows() == 0);
  CHECK(got2->y.cols() == 10);

  // The float32 conversion, entry by entry (tricky_matrix puts the specials at k * 7).
  const auto got1 = store.get_forward(id1);
  REQUIRE(got1.has_value());
  const double* x = got1->x.data();
  CHECK(bits(x[0]) == bits(-0.0));
  CHECK(bits(x[7]) == bits(0.0));  // denorm_min of double is below float32's: rounds to +0
  CHECK(x[14] == std::numeric_limits<double>::infinity());
  CHECK(x[21] == -std::numeric_limits<double>::infinity());
  CHECK(std::isnan(x[28]));
  CHECK(x[35] == static_cast<double>(0.1f));
  CHECK(x[35] != 0.1);
  CHECK(x[42] == std::numeric_limits<double>::infinity());  // 1e300 overflows float32
  const double* theta = got1->theta.data();
  CHECK(bits(theta[7]) == bits(std::numeric_limits<double>::denorm_min()));
  CHECK(bits(theta[28]) == std::uint64_t{0x7ff8000000001234});
  CHECK_FALSE(store.get_forward(id2 + 1).has_value());
  CHECK(store.integrity_ok());
}

TEST_CASE("run_store: record_forwards writes a batch in one transaction, ids in order") {
  TempDir dir;
  RunStore store(dir.file("runs.db"));
  const std::uint64_t before = store.record_forward(make_forward(0));
  std::vector<ForwardRecord> batch;
  for (int k = 1; k <= 5; ++k) batch.push_back(make_forward(static_cast<std::uint64_t>(k)));
  const std::vector<std::uint64_t> ids = store.record_forwards(batch);
  REQUIRE(ids.size() == batch.size());
  for (std::size_t k = 0; k < ids.size(); ++k) {
    CAPTURE(k);
    CHECK(ids[k] == before + 1 + k);
    const auto got = store.get_forward(ids[k]);
    REQUIRE(got.has_value());
    CHECK(got->request_id == batch[k].request_id);
    CHECK(bit_equal(got->x, float32_rounded(batch[k].x)));
    CHECK(bit_equal(got->theta, batch[k].theta));
    CHECK(bit_equal(got->y, float32_rounded(batch[k].y)));
  }
  CHECK(store.record_forwards({}).empty());
  CHECK(store.integrity_ok());
}

// Little-endian bytes of float32 or float64 values.
std::string le_bytes_f32(std::initializer_list<float> values) {
  std::string out;
  for (float v : values) {
    const auto u = std::bit_cast<std::uint32_t>(v);
    for (int byte = 0; byte < 4; ++byte) out.push_back(static_cast<char>(u >> (8 * byte)));
  }
  return out;
}
std::string le_bytes_f64(std::initializer_list<double> values) {
  std::string out;
  for (double v : values) {
    const std::uint64_t u = bits(v);
    for (int byte = 0; byte < 8; ++byte) out.push_back(static_cast<char>(u >> (8 * byte)));
  }
  return out;
}

// A raw sqlite3 connection for tests that read or build a file behind the store's back.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    const int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                   nullptr);
    REQUIRE_MESSAGE(rc == SQLITE_OK, sqlite3_errstr(rc));
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void exec(const std::string& sql) {
    char* error = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    const std::string message = error != nullptr ? error : "";
    sqlite3_free(error);
    REQUIRE_MESSAGE(rc == SQLITE_OK, (message + " [" + sql + "]"));
  }
  // The first column of each row of `sql`, as text (BLOBs as their bytes).
  std::vector<std::string> column(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr);
    REQUIRE_MESSAGE(rc == SQLITE_OK, (std::string(sqlite3_errmsg(db_)) + " [" + sql + "]"));
    std::vector<std::string> out;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt, 0));
      out.emplace_back(data == nullptr ? "" : std::string(data, static_cast<std::size_t>(
                                                                    sqlite3_column_bytes(stmt, 0))));
    }
    sqlite3_finalize(stmt);
    return out;
  }
  std::string scalar(const std::string& sql) {
    const auto rows = column(sql);
    REQUIRE_MESSAGE(rows.size() == 1, sql);
    return rows[0];
  }
  sqlite3* get() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

TEST_CASE("run_store: a metric for an existing (run, phase, epoch) replaces the row") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  RunStore store(path);
  const std::uint64_t run = store.create_run("resumed", "", {});
  const std::uint64_t other = store.create_run("other", "", {});
  MetricRecord first = metric_for_epoch(4);
  first.phase = "pat";
  MetricRecord second = first;  // the same key, re-run after a crash
  second.train_loss = 0.125;
  second.train_accuracy = -0.0;
  second.test_accuracy = std::numeric_limits<double>::quiet_NaN();
  second.seconds = 7.5;
  MetricRecord later = metric_for_epoch(5);
  later.phase = "pat";
  MetricRecord same_epoch_other_phase = first;
  same_epoch_other_phase.phase = "in-silico";

  store.add_metric(run, first);
  store.add_metric(run, later);
  store.add_metric(run, same_epoch_other_phase);
  store.add_metric(other, first);  // another run: its own key
  store.add_metric(run, second);

  const auto got = store.metrics(run);
  REQUIRE(got.size() == 3);
  // The replaced row counts as written last.
  check_metric_equal(got[0], later);
  check_metric_equal(got[1], same_epoch_other_phase);
  CHECK(got[2].phase == "pat");
  CHECK(got[2].epoch == 4);
  CHECK(bits(got[2].train_loss) == bits(0.125));
  CHECK(bits(got[2].train_accuracy) == bits(-0.0));
  CHECK(std::isnan(got[2].test_accuracy));
  CHECK(bits(got[2].seconds) == bits(7.5));
  REQUIRE(store.metrics(other).size() == 1);
  check_metric_equal(store.metrics(other)[0], first);

  // The same write once more changes nothing but its position.
  store.add_metric(run, second);
  CHECK(store.metrics(run).size() == 3);
  RawDb raw(path);
  CHECK(raw.scalar("SELECT count(*) FROM metrics") == "4");
  CHECK(store.integrity_ok());
}

TEST_CASE("run_store: a run keeps its owner") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  std::uint64_t owned = 0, anonymous = 0;
  const std::string owner = "alice@lab-pc \xce\xb8";
  {
    RunStore store(path);
    owned = store.create_run("owned", "", {"SIM-A"}, owner);
    anonymous = store.create_run("anonymous", "", {"SIM-B"});  // the default argument
    const auto run = store.get_run(owned);
    REQUIRE(run.has_value());
    CHECK(run->owner == owner);
    CHECK(run->device_serials == std::vector<std::string>{"SIM-A"});
    CHECK(store.get_run(anonymous)->owner.empty());
    store.finish_run(owned, RunState::kSucceeded, "{}");
    store.reopen_run(owned);  // resuming keeps the owner
    CHECK(store.get_run(owned)->owner == owner);
  }
  RunStore store(path);
  const auto runs = store.list_runs();
  REQUIRE(runs.size() == 2);
  CHECK(runs[0].run_id == anonymous);
  CHECK(runs[0].owner.empty());
  CHECK(runs[1].run_id == owned);
  CHECK(runs[1].owner == owner);
}

TEST_CASE("run_store: job ids strictly increase across closing and reopening the store") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  std::vector<std::uint64_t> ids;
  {
    RunStore store(path);
    ids.push_back(store.allocate_job_id());
    ids.push_back(store.allocate_job_id());
    (void)store.create_run("runs do not move the job counter", "", {});
  }
  for (int reopen = 0; reopen < 3; ++reopen) {
    RunStore store(path);
    ids.push_back(store.allocate_job_id());
  }
  CHECK(ids.front() == 1);
  for (std::size_t k = 1; k < ids.size(); ++k) {
    CAPTURE(k);
    CHECK(ids[k] > ids[k - 1]);
  }
  // Concurrent callers get distinct ids, all above the ones handed out before.
  RunStore store(path);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20;
  std::vector<std::vector<std::uint64_t>> got(kThreads);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int k = 0; k < kPerThread; ++k) got[t].push_back(store.allocate_job_id());
      });
    }
  }
  std::vector<std::uint64_t> all;
  for (const auto& g : got) all.insert(all.end(), g.begin(), g.end());
  std::sort(all.begin(), all.end());
  CHECK(std::adjacent_find(all.begin(), all.end()) == all.end());
  CHECK(all.front() > ids.back());
  CHECK(all.size() == kThreads * kPerThread);
}

TEST_CASE("run_store: forward BLOBs are row-major little-endian float32 for x and y in the file") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  ForwardRecord r;
  r.device_serial = "SIM-LAYOUT";
  r.x.resize(2, 3);
  r.x << 1.5, 2.5, 3.5,  //
      4.5, 5.5, 6.5;
  r.theta = Vector::Constant(2, 0.25);
  r.theta[1] = 0.1;
  r.y.resize(1, 2);
  r.y << -2.0, 0.1;
  {
    RunStore store(path);
    store.record_forward(r);
  }  // closing checkpoints the WAL into the database file
  const std::string file = read_bytes(path);
  CHECK(file.find(le_bytes_f32({1.5f, 2.5f, 3.5f, 4.5f, 5.5f, 6.5f})) != std::string::npos);
  CHECK(file.find(le_bytes_f32({-2.0f, 0.1f})) != std::string::npos);
  CHECK(file.find(le_bytes_f64({0.25, 0.1})) != std::string::npos);  // θ stays float64

  RawDb raw(path);
  CHECK(raw.scalar("SELECT elem_bytes FROM forward_records") == "4");
  CHECK(raw.scalar("SELECT length(x) FROM forward_records") == "24");
  CHECK(raw.scalar("SELECT length(theta) FROM forward_records") == "16");
  CHECK(raw.scalar("SELECT length(y) FROM forward_records") == "8");
  CHECK(raw.scalar("PRAGMA user_version") == "3");
}

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

TEST_CASE("run_store: a version-1 file is migrated to version 3 losslessly on open") {
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
    CHECK(raw.scalar("PRAGMA user_version") == "3");
    CHECK(raw.scalar("PRAGMA application_id") == std::to_string(0x504E4E52));
    CHECK(raw.column("SELECT elem_bytes FROM forward_records ORDER BY record_id") ==
          std::vector<std::string>{"8", "8", "4"});
    CHECK(raw.scalar("SELECT count(*) FROM sqlite_schema WHERE name LIKE 'forward_records%'") ==
          "1");
    CHECK(raw.scalar("SELECT seq FROM sqlite_sequence WHERE name = 'forward_records'") == "41");
    CHECK(raw.scalar("SELECT count(*) FROM sqlite_sequence WHERE name = 'forward_records'") ==
          "1");
  }
  // A second open finds version 3 and changes nothing.
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
  CHECK(raw.scalar("PRAGMA user_version") == "3");
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
  CHECK(raw.scalar("SELECT count(*) FROM sqlite_schema WHERE name = 'forward_records_v2'") == "0");
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

TEST_CASE("run_store: a version-2 file is migrated to version 3, keeping the last metric per key") {
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
    CHECK(raw.scalar("PRAGMA user_version") == "3");
    CHECK(raw.scalar("SELECT count(*) FROM metrics") == "4");
    CHECK(raw.scalar("SELECT max(metric_id) FROM metrics") == "51");
    CHECK(raw.scalar("SELECT \"unique\" FROM pragma_index_list('metrics') WHERE name = "
                     "'metrics_by_key'") == "1");
    CHECK(raw.scalar("SELECT value FROM counters WHERE name = 'job_id'") == "1");
  }
  // A second open finds version 3 and changes nothing.
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
  CHECK(raw.scalar("PRAGMA user_version") == "3");
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

TEST_CASE("run_store: the latest calibration of each device round-trips") {
  TempDir dir;
  RunStore store(dir.file("runs.db"));
  CalibrationRecord old_a{.device_serial = "SIM-A",
                          .phi = tricky_matrix(12, 1, 5),
                          .mse_before = 0.5,
                          .mse_after = -0.0,
                          .created_ns = 1000};
  CalibrationRecord b{.device_serial = "SIM-B",
                      .phi = tricky_matrix(3, 1, 6),
                      .mse_before = 0.25,
                      .mse_after = 0.125,
                      .created_ns = 5000};
  CalibrationRecord new_a{.device_serial = "SIM-A",
                          .phi = tricky_matrix(12, 1, 7),
                          .mse_before = 0.3,
                          .mse_after = 1e-300,
                          .created_ns = 500};  // an older clock: insertion order decides "latest"
  const std::uint64_t id_old_a = store.add_calibration(old_a);
  const std::uint64_t id_b = store.add_calibration(b);
  const std::uint64_t id_new_a = store.add_calibration(new_a);
  CHECK(id_old_a < id_b);
  CHECK(id_b < id_new_a);

  const auto a = store.latest_calibration("SIM-A");
  REQUIRE(a.has_value());
  CHECK(a->calibration_id == id_new_a);
  CHECK(a->device_serial == "SIM-A");
  CHECK(bit_equal(a->phi, new_a.phi));
  CHECK(bits(a->mse_before) == bits(new_a.mse_before));
  CHECK(bits(a->mse_after) == bits(new_a.mse_after));
  CHECK(a->created_ns == 500);

  const auto got_b = store.latest_calibration("SIM-B");
  REQUIRE(got_b.has_value());
  CHECK(got_b->calibration_id == id_b);
  CHECK(bit_equal(got_b->phi, b.phi));
  CHECK_FALSE(store.latest_calibration("SIM-C").has_value());

  // created_ns == 0 means "now".
  const std::int64_t before = wall_ns();
  store.add_calibration({.device_serial = "SIM-C", .phi = Vector::Zero(2)});
  const auto c = store.latest_calibration("SIM-C");
  REQUIRE(c.has_value());
  CHECK(c->created_ns >= before);
}

TEST_CASE("run_store: reopening marks RUNNING runs ABORTED and keeps them resumable") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  std::uint64_t running = 0;
  std::uint64_t done = 0;
  std::uint64_t also_running = 0;
  {
    RunStore store(path);
    running = store.create_run("left-running", "", {"SIM-A"});
    store.add_metric(running, metric_for_epoch(0));
    store.set_checkpoint(running, "ckpt-1", 1);
    done = store.create_run("finished", "", {});
    store.finish_run(done, RunState::kSucceeded, R"({"ok":true})");
    also_running = store.create_run("also-left-running", "", {});
  }  // destroyed without finishing: as after a crash, the runs are still RUNNING in the file
  {
    const std::int64_t before = wall_ns();
    RunStore store(path);
    CHECK(store.aborted_on_open() == std::vector<std::uint64_t>{running, also_running});
    const auto run = store.get_run(running);
    REQUIRE(run.has_value());
    CHECK(run->state == RunState::kAborted);
    CHECK(run->finished_ns >= before);
    CHECK_FALSE(run->message.empty());
    CHECK(run->checkpoint_path == "ckpt-1");
    CHECK(run->epochs_done == 1);
    CHECK(store.metrics(running).size() == 1);
    const auto finished = store.get_run(done);
    REQUIRE(finished.has_value());
    CHECK(finished->state == RunState::kSucceeded);
    CHECK(finished->summary_json == R"({"ok":true})");

    store.reopen_run(running);  // resumed, then the daemon dies again
    store.add_metric(running, metric_for_epoch(1));
  }
  {
    RunStore store(path);
    CHECK(store.aborted_on_open() == std::vector<std::uint64_t>{running});
    CHECK(store.metrics(running).size() == 2);
  }
  {
    RunStore store(path);
    CHECK(store.aborted_on_open().empty());
    CHECK(store.integrity_ok());
  }
}

TEST_CASE("run_store: a newer schema version is refused, naming the file and the versions") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  { RunStore store(path); }
  // PRAGMA user_version lives in the database header: 4 bytes big-endian at offset 60.
  std::string bytes = read_bytes(path);
  REQUIRE(bytes.size() >= 100);
  REQUIRE(bytes.compare(0, 16, std::string("SQLite format 3\0", 16)) == 0);
  REQUIRE(bytes.substr(60, 4) == std::string("\0\0\0\x03", 4));
  bytes.replace(60, 4, std::string("\0\0\0\x63", 4));  // version 99
  write_bytes(path, bytes);

  const std::string message = error_message_of([&] { RunStore store(path); });
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("99") != std::string::npos);
  CHECK(message.find("1 to 3") != std::string::npos);
  CHECK(read_bytes(path) == bytes);  // left untouched
}

TEST_CASE("run_store: a file that is not an SQLite database is refused and left untouched") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  std::mt19937_64 rng(42);
  std::string garbage(8192, '\0');
  for (char& c : garbage) c = static_cast<char>(rng());
  const std::string text = "model: pat\nthis is a YAML file, not a database\n";

  for (const std::string& content : {garbage, text}) {
    write_bytes(path, content);
    const std::string message = error_message_of([&] { RunStore store(path); });
    CAPTURE(message);
    CHECK(message.find(path) != std::string::npos);
    CHECK(message.find("not an SQLite database") != std::string::npos);
    CHECK(read_bytes(path) == content);
  }
}

TEST_CASE("run_store: a database with a corrupted schema page is a StoreError, not a crash") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  {
    RunStore store(path);
    for (int i = 0; i < 20; ++i) store.create_run("run", "", {"SIM-A"});
  }
  // Page 1 holds the 100-byte file header, then the b-tree of the schema: overwrite the latter.
  std::string bytes = read_bytes(path);
  REQUIRE(bytes.size() > 4096);
  for (std::size_t i = 100; i < 4096; ++i) bytes[i] = static_cast<char>(0xA5);
  write_bytes(path, bytes);

  const std::string message = error_message_of([&] { RunStore store(path); });
  CAPTURE(message);
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("corrupt") != std::string::npos);
}

TEST_CASE("run_store: a missing parent directory is a StoreError naming the path") {
  TempDir dir;
  const std::string path = dir.file("no-such-dir/runs.db");
  const std::string message = error_message_of([&] { RunStore store(path); });
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("parent directory") != std::string::npos);
}

TEST_CASE("run_store: only one store at a time may own a database file") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  std::uint64_t id = 0;
  {
    RunStore first(path);
    id = first.create_run("owned", "", {});
    const std::string message = error_message_of([&] { RunStore second(path); });
    CHECK(message.find(path) != std::string::npos);
    CHECK(message.find("already open") != std::string::npos);
    // Another name for the same file shares the lock.
    const std::string link = dir.file("link.db");
    fs::create_symlink(path, link);
    CHECK_THROWS_AS(RunStore{link}, StoreError);
    // The refused open must not have aborted the first store's running run.
    const auto run = first.get_run(id);
    REQUIRE(run.has_value());
    CHECK(run->state == RunState::kRunning);
  }
  RunStore again(path);
  CHECK(again.aborted_on_open() == std::vector<std::uint64_t>{id});
}

TEST_CASE("run_store: writes that name an unknown run are errors") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  RunStore store(path);
  const std::uint64_t id = store.create_run("known", "", {});
  const std::uint64_t unknown = id + 41;
  CHECK(error_message_of([&] { store.add_metric(unknown, metric_for_epoch(0)); }).find(path) !=
        std::string::npos);
  CHECK(error_message_of([&] { store.set_checkpoint(unknown, "x", 1); }).find("no run with id") !=
        std::string::npos);
  CHECK_THROWS_AS(store.finish_run(unknown, RunState::kSucceeded, "{}"), StoreError);
  CHECK_THROWS_AS(store.reopen_run(unknown), StoreError);
  CHECK_THROWS_AS(store.finish_run(id, RunState::kRunning, "{}"), std::invalid_argument);
  // Failed writes leave nothing behind and the store keeps working.
  CHECK(store.metrics(unknown).empty());
  store.add_metric(id, metric_for_epoch(0));
  CHECK(store.metrics(id).size() == 1);
  CHECK(store.get_run(id)->state == RunState::kRunning);
  CHECK(store.integrity_ok());
}

// Whether `f` threw a StoreError that says the disk is full; the message goes to `message`.
template <typename F>
bool throws_disk_full(F&& f, std::string& message) {
  try {
    f();
  } catch (const StoreError& e) {
    message = e.what();
    return e.disk_full();
  }
  FAIL("expected a StoreError");
  return false;
}

constexpr std::uint64_t kNoPageLimit = std::uint64_t{1} << 30;

TEST_CASE("run_store: a full disk is a StoreError with disk_full() and writes succeed with room") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  RunStore store(path);
  const std::uint64_t run = store.create_run("full", "", {});
  const std::uint64_t first = store.record_forward(make_forward(1));
  const ForwardStats before = store.forward_stats();

  // No page beyond the current size: the next record (14 KiB of BLOBs) needs new pages.
  store.set_max_page_count_for_testing(1);
  std::string message;
  CHECK(throws_disk_full([&] { (void)store.record_forward(make_forward(2)); }, message));
  CAPTURE(message);
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("full") != std::string::npos);
  CHECK(message.find("retry") != std::string::npos);
  CHECK(throws_disk_full(
      [&] {
        (void)store.record_forwards({make_forward(3), make_forward(4)});
      },
      message));
  // Nothing of the failed writes was kept.
  const ForwardStats during = store.forward_stats();
  CHECK(during.records == before.records);
  CHECK(during.bytes == before.bytes);
  CHECK(during.newest_record_id == first);
  // Other errors are not "disk full".
  CHECK_FALSE(throws_disk_full([&] { store.set_checkpoint(run + 7, "x", 1); }, message));

  store.set_max_page_count_for_testing(kNoPageLimit);
  const std::uint64_t next = store.record_forward(make_forward(2));
  CHECK(next > first);
  const auto got = store.get_forward(next);
  REQUIRE(got.has_value());
  CHECK(bit_equal(got->x, float32_rounded(make_forward(2).x)));
  CHECK(store.forward_stats().records == before.records + 1);
  CHECK(store.integrity_ok());
}

TEST_CASE("run_store: finish_run can be retried after a disk-full failure") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  RunStore store(path);
  const std::uint64_t run = store.create_run("finishing", "", {"SIM-A"});
  store.add_metric(run, metric_for_epoch(1));
  // A summary large enough to need new (overflow) pages.
  const std::string summary = "{\"note\":\"" + std::string(200000, 'x') + "\"}";

  store.set_max_page_count_for_testing(1);
  std::string message;
  CHECK(throws_disk_full([&] { store.finish_run(run, RunState::kSucceeded, summary, "done"); },
                         message));
  auto state = store.get_run(run);
  REQUIRE(state.has_value());
  CHECK(state->state == RunState::kRunning);  // rolled back: still running, no summary
  CHECK(state->summary_json.empty());
  CHECK(state->finished_ns == 0);

  store.set_max_page_count_for_testing(kNoPageLimit);
  store.finish_run(run, RunState::kSucceeded, summary, "done");
  state = store.get_run(run);
  REQUIRE(state.has_value());
  CHECK(state->state == RunState::kSucceeded);
  CHECK(state->summary_json == summary);
  CHECK(state->message == "done");
  CHECK(store.metrics(run).size() == 1);
  CHECK(store.integrity_ok());
}

TEST_CASE("run_store: concurrent writers and readers on several threads lose nothing") {
  TempDir dir;
  RunStore store(dir.file("runs.db"));
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  std::vector<std::uint64_t> run_ids(kThreads);
  std::vector<std::vector<std::uint64_t>> forward_ids(kThreads);
  std::atomic<int> errors{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        try {
          run_ids[t] = store.create_run("thread-" + std::to_string(t), "", {});
          for (int e = 0; e < kPerThread; ++e) {
            store.add_metric(run_ids[t], metric_for_epoch(e));
            forward_ids[t].push_back(store.record_forward(make_forward(100 * t + e)));
            if (store.metrics(run_ids[t]).size() != static_cast<std::size_t>(e + 1)) ++errors;
            store.list_runs(3);
          }
        } catch (const std::exception&) {
          ++errors;
        }
      });
    }
  }
  CHECK(errors.load() == 0);
  for (int t = 0; t < kThreads; ++t) {
    const auto metrics = store.metrics(run_ids[t]);
    REQUIRE(metrics.size() == kPerThread);
    for (int e = 0; e < kPerThread; ++e) check_metric_equal(metrics[e], metric_for_epoch(e));
    for (int e = 0; e < kPerThread; ++e) {
      const auto got = store.get_forward(forward_ids[t][e]);
      REQUIRE(got.has_value());
      CHECK(bit_equal(got->x, float32_rounded(make_forward(100 * t + e).x)));
    }
  }
  CHECK(store.list_runs().size() == kThreads);
  CHECK(store.integrity_ok());
}

// ---- kill -9 --------------------------------------------------------------------------------

// What the child reports through the pipe, each only after the store call has returned.
struct Ack {
  enum Kind : std::int64_t { kRun = 1, kMetric = 2, kForward = 3 };
  std::int64_t kind = 0;
  std::int64_t value = 0;
};

void write_ack(int fd, Ack ack) {
  // 16 bytes < PIPE_BUF: the write is atomic.
  if (::write(fd, &ack, sizeof ack) != static_cast<ssize_t>(sizeof ack)) ::_exit(5);
}

// The child: writes metrics (and every few epochs a forward record) as fast as it can, forever,
// acknowledging each after the call returned. Never returns; is killed by the parent.
[[noreturn]] void crash_child(const std::string& path, int fd) {
  try {
    RunStore store(path);
    const std::uint64_t run_id = store.create_run("crash", "epochs: forever", {"SIM-A"});
    write_ack(fd, {Ack::kRun, static_cast<std::int64_t>(run_id)});
    for (int epoch = 0;; ++epoch) {
      store.add_metric(run_id, metric_for_epoch(epoch));
      write_ack(fd, {Ack::kMetric, epoch});
      if (epoch % 3 == 0) {
        const std::uint64_t id = store.record_forward(make_forward(epoch));
        write_ack(fd, {Ack::kForward, static_cast<std::int64_t>(id)});
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crash child: %s\n", e.what());
    ::_exit(3);
  }
}

// Reads acks from the pipe; handles reads that end inside a record.
class AckReader {
 public:
  explicit AckReader(int fd) : fd_(fd) {}
  ~AckReader() { ::close(fd_); }
  AckReader(const AckReader&) = delete;
  AckReader& operator=(const AckReader&) = delete;

  // Reads what is available within `timeout_ms`; false on end of file (writer gone) or timeout.
  bool read_some(int timeout_ms) {
    pollfd pfd{fd_, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, timeout_ms);
    if (ready <= 0) return false;
    char chunk[4096];
    const ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n <= 0) return false;
    pending_.append(chunk, static_cast<std::size_t>(n));
    while (pending_.size() >= sizeof(Ack)) {
      Ack ack;
      std::memcpy(&ack, pending_.data(), sizeof ack);
      pending_.erase(0, sizeof ack);
      if (ack.kind == Ack::kRun) run_id = static_cast<std::uint64_t>(ack.value);
      if (ack.kind == Ack::kMetric) metric_epochs.push_back(static_cast<int>(ack.value));
      if (ack.kind == Ack::kForward) forward_ids.push_back(static_cast<std::uint64_t>(ack.value));
    }
    return true;
  }

  std::uint64_t run_id = 0;
  std::vector<int> metric_epochs;
  std::vector<std::uint64_t> forward_ids;

 private:
  int fd_;
  std::string pending_;
};

TEST_CASE("run_store: acknowledged writes survive kill -9 in the middle of writing") {
  TempDir dir;
  const std::string path = dir.file("crash.db");
  // Different delays after the first acks, so that the kill lands at different points of the
  // write loop (mostly inside a commit: the WAL fsync dominates each iteration).
  const int kill_delays_us[] = {0, 1500, 7000, 20000};
  for (int round = 0; round < static_cast<int>(std::size(kill_delays_us)); ++round) {
    CAPTURE(round);
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    std::fflush(nullptr);  // nothing buffered may be written twice by the child
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      crash_child(path, fds[1]);
    }
    ::close(fds[1]);
    AckReader reader(fds[0]);

    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    bool child_alive = true;
    while (reader.metric_epochs.size() < 10 && std::chrono::steady_clock::now() < deadline) {
      if (!reader.read_some(1000)) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
          child_alive = false;
          break;
        }
      }
    }
    if (kill_delays_us[round] > 0) ::usleep(static_cast<useconds_t>(kill_delays_us[round]));
    ::kill(pid, SIGKILL);
    int status = 0;
    if (child_alive) REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(child_alive);
    REQUIRE_MESSAGE(WIFSIGNALED(status), "the child ended by itself: see its stderr");
    REQUIRE(WTERMSIG(status) == SIGKILL);
    while (reader.read_some(0)) {
    }  // acks written before the kill
    REQUIRE(reader.run_id != 0);
    REQUIRE(reader.metric_epochs.size() >= 10);

    RunStore store(path);
    CHECK(store.integrity_ok());
    CHECK(store.aborted_on_open() == std::vector<std::uint64_t>{reader.run_id});
    const auto run = store.get_run(reader.run_id);
    REQUIRE(run.has_value());
    CHECK(run->state == RunState::kAborted);

    // Every acknowledged epoch is there, bit-exact; at most one more (committed, not yet acked).
    const auto metrics = store.metrics(reader.run_id);
    const std::size_t acked = reader.metric_epochs.size();
    CHECK(reader.metric_epochs.back() == static_cast<int>(acked) - 1);
    REQUIRE(metrics.size() >= acked);
    CHECK(metrics.size() <= acked + 1);
    for (std::size_t e = 0; e < metrics.size(); ++e) {
      check_metric_equal(metrics[e], metric_for_epoch(static_cast<int>(e)));
    }
    for (std::size_t k = 0; k < reader.forward_ids.size(); ++k) {
      const auto record = store.get_forward(reader.forward_ids[k]);
      REQUIRE(record.has_value());
      CHECK(bit_equal(record->x, float32_rounded(make_forward(3 * k).x)));
    }
  }
}

}  // namespace

// ---- retention ----------------------------------------------------------------------------------

namespace {

// The BLOB bytes of make_forward's records: float32 x (32×64) and y (32×10), float64 θ (96).
constexpr std::uint64_t kForwardBytes = 32 * 64 * 4 + 32 * 10 * 4 + 96 * 8;

std::uint64_t count_forward_rows(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT count(*) FROM forward_records", -1, &stmt, nullptr) ==
          SQLITE_OK);
  REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
  const auto n = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 0));
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return n;
}

}  // namespace

TEST_CASE("run_store: without a retention limit every forward record is kept") {
  TempDir dir;
  RunStore store(dir.file("runs.db"));
  for (std::uint64_t k = 0; k < 12; ++k) (void)store.record_forward(make_forward(k));
  const ForwardStats f = store.forward_stats();
  CHECK(f.records == 12);
  CHECK(f.bytes == 12 * kForwardBytes);
  CHECK(f.pruned == 0);
  CHECK(f.max_bytes == 0);
  CHECK(f.oldest_record_id == 1);
  CHECK(f.newest_record_id == 12);
}

TEST_CASE("run_store: the retention limit deletes the oldest forward records and keeps the rest") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  const std::uint64_t limit = 5 * kForwardBytes + kForwardBytes / 2;  // room for 5 records
  std::vector<std::uint64_t> ids;
  {
    RunStore store(path);
    const std::uint64_t run = store.create_run("r", "yaml", {"SIM-0001"});
    store.set_forward_retention(limit);
    for (std::uint64_t k = 0; k < 20; ++k) {
      ids.push_back(store.record_forward(make_forward(k)));
      const ForwardStats f = store.forward_stats();
      CAPTURE(k);
      CHECK(f.bytes <= limit);
      CHECK(f.bytes == f.records * kForwardBytes);
      CHECK(f.newest_record_id == ids.back());
      CHECK(f.oldest_record_id == f.newest_record_id - f.records + 1);
      CHECK(count_forward_rows(path) == f.records);
    }
    const ForwardStats f = store.forward_stats();
    CHECK(f.max_bytes == limit);
    // Pruning goes down to 90 % of the limit: 4 records are left after each prune, 5 fit.
    CHECK(f.records >= 4);
    CHECK(f.records <= 5);
    CHECK(f.pruned == 20 - f.records);
    // The oldest are gone, the newest are intact; ids are never reused.
    CHECK_FALSE(store.get_forward(ids.front()).has_value());
    const auto last = store.get_forward(ids.back());
    REQUIRE(last.has_value());
    CHECK(last->request_id == make_forward(19).request_id);
    const std::uint64_t next = store.record_forward(make_forward(99));
    CHECK(next == ids.back() + 1);
    // Runs and metrics are never touched by forward retention.
    store.add_metric(run, metric_for_epoch(1));
    CHECK(store.get_run(run).has_value());
    CHECK(store.integrity_ok());
  }
  // Reopened: the counters are measured from the file.
  RunStore again(path);
  const ForwardStats f = again.forward_stats();
  CHECK(f.records == count_forward_rows(path));
  CHECK(f.bytes == f.records * kForwardBytes);
  CHECK(f.newest_record_id == ids.back() + 1);
  CHECK(f.pruned == 0);
}

TEST_CASE("run_store: a record larger than the whole limit is still kept as the newest") {
  TempDir dir;
  RunStore store(dir.file("runs.db"));
  store.set_forward_retention(kForwardBytes / 4);
  const std::uint64_t a = store.record_forward(make_forward(1));
  const std::uint64_t b = store.record_forward(make_forward(2));
  CHECK_FALSE(store.get_forward(a).has_value());
  CHECK(store.get_forward(b).has_value());
  CHECK(store.forward_stats().records == 1);
  // A batch over the limit keeps its newest record; older ones of the same batch may go.
  std::vector<ForwardRecord> batch;
  for (std::uint64_t k = 3; k < 7; ++k) batch.push_back(make_forward(k));
  const std::vector<std::uint64_t> batch_ids = store.record_forwards(batch);
  CHECK(store.get_forward(batch_ids.back()).has_value());
  CHECK_FALSE(store.get_forward(b).has_value());
  CHECK(store.forward_stats().records == 1);
  // Lifting the limit keeps everything from then on.
  store.set_forward_retention(0);
  for (std::uint64_t k = 7; k < 10; ++k) (void)store.record_forward(make_forward(k));
  CHECK(store.forward_stats().records == 4);
  CHECK(store.integrity_ok());
}

}  // namespace pnn::daemon
