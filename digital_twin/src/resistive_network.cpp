#include "pnn/digital_twin/resistive_network.hpp"

#include <Eigen/Cholesky>
#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

#include "pnn/digital_twin/parallel.hpp"

namespace pnn::digital_twin {
namespace {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRowMap = Eigen::Map<const RowMatrix>;

// The network at one θ: the conductance matrices and their sums, shared by every row.
struct Network {
  const ResistiveNetworkConfig& c;
  Index H, P, S, n;
  ConstRowMap g1;  // H × S
  ConstRowMap g2;  // P × H
  Vector a1;       // row sums of G1 (H)
  Vector a2h;      // column sums of G2 (H)
  Vector a2o;      // row sums of G2 (P)
  Vector g1_cols;  // column sums of G1 (S), for the constant term of E
  Vector thr;

  Network(const ResistiveNetworkConfig& config, const VectorRef& thresholds, const VectorRef& g)
      : c(config),
        H(config.num_hidden),
        P(config.num_output_nodes()),
        S(config.num_sources()),
        n(config.num_outputs),
        g1(g.data(), config.num_hidden, config.num_sources()),
        g2(g.data() + config.num_hidden * config.num_sources(), config.num_output_nodes(),
           config.num_hidden) {
    a1 = g1.rowwise().sum();
    a2h = g2.colwise().sum().transpose();
    a2o = g2.rowwise().sum();
    g1_cols = g1.colwise().sum().transpose();
    thr = thresholds.size() == 0 ? Vector::Constant(H, config.diode_threshold_volts)
                                 : Vector(thresholds);
  }
};

Matrix sources(const ResistiveNetworkConfig& c, const MatrixRef& x) {
  Matrix s(x.rows(), c.num_sources());
  s.leftCols(c.num_inputs) = x;
  s.middleCols(c.num_inputs, c.num_inputs) = -x;
  s.col(2 * c.num_inputs).setConstant(c.bias_volts);
  s.col(2 * c.num_inputs + 1).setConstant(-c.bias_volts);
  return s;
}

// One row's problem: the drive of the sources on the hidden nodes and the boundary.
struct Row {
  const Network& net;
  Eigen::Ref<const Vector> drive;  // Σ_k G1_jk s_k (H)
  double constant;                 // ½ Σ_jk G1_jk s_k²
  const SettleBoundary& b;
  Index r;
};

double diode_current(double g_d, double h, double v) {
  return g_d * (std::max(h - v, 0.0) - std::max(-h - v, 0.0));
}
double diode_slope(double g_d, double h, double v) {
  return g_d * ((h > v ? 1.0 : 0.0) + (h < -v ? 1.0 : 0.0));
}

double row_energy(const Row& row, const Vector& h, const Vector& o) {
  const Network& net = row.net;
  const double g_d = net.c.diode_on_conductance_ms;
  double e =
      0.5 * (net.a1.dot(h.cwiseAbs2()) + net.a2h.dot(h.cwiseAbs2()) + net.a2o.dot(o.cwiseAbs2())) -
      row.drive.dot(h) - o.dot(net.g2 * h) + row.constant;
  for (Index j = 0; j < net.H; ++j) {
    const double up = std::max(h[j] - net.thr[j], 0.0);
    const double down = std::max(-h[j] - net.thr[j], 0.0);
    e += 0.5 * g_d * (up * up + down * down);
  }
  if (row.b.kind == SettleBoundary::Kind::kNudged) {
    const double a = net.c.readout_gain;
    const Vector r = a * (o.head(net.n) - o.tail(net.n)) - row.b.values.row(row.r).transpose();
    e += row.b.beta * 0.5 * r.squaredNorm();
  }
  return e;
}

void row_gradient(const Row& row, const Vector& h, const Vector& o, Vector& gh, Vector& go) {
  const Network& net = row.net;
  const double g_d = net.c.diode_on_conductance_ms;
  gh = (net.a1 + net.a2h).cwiseProduct(h) - row.drive - net.g2.transpose() * o;
  for (Index j = 0; j < net.H; ++j) gh[j] += diode_current(g_d, h[j], net.thr[j]);
  go = net.a2o.cwiseProduct(o) - net.g2 * h;
  if (row.b.kind == SettleBoundary::Kind::kNudged) {
    const double a = net.c.readout_gain;
    const Vector r = a * (o.head(net.n) - o.tail(net.n)) - row.b.values.row(row.r).transpose();
    go.head(net.n) += row.b.beta * a * r;
    go.tail(net.n) -= row.b.beta * a * r;
  }
}

// Solves [Dh, −G2ᵀ; −G2, Hoo] [dh; do] = [rh; ro] through the Schur complement on the outputs.
// Hoo = diag(a2o) (+ β a² per output pair when nudged). false: not positive definite.
bool solve_newton(const Network& net, const SettleBoundary& b, const Vector& dh_diag,
                  const Vector& rh, const Vector& ro, Vector& dh, Vector& d_o) {
  const Vector inv = dh_diag.cwiseInverse();
  Matrix m = -(net.g2 * inv.asDiagonal() * net.g2.transpose());
  m.diagonal() += net.a2o;
  if (b.kind == SettleBoundary::Kind::kNudged) {
    const double k = b.beta * net.c.readout_gain * net.c.readout_gain;
    for (Index i = 0; i < net.n; ++i) {
      m(i, i) += k;
      m(net.n + i, net.n + i) += k;
      m(i, net.n + i) -= k;
      m(net.n + i, i) -= k;
    }
  }
  Eigen::LLT<Matrix> llt(m);
  if (llt.info() != Eigen::Success) return false;
  d_o = llt.solve(ro + net.g2 * inv.cwiseProduct(rh));
  dh = inv.cwiseProduct(rh + net.g2.transpose() * d_o);
  return true;
}

Vector hidden_slopes(const Network& net, const Vector& h) {
  Vector d = net.a1 + net.a2h;
  for (Index j = 0; j < net.H; ++j)
    d[j] += diode_slope(net.c.diode_on_conductance_ms, h[j], net.thr[j]);
  return d;
}

// Newton with backtracking on E for one row; returns the iterations, or −1 if it did not converge.
int settle_row(const Row& row, Vector& h, Vector& o, const SettleOptions& options) {
  const Network& net = row.net;
  const bool clamped = row.b.kind == SettleBoundary::Kind::kClamped;
  if (clamped) o = row.b.values.row(row.r).transpose();
  Vector gh, go, dh, d_o;
  double e = row_energy(row, h, o);
  for (int it = 1; it <= options.max_iterations; ++it) {
    row_gradient(row, h, o, gh, go);
    const Vector diag = hidden_slopes(net, h);
    if (clamped) {
      dh = -gh.cwiseQuotient(diag);
      d_o = Vector::Zero(net.P);
    } else if (!solve_newton(net, row.b, diag, -gh, -go, dh, d_o)) {
      return -1;  // a nudge so negative that E is no longer convex: no equilibrium
    }
    const double step =
        std::max(dh.cwiseAbs().maxCoeff(), d_o.size() ? d_o.cwiseAbs().maxCoeff() : 0.0);
    if (step < options.tolerance_volts) {
      h += dh;
      o += d_o;
      return it;
    }
    const double slope = gh.dot(dh) + go.dot(d_o);
    double t = 1.0;
    for (;;) {
      const Vector h1 = h + t * dh, o1 = o + t * d_o;
      const double e1 = row_energy(row, h1, o1);
      if (e1 <= e + 1e-4 * t * slope + 1e-13 * (1.0 + std::abs(e)) || t < 1e-6) {
        h = h1;
        o = o1;
        e = e1;
        break;
      }
      t *= 0.5;
    }
  }
  return -1;
}

struct Prepared {
  Matrix s;      // sources, batch × S
  Matrix drive;  // batch × H
  Vector constant;
};

Prepared prepare(const Network& net, const MatrixRef& x) {
  Prepared p;
  p.s = sources(net.c, x);
  p.drive = p.s * net.g1.transpose();
  p.constant = 0.5 * (p.s.cwiseAbs2() * net.g1_cols);
  return p;
}

// parallel_for over row chunks (one task per chunk keeps the pool's overhead off small rows).
template <class F>
void for_rows(Index rows, F&& fn) {
  const Index chunks = std::min<Index>(rows, static_cast<Index>(num_threads()) * 4);
  if (chunks <= 0) return;
  parallel_for(static_cast<std::size_t>(chunks), [&](std::size_t c) {
    const Index begin = rows * static_cast<Index>(c) / chunks;
    const Index end = rows * (static_cast<Index>(c) + 1) / chunks;
    for (Index r = begin; r < end; ++r) fn(r);
  });
}

// The Hessian system at an equilibrium (free boundary) for the implicit-function vjp.
void implicit_adjoint(const Network& net, const Vector& h, const Vector& o_bar, Vector& lh,
                      Vector& lo) {
  const SettleBoundary free;
  if (!solve_newton(net, free, hidden_slopes(net, h), Vector::Zero(net.H), o_bar, lh, lo)) {
    lh.setZero(net.H);
    lo.setZero(net.P);
  }
}

}  // namespace

void validate(const ResistiveNetworkConfig& c) {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("resistive network: " + what);
  };
  require(c.num_inputs >= 1 && c.num_hidden >= 1 && c.num_outputs >= 1,
          "inputs, hidden and outputs must be ≥ 1");
  require(std::isfinite(c.g_min_ms) && std::isfinite(c.g_max_ms) && c.g_min_ms > 0.0 &&
              c.g_min_ms < c.g_max_ms,
          "needs 0 < g_min_ms < g_max_ms");
  require(std::isfinite(c.diode_threshold_volts) && c.diode_threshold_volts > 0.0,
          "diode_threshold_volts must be > 0");
  require(std::isfinite(c.diode_on_conductance_ms) && c.diode_on_conductance_ms > 0.0,
          "diode_on_conductance_ms must be > 0");
  require(std::isfinite(c.readout_gain) && c.readout_gain > 0.0, "readout_gain must be > 0");
  require(std::isfinite(c.bias_volts) && c.bias_volts > 0.0, "bias_volts must be > 0");
}

const char* to_string(SettleBoundary::Kind kind) {
  switch (kind) {
    case SettleBoundary::Kind::kFree:
      return "free";
    case SettleBoundary::Kind::kNudged:
      return "nudged";
    case SettleBoundary::Kind::kClamped:
      return "clamped";
  }
  return "unknown";
}

std::string boundary_problem(Index num_outputs, Index num_output_nodes, const SettleBoundary& b,
                             Index rows) {
  const auto shape = [](Index r, Index k) { return std::to_string(r) + "x" + std::to_string(k); };
  switch (b.kind) {
    case SettleBoundary::Kind::kFree:
      if (b.values.size() != 0 || b.beta != 0.0) return "a free settle takes no values and no β";
      return "";
    case SettleBoundary::Kind::kNudged:
      if (!std::isfinite(b.beta) || b.beta == 0.0 || std::abs(b.beta) > 10.0) {
        return "nudged: β must be finite, non-zero and within ±10 mS";
      }
      if (b.values.rows() != rows || b.values.cols() != num_outputs) {
        return "nudged: the target is " + shape(b.values.rows(), b.values.cols()) + ", expected " +
               shape(rows, num_outputs) + " (batch × outputs)";
      }
      break;
    case SettleBoundary::Kind::kClamped:
      if (b.beta != 0.0) return "clamped: takes no β";
      if (b.values.rows() != rows || b.values.cols() != num_output_nodes) {
        return "clamped: the values are " + shape(b.values.rows(), b.values.cols()) +
               ", expected " + shape(rows, num_output_nodes) + " (batch × output nodes)";
      }
      break;
    default:
      return "unknown boundary kind " + std::to_string(static_cast<int>(b.kind)) +
             " (free, nudged or clamped)";
  }
  if (!b.values.allFinite()) return std::string(to_string(b.kind)) + ": the values are not finite";
  return "";
}

SettleOutcome settle_network(const ResistiveNetworkConfig& config, const VectorRef& thresholds,
                             const MatrixRef& x, const VectorRef& g_ms,
                             const SettleBoundary& boundary, const Matrix* start,
                             const SettleOptions& options) {
  const Network net(config, thresholds, g_ms);
  const Prepared p = prepare(net, x);
  SettleOutcome out;
  out.nodes = start ? *start : Matrix::Zero(x.rows(), config.num_nodes());
  std::vector<int> iterations(static_cast<std::size_t>(x.rows()), 0);
  for_rows(x.rows(), [&](Index r) {
    const Row row{net, p.drive.row(r).transpose(), p.constant[r], boundary, r};
    Vector h = out.nodes.row(r).head(net.H).transpose();
    Vector o = out.nodes.row(r).tail(net.P).transpose();
    iterations[static_cast<std::size_t>(r)] = settle_row(row, h, o, options);
    out.nodes.row(r).head(net.H) = h.transpose();
    out.nodes.row(r).tail(net.P) = o.transpose();
  });
  for (int it : iterations) {
    if (it < 0) out.converged = false;
    out.iterations = std::max(out.iterations, it < 0 ? options.max_iterations : it);
  }
  return out;
}

Vector network_energy(const ResistiveNetworkConfig& config, const VectorRef& thresholds,
                      const MatrixRef& x, const VectorRef& g_ms, const SettleBoundary& boundary,
                      const MatrixRef& nodes) {
  const Network net(config, thresholds, g_ms);
  const Prepared p = prepare(net, x);
  Vector e(x.rows());
  for (Index r = 0; r < x.rows(); ++r) {
    const Row row{net, p.drive.row(r).transpose(), p.constant[r], boundary, r};
    e[r] =
        row_energy(row, nodes.row(r).head(net.H).transpose(), nodes.row(r).tail(net.P).transpose());
  }
  return e;
}

Matrix network_energy_grad(const ResistiveNetworkConfig& config, const VectorRef& thresholds,
                           const MatrixRef& x, const VectorRef& g_ms,
                           const SettleBoundary& boundary, const MatrixRef& nodes) {
  const Network net(config, thresholds, g_ms);
  const Prepared p = prepare(net, x);
  Matrix g(x.rows(), config.num_nodes());
  Vector gh, go;
  for (Index r = 0; r < x.rows(); ++r) {
    const Row row{net, p.drive.row(r).transpose(), p.constant[r], boundary, r};
    row_gradient(row, nodes.row(r).head(net.H).transpose(), nodes.row(r).tail(net.P).transpose(),
                 gh, go);
    g.row(r).head(net.H) = gh.transpose();
    g.row(r).tail(net.P) = go.transpose();
  }
  return g;
}

Vector energy_theta_grad(const ResistiveNetworkConfig& c, const MatrixRef& x,
                         const MatrixRef& nodes) {
  const Index H = c.num_hidden, P = c.num_output_nodes(), S = c.num_sources();
  const Matrix s = sources(c, x);
  const auto h = nodes.leftCols(H);
  const auto o = nodes.rightCols(P);
  const Vector h2 = h.cwiseAbs2().colwise().sum().transpose();
  const Vector s2 = s.cwiseAbs2().colwise().sum().transpose();
  const Vector o2 = o.cwiseAbs2().colwise().sum().transpose();
  Vector out(c.num_params());
  Eigen::Map<RowMatrix> g1(out.data(), H, S);
  Eigen::Map<RowMatrix> g2(out.data() + H * S, P, H);
  g1 = -(h.transpose() * s);
  g1.colwise() += 0.5 * h2;
  g1.rowwise() += 0.5 * s2.transpose();
  g2 = -(o.transpose() * h);
  g2.colwise() += 0.5 * o2;
  g2.rowwise() += 0.5 * h2.transpose();
  return out;
}

Matrix readout(const ResistiveNetworkConfig& c, const MatrixRef& nodes) {
  const Index n = c.num_outputs;
  return c.readout_gain *
         (nodes.middleCols(c.num_hidden, n) - nodes.middleCols(c.num_hidden + n, n));
}

Matrix output_nodes_for(const ResistiveNetworkConfig& c, const MatrixRef& free_nodes,
                        const MatrixRef& target) {
  const Index n = c.num_outputs;
  const Matrix shift = (target - readout(c, free_nodes)) / (2.0 * c.readout_gain);
  Matrix y = free_nodes.rightCols(c.num_output_nodes());
  y.leftCols(n) += shift;
  y.rightCols(n) -= shift;
  return y;
}

ResistiveNetworkModel::ResistiveNetworkModel(ResistiveNetworkConfig config) : config_(config) {
  validate(config_);
  thresholds_ = Vector::Constant(config_.num_hidden, config_.diode_threshold_volts);
}

Vector ResistiveNetworkModel::initial_params(std::uint64_t seed) const {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(config_.g_min_ms, 0.2 * config_.g_max_ms);
  Vector theta(num_params());
  for (Index i = 0; i < theta.size(); ++i) theta[i] = u(rng);
  return theta;
}

Matrix ResistiveNetworkModel::do_forward(const MatrixRef& x, const VectorRef& theta) const {
  const SettleOutcome s =
      settle_network(config_, thresholds_, x, theta, SettleBoundary::free(), nullptr);
  return readout(config_, s.nodes);
}

Cotangents ResistiveNetworkModel::do_vjp(const MatrixRef& x, const VectorRef& theta,
                                         const MatrixRef& y_bar) const {
  const ResistiveNetworkConfig& c = config_;
  const SettleOutcome settled =
      settle_network(c, thresholds_, x, theta, SettleBoundary::free(), nullptr);
  const Network net(c, thresholds_, theta);
  const Index H = net.H, P = net.P, n = net.n, B = x.rows();
  Matrix lh(B, H), lo(B, P);
  for_rows(B, [&](Index r) {
    Vector o_bar(P);
    o_bar.head(n) = c.readout_gain * y_bar.row(r).transpose();
    o_bar.tail(n) = -c.readout_gain * y_bar.row(r).transpose();
    Vector a, b;
    implicit_adjoint(net, settled.nodes.row(r).head(H).transpose(), o_bar, a, b);
    lh.row(r) = a.transpose();
    lo.row(r) = b.transpose();
  });
  const Matrix s = sources(c, x);
  const auto h = settled.nodes.leftCols(H);
  const auto o = settled.nodes.rightCols(P);
  Cotangents out;
  out.theta_bar.resize(c.num_params());
  Eigen::Map<RowMatrix> g1(out.theta_bar.data(), H, net.S);
  Eigen::Map<RowMatrix> g2(out.theta_bar.data() + H * net.S, P, H);
  // θ̄ = −λᵀ ∂_θ ∇_v E:  ∂(∇_h E)_j/∂G1_jk = h_j − s_k;  G2_mj enters ∇_h E_j as (h_j − o_m)
  // and ∇_o E_m as (o_m − h_j).
  const Vector lhh = lh.cwiseProduct(h).colwise().sum().transpose();
  const Vector loo = lo.cwiseProduct(o).colwise().sum().transpose();
  g1 = lh.transpose() * s;
  g1.colwise() -= lhh;
  g2 = o.transpose() * lh + lo.transpose() * h;
  g2.colwise() -= loo;
  g2.rowwise() -= lhh.transpose();
  const Matrix s_bar = lh * net.g1;  // −λᵀ ∂(∇_h E)/∂s = λ_h G1
  out.x_bar = s_bar.leftCols(c.num_inputs) - s_bar.middleCols(c.num_inputs, c.num_inputs);
  return out;
}

}  // namespace pnn::digital_twin
