#include "pnn/digital_twin/gradcheck.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <sstream>

namespace pnn::digital_twin {
namespace {

double rel_error(double fd, double analytic) {
  return std::abs(fd - analytic) / std::max({std::abs(fd), std::abs(analytic), 1e-8});
}

// Probes a flat argument of size `size`: `scalar(v, t)` evaluates ⟨Ȳ, f⟩ at argument + t·v and
// `analytic` is the cotangent of that argument.
double probe(Index size, const std::function<double(const Vector&, double)>& scalar,
             const Vector& analytic, const GradCheckOptions& options, std::mt19937_64& rng) {
  if (size == 0) return 0.0;
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_int_distribution<Index> pick(0, size - 1);
  double worst = 0.0;
  auto check = [&](const Vector& v) {
    const double fd =
        (scalar(v, options.eps) - scalar(v, -options.eps)) / (2.0 * options.eps);
    worst = std::max(worst, rel_error(fd, analytic.dot(v)));
  };
  for (int d = 0; d < options.num_directions; ++d) {
    Vector v(size);
    for (Index i = 0; i < size; ++i) v[i] = normal(rng);
    check(v);
  }
  for (int c = 0; c < options.num_coordinates; ++c) {
    Vector v = Vector::Zero(size);
    v[pick(rng)] = 1.0;
    check(v);
  }
  return worst;
}

}  // namespace

double GradCheckReport::max_rel_error() const {
  return std::max({max_rel_error_x, max_rel_error_theta, max_rel_error_phi});
}

std::string GradCheckReport::summary() const {
  std::ostringstream out;
  out << "max relative error: x " << max_rel_error_x << ", theta " << max_rel_error_theta
      << ", phi " << max_rel_error_phi;
  return out.str();
}

GradCheckReport check_gradients(const DifferentiableModel& model, const MatrixRef& x,
                                const VectorRef& theta, const GradCheckOptions& options) {
  std::mt19937_64 rng(options.seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Matrix y_bar(x.rows(), model.num_outputs());
  for (Index i = 0; i < y_bar.size(); ++i) y_bar.data()[i] = normal(rng);

  const Cotangents cot = model.vjp(x, theta, y_bar);
  GradCheckReport report;

  const Vector x_bar_flat = Eigen::Map<const Vector>(cot.x_bar.data(), cot.x_bar.size());
  report.max_rel_error_x = probe(
      x.size(),
      [&](const Vector& v, double t) {
        Matrix xp = x + t * Eigen::Map<const Matrix>(v.data(), x.rows(), x.cols());
        return (model.forward(xp, theta).array() * y_bar.array()).sum();
      },
      x_bar_flat, options, rng);

  report.max_rel_error_theta = probe(
      theta.size(),
      [&](const Vector& v, double t) {
        return (model.forward(x, theta + t * v).array() * y_bar.array()).sum();
      },
      cot.theta_bar, options, rng);

  if (model.num_physical_params() > 0) {
    const Vector phi = model.physical_params();
    const Vector phi_bar = model.physical_vjp(x, theta, y_bar);
    report.max_rel_error_phi = probe(
        phi.size(),
        [&](const Vector& v, double t) {
          auto shifted = model.with_physical_params(phi + t * v);
          return (shifted->forward(x, theta).array() * y_bar.array()).sum();
        },
        phi_bar, options, rng);
  }
  return report;
}

}  // namespace pnn::digital_twin
