#include "pnn/digital_twin/plate.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

#include "pnn/digital_twin/parallel.hpp"
#include "pnn/digital_twin/time_multiplex.hpp"

namespace pnn::digital_twin {
namespace {

using Array2 = Eigen::ArrayXXd;
using Array = Eigen::ArrayXd;
using Row = Eigen::Array<double, 1, Eigen::Dynamic>;

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("speaker-plate: " + what);
}

double rad_per_ms(double f_hz) { return 2.0 * std::numbers::pi * f_hz * 1e-3; }

}  // namespace

std::vector<PlateMode> nominal_plate_modes() {
  // A 0.5 mm steel plate (≈ 15 × 20 cm) glued to a speaker cone: the six lowest modes it couples
  // to. drive = ω² · (static deflection per volt at the amplifier's nominal gain, set so that a
  // full-scale drive at the fundamental's resonance reaches ≈ q_nl); cubic = ω² / q_nl². The
  // microphone sits 3.4 cm above the plate: a 0.17 Pa/(m/s²) monopole pressure on a 50 mV/Pa
  // capsule with ×5 preamp gain gives c ≈ 0.04 V/(m/s²) for a mode radiating with the whole
  // plate; higher modes radiate less (partial cancellation between their antinodes).
  struct Row {
    double f_hz, zeta, deflection_um_per_v, mic;
  };
  const Row rows[] = {{180.0, 0.015, 6.0, 0.035},  {290.0, 0.012, -4.0, -0.025},
                      {410.0, 0.010, 3.0, 0.021},  {530.0, 0.012, -2.5, 0.017},
                      {690.0, 0.010, 2.0, -0.015}, {860.0, 0.009, -1.4, 0.012}};
  std::vector<PlateMode> modes;
  for (const auto& r : rows) {
    const double w = rad_per_ms(r.f_hz);
    modes.push_back({r.f_hz, r.zeta, w * w / (kPlateNonlinearUm * kPlateNonlinearUm),
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
      const double w = rad_per_ms(m.freq_hz) * s_w;
      damp[i] = 2.0 * m.damping * s_z * w;
      w2[i] = w * w;
      alpha[i] = m.cubic;
      b[i] = m.drive;
      c[i] = m.mic;
    }
  }

  // a = b F − 2ζω p − ω² q − α q³ for a row batch (q, p: batch × modes, f: batch).
  void accel(const Array2& q, const Array2& p, const Array& f, Array2& a) const {
    a.matrix().noalias() = f.matrix() * b.matrix();
    a -= p.rowwise() * damp + q.rowwise() * w2 + q.cube().rowwise() * alpha;
  }
};

// States at the start of every step (and the lagged force there), for the reverse sweep.
struct PlateModel::Trajectory {
  std::vector<Array2> q, p;
  std::vector<Array> force;
};

namespace {

// Speaker force at the RK4 stage times of one step: F(t0 + s) = V + (F(t0) − V) e^{−s/τ}.
// With τ = 0 every stage sees V (the lag weights are 0).
struct StageForces {
  double l0, lh, l1;  // e^{−s/τ} at s = 0, h/2, h
  Array f1, f23, f4;

  void set(const Array& start, const Array& level) {
    f1 = l0 * start + (1.0 - l0) * level;
    f23 = lh * start + (1.0 - lh) * level;
    f4 = l1 * start + (1.0 - l1) * level;
  }
};

}  // namespace

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
  require(std::isfinite(config_.drive_tau_ms) && config_.drive_tau_ms >= 0.0,
          "drive_tau_ms must be ≥ 0");
  require(std::isfinite(config_.freq_scale) && config_.freq_scale > 0.0 &&
              std::isfinite(config_.damping_scale) && config_.damping_scale > 0.0,
          "scale factors must be > 0");
}

Vector PlateModel::initial_params(std::uint64_t /*seed*/) const {
  return Vector::Zero(num_params());
}

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

double PlateModel::drive_lag(double dt_ms) const {
  return config_.drive_tau_ms > 0.0 ? std::exp(-dt_ms / config_.drive_tau_ms) : 0.0;
}

Matrix PlateModel::drive_levels(const MatrixRef& x, const VectorRef& theta) const {
  return time_multiplexed_levels(x, theta);
}

Matrix PlateModel::simulate(const MatrixRef& levels, Trajectory* record, Matrix* samples) const {
  const Coefficients co(config_);
  const Index rows = levels.rows(), n = num_modes();
  const int spp = config_.steps_per_slot;
  const double h = config_.slot_ms / spp;
  const double inv_window = 1.0 / (2.0 * config_.slot_ms);
  const Eigen::VectorXd c = co.c.matrix().transpose();
  Matrix y(rows, config_.num_slots);
  if (samples != nullptr) samples->resize(rows, num_samples());
  Array2 q = Array2::Zero(rows, n), p = Array2::Zero(rows, n);
  Array2 a1(rows, n), a2(rows, n), a3(rows, n), a4(rows, n), qs(rows, n), p2(rows, n), p3(rows, n),
      p4(rows, n);
  StageForces sf{drive_lag(0.0), drive_lag(0.5 * h), drive_lag(h), {}, {}, {}};
  Array force = Array::Zero(rows), level(rows);
  Eigen::VectorXd window_start = Eigen::VectorXd::Zero(rows);
  Index j = 0;
  for (Index s = 0; s < 2 * config_.num_slots; ++s) {
    level = levels.col(s).array();
    for (int t = 0; t < spp; ++t, ++j) {
      if (record != nullptr) {
        record->q.push_back(q);
        record->p.push_back(p);
        record->force.push_back(force);
      }
      sf.set(force, level);
      co.accel(q, p, sf.f1, a1);
      qs = q + (0.5 * h) * p;
      p2 = p + (0.5 * h) * a1;
      co.accel(qs, p2, sf.f23, a2);
      qs = q + (0.5 * h) * p2;
      p3 = p + (0.5 * h) * a2;
      co.accel(qs, p3, sf.f23, a3);
      qs = q + h * p3;
      p4 = p + h * a3;
      co.accel(qs, p4, sf.f4, a4);
      q += (h / 6.0) * (p + 2.0 * p2 + 2.0 * p3 + p4);
      p += (h / 6.0) * (a1 + 2.0 * a2 + 2.0 * a3 + a4);
      force = sf.f4;
      if (samples != nullptr) {
        co.accel(q, p, force, a1);
        samples->col(j) = a1.matrix() * c;
      }
    }
    if (s % 2 == 1) {  // end of window s/2: bin mean of Σ c_n q̈_n = Σ c_n Δq̇_n / T
      const Eigen::VectorXd pc = p.matrix() * c;
      y.col(s / 2) = (pc - window_start) * inv_window;
      window_start = pc;
    }
  }
  return y;
}

Matrix PlateModel::microphone_signal(const MatrixRef& levels) const {
  if (levels.cols() != 2 * config_.num_slots) {
    throw std::invalid_argument("speaker-plate: drive levels have " +
                                std::to_string(levels.cols()) + " slots, expected " +
                                std::to_string(2 * config_.num_slots));
  }
  Matrix out(levels.rows(), num_samples());
  const Index shards = std::max<Index>(
      1, std::min<Index>(num_threads(), levels.rows() / std::max<Index>(1, min_rows_per_shard())));
  parallel_for(static_cast<std::size_t>(shards), [&](std::size_t sh) {
    const Index begin = levels.rows() * static_cast<Index>(sh) / shards;
    const Index end = levels.rows() * (static_cast<Index>(sh) + 1) / shards;
    Matrix part;
    simulate(levels.middleRows(begin, end - begin), nullptr, &part);
    out.middleRows(begin, end - begin) = part;
  });
  return out;
}

Matrix PlateModel::window_means(const MatrixRef& samples) const {
  if (samples.cols() != num_samples()) {
    throw std::invalid_argument("speaker-plate: " + std::to_string(samples.cols()) +
                                " samples per run, expected " + std::to_string(num_samples()));
  }
  return digital_twin::window_means(samples, config_.num_slots);
}

Matrix PlateModel::do_forward(const MatrixRef& x, const VectorRef& theta) const {
  return simulate(drive_levels(x, theta), nullptr, nullptr);
}

void PlateModel::adjoint(const MatrixRef& levels, const MatrixRef& y_bar, Matrix* level_bar,
                         Vector* phi_bar) const {
  const Coefficients co(config_);
  const Index rows = levels.rows(), n = num_modes();
  const int spp = config_.steps_per_slot;
  const Index steps = num_samples();
  const double h = config_.slot_ms / spp;
  const double inv_window = 1.0 / (2.0 * config_.slot_ms);
  Trajectory tr;
  tr.q.reserve(static_cast<std::size_t>(steps));
  tr.p.reserve(static_cast<std::size_t>(steps));
  tr.force.reserve(static_cast<std::size_t>(steps));
  simulate(levels, &tr, nullptr);

  if (level_bar != nullptr) *level_bar = Matrix::Zero(rows, 2 * config_.num_slots);
  double sw_bar = 0.0, sz_bar = 0.0;
  const Row three_alpha = 3.0 * co.alpha;
  Array2 qb = Array2::Zero(rows, n), pb = Array2::Zero(rows, n);  // cotangents of state m+1
  Array2 a1(rows, n), a2(rows, n), a3(rows, n), q2(rows, n), q3(rows, n), q4(rows, n), p2(rows, n),
      p3(rows, n), p4(rows, n);
  Array2 ab1(rows, n), ab2(rows, n), ab3(rows, n), ab4(rows, n), pb2(rows, n), pb3(rows, n),
      pb4(rows, n), stage_qb(rows, n), qn(rows, n), pn(rows, n);
  StageForces sf{drive_lag(0.0), drive_lag(0.5 * h), drive_lag(h), {}, {}, {}};
  Array level(rows), fb1(rows), fb23(rows), fb4(rows);
  Array force_bar = Array::Zero(rows);  // cotangent of the force at the end of step m

  // φ: ∂a/∂s_ω = −(2ζω/s_ω) p − (2ω²/s_ω) q,  ∂a/∂s_ζ = −(2ζω/s_ζ) p.
  auto phi_terms = [&](const Array2& ab, const Array2& qs, const Array2& ps) {
    if (phi_bar == nullptr) return;
    const Array2 abp = ab * ps;
    sw_bar -=
        ((abp.rowwise() * co.damp).sum() + 2.0 * ((ab * qs).rowwise() * co.w2).sum()) / co.s_w;
    sz_bar -= (abp.rowwise() * co.damp).sum() / co.s_z;
  };
  // Reverse of one acceleration evaluation: q̄ of the stage into stage_qb, ā·(−2ζω) added to p̄,
  // ā·b to the stage force's cotangent.
  auto accel_vjp = [&](const Array2& ab, const Array2& qs, Array2& stage_pb, Array& f_bar) {
    stage_qb = -(ab * ((qs.square().rowwise() * three_alpha).rowwise() + co.w2));
    stage_pb -= ab.rowwise() * co.damp;
    f_bar += (ab.rowwise() * co.b).rowwise().sum();
  };

  for (Index m = steps - 1; m >= 0; --m) {
    const Index slot = m / spp;
    // Readout: y_k = c·(p_{end of window k} − p_{start of window k}) / T.
    if ((m + 1) % (2 * spp) == 0) {
      const Index k = (m + 1) / (2 * spp) - 1;  // window ending at state m+1
      Array w = y_bar.col(k).array();
      if (k + 1 < config_.num_slots) w -= y_bar.col(k + 1).array();  // window k+1 starts here
      pb.matrix().noalias() += (inv_window * w).matrix() * co.c.matrix();
    }
    // Recompute the stages of step m from its starting state.
    const auto mi = static_cast<std::size_t>(m);
    const Array2& q = tr.q[mi];
    const Array2& p = tr.p[mi];
    level = levels.col(slot).array();
    sf.set(tr.force[mi], level);
    co.accel(q, p, sf.f1, a1);
    q2 = q + (0.5 * h) * p;
    p2 = p + (0.5 * h) * a1;
    co.accel(q2, p2, sf.f23, a2);
    q3 = q + (0.5 * h) * p2;
    p3 = p + (0.5 * h) * a2;
    co.accel(q3, p3, sf.f23, a3);
    q4 = q + h * p3;
    p4 = p + h * a3;

    fb1.setZero();
    fb23.setZero();
    fb4 = force_bar;  // the force at the end of step m is F4 of step m
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
    // a4 = a(q4, p4, F4); q4 = q + h p3; p4 = p + h a3.
    accel_vjp(ab4, q4, pb4, fb4);
    phi_terms(ab4, q4, p4);
    qn += stage_qb;
    pb3 += h * stage_qb;
    pn += pb4;
    ab3 += h * pb4;
    // a3 = a(q3, p3, F23); q3 = q + h/2 p2; p3 = p + h/2 a2.
    accel_vjp(ab3, q3, pb3, fb23);
    phi_terms(ab3, q3, p3);
    qn += stage_qb;
    pb2 += (0.5 * h) * stage_qb;
    pn += pb3;
    ab2 += (0.5 * h) * pb3;
    // a2 = a(q2, p2, F23); q2 = q + h/2 p; p2 = p + h/2 a1.
    accel_vjp(ab2, q2, pb2, fb23);
    phi_terms(ab2, q2, p2);
    qn += stage_qb;
    pn += (0.5 * h) * stage_qb;
    pn += pb2;
    ab1 += (0.5 * h) * pb2;
    // a1 = a(q, p, F1).
    accel_vjp(ab1, q, pn, fb1);
    phi_terms(ab1, q, p);
    qn += stage_qb;

    // F_i = l_i F_start + (1 − l_i) V for the stage weights l_i of the lag.
    if (level_bar != nullptr) {
      level_bar->col(slot).array() +=
          (1.0 - sf.l0) * fb1 + (1.0 - sf.lh) * fb23 + (1.0 - sf.l1) * fb4;
    }
    force_bar = sf.l0 * fb1 + sf.lh * fb23 + sf.l1 * fb4;
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
  return time_multiplexed_cotangents(level_bar);
}

Vector PlateModel::do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                                   const MatrixRef& y_bar) const {
  Vector phi_bar;
  adjoint(drive_levels(x, theta), y_bar, nullptr, &phi_bar);
  return phi_bar;
}

}  // namespace pnn::digital_twin
