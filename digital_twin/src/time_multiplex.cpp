#include "pnn/digital_twin/time_multiplex.hpp"

#include <cassert>

namespace pnn::digital_twin {

Matrix time_multiplexed_levels(const MatrixRef& x, const VectorRef& theta) {
  assert(x.cols() == theta.size());
  const Index k = theta.size();
  Matrix levels(x.rows(), 2 * k);
  for (Index s = 0; s < k; ++s) {
    levels.col(2 * s) = x.col(s);
    levels.col(2 * s + 1).setConstant(theta[s]);
  }
  return levels;
}

Cotangents time_multiplexed_cotangents(const MatrixRef& level_bar) {
  assert(level_bar.cols() % 2 == 0);
  const Index k = level_bar.cols() / 2;
  Cotangents out{Matrix(level_bar.rows(), k), Vector(k)};
  for (Index s = 0; s < k; ++s) {
    out.x_bar.col(s) = level_bar.col(2 * s);
    out.theta_bar[s] = level_bar.col(2 * s + 1).sum();
  }
  return out;
}

Matrix window_means(const MatrixRef& samples, Index num_windows) {
  assert(num_windows > 0 && samples.cols() % num_windows == 0);
  const Index per_window = samples.cols() / num_windows;
  Matrix y(samples.rows(), num_windows);
  for (Index k = 0; k < num_windows; ++k) {
    y.col(k) = samples.middleCols(k * per_window, per_window).rowwise().mean();
  }
  return y;
}

Matrix window_means_cotangent(const MatrixRef& y_bar, Index per_window) {
  Matrix sample_bar(y_bar.rows(), y_bar.cols() * per_window);
  for (Index j = 0; j < sample_bar.cols(); ++j) {
    sample_bar.col(j) = y_bar.col(j / per_window) / static_cast<double>(per_window);
  }
  return sample_bar;
}

}  // namespace pnn::digital_twin
