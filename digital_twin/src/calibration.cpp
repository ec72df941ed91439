#include "pnn/digital_twin/calibration.hpp"

#include <cmath>
#include <stdexcept>

namespace pnn::digital_twin {

double twin_mse(const DifferentiableModel& model, const std::vector<Measurement>& data) {
  double sum = 0.0;
  Index count = 0;
  for (const auto& m : data) {
    sum += (model.forward(m.x, m.theta) - m.y).squaredNorm();
    count += m.y.size();
  }
  return count == 0 ? 0.0 : sum / static_cast<double>(count);
}

CalibrationResult calibrate(const DifferentiableModel& twin, const std::vector<Measurement>& data,
                            const CalibrationOptions& options) {
  if (twin.num_physical_params() == 0) {
    throw std::invalid_argument("calibrate: the " + twin.name() +
                                " twin has no physical parameters to fit");
  }
  if (data.empty()) throw std::invalid_argument("calibrate: no measurements given");
  Index count = 0;
  for (const auto& m : data) {
    if (m.y.rows() != m.x.rows() || m.y.cols() != twin.num_outputs()) {
      throw std::invalid_argument("calibrate: measured outputs have shape " + shape_string(m.y) +
                                  ", expected " + shape_string(m.x.rows(), twin.num_outputs()));
    }
    if (!m.x.allFinite() || !m.y.allFinite() || !m.theta.allFinite()) {
      throw std::invalid_argument("calibrate: a measurement contains NaN or Inf");
    }
    count += m.y.size();
  }

  Vector phi = twin.physical_params();
  ModelPtr current = twin.with_physical_params(phi);
  CalibrationResult result{current, phi, twin_mse(twin, data), 0.0, 0};
  double best = result.mse_before;
  Vector m1 = Vector::Zero(phi.size()), m2 = Vector::Zero(phi.size());
  const double beta1 = 0.9, beta2 = 0.999;
  double previous = best;
  for (int it = 1; it <= options.max_iterations; ++it) {
    Vector grad = Vector::Zero(phi.size());
    for (const auto& m : data) {
      const Matrix residual = current->forward(m.x, m.theta) - m.y;
      grad += current->physical_vjp(m.x, m.theta, (2.0 / static_cast<double>(count)) * residual);
    }
    m1 = beta1 * m1 + (1 - beta1) * grad;
    m2 = beta2 * m2 + (1 - beta2) * grad.cwiseAbs2();
    const Vector m1_hat = m1 / (1 - std::pow(beta1, it));
    const Vector m2_hat = m2 / (1 - std::pow(beta2, it));
    phi -= (options.learning_rate * m1_hat.array() / (m2_hat.array().sqrt() + 1e-12)).matrix();
    current = twin.with_physical_params(phi);
    const double mse = twin_mse(*current, data);
    result.iterations = it;
    if (mse < best) {
      best = mse;
      result.model = current;
      result.phi = phi;
    }
    if (std::abs(previous - mse) <= options.tolerance * std::max(previous, 1e-300)) break;
    previous = mse;
  }
  result.mse_after = best;
  return result;
}

}  // namespace pnn::digital_twin
