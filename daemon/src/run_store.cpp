// The run store over the SQLite C API. Schema, durability argument and recovery are described in
// docs/run-store.md; the contract is in run_store.hpp.
#include "pnn/daemon/run_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "run_store_impl.hpp"
#include "run_store_schema.hpp"

namespace pnn::daemon {
namespace {

constexpr int kBusyTimeoutMs = 5000;

constexpr const char* kAbortedMessage =
    "aborted: the run was still RUNNING when the run store was opened again (the previous daemon "
    "ended without finishing it); resumable from its last checkpoint";

constexpr const char* kRunColumns =
    "run_id, name, config_yaml, state, started_ns, finished_ns, epochs_done, checkpoint_path, "
    "summary_json, message, owner";

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
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

RunStore::Impl::Impl(const std::string& path)
    : lock(path), db{path, nullptr}, segments(path, path + ".segments") {
  sqlite3* raw = nullptr;
  const int open_rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  db.handle.reset(raw);  // closed even when the open failed
  if (open_rc != SQLITE_OK) db.fail("opening the database", open_rc);
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);

  sqlite::prepare_schema(db, tx);

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
           "INSERT INTO forward_records (client_id, request_id, device_serial, t_start_ns, "
           "t_end_ns, x_rows, x_cols, theta_size, y_rows, y_cols, segment_id, seg_offset, "
           "seg_length, crc, elem_bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
           "?12, ?13, ?14, 4)");
  constexpr const char* kForwardColumns =
      "SELECT record_id, client_id, request_id, device_serial, t_start_ns, t_end_ns, x_rows, "
      "x_cols, x, theta_size, theta, y_rows, y_cols, y, elem_bytes, segment_id, seg_offset, "
      "seg_length, crc FROM forward_records ";
  select_forward = Stmt(db, std::string(kForwardColumns) + "WHERE record_id = ?1");
  select_device_forwards = Stmt(
      db, std::string(kForwardColumns) + "WHERE device_serial = ?1 ORDER BY record_id DESC");
  insert_calibration = Stmt(db,
                            "INSERT INTO calibrations (device_serial, phi_size, phi, mse_before, "
                            "mse_after, created_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  select_latest_calibration =
      Stmt(db,
           "SELECT calibration_id, device_serial, phi_size, phi, mse_before, mse_after, created_ns "
           "FROM calibrations WHERE device_serial = ?1 ORDER BY calibration_id DESC LIMIT 1");
  insert_twin = Stmt(db, "INSERT INTO twins (device_serial, device_kind, family, data_hash, "
                         "report_json, model, created_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  select_twin = Stmt(db, "SELECT twin_id, device_serial, device_kind, family, data_hash, "
                         "report_json, created_ns, model FROM twins WHERE twin_id = ?1");
  select_twins = Stmt(db, "SELECT twin_id, device_serial, device_kind, family, data_hash, "
                          "report_json, created_ns FROM twins ORDER BY twin_id DESC LIMIT ?1");
  select_device_twins =
      Stmt(db, "SELECT twin_id, device_serial, device_kind, family, data_hash, report_json, "
               "created_ns FROM twins WHERE device_serial = ?2 ORDER BY twin_id DESC LIMIT ?1");
  set_active_twin = Stmt(db, "INSERT OR REPLACE INTO active_twins (device_serial, twin_id, set_ns) "
                             "VALUES (?1, ?2, ?3)");
  select_active_twin = Stmt(db, "SELECT twin_id FROM active_twins WHERE device_serial = ?1");
  delete_forwards_upto = Stmt(db, "DELETE FROM forward_records WHERE record_id <= ?1");
  select_oldest_forward_id = Stmt(db, "SELECT coalesce(min(record_id), 0) FROM forward_records");
  integrity_check = Stmt(db, "PRAGMA integrity_check");

  open_segments();
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

std::uint64_t RunStore::add_calibration(const CalibrationRecord& record) {
  std::lock_guard lock(impl_->mutex);
  impl_->theta_bytes.clear();
  sqlite::encode_vector(record.phi, impl_->theta_bytes);
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

std::uint64_t RunStore::add_twin(const TwinRecord& record) {
  std::lock_guard lock(impl_->mutex);
  Query(impl_->db, impl_->insert_twin, "adding a twin")
      .bind_text(1, record.device_serial)
      .bind_text(2, record.device_kind)
      .bind_text(3, record.family)
      .bind_text(4, record.data_hash)
      .bind_text(5, record.report_json)
      .bind_bytes(6, record.model)
      .bind_int(7, record.created_ns != 0 ? record.created_ns : now_ns())
      .run();
  return static_cast<std::uint64_t>(sqlite3_last_insert_rowid(impl_->db.get()));
}

namespace {
TwinRecord twin_row(const Query& q) {
  TwinRecord t;
  t.twin_id = static_cast<std::uint64_t>(q.int_at(0));
  t.device_serial = q.text_at(1);
  t.device_kind = q.text_at(2);
  t.family = q.text_at(3);
  t.data_hash = q.text_at(4);
  t.report_json = q.text_at(5);
  t.created_ns = q.int_at(6);
  return t;
}
}  // namespace

std::optional<TwinRecord> RunStore::get_twin(std::uint64_t twin_id) const {
  std::lock_guard lock(impl_->mutex);
  Query q(impl_->db, impl_->select_twin, "reading a twin");
  q.bind_uint(1, twin_id);
  if (!q.step()) return std::nullopt;
  TwinRecord t = twin_row(q);
  t.model = q.bytes_at(7);
  return t;
}

std::vector<TwinRecord> RunStore::list_twins(const std::string& device_serial,
                                             std::size_t limit) const {
  std::lock_guard lock(impl_->mutex);
  auto& stmt = device_serial.empty() ? impl_->select_twins : impl_->select_device_twins;
  Query q(impl_->db, stmt, "listing twins");
  q.bind_int(1, static_cast<std::int64_t>(std::min<std::size_t>(limit, 1u << 30)));
  if (!device_serial.empty()) q.bind_text(2, device_serial);
  std::vector<TwinRecord> out;
  while (q.step()) out.push_back(twin_row(q));
  return out;
}

void RunStore::set_active_twin(const std::string& device_serial, std::uint64_t twin_id) {
  std::lock_guard lock(impl_->mutex);
  Query(impl_->db, impl_->set_active_twin, "setting a device's twin")
      .bind_text(1, device_serial)
      .bind_uint(2, twin_id)
      .bind_int(3, now_ns())
      .run();
}

std::uint64_t RunStore::active_twin(const std::string& device_serial) const {
  std::lock_guard lock(impl_->mutex);
  Query q(impl_->db, impl_->select_active_twin, "reading a device's twin");
  q.bind_text(1, device_serial);
  return q.step() ? static_cast<std::uint64_t>(q.int_at(0)) : 0;
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
