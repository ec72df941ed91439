#include "pnn/digital_twin/stno.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

#include "stno_drive.hpp"

namespace pnn::digital_twin {
namespace {

using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMajor>;
using MutMap = Eigen::Map<RowMajor>;

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument("stno-rnn: " + message);
}

}  // namespace

StnoModel::StnoModel(StnoConfig config) : config_(config) {
  require(config_.num_neurons >= 1, "num_neurons must be ≥ 1");
  require(config_.num_steps >= 1, "num_steps must be ≥ 1");
  require(config_.inputs_per_step >= 1, "inputs_per_step must be ≥ 1");
  require(config_.substeps >= 1, "substeps must be ≥ 1");
  require(config_.period_ns > 0.0 && std::isfinite(config_.period_ns), "period_ns must be > 0");
  require(config_.damping_per_ns > 0.0 && std::isfinite(config_.damping_per_ns),
          "damping Γ_G must be > 0 and finite");
  require(std::isfinite(config_.nonlinearity), "nonlinearity Q must be finite");
  require(config_.floor_per_ns >= 0.0 && std::isfinite(config_.floor_per_ns),
          "floor ε must be ≥ 0 and finite");
  require(config_.threshold_ua > 0.0, "threshold_ua must be > 0");
  require(config_.zeta_min < config_.zeta_max, "zeta_min must be < zeta_max");
}

Index StnoModel::num_params() const {
  const Index n = config_.num_neurons;
  return n + n * config_.inputs_per_step + n * n;
}

Vector StnoModel::initial_params(std::uint64_t seed) const {
  const Index n = config_.num_neurons, m = config_.inputs_per_step;
  const double ith = config_.threshold_ua;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::normal_distribution<double> normal(0.0, 1.0);
  Vector theta(num_params());
  for (Index i = 0; i < n; ++i) theta[i] = ith * (2.0 + 0.1 * uniform(rng));
  const double w_scale = 1.5 * ith / std::sqrt(static_cast<double>(m));
  // Truncated at 2.5 σ, so the draw stays inside any sensible current-source range.
  for (Index i = 0; i < n * m; ++i) theta[n + i] = w_scale * std::clamp(normal(rng), -2.5, 2.5);
  const double r_scale = 0.3 * ith / std::sqrt(static_cast<double>(n));
  for (Index i = 0; i < n * n; ++i) theta[n + n * m + i] = r_scale * normal(rng);
  return theta;
}

Vector StnoModel::physical_params() const {
  Vector phi(2);
  phi << config_.damping_per_ns, config_.nonlinearity;
  return phi;
}

ModelPtr StnoModel::with_physical_params(const VectorRef& phi) const {
  require(phi.size() == 2,
          "two physical parameters (Γ_G, Q) expected, got " + std::to_string(phi.size()));
  require(phi.allFinite(), "physical parameters must be finite");
  StnoConfig c = config_;
  c.damping_per_ns = phi[0];
  c.nonlinearity = phi[1];
  return std::make_shared<StnoModel>(c);  // checks Γ_G > 0
}

struct StnoModel::Trajectory {
  std::vector<Matrix> p;     // p at every Euler step k = 0 … K (kept only for the reverse sweep)
  std::vector<Matrix> zeta;  // clamped ζ at steps 0 … K−1
  std::vector<Eigen::ArrayXXd> inside;  // 1 where the clamp is inactive, else 0
  Matrix p_final;
};

StnoModel::Trajectory StnoModel::run(const MatrixRef& x, const VectorRef& theta, bool keep) const {
  const Index n = config_.num_neurons, m = config_.inputs_per_step, b = x.rows();
  const ConstMap r(theta.data() + n + n * m, n, n);
  const double dt = dt_ns(), g = config_.damping_per_ns, q = config_.nonlinearity;
  const double eps = config_.floor_per_ns, inv_ith = 1.0 / config_.threshold_ua;
  Trajectory f;
  Matrix p = Matrix::Constant(b, n, config_.p_initial);
  Matrix drive(b, n), zeta(b, n);
  const std::size_t total = static_cast<std::size_t>(config_.num_steps * config_.substeps);
  if (keep) {
    f.p.reserve(total + 1);
    f.zeta.reserve(total);
    f.inside.reserve(total);
  }
  for (Index t = 0; t < config_.num_steps; ++t) {
    detail::stno_drive(x, theta, n, m, t, drive);
    for (Index s = 0; s < config_.substeps; ++s) {
      zeta = drive;
      zeta.noalias() += p * r.transpose();
      zeta *= inv_ith;
      if (keep) {
        f.inside.push_back(
            (zeta.array() >= config_.zeta_min && zeta.array() <= config_.zeta_max).cast<double>());
      }
      zeta = zeta.cwiseMax(config_.zeta_min).cwiseMin(config_.zeta_max);
      if (keep) {
        f.p.push_back(p);
        f.zeta.push_back(zeta);
      }
      p.array() +=
          dt *
          (-2.0 * g * (1.0 + q * p.array() - zeta.array() * (1.0 - p.array())) * p.array() + eps);
    }
  }
  if (keep) f.p.push_back(p);
  f.p_final = std::move(p);
  return f;
}

Matrix StnoModel::do_forward(const MatrixRef& x, const VectorRef& theta) const {
  return run(x, theta, false).p_final;
}

void StnoModel::reverse(const Trajectory& f, const MatrixRef& x, const VectorRef& theta,
                        const MatrixRef& y_bar, Cotangents* out, Vector* phi_bar) const {
  const Index n = config_.num_neurons, m = config_.inputs_per_step, b = x.rows();
  const ConstMap r(theta.data() + n + n * m, n, n);
  const double dt = dt_ns(), g = config_.damping_per_ns, q = config_.nonlinearity;
  const double inv_ith = 1.0 / config_.threshold_ua;
  if (out != nullptr) {
    out->x_bar = Matrix::Zero(b, num_inputs());
    out->theta_bar = Vector::Zero(num_params());
  }
  double g_bar = 0.0, q_bar = 0.0;
  Matrix lambda = y_bar;  // ∂L/∂p_k, starting at k = K
  Matrix drive_bar = Matrix::Zero(b, n);
  Matrix z_bar(b, n);
  RowMajor r_bar = RowMajor::Zero(n, n);
  for (Index t = config_.num_steps - 1; t >= 0; --t) {
    drive_bar.setZero();
    for (Index s = config_.substeps - 1; s >= 0; --s) {
      const std::size_t k = static_cast<std::size_t>(t * config_.substeps + s);
      const auto p = f.p[k].array();
      const auto z = f.zeta[k].array();
      // p_{k+1} = p_k + dt F(p_k, ζ_k),  F = −2Γ[1 + Qp − ζ(1 − p)]p + ε.
      if (phi_bar != nullptr) {
        g_bar += dt * (lambda.array() * (-2.0 * (1.0 + q * p - z * (1.0 - p)) * p)).sum();
        q_bar += dt * (lambda.array() * (-2.0 * g * p * p)).sum();
      }
      // ∂F/∂ζ = 2Γ(1 − p)p, through the clamp (zero outside) and ζ = current / I_th.
      z_bar = (dt * inv_ith * 2.0 * g) * (lambda.array() * (1.0 - p) * p * f.inside[k]).matrix();
      // ∂F/∂p = −2Γ[1 + 2Qp − ζ + 2ζp].
      lambda.array() *= 1.0 + dt * (-2.0 * g * (1.0 + 2.0 * q * p - z + 2.0 * z * p));
      lambda.noalias() += z_bar * r;
      if (out != nullptr) {
        r_bar.noalias() += z_bar.transpose() * f.p[k];
        drive_bar += z_bar;
      }
    }
    if (out != nullptr) detail::stno_drive_reverse(x, theta, n, m, t, drive_bar, *out);
  }
  if (out != nullptr) MutMap(out->theta_bar.data() + n + n * m, n, n) = r_bar;
  if (phi_bar != nullptr) {
    phi_bar->resize(2);
    *phi_bar << g_bar, q_bar;
  }
}

Cotangents StnoModel::do_vjp(const MatrixRef& x, const VectorRef& theta,
                             const MatrixRef& y_bar) const {
  Cotangents out;
  reverse(run(x, theta, true), x, theta, y_bar, &out, nullptr);
  return out;
}

Vector StnoModel::do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                                  const MatrixRef& y_bar) const {
  Vector phi_bar;
  reverse(run(x, theta, true), x, theta, y_bar, nullptr, &phi_bar);
  return phi_bar;
}

}  // namespace pnn::digital_twin
