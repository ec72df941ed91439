#include "pnn/digital_twin/single_photon.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

namespace pnn::digital_twin {
namespace {

using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument("optical-spd: " + message);
}

}  // namespace

SinglePhotonModel::SinglePhotonModel(SinglePhotonConfig config) : config_(config) {
  require(config_.num_inputs >= 1 && config_.num_outputs >= 1, "inputs and outputs must be ≥ 1");
  require(std::isfinite(config_.photons_per_unit) && config_.photons_per_unit > 0.0,
          "photons per unit |Wx| must be finite and > 0");
  require(std::isfinite(config_.efficiency), "efficiency η must be finite");
  require(std::isfinite(config_.dark_probability), "dark-click probability must be finite");
}

Vector SinglePhotonModel::initial_params(std::uint64_t seed) const {
  std::mt19937_64 rng(seed);
  const double w = std::min(
      1.0, 2.0 / (config_.photons_per_unit * std::sqrt(static_cast<double>(config_.num_inputs))));
  std::uniform_real_distribution<double> uniform(-w, w);
  Vector theta(num_params());
  for (Index i = 0; i < theta.size(); ++i) theta[i] = uniform(rng);
  return theta;
}

Vector SinglePhotonModel::physical_params() const {
  Vector phi(2);
  phi << config_.efficiency, config_.dark_probability;
  return phi;
}

ModelPtr SinglePhotonModel::with_physical_params(const VectorRef& phi) const {
  require(phi.size() == 2,
          "two physical parameters (efficiency η, dark probability) expected, got " +
              std::to_string(phi.size()));
  require(phi.allFinite(), "physical parameters must be finite");
  SinglePhotonConfig config = config_;
  config.efficiency = phi[0];
  config.dark_probability = phi[1];
  return std::make_shared<SinglePhotonModel>(config);
}

Matrix SinglePhotonModel::pre_activation(const MatrixRef& x, const VectorRef& theta) const {
  const Eigen::Map<const RowMajor> w(theta.data(), config_.num_outputs, config_.num_inputs);
  return x * w.transpose();
}

Matrix SinglePhotonModel::photons(const MatrixRef& x, const VectorRef& theta) const {
  check_input(x, theta);
  return config_.photons_per_unit * pre_activation(x, theta).cwiseAbs();
}

Matrix SinglePhotonModel::do_forward(const MatrixRef& x, const VectorRef& theta) const {
  const double rate = config_.efficiency * config_.photons_per_unit;
  const Eigen::ArrayXXd z = pre_activation(x, theta).array();
  return (1.0 - (1.0 - config_.dark_probability) * (-rate * z.abs()).exp()).matrix();
}

Cotangents SinglePhotonModel::do_vjp(const MatrixRef& x, const VectorRef& theta,
                                     const MatrixRef& y_bar) const {
  const Eigen::Map<const RowMajor> w(theta.data(), config_.num_outputs, config_.num_inputs);
  const double rate = config_.efficiency * config_.photons_per_unit;
  const Eigen::ArrayXXd z = pre_activation(x, theta).array();
  // ∂y/∂z = (1 − p_d) e^{−rate|z|} · rate · sign(z), with sign(0) = 0 (header: the cusp).
  const Eigen::ArrayXXd sign = (z > 0.0).cast<double>() - (z < 0.0).cast<double>();
  const Matrix z_bar =
      (y_bar.array() * (1.0 - config_.dark_probability) * rate * (-rate * z.abs()).exp() * sign)
          .matrix();
  Cotangents out{z_bar * w, Vector(num_params())};
  Eigen::Map<RowMajor>(out.theta_bar.data(), config_.num_outputs, config_.num_inputs) =
      z_bar.transpose() * x;
  return out;
}

Vector SinglePhotonModel::do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                                          const MatrixRef& y_bar) const {
  const double n_ph = config_.photons_per_unit;
  const Eigen::ArrayXXd lambda = n_ph * pre_activation(x, theta).array().abs();
  const Eigen::ArrayXXd no_click = (-config_.efficiency * lambda).exp();
  Vector phi_bar(2);
  phi_bar[0] = (y_bar.array() * (1.0 - config_.dark_probability) * no_click * lambda).sum();
  phi_bar[1] = (y_bar.array() * no_click).sum();
  return phi_bar;
}

}  // namespace pnn::digital_twin
