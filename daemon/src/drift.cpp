#include "drift.hpp"

#include <cmath>
#include <cstdio>

namespace pnn::daemon::detail {

std::optional<DriftSample> DriftMonitor::take(const MatrixRef& x, const VectorRef& theta,
                                              const Matrix& y, Clock::time_point now) {
  if (!config_.enabled || x.rows() == 0) return std::nullopt;
  std::lock_guard lock(mutex_);
  if (in_flight_) return std::nullopt;
  if (last_taken_ && now - *last_taken_ < std::chrono::milliseconds(config_.every_ms)) {
    return std::nullopt;
  }
  last_taken_ = now;
  in_flight_ = true;
  const Index rows = std::min<Index>(x.rows(), static_cast<Index>(config_.max_rows));
  return DriftSample{x.topRows(rows), y.topRows(rows), theta, generation_};
}

void DriftMonitor::abandon() {
  std::lock_guard lock(mutex_);
  in_flight_ = false;
}

bool DriftMonitor::add(const DriftSample& sample, const Matrix& y_twin) {
  std::lock_guard lock(mutex_);
  in_flight_ = false;
  if (sample.twin_generation != generation_) return false;
  if (y_twin.rows() != sample.y.rows() || y_twin.cols() != sample.y.cols() || !y_twin.allFinite()) {
    ++nonfinite_;
    return false;
  }
  // A sample of another width than the window's (the device's outputs changed with its twin,
  // which restarts the window anyway) starts the window afresh rather than mixing columns.
  if (!window_.empty() && window_.front().sum.size() != sample.y.cols()) window_.clear();
  Stats s;
  s.sse = (y_twin - sample.y).squaredNorm();
  s.sum = sample.y.colwise().sum();
  s.sum_sq = sample.y.colwise().squaredNorm();
  s.rows = static_cast<double>(sample.y.rows());
  window_.push_back(std::move(s));
  while (window_.size() > config_.window) window_.pop_front();
  const bool full = window_.size() == config_.window;
  const DriftSnapshot now = snapshot_locked();
  if (full && !baseline_) baseline_ = now.nmse;
  const bool over = full && config_.warn_nmse > 0.0 && now.nmse > config_.warn_nmse;
  const bool changed = over != over_bound_;
  over_bound_ = over;
  return changed;
}

void DriftMonitor::twin_changed() {
  std::lock_guard lock(mutex_);
  ++generation_;
  window_.clear();
  baseline_.reset();
  over_bound_ = false;
}

DriftSnapshot DriftMonitor::snapshot() const {
  std::lock_guard lock(mutex_);
  return snapshot_locked();
}

DriftSnapshot DriftMonitor::snapshot_locked() const {
  DriftSnapshot out;
  out.enabled = config_.enabled;
  out.warn_nmse = config_.warn_nmse;
  out.samples = window_.size();
  out.over_bound = over_bound_;
  if (baseline_) {
    out.baseline_set = true;
    out.baseline_nmse = *baseline_;
  }
  if (!window_.empty()) {
    const Index cols = window_.front().sum.size();
    double sse = 0.0, rows = 0.0;
    Eigen::RowVectorXd sum = Eigen::RowVectorXd::Zero(cols), sum_sq = Eigen::RowVectorXd::Zero(cols);
    for (const Stats& s : window_) {
      sse += s.sse;
      sum += s.sum;
      sum_sq += s.sum_sq;
      rows += s.rows;
    }
    // Σ_c Σ_rows (y − ȳ_c)², each output about its own mean.
    const double total_sq = sum_sq.sum();
    const double variance = rows > 0.0 ? total_sq - sum.squaredNorm() / rows : 0.0;
    // Readings that do not vary over the window: normalise by their mean square instead (still
    // 0 for a perfect twin), and by 1 if they are all zero.
    const double scale = variance > 1e-12 * total_sq && variance > 0.0
                             ? variance
                             : (total_sq > 0.0 ? total_sq : 1.0);
    out.nmse = sse / scale;
  }
  return out;
}

std::string drift_warning(const DriftSnapshot& s, const std::string& device) {
  if (!s.over_bound) return "";
  char text[512];
  std::snprintf(text, sizeof text,
                "twin drift: the rolling NMSE between the twin and the measured outputs is %.4g "
                "over the last %llu sampled forwards, past devices.%s.drift.warn_nmse %.4g "
                "(first window since the twin was set: %.4g); recalibrate (pnnctl calibrate) or "
                "refit the twin",
                s.nmse, static_cast<unsigned long long>(s.samples), device.c_str(), s.warn_nmse,
                s.baseline_nmse);
  return text;
}

std::uint64_t DriftMonitor::dropped_nonfinite() const {
  std::lock_guard lock(mutex_);
  return nonfinite_;
}

}  // namespace pnn::daemon::detail
