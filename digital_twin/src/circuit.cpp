#include "pnn/digital_twin/circuit.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "pnn/digital_twin/parallel.hpp"
#include "pnn/digital_twin/time_multiplex.hpp"

namespace pnn::digital_twin {
namespace {

using Array = Eigen::ArrayXd;

// Exponent clamp of the junction law: e^40 · I_s is 10⁸ A, far beyond any converged solution
// (the drive is limited to ±10 V through 30 Ω), so the clamp only keeps Newton iterates finite.
constexpr double kMaxExponent = 40.0;
// Newton stops once the estimated error left in every sample's v is below this (volts).
constexpr double kNewtonTolerance = 1e-15;
constexpr int kMaxNewtonIterations = 200;

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("rlc-junction-circuit: " + what);
}

// Splits rows over the thread pool (sample_voltages is public and not sharded by the base class).
template <class Fn>
void for_row_shards(Index rows, Index min_rows, Fn&& fn) {
  const Index shards =
      std::max<Index>(1, std::min<Index>(num_threads(), rows / std::max<Index>(1, min_rows)));
  parallel_for(static_cast<std::size_t>(shards), [&](std::size_t s) {
    const Index begin = rows * static_cast<Index>(s) / shards;
    const Index end = rows * (static_cast<Index>(s) + 1) / shards;
    fn(begin, end - begin);
  });
}

}  // namespace

double thermal_voltage(double temperature_k) { return 8.617333262e-5 * temperature_k; }

struct CircuitModel::Trajectory {
  Matrix i;      // batch × steps: state after each step
  Matrix v;
  Matrix drive;  // drive voltage the step used
};

// The implicit step  y = a + γ f(y, V)  for one step kind (γ = h for backward Euler, 2h/3 for
// BDF2). Eliminating i leaves the scalar equation  F(v) = A v − b + (γ/C) g(v) = 0, convex and
// increasing in v, solved by Newton; then i = m (a_i + (γ/L)(V − v)).
struct CircuitModel::Solver {
  double r, l, c, rp, is, nvt, inv_nvt, vcrit;
  double gamma, k, m, gc, a_coef;
  Array u, e, g, gp, f, fp, d;

  Solver(const CircuitComponents& comp, const std::array<double, 4>& scale, double gamma_s) {
    r = comp.resistance_ohm * scale[0];
    l = comp.inductance_h * scale[1];
    c = comp.capacitance_f * scale[2];
    is = comp.saturation_a * scale[3];
    rp = comp.shunt_ohm;
    nvt = comp.ideality * thermal_voltage(comp.temperature_k);
    inv_nvt = 1.0 / nvt;
    vcrit = nvt * std::log(nvt / (std::sqrt(2.0) * is));
    gamma = gamma_s;
    k = gamma / l;
    m = 1.0 / (1.0 + k * r);
    gc = gamma / c;
    a_coef = 1.0 + gc * (m * k + 1.0 / rp);
  }

  // g(v)/I_s and g'(v) with the clamped exponent (C¹, linear beyond the clamp).
  void junction(const Array& v) {
    u = v * inv_nvt;
    e = u.min(kMaxExponent).exp();
    g = e * (1.0 + (u - kMaxExponent).max(0.0)) - 1.0;  // g/I_s
    gp = (is * inv_nvt) * e;
  }

  // Solves for (i, v); v holds the initial guess on entry.
  void solve(const Array& ai, const Array& av, const Array& drive, Array& i, Array& v) {
    const Array b = av + gc * m * (ai + k * drive);
    for (int it = 0;; ++it) {
      junction(v);
      f = a_coef * v - b + (gc * is) * g;
      fp = a_coef + gc * gp;
      d = -f / fp;
      // SPICE pnjlim: a large forward step into conduction is shortened logarithmically, so an
      // overshoot costs a few iterations instead of dozens (F is convex: overshoot is upwards).
      if (((d > 2.0 * nvt) && (v + d > vcrit)).any()) {
        d = ((d > 2.0 * nvt) && (v + d > vcrit)).select(nvt * (d * inv_nvt).log1p(), d);
      }
      v += d;
      // Error left after this step ≈ ½ F''/F' d², F'' = (γ/C) g'' ≤ (γ/C) g'(v + |d|)/(nV_T):
      // bounded with e^{1/2} for |d| ≤ nV_T/2.
      const bool done =
          ((d.abs() <= 0.5 * nvt) && (0.83 * gc * inv_nvt * gp * d.square() / fp <= kNewtonTolerance))
              .all();
      if (done) break;
      if (it >= kMaxNewtonIterations) {
        throw std::runtime_error("rlc-junction-circuit: Newton did not converge (bug)");
      }
    }
    i = m * (ai + k * (drive - v));
  }
};

CircuitModel::CircuitModel(CircuitConfig config) : config_(std::move(config)) {
  const auto& c = config_.components;
  require(config_.num_slots >= 1, "num_slots must be ≥ 1");
  for (double p : {c.resistance_ohm, c.inductance_h, c.capacitance_f, c.shunt_ohm, c.saturation_a,
                   c.ideality, c.temperature_k}) {
    require(std::isfinite(p) && p > 0.0, "every component value must be finite and > 0");
  }
  for (double s : config_.scale) require(std::isfinite(s) && s > 0.0, "scale factors must be > 0");
  require(config_.sample_period_s > 0.0 && config_.slot_s > 0.0, "slot and sample times must be > 0");
  require(config_.steps_per_sample >= 1, "steps_per_sample must be ≥ 1");
  require(std::isfinite(config_.drive_tau_s) && config_.drive_tau_s >= 0.0,
          "drive_tau_s must be ≥ 0");
  const double ratio = config_.slot_s / config_.sample_period_s;
  samples_per_slot_ = static_cast<Index>(std::llround(ratio));
  require(samples_per_slot_ >= 1 && std::abs(ratio - static_cast<double>(samples_per_slot_)) < 1e-9,
          "slot_s must be a whole number of sample periods");
}

Vector CircuitModel::initial_params(std::uint64_t /*seed*/) const {
  return Vector::Zero(num_params());
}

Vector CircuitModel::physical_params() const {
  return Eigen::Map<const Vector>(config_.scale.data(), 4);
}

ModelPtr CircuitModel::with_physical_params(const VectorRef& phi) const {
  if (phi.size() != 4) {
    throw std::invalid_argument(
        "rlc-junction-circuit: 4 physical parameters (R, L, C, I_s factors) expected, got " +
        std::to_string(phi.size()));
  }
  CircuitConfig config = config_;
  for (int p = 0; p < 4; ++p) config.scale[static_cast<std::size_t>(p)] = phi[p];
  return std::make_shared<CircuitModel>(std::move(config));
}

double CircuitModel::drive_lag(double step_s) const {
  return config_.drive_tau_s > 0.0 ? std::exp(-step_s / config_.drive_tau_s) : 0.0;
}

Matrix CircuitModel::drive_levels(const MatrixRef& x, const VectorRef& theta) const {
  return time_multiplexed_levels(x, theta);
}

template <class OnSample>
void CircuitModel::integrate(const MatrixRef& levels, OnSample&& on_sample,
                             Trajectory* record) const {
  const Index b = levels.rows();
  const double h = config_.sample_period_s / config_.steps_per_sample;
  Solver euler(config_.components, config_.scale, h);
  Solver bdf2(config_.components, config_.scale, 2.0 * h / 3.0);
  const double lag = drive_lag(h);
  const Index steps = num_samples() * config_.steps_per_sample;
  if (record != nullptr) {
    record->i.resize(b, steps);
    record->v.resize(b, steps);
    record->drive.resize(b, steps);
  }
  Array i0 = Array::Zero(b), v0 = Array::Zero(b), im1 = Array::Zero(b), vm1 = Array::Zero(b);
  Array ai(b), av(b), inew(b), vnew(b), drive = Array::Zero(b);
  Index n = 0, sample = 0;
  for (Index s = 0; s < 2 * config_.num_slots; ++s) {
    const auto level = levels.col(s).array();
    for (Index j = 0; j < samples_per_slot_; ++j, ++sample) {
      for (int t = 0; t < config_.steps_per_sample; ++t, ++n) {
        // Drive at the end of this step (where the implicit step evaluates f): the level itself,
        // or the level seen through the drive amplifier's first-order lag (exact for a ZOH input).
        drive = lag * drive + (1.0 - lag) * level;
        vnew = v0;
        if (t == 0 && j == 0) {  // first step of a slot: the drive jumps (or kinks) here
          euler.solve(i0, v0, drive, inew, vnew);
        } else {
          ai = (4.0 * i0 - im1) / 3.0;
          av = (4.0 * v0 - vm1) / 3.0;
          bdf2.solve(ai, av, drive, inew, vnew);
        }
        im1.swap(i0);
        vm1.swap(v0);
        i0.swap(inew);
        v0.swap(vnew);
        if (record != nullptr) {
          record->i.col(n) = i0.matrix();
          record->v.col(n) = v0.matrix();
          record->drive.col(n) = drive.matrix();
        }
      }
      on_sample(sample, v0);
    }
  }
}

Matrix CircuitModel::sample_voltages(const MatrixRef& levels) const {
  if (levels.cols() != 2 * config_.num_slots) {
    throw std::invalid_argument("rlc-junction-circuit: drive levels have " +
                                std::to_string(levels.cols()) + " slots, expected " +
                                std::to_string(2 * config_.num_slots));
  }
  Matrix out(levels.rows(), num_samples());
  for_row_shards(levels.rows(), min_rows_per_shard(), [&](Index begin, Index rows) {
    integrate(levels.middleRows(begin, rows),
              [&](Index j, const Array& v) { out.col(j).segment(begin, rows) = v.matrix(); },
              nullptr);
  });
  return out;
}

Matrix CircuitModel::window_means(const MatrixRef& samples) const {
  if (samples.cols() != num_samples()) {
    throw std::invalid_argument("rlc-junction-circuit: " + std::to_string(samples.cols()) +
                                " samples per run, expected " + std::to_string(num_samples()));
  }
  return digital_twin::window_means(samples, config_.num_slots);
}

Matrix CircuitModel::do_forward(const MatrixRef& x, const VectorRef& theta) const {
  const Matrix levels = drive_levels(x, theta);
  Matrix y = Matrix::Zero(x.rows(), num_outputs());
  const Index per_window = 2 * samples_per_slot_;
  const double w = 1.0 / static_cast<double>(per_window);
  integrate(
      levels, [&](Index j, const Array& v) { y.col(j / per_window) += w * v.matrix(); }, nullptr);
  return y;
}

Matrix CircuitModel::window_cotangent(const MatrixRef& y_bar) const {
  return window_means_cotangent(y_bar, 2 * samples_per_slot_);
}

void CircuitModel::adjoint(const MatrixRef& levels, const MatrixRef& sample_bar,
                           Matrix* level_bar, Vector* phi_bar) const {
  const Index b = levels.rows();
  Trajectory traj;
  integrate(levels, [](Index, const Array&) {}, &traj);
  const double h = config_.sample_period_s / config_.steps_per_sample;
  const Solver euler(config_.components, config_.scale, h);
  const Solver bdf2(config_.components, config_.scale, 2.0 * h / 3.0);
  const Index spp = config_.steps_per_sample;
  const Index steps_per_slot = spp * samples_per_slot_;
  const Index steps = traj.v.cols();

  if (level_bar != nullptr) *level_bar = Matrix::Zero(b, 2 * config_.num_slots);
  double r_bar = 0.0, l_bar = 0.0, c_bar = 0.0, is_bar = 0.0;
  const double lag = drive_lag(h);
  Array drive_bar = Array::Zero(b);  // cotangent of the drive of step n (lag recursion)
  // Cotangents of the states after step n+1 (ib1), n (ib0) and n−1 (ibm).
  Array ib1 = Array::Zero(b), vb1 = Array::Zero(b), ib0 = Array::Zero(b), vb0 = Array::Zero(b);
  Array ibm = Array::Zero(b), vbm = Array::Zero(b);
  Array mu1(b), mu2(b), u(b), e(b), gp(b), det(b), j22(b);
  for (Index n = steps - 1; n >= 0; --n) {
    if ((n + 1) % spp == 0) vb1 += sample_bar.col((n + 1) / spp - 1).array();
    const Index slot = n / steps_per_slot;
    const bool restart = n % steps_per_slot == 0;  // backward Euler step
    const Solver& sv = restart ? euler : bdf2;
    const auto i1 = traj.i.col(n).array();
    const auto v1 = traj.v.col(n).array();
    // Implicit step E(y; a, V, R, L, C, I_s) = y − a − γ f(y, V) = 0 at its solution y = (i, v):
    // J = ∂E/∂y = [[1 + γR/L, γ/L], [−γ/C, 1 + γ/C (g' + 1/R_p)]];  μ = J⁻ᵀ ȳ;  z̄ = −μᵀ ∂E/∂z.
    u = v1 * sv.inv_nvt;
    e = u.min(kMaxExponent).exp();
    gp = (sv.is * sv.inv_nvt) * e;
    const double j11 = 1.0 + sv.gamma * sv.r / sv.l;
    j22 = 1.0 + sv.gc * (gp + 1.0 / sv.rp);
    det = j11 * j22 + sv.gamma * sv.gamma / (sv.l * sv.c);
    mu1 = (j22 * ib1 + sv.gc * vb1) / det;
    mu2 = (j11 * vb1 - sv.k * ib1) / det;
    // drive_n = lag · drive_{n−1} + (1 − lag) · level_slot.
    drive_bar = lag * drive_bar + sv.k * mu1;
    if (level_bar != nullptr) level_bar->col(slot).array() += (1.0 - lag) * drive_bar;
    if (phi_bar != nullptr) {
      const auto vdrive = traj.drive.col(n).array();
      const Array g_over_is = e * (1.0 + (u - kMaxExponent).max(0.0)) - 1.0;
      r_bar -= (mu1 * i1).sum() * sv.gamma / sv.l;
      l_bar -= (mu1 * (vdrive - sv.r * i1 - v1)).sum() * sv.gamma / (sv.l * sv.l);
      c_bar -= (mu2 * (i1 - sv.is * g_over_is - v1 / sv.rp)).sum() * sv.gamma / (sv.c * sv.c);
      is_bar -= (mu2 * g_over_is).sum() * sv.gc;
    }
    // History a = (4 y_n − y_{n−1})/3 for BDF2, a = y_n for a backward Euler step; ∂E/∂a = −I,
    // so ā = μ.
    if (!restart) {
      ib0 += (4.0 / 3.0) * mu1;
      vb0 += (4.0 / 3.0) * mu2;
      ibm -= (1.0 / 3.0) * mu1;
      vbm -= (1.0 / 3.0) * mu2;
    } else {
      ib0 += mu1;
      vb0 += mu2;
    }
    ib1.swap(ib0);
    vb1.swap(vb0);
    ib0.swap(ibm);
    vb0.swap(vbm);
    ibm.setZero();
    vbm.setZero();
  }
  if (phi_bar != nullptr) {
    const auto& comp = config_.components;
    *phi_bar = Vector(4);
    (*phi_bar) << r_bar * comp.resistance_ohm, l_bar * comp.inductance_h,
        c_bar * comp.capacitance_f, is_bar * comp.saturation_a;
  }
}

Cotangents CircuitModel::do_vjp(const MatrixRef& x, const VectorRef& theta,
                                const MatrixRef& y_bar) const {
  const Matrix levels = drive_levels(x, theta);
  Matrix level_bar;
  adjoint(levels, window_cotangent(y_bar), &level_bar, nullptr);
  return time_multiplexed_cotangents(level_bar);
}

Vector CircuitModel::do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                                     const MatrixRef& y_bar) const {
  Vector phi_bar;
  adjoint(drive_levels(x, theta), window_cotangent(y_bar), nullptr, &phi_bar);
  return phi_bar;
}

}  // namespace pnn::digital_twin
