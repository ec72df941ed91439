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

  const double scale = 2.0 / static_cast<double>(count);
  // Loss and gradient of the MSE at φ, from the twin's own physical_vjp.
  auto evaluate = [&](const Vector& phi, Vector* grad) {
    const ModelPtr model = twin.with_physical_params(phi);
    double sum = 0.0;
    if (grad) *grad = Vector::Zero(phi.size());
    for (const auto& m : data) {
      const Matrix residual = model->forward(m.x, m.theta) - m.y;
      sum += residual.squaredNorm();
      if (grad) *grad += model->physical_vjp(m.x, m.theta, scale * residual);
    }
    return sum / static_cast<double>(count);
  };

  Vector phi = twin.physical_params();
  Vector grad;
  double loss = evaluate(phi, &grad);
  CalibrationResult result{twin.with_physical_params(phi), phi, loss, loss, 0};
  const Index k = phi.size();
  Matrix h_inv = Matrix::Identity(k, k);
  for (int it = 1; it <= options.max_iterations && std::isfinite(loss); ++it) {
    Vector direction = -h_inv * grad;
    if (grad.dot(direction) >= 0.0) {  // not a descent direction: restart from steepest descent
      h_inv.setIdentity();
      direction = -grad;
    }
    double step = 1.0;
    if (it == 1 && direction.cwiseAbs().maxCoeff() > options.max_first_step) {
      step = options.max_first_step / direction.cwiseAbs().maxCoeff();
    }
    const double slope = grad.dot(direction);
    double trial_loss = evaluate(phi + step * direction, nullptr);
    for (int back = 0; back < 30 && !(trial_loss <= loss + 1e-4 * step * slope); ++back) {
      step *= 0.5;
      trial_loss = evaluate(phi + step * direction, nullptr);
    }
    if (!(trial_loss < loss)) break;  // no progress along the best direction: converged
    const Vector s_step = step * direction;
    phi += s_step;
    Vector new_grad;
    const double new_loss = evaluate(phi, &new_grad);
    const Vector y_step = new_grad - grad;
    const double sy = s_step.dot(y_step);
    if (sy > 1e-300) {
      const Matrix eye = Matrix::Identity(k, k);
      const Matrix left = eye - (s_step * y_step.transpose()) / sy;
      h_inv = left * h_inv * left.transpose() + (s_step * s_step.transpose()) / sy;
    }
    const double improvement = (loss - new_loss) / std::max(loss, 1e-300);
    loss = new_loss;
    grad = new_grad;
    result.iterations = it;
    if (improvement < options.tolerance) break;
  }
  result.phi = phi;
  result.model = twin.with_physical_params(phi);
  result.mse_after = std::min(loss, result.mse_before);
  if (loss > result.mse_before) {  // never hand back a worse twin than the one given
    result.phi = twin.physical_params();
    result.model = twin.with_physical_params(result.phi);
  }
  return result;
}

}  // namespace pnn::digital_twin
