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
  Stats s;
  s.sse = (y_twin - sample.y).squaredNorm();
  s.sum = sample.y.sum();
  s.sum_sq = sample.y.squaredNorm();
  s.count = static_cast<double>(sample.y.size());
  window_.push_back(s);
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
  Stats total;
  for (const Stats& s : window_) {
    total.sse += s.sse;
    total.sum += s.sum;
    total.sum_sq += s.sum_sq;
    total.count += s.count;
  }
  if (total.count > 0) {
    const double variance = total.sum_sq - total.sum * total.sum / total.count;
    // Readings that do not vary over the window: normalise by their mean square instead (still
    // 0 for a perfect twin), and by 1 if they are all zero.
    const double scale = variance > 1e-12 * total.sum_sq && variance > 0.0
                             ? variance
                             : (total.sum_sq > 0.0 ? total.sum_sq : 1.0);
    out.nmse = total.sse / scale;
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
