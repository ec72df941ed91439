#include "resistive_reality.hpp"

#include <cmath>

namespace pnn::drivers::sim {

namespace dt = digital_twin;

ResistiveReality::ResistiveReality(const ResistiveRealityConfig& config)
    : config_(config), rng_(config.seed) {
  const auto& c = config.datasheet;
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  mismatch_.resize(c.num_params());
  for (Index i = 0; i < mismatch_.size(); ++i) {
    mismatch_[i] = std::max(0.5, 1.0 + config.mismatch * normal(rng_));
  }
  thresholds_.resize(c.num_hidden);
  for (Index j = 0; j < thresholds_.size(); ++j) {
    thresholds_[j] = c.diode_threshold_volts * (1.0 + config.threshold_spread * uniform(rng_));
  }
}

Vector ResistiveReality::conductances(const VectorRef& theta) const {
  const auto& c = config_.datasheet;
  const double steps = std::ldexp(1.0, config_.dac_bits) - 1.0;
  const double span = c.g_max_ms - c.g_min_ms;
  Vector g(theta.size());
  for (Index i = 0; i < g.size(); ++i) {
    const double code = std::round((theta[i] - c.g_min_ms) / span * steps);
    g[i] = (c.g_min_ms + code / steps * span) * mismatch_[i];
  }
  return g;
}

ResistiveReality::Relaxed ResistiveReality::relax(const MatrixRef& x, const VectorRef& theta,
                                                  const dt::SettleBoundary& boundary,
                                                  const Matrix* start) {
  const auto& c = config_.datasheet;
  const dt::SettleOutcome eq =
      dt::settle_network(c, thresholds_, x, conductances(theta), boundary, start);
  Matrix v0 = start ? *start : Matrix::Zero(x.rows(), c.num_nodes());
  if (boundary.kind == dt::SettleBoundary::Kind::kClamped) {
    v0.rightCols(c.num_output_nodes()) = boundary.values;  // held by the sources from t = 0
  }
  const double left = std::exp(-config_.settle_us / config_.tau_us);
  const double residual_volts = left * (v0 - eq.nodes).cwiseAbs().maxCoeff();
  return {eq.nodes + left * (v0 - eq.nodes),
          eq.converged && residual_volts <= 1e-3 * config_.settle_tolerance_mv};
}

void ResistiveReality::add_noise(Matrix& m) {
  std::normal_distribution<double> normal(0.0, 1e-3 * config_.noise_mv);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] += normal(rng_);
}

Matrix ResistiveReality::run(const MatrixRef& x, const VectorRef& theta) {
  std::lock_guard lock(mutex_);
  // forward has no timeout of its own: a cold free settle that has not finished is read as it
  // is (off by what is left of the relaxation).
  Matrix v = relax(x, theta, dt::SettleBoundary::free(), nullptr).nodes;
  add_noise(v);
  return dt::readout(config_.datasheet, v);
}

std::optional<Matrix> ResistiveReality::settle(const MatrixRef& x, const VectorRef& theta,
                                               const dt::SettleBoundary& boundary,
                                               bool warm_start) {
  std::lock_guard lock(mutex_);
  const bool warm =
      warm_start && last_x_.rows() == x.rows() && last_x_.cols() == x.cols() && last_x_ == x;
  Relaxed r = relax(x, theta, boundary, warm ? &last_nodes_ : nullptr);
  last_x_ = x;  // the network is left where it got to, settled or not
  last_nodes_ = r.nodes;
  if (!r.settled) return std::nullopt;
  Matrix read = std::move(r.nodes);
  add_noise(read);
  return read;
}

}  // namespace pnn::drivers::sim
