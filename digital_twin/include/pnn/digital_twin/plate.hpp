#pragma once
/// Speaker-driven plate, modal model (PHYSICS.md "Mechanical", second setup;
/// docs/setups/mechanical-plate.md has the mode table, units and limits):
///
///   q̈_n + 2 ζ_n ω_n q̇_n + ω_n² q_n + α_n q_n³ = b_n F(t),     microphone  y(t) = Σ_n c_n q̈_n
///
/// Units: time in ms, modal displacement q in µm, so q̈ is in µm/ms² = m/s²; the drive F is the
/// amplifier input in volts; y is the microphone preamp output in volts.
///
/// Time multiplexing: one run per sample, starting at rest. The drive is a sequence of 2K slots
/// of equal length, data and parameter interleaved (held constant within a slot):
///   [x_0 | θ_0 | x_1 | θ_1 | … | x_{K−1} | θ_{K−1}]
/// Output k is the microphone signal averaged over window k = (x_k, θ_k) (time binning): the
/// exact bin mean Σ_n c_n (q̇_n(end) − q̇_n(start)) / T_window.
///
/// Speaker force: F = V (the amplifier level of the slot) when `drive_tau_ms` is 0, as the
/// nominal twin assumes; otherwise F follows V through the voice coil's first-order electrical
/// lag τ = L_e / R_e, evaluated exactly at the RK4 stage times (F starts at 0 V).
///
/// Integrator: fixed-step RK4 (`steps_per_slot` steps per slot, slot boundaries on step
/// boundaries). Reverse mode is the exact discrete adjoint of those RK4 steps (stage states are
/// recomputed from the stored step states during the reverse sweep), so `vjp` agrees with
/// central differences of `forward` to rounding, however long or nonlinear the run.
///
/// θ layout: K drive levels (volts), θ_k held during the slot after data slot k.
/// Physical parameters φ (calibration): (frequency scale, damping scale), nominal 1: every ω_n
/// and every ζ_n is multiplied by them.
#include <vector>

#include "pnn/digital_twin/model.hpp"

namespace pnn::digital_twin {

/// One plate mode.
struct PlateMode {
  double freq_hz = 0.0;  ///< f_n = ω_n / 2π (small-amplitude)
  double damping = 0.0;  ///< ζ_n (fraction of critical)
  double cubic = 0.0;    ///< α_n in 1/(µm²·ms²) (hardening > 0)
  double drive = 0.0;    ///< b_n in (µm/ms²)/V: modal force of the speaker per volt
  double mic = 0.0;      ///< c_n in V/(µm/ms²): microphone sensitivity to the mode
};

/// Displacement (µm) at which a mode's cubic stiffness equals its linear stiffness:
/// α_n = ω_n² / q_nl² for every nominal mode.
inline constexpr double kPlateNonlinearUm = 150.0;

/// The nominal plate: six modes of a thin steel plate on a speaker (datasheet-style values,
/// docs/setups/mechanical-plate.md).
std::vector<PlateMode> nominal_plate_modes();

struct PlateConfig {
  Index num_slots = 32;  ///< K (= inputs = outputs = parameters)
  std::vector<PlateMode> modes = nominal_plate_modes();
  double slot_ms = 1.0;        ///< length of every data and parameter slot
  int steps_per_slot = 16;     ///< RK4 steps per slot (also the microphone samples per slot)
  double drive_tau_ms = 0.0;   ///< voice-coil lag L_e/R_e; 0 = F follows V instantly
  double freq_scale = 1.0;     ///< φ[0]
  double damping_scale = 1.0;  ///< φ[1]
};

class PlateModel final : public DifferentiableModel {
 public:
  /// Throws std::invalid_argument on K < 1, no modes, a non-positive frequency, negative damping,
  /// non-finite entries, slot_ms ≤ 0, steps < 1, a negative lag, or non-positive scales.
  explicit PlateModel(PlateConfig config);

  std::string name() const override { return "speaker-plate"; }
  Index num_inputs() const override { return config_.num_slots; }
  Index num_outputs() const override { return config_.num_slots; }
  Index num_params() const override { return config_.num_slots; }
  /// All drive levels 0 V.
  Vector initial_params(std::uint64_t seed) const override;

  Index num_physical_params() const override { return 2; }
  Vector physical_params() const override;
  ModelPtr with_physical_params(const VectorRef& phi) const override;

  const PlateConfig& config() const { return config_; }
  Index num_modes() const { return static_cast<Index>(config_.modes.size()); }
  /// Microphone samples per run: one at the end of every RK4 step, 2K · steps_per_slot.
  Index num_samples() const { return 2 * config_.num_slots * config_.steps_per_slot; }

  /// Drive levels of every slot, batch × 2K: column 2k = x_k, column 2k+1 = θ_k.
  Matrix drive_levels(const MatrixRef& x, const VectorRef& theta) const;
  /// Noise-free microphone signal Σ_n c_n q̈_n (volts) at the end of every RK4 step,
  /// batch × num_samples, for per-sample drive levels (batch × 2K, volts): what a reality
  /// simulator builds its ADC readings from. Throws std::invalid_argument on a wrong number of
  /// columns. Rows run on the thread pool.
  Matrix microphone_signal(const MatrixRef& levels) const;
  /// Output windows (batch × K): the mean of each window's 2 · steps_per_slot samples (batch ×
  /// num_samples). For a noise-free signal this is `forward` up to the rectangle-rule error of
  /// the sampling. Throws std::invalid_argument on a wrong number of columns.
  Matrix window_means(const MatrixRef& samples) const;

 private:
  struct Coefficients;
  struct Trajectory;
  Matrix do_forward(const MatrixRef& x, const VectorRef& theta) const override;
  Cotangents do_vjp(const MatrixRef& x, const VectorRef& theta,
                    const MatrixRef& y_bar) const override;
  Vector do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                         const MatrixRef& y_bar) const override;
  Index min_rows_per_shard() const override { return 4; }

  /// Integrates one batch of runs and returns the exact bin means. Records the state at the
  /// start of every step when `record` is not null, and the microphone signal at the end of
  /// every step when `samples` is not null.
  Matrix simulate(const MatrixRef& levels, Trajectory* record, Matrix* samples) const;
  /// Reverse sweep: slot-level cotangents (batch × 2K) and φ cotangents for ∂L/∂y.
  void adjoint(const MatrixRef& levels, const MatrixRef& y_bar, Matrix* level_bar,
               Vector* phi_bar) const;
  /// e^{−Δt/τ} of the voice-coil lag (0 without a lag).
  double drive_lag(double dt_ms) const;

  PlateConfig config_;
};

}  // namespace pnn::digital_twin
