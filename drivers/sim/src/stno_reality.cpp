#include "stno_reality.hpp"

#include <cmath>
#include <numbers>

namespace pnn::drivers::sim {

StnoReality::StnoReality(const StnoRealityConfig& config) : config_(config), rng_(config.seed) {
  const Index n = config.datasheet.num_neurons;
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  damping_.resize(n);
  nonlinearity_.resize(n);
  for (Index i = 0; i < n; ++i) {
    damping_[i] = config.datasheet.damping_per_ns * (1.0 + config.spread * uniform(rng_));
    nonlinearity_[i] = config.datasheet.nonlinearity * (1.0 + config.spread * uniform(rng_));
  }
}

Matrix StnoReality::run(const MatrixRef& x, const VectorRef& theta) {
  using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const digital_twin::StnoConfig& c = config_.datasheet;
  const Index n = c.num_neurons, m = c.inputs_per_step, b = x.rows();
  const Eigen::Map<const RowMajor> w(theta.data() + n, n, m);
  const Eigen::Map<const RowMajor> r(theta.data() + n + n * m, n, n);
  const auto bias = theta.head(n).transpose();
  const Index substeps = c.substeps * config_.substeps_factor;
  const double dt = c.period_ns / static_cast<double>(substeps);
  const double inv_ith = 1.0 / c.threshold_ua;
  const double noise = std::sqrt(0.5 * c.floor_per_ns * dt);  // per real quadrature
  const double two_pi = 2.0 * std::numbers::pi;
  const Eigen::RowVectorXd g = damping_.transpose(), q = nonlinearity_.transpose();

  std::lock_guard lock(mutex_);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> phase(0.0, two_pi);
  Eigen::ArrayXXd re(b, n), im(b, n);
  for (Index i = 0; i < re.size(); ++i) {
    const double ph = phase(rng_);
    re.data()[i] = std::sqrt(c.p_initial) * std::cos(ph);
    im.data()[i] = std::sqrt(c.p_initial) * std::sin(ph);
  }
  Matrix drive(b, n), zeta(b, n), p(b, n);
  for (Index t = 0; t < c.num_steps; ++t) {
    drive.noalias() = x.middleCols(t * m, m) * w.transpose();
    drive.rowwise() += bias;
    for (Index s = 0; s < substeps; ++s) {
      p = (re.square() + im.square()).matrix();
      zeta = drive;
      zeta.noalias() += p * r.transpose();
      zeta = (zeta * inv_ith).cwiseMax(c.zeta_min).cwiseMin(c.zeta_max);
      for (Index j = 0; j < n; ++j) {
        for (Index i = 0; i < b; ++i) {
          const double pij = p(i, j), z = zeta(i, j);
          // Net amplitude gain rate −Γ+ + Γ−, and the phase advance of this step.
          const double gain = 1.0 + dt * g[j] * (z * (1.0 - pij) - 1.0 - q[j] * pij);
          const double angle = -two_pi * (config_.f0_ghz + config_.nonlinear_shift_ghz * pij) * dt;
          const double cs = std::cos(angle), sn = std::sin(angle);
          const double a = re(i, j) * gain, bb = im(i, j) * gain;
          re(i, j) = a * cs - bb * sn + noise * normal(rng_);
          im(i, j) = a * sn + bb * cs + noise * normal(rng_);
        }
      }
    }
  }
  Matrix out = (re.square() + im.square()).matrix();
  for (Index i = 0; i < out.size(); ++i) out.data()[i] += config_.readout_noise * normal(rng_);
  return out;
}

}  // namespace pnn::drivers::sim
