#include "pnn/digital_twin/oscillator.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "oscillator_rk4.hpp"
#include <stdexcept>
#include <vector>

namespace pnn::digital_twin {

struct OscillatorModel::Backward {
  Matrix x_bar;
  Matrix a_bar;  // ∂L/∂A
  Vector e_bar;
  Eigen::RowVectorXd kappa_bar;  // ∂L/∂κ_i
};

Matrix coupling_to_q(const MatrixRef& c) {
  if (c.rows() != c.cols()) {
    throw std::invalid_argument("coupling_to_q: C must be square, got " + shape_string(c));
  }
  Matrix q = 0.5 * (c + c.transpose());
  q.diagonal().setZero();
  q.diagonal() = -q.rowwise().sum();
  return q;
}

OscillatorModel::OscillatorModel(OscillatorConfig config) : config_(std::move(config)) {
  const Index n = config_.num_oscillators;
  if (n < 1) throw std::invalid_argument("oscillators: num_oscillators must be ≥ 1");
  if (!(config_.dt > 0.0)) throw std::invalid_argument("oscillators: dt must be > 0");
  if (config_.num_steps < 1) throw std::invalid_argument("oscillators: num_steps must be ≥ 1");
  if (!std::isfinite(config_.kappa)) throw std::invalid_argument("oscillators: kappa must be finite");
  if (config_.kappas.size() != 0 && config_.kappas.size() != n) {
    throw std::invalid_argument("oscillators: kappas must have " + std::to_string(n) +
                                " entries (one per oscillator), got " +
                                std::to_string(config_.kappas.size()));
  }
  if (!config_.kappas.allFinite()) throw std::invalid_argument("oscillators: kappas must be finite");
  if (config_.kappas.size() != 0 && config_.phi == OscillatorPhi::kKappa) {
    throw std::invalid_argument(
        "oscillators: per-oscillator kappas need phi = kGreyBox (kKappa fits one global kappa)");
  }
  kappa_row_ = config_.kappas.size() != 0 ? Eigen::RowVectorXd(config_.kappas.transpose())
                                          : Eigen::RowVectorXd::Constant(n, config_.kappa);
  if (config_.q_extra.size() != 0) {
    if (config_.q_extra.rows() != n || config_.q_extra.cols() != n) {
      throw std::invalid_argument("oscillators: q_extra must be " + shape_string(n, n) +
                                  ", got " + shape_string(config_.q_extra));
    }
    if (!config_.q_extra.isApprox(config_.q_extra.transpose())) {
      throw std::invalid_argument("oscillators: q_extra must be symmetric");
    }
    if (config_.phi == OscillatorPhi::kGreyBox &&
        config_.q_extra.rowwise().sum().cwiseAbs().maxCoeff() > 1e-9 * (1.0 + config_.q_extra.norm())) {
      throw std::invalid_argument(
          "oscillators: the grey-box stray coupling q_extra must be C2Q(J) (zero row sums)");
    }
  }
}

Index OscillatorModel::num_physical_params() const {
  return config_.phi == OscillatorPhi::kKappa ? 1 : n() + n() * (n() - 1) / 2;
}

Vector OscillatorModel::physical_params() const {
  if (config_.phi == OscillatorPhi::kKappa) return Vector::Constant(1, config_.kappa);
  Vector phi(num_physical_params());
  phi.head(n()) = kappas();
  Index k = n();
  for (Index i = 0; i < n(); ++i) {
    for (Index j = i + 1; j < n(); ++j) {
      phi[k++] = config_.q_extra.size() != 0 ? config_.q_extra(i, j) : 0.0;
    }
  }
  return phi;
}

Vector OscillatorModel::initial_params(std::uint64_t seed) const {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Vector theta = Vector::Zero(num_params());
  const double scale = 0.5 / std::sqrt(static_cast<double>(n()));
  for (Index i = 0; i < n() * n(); ++i) theta[i] = scale * normal(rng);
  return theta;
}

ModelPtr OscillatorModel::with_physical_params(const VectorRef& phi) const {
  if (phi.size() != num_physical_params()) {
    throw std::invalid_argument(
        config_.phi == OscillatorPhi::kKappa
            ? "oscillators: one physical parameter (kappa) expected, got " + std::to_string(phi.size())
            : "oscillators: grey-box φ has n + n(n−1)/2 = " + std::to_string(num_physical_params()) +
                  " entries (κ_i, then J_ij for i < j), got " + std::to_string(phi.size()));
  }
  if (!phi.allFinite()) throw std::invalid_argument("oscillators: physical parameters must be finite");
  OscillatorConfig config = config_;
  if (config_.phi == OscillatorPhi::kKappa) {
    config.kappa = phi[0];
  } else {
    config.kappas = phi.head(n());
    Matrix j = Matrix::Zero(n(), n());
    Index k = n();
    for (Index r = 0; r < n(); ++r) {
      for (Index c = r + 1; c < n(); ++c) j(r, c) = j(c, r) = phi[k++];
    }
    config.q_extra = coupling_to_q(j);
  }
  return std::make_shared<OscillatorModel>(std::move(config));
}

ModelPtr OscillatorModel::copy_with_compute(Precision compute) const {
  OscillatorConfig config = config_;
  config.compute = compute;
  return std::make_shared<OscillatorModel>(std::move(config));
}

namespace {

/// Calls f(i, j) for every i, j in [0, n) in 32×32 tiles, so that reading a matrix and its
/// transpose together stays in cache.
template <class F>
void for_each_tile(Index n, F&& f) {
  constexpr Index kTile = 32;
  for (Index jb = 0; jb < n; jb += kTile) {
    for (Index ib = 0; ib < n; ib += kTile) {
      const Index j_end = std::min(n, jb + kTile), i_end = std::min(n, ib + kTile);
      for (Index j = jb; j < j_end; ++j) {
        for (Index i = ib; i < i_end; ++i) f(i, j);
      }
    }
  }
}

}  // namespace

std::shared_ptr<const OscillatorModel::Stiffness> OscillatorModel::stiffness(const VectorRef& theta) const {
  std::lock_guard lock(stiffness_cache_.mutex);
  auto& cache = stiffness_cache_;
  if (cache.a && cache.theta.size() == theta.size() &&
      std::memcmp(cache.theta.data(), theta.data(), sizeof(double) * static_cast<std::size_t>(theta.size())) == 0) {
    return cache.a;
  }
  // A = C2Q(C) + Q_extra − I straight from θ's row-major C, tile by tile (C and Cᵀ are both read,
  // so a plain loop would stride through one of them): off-diagonal (C_ij + C_ji)/2, then the
  // diagonal −Σ_{j≠i} J_ij (J symmetric: column sums, contiguous in column-major A) − 1.
  const Index size = n();
  const double* c = theta.data();
  Matrix a(size, size);
  for_each_tile(size, [&](Index i, Index j) { a(i, j) = 0.5 * (c[i * size + j] + c[j * size + i]); });
  for (Index i = 0; i < size; ++i) {
    a(i, i) = 0.0;
    a(i, i) = -a.col(i).sum() - 1.0;
  }
  if (config_.q_extra.size() != 0) a += config_.q_extra;
  auto stiff = std::make_shared<Stiffness>();
  if (config_.compute == Precision::kFloat32) {
    stiff->a32 = a.cast<float>();
    stiff->at32 = stiff->a32.transpose();
  } else {
    stiff->at = a.transpose();
  }
  stiff->a = std::move(a);
  cache.theta = theta;
  cache.a = std::move(stiff);
  return cache.a;
}

namespace {

// Calls f with the integrator in the model's precision (θ's drive e and κ converted to it) and
// returns what f returns.
template <class Stiff, class F>
auto with_rk4(const OscillatorConfig& config, const Eigen::RowVectorXd& kappa, const Stiff& stiff,
              const VectorRef& theta, F&& f) {
  const Eigen::RowVectorXd e = theta.tail(config.num_oscillators).transpose();
  if (config.compute == Precision::kFloat32) {
    const Eigen::RowVectorXf kappa32 = kappa.cast<float>(), e32 = e.cast<float>();
    return f(detail::Rk4<float>{stiff.a32, stiff.at32, kappa32, e32,
                                static_cast<float>(config.dt), config.num_steps});
  }
  return f(detail::Rk4<double>{stiff.a, stiff.at, kappa, e, config.dt, config.num_steps});
}

template <class Rk4>
using ScalarOf = typename std::decay_t<Rk4>::Scalar;

}  // namespace

Matrix OscillatorModel::do_forward(const MatrixRef& x, const VectorRef& theta) const {
  const auto stiff = stiffness(theta);
  return with_rk4(config_, kappa_row_, *stiff, theta, [&](const auto& rk4) -> Matrix {
    using T = ScalarOf<decltype(rk4)>;
    return rk4.forward(x.template cast<T>()).template cast<double>();
  });
}

OscillatorModel::Backward OscillatorModel::backward(const MatrixRef& x, const VectorRef& theta,
                                                    const MatrixRef& y_bar) const {
  const auto stiff = stiffness(theta);
  return with_rk4(config_, kappa_row_, *stiff, theta, [&](const auto& rk4) {
    using T = ScalarOf<decltype(rk4)>;
    const auto g = rk4.backward(x.template cast<T>(), y_bar.template cast<T>());
    return Backward{g.x_bar.template cast<double>(), g.a_bar.template cast<double>(),
                    g.e_bar.transpose().template cast<double>(), g.kappa_bar.template cast<double>()};
  });
}

Cotangents OscillatorModel::do_vjp(const MatrixRef& x, const VectorRef& theta,
                                   const MatrixRef& y_bar) const {
  Backward bw = backward(x, theta, y_bar);
  // A = C2Q(C) + Q_extra − I  ⇒  J̄_ij = Ā_ij − Ā_ii (i ≠ j), then C̄ = (J̄ + J̄ᵀ)/2, written
  // row-major into θ̄ in one tiled pass.
  const Index size = n();
  const Matrix& ab = bw.a_bar;
  Cotangents out{std::move(bw.x_bar), Vector(num_params())};
  double* c_bar = out.theta_bar.data();
  for_each_tile(size, [&](Index j, Index i) {  // j fastest: c_bar row-major, Ā(j, i) contiguous
    c_bar[i * size + j] = i == j ? 0.0 : 0.5 * ((ab(i, j) - ab(i, i)) + (ab(j, i) - ab(j, j)));
  });
  out.theta_bar.tail(n()) = bw.e_bar;
  return out;
}

Vector OscillatorModel::do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                                        const MatrixRef& y_bar) const {
  const Backward bw = backward(x, theta, y_bar);
  if (config_.phi == OscillatorPhi::kKappa) return Vector::Constant(1, bw.kappa_bar.sum());
  // Q_extra = C2Q(J), J symmetric: ∂A_ij = ∂A_ji = 1, ∂A_ii = ∂A_jj = −1 per J_ij.
  Vector phi_bar(num_physical_params());
  phi_bar.head(n()) = bw.kappa_bar.transpose();
  Index k = n();
  for (Index i = 0; i < n(); ++i) {
    for (Index j = i + 1; j < n(); ++j) {
      phi_bar[k++] = bw.a_bar(i, j) + bw.a_bar(j, i) - bw.a_bar(i, i) - bw.a_bar(j, j);
    }
  }
  return phi_bar;
}

}  // namespace pnn::digital_twin
