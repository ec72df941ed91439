#include "pnn/digital_twin/oscillator.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "pnn/digital_twin/fast_math.hpp"
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

std::shared_ptr<const Matrix> OscillatorModel::stiffness(const VectorRef& theta) const {
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
  cache.theta = theta;
  cache.a = std::make_shared<const Matrix>(std::move(a));
  return cache.a;
}

namespace {

// g(q) = sin(κ∘q)·A + e, row batch.
struct Force {
  const Matrix& a;
  const Eigen::RowVectorXd& kappa;
  Eigen::Map<const Vector> e;

  void operator()(const Matrix& q, Matrix& s, Matrix& g) const {
    s = fast_sin(q.array().rowwise() * kappa.array()).matrix();
    g.noalias() = s * a;
    g.rowwise() += e.transpose();
  }
};

}  // namespace

Matrix OscillatorModel::do_forward(const MatrixRef& x, const VectorRef& theta) const {
  const auto a_ptr = stiffness(theta);
  const Matrix& a = *a_ptr;
  const Force force{a, kappa_row_, Eigen::Map<const Vector>(theta.data() + n() * n(), n())};
  const double h = config_.dt;
  Matrix q = x, p = Matrix::Zero(x.rows(), n());
  Matrix s, g1, g2, g3, g4, qs(x.rows(), n()), p2, p3, p4;
  for (int step = 0; step < config_.num_steps; ++step) {
    force(q, s, g1);
    p2 = p + 0.5 * h * g1;
    qs = q + 0.5 * h * p;
    force(qs, s, g2);
    p3 = p + 0.5 * h * g2;
    qs = q + 0.5 * h * p2;
    force(qs, s, g3);
    p4 = p + h * g3;
    qs = q + h * p3;
    force(qs, s, g4);
    q += (h / 6.0) * (p + 2.0 * p2 + 2.0 * p3 + p4);
    p += (h / 6.0) * (g1 + 2.0 * g2 + 2.0 * g3 + g4);
  }
  return q;
}

OscillatorModel::Backward OscillatorModel::backward(const MatrixRef& x, const VectorRef& theta,
                                                    const MatrixRef& y_bar) const {
  const Index b = x.rows();
  const auto a_ptr = stiffness(theta);
  const Matrix& a = *a_ptr;
  const Eigen::RowVectorXd& kappa = kappa_row_;
  const Force force{a, kappa, Eigen::Map<const Vector>(theta.data() + n() * n(), n())};
  const double h = config_.dt;
  const int steps = config_.num_steps;

  // Ā = Σ over the 4·steps stages of sᵀ·ḡ. Each stage's s and ḡ go into one stacked row block
  // and Ā comes from one GEMM at the end (inner dimension 4·steps·b instead of 4·steps
  // rank-b updates, each of which would read and write all of Ā). Stage j of step k is block
  // 4·(steps − 1 − k) + 3 − j: the order in which the reverse sweep reaches the stages.
  const Index stages = 4 * static_cast<Index>(steps);
  auto block = [&](int k, int j) { return (4 * (steps - 1 - k) + 3 - j) * b; };
  Matrix s_stack(stages * b, n()), g_bar_stack(stages * b, n());
  Eigen::ArrayXXd c_stack(stages * b, n());

  // Forward sweep, keeping the four stage positions of every step and sin, cos of κ∘q there:
  // one reduction per stage serves the force here and its reverse below.
  std::vector<Matrix> stage_q(stages);
  {
    Eigen::ArrayXXd sin_kq, cos_kq;
    auto stage_force = [&](int k, int j, Matrix& g) {
      sincos(stage_q[4 * k + j].array().rowwise() * kappa.array(), &sin_kq, &cos_kq);
      s_stack.middleRows(block(k, j), b) = sin_kq.matrix();
      c_stack.middleRows(block(k, j), b) = cos_kq;
      g.noalias() = sin_kq.matrix() * a;
      g.rowwise() += force.e.transpose();
    };
    Matrix q = x, p = Matrix::Zero(b, n()), g1, g2, g3, g4;
    for (int k = 0; k < steps; ++k) {
      Matrix* st = &stage_q[4 * k];
      st[0] = q;
      stage_force(k, 0, g1);
      const Matrix p2 = p + 0.5 * h * g1;
      st[1] = q + 0.5 * h * p;
      stage_force(k, 1, g2);
      const Matrix p3 = p + 0.5 * h * g2;
      st[2] = q + 0.5 * h * p2;
      stage_force(k, 2, g3);
      const Matrix p4 = p + h * g3;
      st[3] = q + h * p3;
      stage_force(k, 3, g4);
      q += (h / 6.0) * (p + 2.0 * p2 + 2.0 * p3 + p4);
      p += (h / 6.0) * (g1 + 2.0 * g2 + 2.0 * g3 + g4);
    }
  }

  Backward out{Matrix(), Matrix(), Vector::Zero(n()), Eigen::RowVectorXd::Zero(n())};
  // Reverse of g(q) = sin(κ q)·A + e for stage j of step k: returns q̄, stacks ḡ for Ā and
  // accumulates ē, κ̄.
  auto force_vjp = [&](int k, int j, const Matrix& g_bar) {
    g_bar_stack.middleRows(block(k, j), b) = g_bar;
    out.e_bar += g_bar.colwise().sum().transpose();
    const Eigen::ArrayXXd s_bar_cos =
        (g_bar * a.transpose()).array() * c_stack.middleRows(block(k, j), b);
    out.kappa_bar += (s_bar_cos * stage_q[4 * k + j].array()).colwise().sum().matrix();
    return Matrix((s_bar_cos.rowwise() * kappa.array()).matrix());
  };

  Matrix q_bar = y_bar, p_bar = Matrix::Zero(b, n());
  for (int k = steps - 1; k >= 0; --k) {
    const Matrix qa = q_bar, pa = p_bar;  // cotangents of q', p'
    // q' = q + h/6 (p + 2 p2 + 2 p3 + p4),  p' = p + h/6 (g1 + 2 g2 + 2 g3 + g4)
    Matrix p2_bar = (h / 3.0) * qa, p3_bar = (h / 3.0) * qa, p4_bar = (h / 6.0) * qa;
    Matrix g1_bar = (h / 6.0) * pa, g2_bar = (h / 3.0) * pa, g3_bar = (h / 3.0) * pa;
    const Matrix g4_bar = (h / 6.0) * pa;
    p_bar = pa + (h / 6.0) * qa;
    q_bar = qa;
    // g4 = g(q4), q4 = q + h p3, p4 = p + h g3
    Matrix q4_bar = force_vjp(k, 3, g4_bar);
    q_bar += q4_bar;
    p3_bar += h * q4_bar;
    p_bar += p4_bar;
    g3_bar += h * p4_bar;
    // g3 = g(q3), q3 = q + h/2 p2, p3 = p + h/2 g2
    Matrix q3_bar = force_vjp(k, 2, g3_bar);
    q_bar += q3_bar;
    p2_bar += 0.5 * h * q3_bar;
    p_bar += p3_bar;
    g2_bar += 0.5 * h * p3_bar;
    // g2 = g(q2), q2 = q + h/2 p, p2 = p + h/2 g1
    Matrix q2_bar = force_vjp(k, 1, g2_bar);
    q_bar += q2_bar;
    p_bar += 0.5 * h * q2_bar;
    p_bar += p2_bar;
    g1_bar += 0.5 * h * p2_bar;
    // g1 = g(q)
    q_bar += force_vjp(k, 0, g1_bar);
  }
  out.a_bar.noalias() = s_stack.transpose() * g_bar_stack;
  out.x_bar = std::move(q_bar);
  return out;
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
