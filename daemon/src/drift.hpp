#pragma once
// The drift monitor of one device: how well the device's twin still predicts what the device
// measures. Forwards are sampled (at most one per `every_ms`, its first `max_rows` rows), the
// twin is evaluated at the sampled request off the device's thread, and the rolling normalised
// residual over the last `window` samples is
//     NMSE = Σ‖y_twin − y‖² / Σ‖y − ȳ‖²      (ȳ: each output's mean reading over the window)
// (0: the twin predicts every reading; 1: no better than each output's mean), the definition of
// `twin_nmse` in the twin-fit reports (training/learned_twin.hpp), so the two figures compare.
// Thread-safe.
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>

#include "pnn/common/tensor.hpp"
#include "pnn/daemon/config.hpp"

namespace pnn::daemon::detail {

/// What the monitor shows (DeviceInfo's drift fields, `pnnctl devices`, the dashboard).
struct DriftSnapshot {
  bool enabled = false;
  std::uint64_t samples = 0;         ///< sampled forwards in the window
  double nmse = 0.0;                 ///< rolling NMSE over the window (when samples > 0)
  double baseline_nmse = 0.0;        ///< the first full window's NMSE since the twin was set
  bool baseline_set = false;
  bool over_bound = false;           ///< warn_nmse > 0 and a full window's NMSE is past it
  double warn_nmse = 0.0;
};

/// Why health is WARNING because of drift, for `device` as named in the config ("" when the
/// snapshot is within the bound).
std::string drift_warning(const DriftSnapshot& s, const std::string& device);

/// One sampled forward, to be evaluated on the twin.
struct DriftSample {
  Matrix x, y;
  Vector theta;
  std::uint64_t twin_generation = 0;
};

class DriftMonitor {
 public:
  using Clock = std::chrono::steady_clock;
  explicit DriftMonitor(DriftConfig config) : config_(config) {}

  /// On the thread of the forward: the sample to evaluate, if one is due (rate limit, and not
  /// while the previous one is still being evaluated). Copies at most max_rows rows.
  std::optional<DriftSample> take(const MatrixRef& x, const VectorRef& theta, const Matrix& y,
                                  Clock::time_point now);
  /// A sample's twin prediction. Returns whether the snapshot's bound state changed. A sample
  /// taken before the twin changed is dropped. A non-finite prediction (a twin evaluated out
  /// of its domain) is dropped and counted.
  bool add(const DriftSample& sample, const Matrix& y_twin);
  /// The sample in flight was not evaluated (no twin, the compute pool refused it).
  void abandon();
  /// The twin changed (calibration, another twin): the window and its baseline restart.
  void twin_changed();
  DriftSnapshot snapshot() const;
  std::uint64_t dropped_nonfinite() const;

 private:
  struct Stats {  // of one sample: per output column, sums over its rows
    double sse = 0;
    Eigen::RowVectorXd sum, sum_sq;
    double rows = 0;
  };
  DriftSnapshot snapshot_locked() const;

  const DriftConfig config_;
  mutable std::mutex mutex_;
  std::deque<Stats> window_;
  bool in_flight_ = false;
  std::optional<Clock::time_point> last_taken_;
  std::uint64_t generation_ = 0;
  std::optional<double> baseline_;
  bool over_bound_ = false;
  std::uint64_t nonfinite_ = 0;
};

}  // namespace pnn::daemon::detail
