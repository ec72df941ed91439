#include "pnn/digital_twin/mtj_rf.hpp"

#include <cmath>
#include <random>
#include <stdexcept>

namespace pnn::digital_twin {
namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument("mtj-rf: " + message);
}

}  // namespace

double lorentzian_antisym(double d, double w) { return -d * w / (d * d + w * w); }

double lorentzian_antisym_d_detuning(double d, double w) {
  const double s = d * d + w * w;
  return -w * (w * w - d * d) / (s * s);
}

double lorentzian_antisym_d_width(double d, double w) {
  const double s = d * d + w * w;
  return -d * (d * d - w * w) / (s * s);
}

MtjRfModel::MtjRfModel(MtjRfConfig config) : config_(config) {
  require(config_.num_inputs >= 1, "num_inputs must be ≥ 1");
  require(config_.num_outputs >= 1, "num_outputs must be ≥ 1");
  require(config_.spacing_mhz > 0.0 && std::isfinite(config_.spacing_mhz),
          "spacing_mhz must be > 0");
  require(config_.linewidth_mhz > 0.0 && std::isfinite(config_.linewidth_mhz),
          "linewidth w must be > 0 and finite");
  require(std::isfinite(config_.sensitivity_mv_per_uw), "sensitivity κ must be finite");
  require(std::isfinite(config_.zeta_bias) && std::isfinite(config_.zeta_per_mv),
          "zeta_bias and zeta_per_mv must be finite");
  require(std::isfinite(config_.nonlinearity) && config_.nonlinearity > -config_.zeta_min,
          "nonlinearity Q must be finite and > −zeta_min");
  require(config_.zeta_min < config_.zeta_max, "zeta_min must be < zeta_max");
}

Vector MtjRfModel::initial_params(std::uint64_t seed) const {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(-config_.linewidth_mhz, config_.linewidth_mhz);
  Vector theta(num_params());
  for (Index i = 0; i < theta.size(); ++i) theta[i] = uniform(rng);
  return theta;
}

Vector MtjRfModel::physical_params() const {
  Vector phi(2);
  phi << config_.sensitivity_mv_per_uw, config_.linewidth_mhz;
  return phi;
}

ModelPtr MtjRfModel::with_physical_params(const VectorRef& phi) const {
  require(phi.size() == 2,
          "two physical parameters (κ, w) expected, got " + std::to_string(phi.size()));
  require(phi.allFinite(), "physical parameters must be finite");
  MtjRfConfig c = config_;
  c.sensitivity_mv_per_uw = phi[0];
  c.linewidth_mhz = phi[1];
  return std::make_shared<MtjRfModel>(c);  // checks w > 0
}

Matrix MtjRfModel::weights(const VectorRef& theta) const {
  const Index n = config_.num_outputs, k_total = config_.num_inputs;
  const double df = config_.spacing_mhz, w = config_.linewidth_mhz;
  Matrix weights = Matrix::Zero(n, k_total);
  for (Index j = 0; j < k_total; ++j) {
    for (Index k = 0; k < k_total; ++k) {
      const double offset = static_cast<double>(j - k) * df;  // f_j − f_k
      for (Index i = 0; i < n; ++i) {
        weights(i, j) += lorentzian_antisym(offset - theta[i * k_total + k], w);
      }
    }
  }
  return weights;
}

Matrix MtjRfModel::do_forward(const MatrixRef& x, const VectorRef& theta) const {
  const Matrix v = config_.sensitivity_mv_per_uw * (x * weights(theta).transpose());
  const Eigen::ArrayXXd z = (config_.zeta_bias + config_.zeta_per_mv * v.array())
                                .max(config_.zeta_min)
                                .min(config_.zeta_max);
  return ((z - 1.0) / (z + config_.nonlinearity)).matrix();
}

Matrix MtjRfModel::voltage_bar(const Matrix& v, const MatrixRef& y_bar) const {
  const Eigen::ArrayXXd raw = config_.zeta_bias + config_.zeta_per_mv * v.array();
  const Eigen::ArrayXXd inside =
      (raw >= config_.zeta_min && raw <= config_.zeta_max).cast<double>();
  const double q = config_.nonlinearity;
  // d/dζ (ζ − 1)/(ζ + Q) = (Q + 1)/(ζ + Q)².
  return (config_.zeta_per_mv * y_bar.array() * inside * (q + 1.0) / (raw + q).square()).matrix();
}

Cotangents MtjRfModel::do_vjp(const MatrixRef& x, const VectorRef& theta,
                              const MatrixRef& y_bar) const {
  const Index n = config_.num_outputs, k_total = config_.num_inputs;
  const double kappa = config_.sensitivity_mv_per_uw, df = config_.spacing_mhz,
               w = config_.linewidth_mhz;
  const Matrix wts = weights(theta);
  const Matrix v_bar = voltage_bar(kappa * (x * wts.transpose()), y_bar);
  Cotangents out;
  out.x_bar = kappa * (v_bar * wts);
  const Matrix w_bar = kappa * (v_bar.transpose() * x);  // n × K
  out.theta_bar = Vector::Zero(num_params());
  // W_ij = Σ_k L_a((j − k)Δf − δ_ik)  ⇒  ∂W_ij/∂δ_ik = −L_a'((j − k)Δf − δ_ik).
  for (Index k = 0; k < k_total; ++k) {
    for (Index j = 0; j < k_total; ++j) {
      const double offset = static_cast<double>(j - k) * df;
      for (Index i = 0; i < n; ++i) {
        out.theta_bar[i * k_total + k] -=
            w_bar(i, j) * lorentzian_antisym_d_detuning(offset - theta[i * k_total + k], w);
      }
    }
  }
  return out;
}

Vector MtjRfModel::do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                                   const MatrixRef& y_bar) const {
  const Index n = config_.num_outputs, k_total = config_.num_inputs;
  const double kappa = config_.sensitivity_mv_per_uw, df = config_.spacing_mhz,
               w = config_.linewidth_mhz;
  const Matrix wts = weights(theta);
  const Matrix xw = x * wts.transpose();
  const Matrix v_bar = voltage_bar(kappa * xw, y_bar);
  const double kappa_bar = (v_bar.array() * xw.array()).sum();
  const Matrix w_bar = kappa * (v_bar.transpose() * x);
  double width_bar = 0.0;
  for (Index k = 0; k < k_total; ++k) {
    for (Index j = 0; j < k_total; ++j) {
      const double offset = static_cast<double>(j - k) * df;
      for (Index i = 0; i < n; ++i) {
        width_bar += w_bar(i, j) * lorentzian_antisym_d_width(offset - theta[i * k_total + k], w);
      }
    }
  }
  Vector phi_bar(2);
  phi_bar << kappa_bar, width_bar;
  return phi_bar;
}

}  // namespace pnn::digital_twin
