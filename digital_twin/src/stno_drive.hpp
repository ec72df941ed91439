#pragma once
// The input drive of the STNO network, shared by the physics twin (stno.cpp) and the neural-ODE
// twin (neural_ode.cpp): in period t, drive = u_t Wᵀ + b (B×N, µA), and its reverse. θ layout
// [ b (N) | W (N×M, row-major) | R (N×N) ]. Private to digital_twin.
#include "pnn/digital_twin/model.hpp"

namespace pnn::digital_twin::detail {

/// drive = x_t Wᵀ + b for period t (x: B × T·M, step-major).
inline void stno_drive(const MatrixRef& x, const VectorRef& theta, Index n, Index m, Index t,
                       Matrix& drive) {
  using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::Map<const RowMajor> w(theta.data() + n, n, m);
  drive.noalias() = x.middleCols(t * m, m) * w.transpose();
  drive.rowwise() += theta.head(n).transpose();
}

/// Reverse of stno_drive for the drive's cotangent: adds ∂L/∂b and ∂L/∂W into out.theta_bar and
/// sets period t's columns of out.x_bar (both sized by the caller).
inline void stno_drive_reverse(const MatrixRef& x, const VectorRef& theta, Index n, Index m,
                               Index t, const Matrix& drive_bar, Cotangents& out) {
  using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::Map<const RowMajor> w(theta.data() + n, n, m);
  out.theta_bar.head(n) += drive_bar.colwise().sum().transpose();
  Eigen::Map<RowMajor>(out.theta_bar.data() + n, n, m).noalias() +=
      drive_bar.transpose() * x.middleCols(t * m, m);
  out.x_bar.middleCols(t * m, m).noalias() = drive_bar * w;
}

}  // namespace pnn::digital_twin::detail
