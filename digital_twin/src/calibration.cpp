#include "pnn/digital_twin/calibration.hpp"

#include <cmath>
#include <deque>
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

namespace {

// The search direction of a quasi-Newton method: a dense inverse-Hessian estimate for small φ,
// the two-loop recursion over the last few (s, y) pairs for large φ.
class QuasiNewton {
 public:
  QuasiNewton(Index k, const CalibrationOptions& options)
      : dense_(k <= options.dense_max), memory_(std::max(1, options.lbfgs_memory)) {
    if (dense_) h_inv_ = Matrix::Identity(k, k);
  }

  Vector direction(const Vector& grad) const {
    if (dense_) return -h_inv_ * grad;
    Vector q = grad;
    std::vector<double> alpha(pairs_.size());
    for (std::size_t i = pairs_.size(); i-- > 0;) {
      alpha[i] = pairs_[i].rho * pairs_[i].s.dot(q);
      q -= alpha[i] * pairs_[i].y;
    }
    if (!pairs_.empty()) {
      const auto& last = pairs_.back();
      q *= last.s.dot(last.y) / last.y.squaredNorm();
    }
    for (std::size_t i = 0; i < pairs_.size(); ++i) {
      const double beta = pairs_[i].rho * pairs_[i].y.dot(q);
      q += (alpha[i] - beta) * pairs_[i].s;
    }
    return -q;
  }

  void update(const Vector& s, const Vector& y) {
    const double sy = s.dot(y);
    if (!(sy > 1e-300)) return;  // curvature condition fails: keep the old estimate
    if (dense_) {
      const Index k = s.size();
      const Matrix left = Matrix::Identity(k, k) - (s * y.transpose()) / sy;
      h_inv_ = left * h_inv_ * left.transpose() + (s * s.transpose()) / sy;
      return;
    }
    pairs_.push_back({s, y, 1.0 / sy});
    if (static_cast<int>(pairs_.size()) > memory_) pairs_.pop_front();
  }

  void reset() {
    if (dense_) h_inv_.setIdentity();
    pairs_.clear();
  }

 private:
  struct Pair {
    Vector s, y;
    double rho;
  };
  bool dense_;
  int memory_;
  Matrix h_inv_;
  std::deque<Pair> pairs_;
};

void check_data(const DifferentiableModel& twin, const std::vector<Measurement>& data) {
  if (data.empty()) throw std::invalid_argument("calibrate: no measurements given");
  for (const auto& m : data) {
    if (m.x.cols() != twin.num_inputs() || m.theta.size() != twin.num_params()) {
      throw std::invalid_argument("calibrate: a measurement has inputs " + shape_string(m.x) +
                                  " and " + std::to_string(m.theta.size()) +
                                  " parameters; the " + twin.name() + " twin takes batch×" +
                                  std::to_string(twin.num_inputs()) + " and " +
                                  std::to_string(twin.num_params()));
    }
    if (m.y.rows() != m.x.rows() || m.y.cols() != twin.num_outputs()) {
      throw std::invalid_argument("calibrate: measured outputs have shape " + shape_string(m.y) +
                                  ", expected " + shape_string(m.x.rows(), twin.num_outputs()));
    }
    if (!m.x.allFinite() || !m.y.allFinite() || !m.theta.allFinite()) {
      throw std::invalid_argument("calibrate: a measurement contains NaN or Inf");
    }
  }
}

}  // namespace

CalibrationResult calibrate(const DifferentiableModel& twin, const std::vector<Measurement>& data,
                            const CalibrationOptions& options) {
  if (twin.num_physical_params() == 0) {
    throw std::invalid_argument("calibrate: the " + twin.name() +
                                " twin has no physical parameters to fit");
  }
  check_data(twin, data);
  Index count = 0;
  for (const auto& m : data) count += m.y.size();
  const Vector prior = options.phi_prior.size() != 0 ? options.phi_prior : twin.physical_params();
  if (prior.size() != twin.num_physical_params()) {
    throw std::invalid_argument("calibrate: phi_prior has " + std::to_string(prior.size()) +
                                " entries, the twin has " +
                                std::to_string(twin.num_physical_params()) + " physical parameters");
  }

  const double scale = 2.0 / static_cast<double>(count);
  // Regularised loss and its gradient at φ, from the twin's own physical_vjp.
  auto evaluate = [&](const Vector& phi, Vector* grad, double* mse) {
    const ModelPtr model = twin.with_physical_params(phi);
    double sum = 0.0;
    if (grad) *grad = 2.0 * options.l2 * (phi - prior);
    for (const auto& m : data) {
      const Matrix residual = model->forward(m.x, m.theta) - m.y;
      sum += residual.squaredNorm();
      if (grad) *grad += model->physical_vjp(m.x, m.theta, scale * residual);
    }
    const double error = sum / static_cast<double>(count);
    if (mse) *mse = error;
    return error + options.l2 * (phi - prior).squaredNorm();
  };

  Vector phi = twin.physical_params();
  Vector grad;
  double mse = 0.0;
  double loss = evaluate(phi, &grad, &mse);
  CalibrationResult result{twin.with_physical_params(phi), phi, mse, mse, 0};
  const double loss_before = loss;
  QuasiNewton qn(phi.size(), options);
  for (int it = 1; it <= options.max_iterations && std::isfinite(loss); ++it) {
    Vector direction = qn.direction(grad);
    bool restarted = false;
    if (grad.dot(direction) >= 0.0) {  // not a descent direction: restart from steepest descent
      qn.reset();
      direction = -grad;
      restarted = true;
    }
    double step = 1.0;
    // An unscaled gradient step is capped like the first one (large φ: the L-BFGS restarts).
    if ((it == 1 || (restarted && phi.size() > options.dense_max)) &&
        direction.cwiseAbs().maxCoeff() > options.max_first_step) {
      step = options.max_first_step / direction.cwiseAbs().maxCoeff();
    }
    const double slope = grad.dot(direction);
    double trial_loss = evaluate(phi + step * direction, nullptr, nullptr);
    for (int back = 0; back < 30 && !(trial_loss <= loss + 1e-4 * step * slope); ++back) {
      step *= 0.5;
      trial_loss = evaluate(phi + step * direction, nullptr, nullptr);
    }
    if (!(trial_loss < loss)) break;  // no progress along the best direction: converged
    const Vector s_step = step * direction;
    phi += s_step;
    Vector new_grad;
    const double new_loss = evaluate(phi, &new_grad, &mse);
    qn.update(s_step, new_grad - grad);
    const double improvement = (loss - new_loss) / std::max(loss, 1e-300);
    loss = new_loss;
    grad = new_grad;
    result.iterations = it;
    if (improvement < options.tolerance) break;
  }
  result.phi = phi;
  result.model = twin.with_physical_params(phi);
  result.mse_after = mse;
  if (!(loss <= loss_before)) {  // never hand back a worse twin than the one given
    result.phi = twin.physical_params();
    result.model = twin.with_physical_params(result.phi);
    result.mse_after = result.mse_before;
  }
  return result;
}

}  // namespace pnn::digital_twin
