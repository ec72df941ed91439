#pragma once
/// Speaker-driven plate, modal model (PHYSICS.md "Mechanical", second setup;
/// docs/setups/electronic-and-plate.md has the mode table and units):
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
/// Integrator: fixed-step RK4 (`steps_per_slot` steps per slot, slot boundaries on step
/// boundaries). Reverse mode is the exact discrete adjoint of those RK4 steps (stage states are
/// recomputed from the stored step states during the reverse sweep).
///
/// θ layout: K drive levels (volts), θ_k held during the slot after data slot k.
/// Physical parameters φ (calibration): (frequency scale, damping scale), nominal 1: every ω_n
/// and every ζ_n is multiplied by them.
#include <vector>

#include "pnn/digital_twin/model.hpp"

namespace pnn::digital_twin {

/// One plate mode.
struct PlateMode {
  double freq_hz = 0.0;   ///< f_n = ω_n / 2π (small-amplitude)
  double damping = 0.0;   ///< ζ_n (fraction of critical)
  double cubic = 0.0;     ///< α_n in 1/(µm²·ms²) (hardening > 0)
  double drive = 0.0;     ///< b_n in (µm/ms²)/V: modal force of the speaker per volt
  double mic = 0.0;       ///< c_n in V/(µm/ms²): microphone sensitivity to the mode
};

/// The nominal plate: six modes of a thin steel plate on a speaker (datasheet-style values).
std::vector<PlateMode> nominal_plate_modes();

struct PlateConfig {
  Index num_slots = 32;                           ///< K (= inputs = outputs = parameters)
  std::vector<PlateMode> modes = nominal_plate_modes();
  double slot_ms = 1.0;                           ///< length of every data and parameter slot
  int steps_per_slot = 16;                        ///< RK4 steps per slot
  double freq_scale = 1.0;                        ///< φ[0]
  double damping_scale = 1.0;                     ///< φ[1]
};

class PlateModel final : public DifferentiableModel {
 public:
  /// Throws std::invalid_argument on K < 1, no modes, a non-positive frequency, negative damping,
  /// non-finite entries, slot_ms ≤ 0, steps < 1, or non-positive scales.
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

  /// Drive levels of every slot, batch × 2K: column 2k = x_k, column 2k+1 = θ_k.
  Matrix drive_levels(const MatrixRef& x, const VectorRef& theta) const;
  /// Noise-free window means (batch × K, volts) for per-sample drive levels (batch × 2K, volts):
  /// what a reality simulator builds its readings from. Throws std::invalid_argument on a wrong
  /// number of columns. Rows run on the thread pool.
  Matrix respond(const MatrixRef& levels) const;

 private:
  struct Coefficients;
  Matrix do_forward(const MatrixRef& x, const VectorRef& theta) const override;
  Cotangents do_vjp(const MatrixRef& x, const VectorRef& theta,
                    const MatrixRef& y_bar) const override;
  Vector do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                         const MatrixRef& y_bar) const override;
  Index min_rows_per_shard() const override { return 4; }

  Matrix simulate(const MatrixRef& levels, std::vector<Matrix>* q_steps,
                  std::vector<Matrix>* p_steps) const;
  /// Reverse sweep: slot-level cotangents (batch × 2K) and φ cotangents for ∂L/∂y.
  void adjoint(const MatrixRef& levels, const MatrixRef& y_bar, Matrix* level_bar,
               Vector* phi_bar) const;

  PlateConfig config_;
};

}  // namespace pnn::digital_twin
