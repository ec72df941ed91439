#pragma once
/// The daemon's run store: SQLite in WAL mode on local disk, for runs, per-epoch metrics,
/// checkpoints, calibrations, learned twins and forward-call records (ARCHITECTURE.md "Run store").
///
/// Durability contract: a call returns only after its transaction is committed (WAL,
/// synchronous=NORMAL is not enough for "acknowledged": FULL is used), so anything acknowledged
/// survives kill -9. Bulk arrays are little-endian: float32 for the x and y of forward records
/// (their precision on the wire), float64 for θ and calibrations. The arrays of forward records
/// are appended to segment files in `<path>.segments/` (CRC-32C per record), fdatasync'd before
/// the index rows that point at them commit; calibrations and twins are BLOBs in SQLite.
/// Opening a store marks every run left RUNNING (by a crash) as ABORTED and returns their ids.
/// Schema versioned with PRAGMA user_version (5); an older version is migrated on open (one
/// transaction per step), opening a newer version is refused.
///
/// Thread rule: all methods are thread-safe (one connection behind a mutex; transactions are
/// short). Errors: StoreError naming the database path and the failing statement; a full disk
/// is recognisable (StoreError::disk_full) and leaves nothing half-written, so the same call can
/// be retried once space has been freed.
/// Schema, file layout and recovery: docs/run-store.md.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "pnn/digital_twin/tensor.hpp"

namespace pnn::daemon {

class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  StoreError(const std::string& message, bool disk_full)
      : std::runtime_error(message), disk_full_(disk_full) {}
  /// True when the write failed because the file system (or the database's page limit) is
  /// full: SQLite reported SQLITE_FULL, or an I/O error whose errno was ENOSPC. The failed
  /// write was rolled back; retrying it after freeing space is safe.
  bool disk_full() const noexcept { return disk_full_; }

 private:
  bool disk_full_ = false;
};

enum class RunState { kRunning = 2, kSucceeded = 3, kFailed = 4, kCancelled = 5, kAborted = 6 };

struct RunRecord {
  std::uint64_t run_id = 0;
  std::string name;
  std::string config_yaml;
  RunState state = RunState::kRunning;
  std::int64_t started_ns = 0;   ///< wall clock
  std::int64_t finished_ns = 0;  ///< 0 while running
  int epochs_done = 0;
  std::string checkpoint_path;   ///< last checkpoint written for this run ("" if none)
  std::string summary_json;      ///< final result, "" until finished
  std::string message;           ///< failure reason
  std::vector<std::string> device_serials;
  std::string owner;             ///< who submitted the run ("" if unknown, e.g. before version 3)
};

/// Metric values round-trip bit-exactly except NaN: SQLite has no NaN, so it is stored as NULL
/// and read back as a quiet NaN (payload not kept). A run holds at most one metric per
/// (phase, epoch): add_metric replaces an existing one.
struct MetricRecord {
  std::string phase;
  int epoch = 0;
  double train_loss = 0.0;
  double train_accuracy = 0.0;
  double test_accuracy = -1.0;
  double seconds = 0.0;
};

/// x and y are stored as float32, row-major: the wire's precision, so a record holds exactly
/// what the client sent and received. x arrives as float32 (Tensor) and is recorded as decoded;
/// y is recorded as the device returned it (double) and stored as static_cast<float> (round to
/// nearest, ±∞ and NaN kept, overflow to ±∞), the same conversion that built the reply's Tensor
/// (to_tensor), so the stored y is bit-for-bit the y the client got. get_forward returns them
/// as doubles, each equal to its float32 value. θ (sent as double) is stored as float64 and
/// round-trips bit-exactly, NaN payloads included. Records migrated from a version-1 file keep
/// their float64 x and y, bit-exactly.
struct ForwardRecord {
  std::uint64_t record_id = 0;
  std::string client_id;
  std::uint64_t request_id = 0;
  std::string device_serial;
  std::int64_t t_start_ns = 0;
  std::int64_t t_end_ns = 0;
  Matrix x;
  Vector theta;
  Matrix y;
};

struct CalibrationRecord {
  std::uint64_t calibration_id = 0;
  std::string device_serial;
  Vector phi;
  double mse_before = 0.0;
  double mse_after = 0.0;
  std::int64_t created_ns = 0;  ///< wall clock; 0 in add_calibration means "now"
};

/// A learned twin (training/learned_twin.hpp), versioned by twin_id, never deleted.
struct TwinRecord {
  std::uint64_t twin_id = 0;
  std::string device_serial;  ///< the device it was fitted on
  std::string device_kind;
  std::string family;         ///< "grey-box", "residual", "mlp", ...
  std::string data_hash;      ///< training::measurement_hash of its measurements
  std::string report_json;    ///< the report card (docs/learned-twins.md "Report card")
  std::string model;          ///< training::encode_twin bytes; empty in list_twins rows
  std::int64_t created_ns = 0;  ///< wall clock; 0 in add_twin means "now"
};

/// The forward records a store holds, for retention and for operators.
struct ForwardStats {
  std::uint64_t records = 0;  ///< rows in forward_records
  std::uint64_t bytes = 0;    ///< their x, θ and y bytes (what the retention limit counts)
  std::uint64_t oldest_record_id = 0, newest_record_id = 0;  ///< 0 when there are none
  std::uint64_t pruned = 0;   ///< records deleted by the retention limit since this store opened
  std::uint64_t max_bytes = 0;  ///< the retention limit (0: none)
  std::uint64_t segments = 0;   ///< segment files holding them
  std::uint64_t segment_syncs = 0;  ///< fdatasyncs of segment files since this store opened
};

class RunStore {
 public:
  /// Opens or creates the database at `path` (parent directory must exist; local disk only).
  /// Only one RunStore at a time may own a file (an flock on `<path>.lock`, released even by
  /// kill -9); a second one, in this process or another, gets StoreError. Throws StoreError also for a
  /// file that is not a run store (not SQLite, corrupt, another application's database) or
  /// has a newer schema version; such files are left untouched.
  explicit RunStore(const std::string& path);
  ~RunStore();
  RunStore(const RunStore&) = delete;
  RunStore& operator=(const RunStore&) = delete;

  /// Runs that were RUNNING when the store was last closed (uncleanly, or without finish_run);
  /// now ABORTED, with finished_ns, a message, and their checkpoint and metrics kept. Ascending.
  const std::vector<std::uint64_t>& aborted_on_open() const { return aborted_on_open_; }

  /// Writes: each is one transaction, committed and synced before the call returns (the
  /// "acknowledged" point). Writes naming a run that does not exist throw StoreError.
  ///
  /// A new run, RUNNING, started_ns = now; returns its id (never reused). `owner`: who
  /// submitted it (a client name or key; stored as given).
  std::uint64_t create_run(const std::string& name, const std::string& config_yaml,
                           const std::vector<std::string>& device_serials,
                           const std::string& owner = "");
  /// Sets a run RUNNING again (resume); keeps its metrics, checkpoint and epochs_done, clears
  /// finished_ns, summary_json and message.
  void reopen_run(std::uint64_t run_id);
  /// Idempotent per (run_id, phase, epoch): a metric for a key the run already has replaces
  /// that row (a job resumed after a crash re-runs epochs without duplicating them). The row
  /// then counts as written last: metrics() lists it after the rows written before it.
  void add_metric(std::uint64_t run_id, const MetricRecord& metric);
  void set_checkpoint(std::uint64_t run_id, const std::string& path, int epochs_done);
  /// `state` must be final (not kRunning: std::invalid_argument). Sets finished_ns to now.
  void finish_run(std::uint64_t run_id, RunState state, const std::string& summary_json,
                  const std::string& message = "");

  std::optional<RunRecord> get_run(std::uint64_t run_id) const;
  /// Newest (highest run_id) first, at most `limit`.
  std::vector<RunRecord> list_runs(std::size_t limit = 50) const;
  /// One per (phase, epoch), in the order they were (last) written; empty for an unknown run.
  std::vector<MetricRecord> metrics(std::uint64_t run_id) const;

  /// A new job id: 1 for a new store, then strictly increasing across closing and reopening
  /// the file (a restarted daemon never reuses a job id). Committed before it returns.
  std::uint64_t allocate_job_id();

  /// Returns the new record_id (record.record_id is ignored). Costs one fdatasync of the segment
  /// and one fsync of the WAL.
  std::uint64_t record_forward(const ForwardRecord& record);
  /// Group commit: all `records` in one transaction (one segment sync, one WAL sync), all or
  /// none; returns their
  /// record_ids in order. What the async recorder uses, so that a burst costs one sync.
  std::vector<std::uint64_t> record_forwards(const std::vector<ForwardRecord>& records);
  /// nullopt for an id never written, or deleted by the retention limit (forward_stats() says
  /// which ids are still held). StoreError naming the segment file, the offset and the fix when
  /// the record's bytes are missing or fail their CRC (nothing else is affected).
  std::optional<ForwardRecord> get_forward(std::uint64_t record_id) const;
  /// The device's newest forward records, newest first, until they hold ≥ max_rows samples (or
  /// there are no more). A scan of the table: for a twin fit, not for a hot path.
  std::vector<ForwardRecord> device_forwards(const std::string& device_serial,
                                             std::uint64_t max_rows) const;
  /// Forward records are a flight recorder, not results: once their bytes exceed `max_bytes`
  /// after a write, whole segments, oldest first, are deleted (their index rows in the same
  /// transaction, the files unlinked after it) until they fit in 90 % of it; the segment of the
  /// record just written always stays. Segments are cut at 1/8 of the limit (at most 64 MiB),
  /// so the records held stay close to it. Runs, metrics, checkpoints and calibrations are
  /// never deleted. 0 (the default of a RunStore) keeps everything.
  void set_forward_retention(std::uint64_t max_bytes);
  ForwardStats forward_stats() const;
  /// What opening the store found in the segment files and did about it, one line each (a torn
  /// tail truncated, an uncommitted segment removed; a missing, short or damaged segment, whose
  /// records then fail to read with a StoreError): empty after a clean shutdown. pnnd logs them.
  const std::vector<std::string>& forward_recovery_notes() const;

  /// Returns the new calibration_id (record.calibration_id is ignored).
  std::uint64_t add_calibration(const CalibrationRecord& record);
  /// The newest (last added) calibration of a device, if any.
  std::optional<CalibrationRecord> latest_calibration(const std::string& device_serial) const;

  /// Returns the new twin_id (record.twin_id is ignored).
  std::uint64_t add_twin(const TwinRecord& record);
  /// With its model bytes; nullopt for an unknown id.
  std::optional<TwinRecord> get_twin(std::uint64_t twin_id) const;
  /// Newest first, at most `limit`, without the model bytes; only the device's when
  /// `device_serial` is not empty.
  std::vector<TwinRecord> list_twins(const std::string& device_serial = "",
                                     std::size_t limit = 100) const;
  /// The twin a device uses from now on (0: its datasheet or calibrated twin), kept across
  /// restarts; active_twin returns 0 for a device never set.
  void set_active_twin(const std::string& device_serial, std::uint64_t twin_id);
  std::uint64_t active_twin(const std::string& device_serial) const;

  /// PRAGMA integrity_check == "ok".
  bool integrity_ok() const;

  /// Tests only: PRAGMA max_page_count = `pages` on this connection (not stored in the file),
  /// so that a unit test can make writes fail as on a full disk (SQLITE_FULL). SQLite never
  /// lowers the limit below the current size; a large value lifts it again.
  void set_max_page_count_for_testing(std::uint64_t pages);

 private:
  struct Impl;
  Impl* impl_;
  std::vector<std::uint64_t> aborted_on_open_;
};

}  // namespace pnn::daemon
