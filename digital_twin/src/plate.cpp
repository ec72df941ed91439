#include "pnn/digital_twin/plate.hpp"

#include <algorithm>
#include <cstdlib>  // XXX
#include <cmath>
#include <numbers>
#include <stdexcept>

#include "pnn/digital_twin/parallel.hpp"

namespace pnn::digital_twin {
namespace {

using Array2 = Eigen::ArrayXXd;
using Row = Eigen::Array<double, 1, Eigen::Dynamic>;

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("speaker-plate: " + what);
}

}  // namespace

std::vector<PlateMode> nominal_plate_modes() {
  // A 0.5 mm steel plate (≈ 15 × 20 cm) glued to a speaker cone: the six lowest modes it couples
  // to. drive = ω² · (static deflection per volt); cubic = ω² / q_nl² with q_nl = 150 µm (about a
  // quarter of the plate thickness, where geometric stiffening becomes comparable to bending).
  struct Row {
    double f_hz, zeta, deflection_um_per_v, mic;
  };
  const Row rows[] = {{180.0, 0.015, 110.0, 0.0040},  {290.0, 0.012, -75.0, -0.0030},
                      {410.0, 0.010, 55.0, 0.0025},   {530.0, 0.012, -45.0, 0.0020},
                      {690.0, 0.010, 35.0, -0.0018},  {860.0, 0.009, -25.0, 0.0015}};
  constexpr double kNonlinearUm = 150.0;
  std::vector<PlateMode> modes;
  const double xd = std::getenv("PNN_X_DEFL") ? std::atof(std::getenv("PNN_X_DEFL")) : 1.0;  // XXX
  const double xz = std::getenv("PNN_X_ZETA") ? std::atof(std::getenv("PNN_X_ZETA")) : 1.0;  // XXX
  for (auto r : rows) {
    r.deflection_um_per_v *= xd; r.zeta *= xz; r.mic /= xd;  // XXX
    const double w = 2.0 * std::numbers::pi * r.f_hz * 1e-3;  // rad/ms
    modes.push_back({r.f_hz, r.zeta, w * w / (kNonlinearUm * kNonlinearUm),
                     w * w * r.deflection_um_per_v, r.mic});
  }
  return modes;
}

// Per-mode coefficients as row arrays (1 × modes), with φ applied.
struct PlateModel::Coefficients {
  Row damp, w2, alpha, b, c;  // 2ζω, ω², α, b, c
  double s_w, s_z;

  explicit Coefficients(const PlateConfig& config) {
    const Index n = static_cast<Index>(config.modes.size());
    damp.resize(n), w2.resize(n), alpha.resize(n), b.resize(n), c.resize(n);
    s_w = config.freq_scale;
    s_z = config.damping_scale;
    for (Index i = 0; i < n; ++i) {
      const auto& m = config.modes[static_cast<std::size_t>(i)];
      const double w = 2.0 * std::numbers::pi * m.freq_hz * 1e-3 * s_w;
      damp[i] = 2.0 * m.damping * s_z * w;
      w2[i] = w * w;
      alpha[i] = m.cubic;
      b[i] = m.drive;
      c[i] = m.mic;
    }
  }

  // a = b F − 2ζω p − ω² q − α q³ for a row batch (q, p: batch × modes, f: batch).
  void accel(const Array2& q, const Array2& p, const Eigen::ArrayXd& f, Array2& a) const {
    a.matrix().noalias() = f.matrix() * b.matrix();
    a -= p.rowwise() * damp + q.rowwise() * w2 + q.cube().rowwise() * alpha;
  }
};

PlateModel::PlateModel(PlateConfig config) : config_(std::move(config)) {
  require(config_.num_slots >= 1, "num_slots must be ≥ 1");
  require(!config_.modes.empty(), "at least one mode is needed");
  for (const auto& m : config_.modes) {
    require(std::isfinite(m.freq_hz) && m.freq_hz > 0.0, "mode frequencies must be > 0");
    require(std::isfinite(m.damping) && m.damping >= 0.0, "mode damping must be ≥ 0");
    require(std::isfinite(m.cubic) && std::isfinite(m.drive) && std::isfinite(m.mic),
            "mode coefficients must be finite");
  }
  require(std::isfinite(config_.slot_ms) && config_.slot_ms > 0.0, "slot_ms must be > 0");
  require(config_.steps_per_slot >= 1, "steps_per_slot must be ≥ 1");
  require(std::isfinite(config_.freq_scale) && config_.freq_scale > 0.0 &&
              std::isfinite(config_.damping_scale) && config_.damping_scale > 0.0,
          "scale factors must be > 0");
}

Vector PlateModel::initial_params(std::uint64_t /*seed*/) const { return Vector::Zero(num_params()); }

Vector PlateModel::physical_params() const {
  Vector phi(2);
  phi << config_.freq_scale, config_.damping_scale;
  return phi;
}

ModelPtr PlateModel::with_physical_params(const VectorRef& phi) const {
  if (phi.size() != 2) {
    throw std::invalid_argument(
        "speaker-plate: 2 physical parameters (frequency and damping scale) expected, got " +
        std::to_string(phi.size()));
  }
  PlateConfig config = config_;
  config.freq_scale = phi[0];
  config.damping_scale = phi[1];
  return std::make_shared<PlateModel>(std::move(config));
}

Matrix PlateModel::drive_levels(const MatrixRef& x, const VectorRef& theta) const {
  const Index k = config_.num_slots;
  Matrix levels(x.rows(), 2 * k);
  for (Index s = 0; s < k; ++s) {
    levels.col(2 * s) = x.col(s);
    levels.col(2 * s + 1).setConstant(theta[s]);
  }
  return levels;
}

Matrix PlateModel::simulate(const MatrixRef& levels, std::vector<Matrix>* q_steps,
                            std::vector<Matrix>* p_steps) const {
  const Coefficients co(config_);
  const Index rows = levels.rows(), n = num_modes();
  const int spp = config_.steps_per_slot;
  const double h = config_.slot_ms / spp;
  const double inv_window = 1.0 / (2.0 * config_.slot_ms);
  const Eigen::VectorXd c = co.c.matrix().transpose();
  Matrix y(rows, config_.num_slots);
  Array2 q = Array2::Zero(rows, n), p = Array2::Zero(rows, n);
  Array2 a1(rows, n), a2(rows, n), a3(rows, n), a4(rows, n), qs(rows, n), p2(rows, n),
      p3(rows, n), p4(rows, n);
  Eigen::ArrayXd f(rows);
  Eigen::VectorXd window_start = Eigen::VectorXd::Zero(rows);
  for (Index s = 0; s < 2 * config_.num_slots; ++s) {
    f = levels.col(s).array();
    for (int t = 0; t < spp; ++t) {
      if (q_steps != nullptr) {
        q_steps->push_back(q.matrix());
        p_steps->push_back(p.matrix());
      }
      co.accel(q, p, f, a1);
      qs = q + (0.5 * h) * p;
      p2 = p + (0.5 * h) * a1;
      co.accel(qs, p2, f, a2);
      qs = q + (0.5 * h) * p2;
      p3 = p + (0.5 * h) * a2;
      co.accel(qs, p3, f, a3);
      qs = q + h * p3;
      p4 = p + h * a3;
      co.accel(qs, p4, f, a4);
      q += (h / 6.0) * (p + 2.0 * p2 + 2.0 * p3 + p4);
      p += (h / 6.0) * (a1 + 2.0 * a2 + 2.0 * a3 + a4);
    }
    if (s % 2 == 1) {  // end of window s/2: bin mean of Σ c_n q̈_n = Σ c_n Δq̇_n / T
      const Eigen::VectorXd pc = p.matrix() * c;
      y.col(s / 2) = (pc - window_start) * inv_window;
      window_start = pc;
    }
  }
  return y;
}

Matrix PlateModel::respond(const MatrixRef& levels) const {
  if (levels.cols() != 2 * config_.num_slots) {
    throw std::invalid_argument("speaker-plate: drive levels have " +
                                std::to_string(levels.cols()) + " slots, expected " +
                                std::to_string(2 * config_.num_slots));
  }
  Matrix out(levels.rows(), config_.num_slots);
  const Index shards = std::max<Index>(
      1, std::min<Index>(num_threads(), levels.rows() / std::max<Index>(1, min_rows_per_shard())));
  parallel_for(static_cast<std::size_t>(shards), [&](std::size_t sh) {
    const Index begin = levels.rows() * static_cast<Index>(sh) / shards;
    const Index end = levels.rows() * (static_cast<Index>(sh) + 1) / shards;
    out.middleRows(begin, end - begin) =
        simulate(levels.middleRows(begin, end - begin), nullptr, nullptr);
  });
  return out;
}

Matrix PlateModel::do_forward(const MatrixRef& x, const VectorRef& theta) const {
  return simulate(drive_levels(x, theta), nullptr, nullptr);
}

void PlateModel::adjoint(const MatrixRef& levels, const MatrixRef& y_bar, Matrix* level_bar,
                         Vector* phi_bar) const {
  const Coefficients co(config_);
  const Index rows = levels.rows(), n = num_modes();
  const int spp = config_.steps_per_slot;
  const Index steps = 2 * config_.num_slots * spp;
  const double h = config_.slot_ms / spp;
  const double inv_window = 1.0 / (2.0 * config_.slot_ms);
  std::vector<Matrix> q_steps, p_steps;
  q_steps.reserve(static_cast<std::size_t>(steps));
  p_steps.reserve(static_cast<std::size_t>(steps));
  simulate(levels, &q_steps, &p_steps);

  if (level_bar != nullptr) *level_bar = Matrix::Zero(rows, 2 * config_.num_slots);
  double sw_bar = 0.0, sz_bar = 0.0;
  const Row three_alpha = 3.0 * co.alpha;
  Array2 qb = Array2::Zero(rows, n), pb = Array2::Zero(rows, n);  // cotangents of state n+1
  Array2 q(rows, n), p(rows, n), a1(rows, n), a2(rows, n), a3(rows, n), q2(rows, n), q3(rows, n),
      q4(rows, n), p2(rows, n), p3(rows, n), p4(rows, n);
  Array2 ab1(rows, n), ab2(rows, n), ab3(rows, n), ab4(rows, n), pb2(rows, n), pb3(rows, n),
      pb4(rows, n), stage_qb(rows, n), qn(rows, n), pn(rows, n);
  Eigen::ArrayXd f(rows), f_bar(rows);

  // φ: ∂a/∂s_ω = −(2ζω/s_ω) p − (2ω²/s_ω) q,  ∂a/∂s_ζ = −(2ζω/s_ζ) p.
  auto phi_terms = [&](const Array2& ab, const Array2& qs, const Array2& ps) {
    if (phi_bar == nullptr) return;
    const Array2 abp = ab * ps;
    sw_bar -= ((abp.rowwise() * co.damp).sum() + 2.0 * ((ab * qs).rowwise() * co.w2).sum()) / co.s_w;
    sz_bar -= (abp.rowwise() * co.damp).sum() / co.s_z;
  };
  // Reverse of one acceleration evaluation: q̄ of the stage into stage_qb, ā·(−2ζω) added to p̄.
  auto accel_vjp = [&](const Array2& ab, const Array2& qs, Array2& stage_pb) {
    stage_qb = -(ab * ((qs.square().rowwise() * three_alpha).rowwise() + co.w2));
    stage_pb -= ab.rowwise() * co.damp;
    f_bar += (ab.rowwise() * co.b).rowwise().sum();
  };

  for (Index m = steps - 1; m >= 0; --m) {
    const Index slot = m / spp;
    // Readout: y_k = c·(p_{end of window k} − p_{start of window k}) / T.
    if ((m + 1) % (2 * spp) == 0) {
      const Index k = (m + 1) / (2 * spp) - 1;  // window ending at state m+1
      Eigen::ArrayXd w = y_bar.col(k).array();
      if (k + 1 < config_.num_slots) w -= y_bar.col(k + 1).array();  // window k+1 starts here
      pb.matrix().noalias() += (inv_window * w).matrix() * co.c.matrix();
    }
    // Recompute the stages of step m from its starting state.
    q = q_steps[static_cast<std::size_t>(m)].array();
    p = p_steps[static_cast<std::size_t>(m)].array();
    f = levels.col(slot).array();
    co.accel(q, p, f, a1);
    q2 = q + (0.5 * h) * p;
    p2 = p + (0.5 * h) * a1;
    co.accel(q2, p2, f, a2);
    q3 = q + (0.5 * h) * p2;
    p3 = p + (0.5 * h) * a2;
    co.accel(q3, p3, f, a3);
    q4 = q + h * p3;
    p4 = p + h * a3;

    f_bar.setZero();
    // q' = q + h/6 (p + 2 p2 + 2 p3 + p4),  p' = p + h/6 (a1 + 2 a2 + 2 a3 + a4).
    qn = qb;
    pn = pb + (h / 6.0) * qb;
    pb2 = (h / 3.0) * qb;
    pb3 = (h / 3.0) * qb;
    pb4 = (h / 6.0) * qb;
    ab1 = (h / 6.0) * pb;
    ab2 = (h / 3.0) * pb;
    ab3 = (h / 3.0) * pb;
    ab4 = (h / 6.0) * pb;
    // a4 = a(q4, p4); q4 = q + h p3; p4 = p + h a3.
    accel_vjp(ab4, q4, pb4);
    phi_terms(ab4, q4, p4);
    qn += stage_qb;
    pb3 += h * stage_qb;
    pn += pb4;
    ab3 += h * pb4;
    // a3 = a(q3, p3); q3 = q + h/2 p2; p3 = p + h/2 a2.
    accel_vjp(ab3, q3, pb3);
    phi_terms(ab3, q3, p3);
    qn += stage_qb;
    pb2 += (0.5 * h) * stage_qb;
    pn += pb3;
    ab2 += (0.5 * h) * pb3;
    // a2 = a(q2, p2); q2 = q + h/2 p; p2 = p + h/2 a1.
    accel_vjp(ab2, q2, pb2);
    phi_terms(ab2, q2, p2);
    qn += stage_qb;
    pn += (0.5 * h) * stage_qb;
    pn += pb2;
    ab1 += (0.5 * h) * pb2;
    // a1 = a(q, p).
    accel_vjp(ab1, q, pn);
    phi_terms(ab1, q, p);
    qn += stage_qb;

    if (level_bar != nullptr) level_bar->col(slot).array() += f_bar;
    qb.swap(qn);
    pb.swap(pn);
  }
  if (phi_bar != nullptr) {
    *phi_bar = Vector(2);
    (*phi_bar) << sw_bar, sz_bar;
  }
}

Cotangents PlateModel::do_vjp(const MatrixRef& x, const VectorRef& theta,
                              const MatrixRef& y_bar) const {
  Matrix level_bar;
  adjoint(drive_levels(x, theta), y_bar, &level_bar, nullptr);
  Cotangents out{Matrix(x.rows(), num_inputs()), Vector(num_params())};
  for (Index s = 0; s < config_.num_slots; ++s) {
    out.x_bar.col(s) = level_bar.col(2 * s);
    out.theta_bar[s] = level_bar.col(2 * s + 1).sum();
  }
  return out;
}

Vector PlateModel::do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                                   const MatrixRef& y_bar) const {
  Vector phi_bar;
  adjoint(drive_levels(x, theta), y_bar, nullptr, &phi_bar);
  return phi_bar;
}

}  // namespace pnn::digital_twin
