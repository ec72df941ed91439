#pragma once
/// Nonlinear series RLC circuit with a junction diode across the capacitor, PHYSICS.md
/// "Electronic" (docs/setups/electronic-circuit.md has the component values and time scales):
///
///   L di/dt = V_in(t) − R i − v,    C dv/dt = i − I_s (exp(v / (n V_T)) − 1) − v / R_p
///
/// Time multiplexing: one run per sample, starting discharged (i = v = 0). The drive V_in is a
/// sequence of 2K slots of equal length, data and parameter interleaved:
///   [x_0 | θ_0 | x_1 | θ_1 | … | x_{K−1} | θ_{K−1}]     (volts, held constant within a slot)
/// v is sampled by the ADC at the end of every sample period; output k is the mean of the samples
/// taken during window k = (x_k, θ_k). So inputs, outputs and parameters are all K wide.
///
/// Integrator: the circuit is stiff once the junction conducts (C / g_d ≈ 1 ns at 0.8 V against
/// a 50 ns step), so each step is implicit: BDF2, restarted with one backward Euler step at the
/// start of every slot (the drive jumps there, and BDF2 across the kink in v would be only first
/// order; with the restarts the scheme is second order overall). Each step is solved per
/// sample by Newton on the capacitor voltage with SPICE-style junction limiting and an exponent
/// clamp (u = v/(nV_T) ≤ 40, linear beyond: never reached by a converged solution, it only keeps
/// Newton iterates finite). Newton runs until the estimated remaining error is below 1e-15 V.
/// Reverse mode is the exact discrete adjoint of these BDF2 steps: each implicit step is
/// differentiated at its solution through the implicit-function theorem (a 2×2 solve), and the
/// BDF2 history is back-propagated step by step.
///
/// θ layout: K drive levels (volts), θ_k held during the slot after data slot k.
/// Physical parameters φ (calibration): relative factors (R, L, C, I_s), nominal 1, applied to
/// `CircuitConfig::components`.
#include <array>

#include "pnn/digital_twin/model.hpp"

namespace pnn::digital_twin {

/// Component values in SI units. Defaults: the nominal (datasheet) circuit.
struct CircuitComponents {
  double resistance_ohm = 30.0;      ///< R: sense resistor + inductor ESR
  double inductance_h = 100e-6;      ///< L
  double capacitance_f = 10e-9;      ///< C
  double shunt_ohm = 10e3;           ///< R_p: bleed resistor across C
  double saturation_a = 2.52e-9;     ///< I_s of the junction (1N4148 datasheet fit)
  double ideality = 1.752;           ///< n of the junction
  double temperature_k = 300.15;     ///< junction temperature; V_T = k_B T / q
};

struct CircuitConfig {
  Index num_slots = 32;            ///< K: data slots (= inputs = outputs = parameters)
  CircuitComponents components;
  double slot_s = 1e-6;            ///< length of every data and parameter slot
  double sample_period_s = 1e-6;   ///< ADC sample period (1 MS/s); divides slot_s
  int steps_per_sample = 20;       ///< integration steps per ADC sample (50 ns)
  /// Time constant of the drive amplifier (first-order lag between DAC level and V_in);
  /// 0 = ideal steps, as the nominal twin assumes.
  double drive_tau_s = 0.0;
  /// Relative factors on (R, L, C, I_s): the physical parameters φ. Nominal 1.
  std::array<double, 4> scale = {1.0, 1.0, 1.0, 1.0};
};

/// V_T = k_B T / q in volts.
double thermal_voltage(double temperature_k);

class CircuitModel final : public DifferentiableModel {
 public:
  /// Throws std::invalid_argument on K < 1, non-positive component values, times or steps, a slot
  /// that is not a whole number of sample periods, or a non-positive scale factor.
  explicit CircuitModel(CircuitConfig config);

  std::string name() const override { return "rlc-junction-circuit"; }
  Index num_inputs() const override { return config_.num_slots; }
  Index num_outputs() const override { return config_.num_slots; }
  Index num_params() const override { return config_.num_slots; }
  /// All drive levels 0 V.
  Vector initial_params(std::uint64_t seed) const override;

  Index num_physical_params() const override { return 4; }
  Vector physical_params() const override;
  ModelPtr with_physical_params(const VectorRef& phi) const override;

  const CircuitConfig& config() const { return config_; }
  Index samples_per_slot() const { return samples_per_slot_; }
  /// ADC samples per run: 2K slots × samples_per_slot.
  Index num_samples() const { return 2 * config_.num_slots * samples_per_slot_; }

  /// Drive levels of every slot, batch × 2K: column 2k = x_k, column 2k+1 = θ_k.
  Matrix drive_levels(const MatrixRef& x, const VectorRef& theta) const;
  /// Noise-free capacitor voltage at every ADC sample (batch × num_samples, volts) for per-sample
  /// drive levels (batch × 2K, volts). What a reality simulator builds its readings from.
  /// Throws std::invalid_argument on a wrong number of columns. Rows run on the thread pool.
  Matrix sample_voltages(const MatrixRef& levels) const;
  /// Output windows (batch × K) of samples (batch × num_samples): what `forward` returns for
  /// noise-free samples. Throws std::invalid_argument on a wrong number of columns.
  Matrix window_means(const MatrixRef& samples) const;

 private:
  struct Trajectory;
  struct Solver;
  Matrix do_forward(const MatrixRef& x, const VectorRef& theta) const override;
  Cotangents do_vjp(const MatrixRef& x, const VectorRef& theta,
                    const MatrixRef& y_bar) const override;
  Vector do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                         const MatrixRef& y_bar) const override;
  Index min_rows_per_shard() const override { return 4; }

  /// Integrates one batch of runs. Calls on_sample(j, v) at ADC sample j; records i and v after
  /// every step when `record` is not null.
  template <class OnSample>
  void integrate(const MatrixRef& levels, OnSample&& on_sample, Trajectory* record) const;
  /// Reverse sweep: slot-level cotangents (batch × 2K) and φ cotangents for sample cotangents.
  void adjoint(const MatrixRef& levels, const MatrixRef& sample_bar, Matrix* level_bar,
               Vector* phi_bar) const;
  /// ∂L/∂(samples) for ∂L/∂(window means).
  Matrix window_cotangent(const MatrixRef& y_bar) const;
  /// e^{−h/τ} of the drive lag for step h (0 without a lag).
  double drive_lag(double step_s) const;

  CircuitConfig config_;
  Index samples_per_slot_ = 0;
};

}  // namespace pnn::digital_twin
