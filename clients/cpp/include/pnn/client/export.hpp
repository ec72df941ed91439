#pragma once
/// Exports of one run of the daemon's run store (a GetRun reply) to the files that ML users'
/// tools read (docs/clients.md, "Export"):
///   - TensorBoard: `DIR/run-<id>/events.out.tfevents.<start s>.<host>.pnn-hil.<id>`, TFRecord
///     framing (length, masked CRC-32C of the length, data, masked CRC-32C of the data) of
///     `Event` protobufs (TensorBoard's event.proto / summary.proto): first the file version
///     "brain.Event:2", then one scalar summary per metric point;
///   - MLflow's file store: `DIR/<experiment_id>/meta.yaml`, `DIR/<experiment_id>/<run_uuid>/`
///     with `meta.yaml`, `metrics/<key>` ("<timestamp ms> <value> <step>" lines), `params/<key>`,
///     `tags/<key>` and an empty `artifacts/`;
///   - CSV: `phase,epoch,train_loss,train_accuracy,test_accuracy,seconds`, one row per epoch.
///
/// Scalar tags are "<phase>/<metric>" (e.g. "pat/train_loss"), step = epoch; test_accuracy −1
/// (not measured) is left out (an empty CSV field). The store keeps each epoch's duration, not
/// its wall time: a point's time is the run's start plus the durations of the epochs recorded
/// up to it. Re-exporting is deterministic: the same file and directory names, replaced whole
/// (never appended to), and the MLflow run id is a name-based UUID (v5) of the run id and start
/// time, so it is the same on every export and differs between run stores.
///
/// Pure except for the file writes; thread-safe for different targets.
#include <cstdint>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "pnn/proto/wire.hpp"

namespace pnn::client {

/// An export was refused or failed. what() names the file or directory, the problem and the
/// fix (e.g. an earlier export without `overwrite`, a directory that cannot be written).
class ExportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ExportTargets {
  std::filesystem::path tensorboard_dir;  ///< "" = no TensorBoard export
  std::filesystem::path mlflow_dir;       ///< "" = no MLflow export
  std::filesystem::path csv_file;         ///< "" = no CSV export
};

struct ExportOptions {
  bool overwrite = false;              ///< replace an earlier export of the same run
  std::string host;                    ///< host part of the event file name; "" = gethostname()
  std::string experiment = "pnn-hil";  ///< MLflow experiment name (created if missing)
  std::string source;                  ///< where the run came from (tag mlflow.source.name)
};

/// Checks every target first (an earlier export without `overwrite`, a path that is not a
/// directory, a directory that cannot be created), so a refused export writes nothing; then
/// writes each. Returns what was written (event file, MLflow run directory, CSV file), in
/// that order. Throws ExportError.
std::vector<std::filesystem::path> export_run(const v1::GetRunReply& run,
                                              const ExportTargets& targets,
                                              const ExportOptions& options = {});

// ---- the pieces, for tests and other writers --------------------------------------------------

/// One scalar of a run: tag "<phase>/<metric>" or "final/<key>" (the summary's accuracies and
/// wall_s, at the last epoch), step, wall time in seconds since the epoch, value.
struct ScalarPoint {
  std::string tag;
  std::int64_t step = 0;
  double wall_time_s = 0.0;
  double value = 0.0;
};

/// The run's scalars in store order: per epoch train_loss, train_accuracy, test_accuracy (if
/// ≥ 0) and epoch_seconds, then the final ones.
std::vector<ScalarPoint> scalar_points(const v1::GetRunReply& run);

/// TFRecord's mask of a CRC-32C: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
std::uint32_t masked_crc32c(std::span<const std::uint8_t> data) noexcept;
/// Appends one TFRecord (u64 LE length, masked CRC of those 8 bytes, data, masked CRC of data).
void append_tfrecord(std::string& out, std::string_view data);
/// `Event{wall_time, file_version}` (event.proto fields 1 and 3).
std::string encode_file_version_event(double wall_time_s, std::string_view file_version);
/// `Event{wall_time, step, summary{value{tag, simple_value}}}` (fields 1, 2, 5; Summary.value 1;
/// Value.tag 1, Value.simple_value 2). The value is rounded to float, as simple_value is.
std::string encode_scalar_event(double wall_time_s, std::int64_t step, std::string_view tag,
                                float value);

/// The whole event file of a run.
std::string tensorboard_events(const v1::GetRunReply& run);
/// "events.out.tfevents.<start s>.<host>.pnn-hil.<run id>".
std::string tensorboard_file_name(const v1::GetRunReply& run, const std::string& host);

/// The MLflow run id: UUID v5 (URL namespace) of "pnn-hil:run:<run id>:<started_ns>", as 32
/// hex digits (Python: uuid.uuid5(uuid.NAMESPACE_URL, name).hex).
std::string mlflow_run_uuid(const v1::GetRunReply& run);
/// A new experiment's id: the first 8 bytes of UUID v5 (URL namespace) of
/// "pnn-hil:experiment:<name>", big-endian, top bit cleared, in decimal.
std::string mlflow_experiment_id(const std::string& name);
/// MLflow RunStatus of a job state: RUNNING 1, SCHEDULED 2 (queued), FINISHED 3 (succeeded),
/// FAILED 4 (failed, aborted), KILLED 5 (cancelled).
int mlflow_status(v1::JobState state);

/// The CSV file of a run.
std::string metrics_csv(const v1::GetRunReply& run);

}  // namespace pnn::client
