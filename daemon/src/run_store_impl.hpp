#pragma once
// RunStore::Impl (private to daemon/src): the connection, its prepared statements and the
// forward-record bookkeeping, shared by run_store.cpp (runs, metrics, calibrations) and
// run_store_forward.cpp (forward records and their retention).
#include <atomic>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pnn/daemon/run_store.hpp"
#include "run_store_sqlite.hpp"
#include "segment_log.hpp"

namespace pnn::daemon {

using sqlite::Db;
using sqlite::FileLock;
using sqlite::Query;
using sqlite::Stmt;
using sqlite::Transaction;
using sqlite::TxStmts;

// Member order matters for destruction: statements are finalized first, then the connection is
// closed (which checkpoints the WAL into the database and deletes it), then the lock is released.
struct RunStore::Impl {
  explicit Impl(const std::string& path);

  // Marks RUNNING runs ABORTED in one transaction; returns their ids.
  std::vector<std::uint64_t> abort_running_runs();
  RunRecord read_run(const Query& q);
  void read_devices(RunRecord& run);
  void check_changed(std::string_view what, std::uint64_t run_id) const;
  // One forward record inside the caller's transaction and segment batch: its arrays appended to
  // the current segment, its index row inserted; returns its record_id and adds its payload
  // bytes to `added`.
  std::uint64_t insert_forward_row(const ForwardRecord& record, std::uint64_t& added);
  // What prune_forwards deleted.
  struct Pruned {
    std::uint64_t records = 0, bytes = 0;
    std::uint64_t oldest_left = 0;  // the oldest record still held (when records > 0)
    std::uint64_t upto_segment = 0;  // the newest segment deleted (when records > 0)
  };
  // Inside the caller's transaction, after its inserts: while the records' bytes (`total`)
  // exceed the retention limit, deletes whole segments, oldest first, never the one holding
  // `newest`, down to 90 % of it. The files are unlinked after the commit (segments.drop_upto).
  Pruned prune_forwards(std::uint64_t total, std::uint64_t newest);
  // At open: the committed extent of each segment from the index, then segments.recover().
  void open_segments();
  // The largest segment file written: 1/8 of the retention limit (so that retention by whole
  // segments keeps close to the limit), at most 64 MiB.
  std::uint64_t segment_bytes() const;
  // The rows in one transaction with the retention check (one fsync); their record_ids.
  // forward_stats follows once the transaction has committed.
  std::vector<std::uint64_t> write_forwards(std::span<const ForwardRecord> records);

  // Retention (forward_retention): the records' BLOB bytes and the limit (0 = none).
  std::atomic<std::uint64_t> forward_max_bytes{0};  // set without the mutex (pnnd's SIGHUP)
  ForwardStats forward_stats;
  std::vector<std::string> segment_notes;  // what open_segments found and repaired

  FileLock lock;
  Db db;
  mutable std::mutex mutex;
  detail::SegmentLog segments;
  // Scratch buffers for forward-record arrays, reused so that record_forward does not allocate.
  std::vector<float> f32_scratch;
  std::vector<std::uint8_t> payload, theta_bytes;

  TxStmts tx;
  Stmt insert_run, insert_run_device, reopen_run, insert_metric, set_checkpoint, finish_run;
  Stmt next_job_id;
  Stmt select_run, select_runs, select_devices, select_metrics;
  Stmt insert_forward, select_forward, select_device_forwards, insert_calibration, select_latest_calibration;
  Stmt delete_forwards_upto, select_oldest_forward_id;
  Stmt insert_twin, select_twin, select_twins, select_device_twins, set_active_twin,
      select_active_twin;
  Stmt integrity_check;
};

}  // namespace pnn::daemon
