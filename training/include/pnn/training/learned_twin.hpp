#pragma once
/// Twins learned from measurements (issue 13, docs/learned-twins.md): measure a device at random
/// inputs and parameters inside its hard limits, then fit one of three families:
///
/// - kGreyBox: the setup's physics twin with a richer φ, fitted by the calibration machinery
///   (digital_twin::calibrate, L-BFGS) with an L2 pull toward the nominal φ. For the oscillators
///   φ = per-oscillator nonlinearity scales κ_i and a symmetric stray coupling J (oscillator.hpp);
///   for other setups with physical parameters, their own φ.
/// - kResidual: the nominal physics twin plus a small MLP correction fitted on the residuals.
/// - kBlackBox: an MLP over (x, θ) (mlp_twin.hpp), inputs and outputs normalised.
/// - kNeuralOde: for the STNO network, the device's drive with a learned per-neuron vector field
///   integrated by RK4 (neural_ode.hpp), fitted to measured trajectories (measure_trajectories).
///
/// Every request is inside the device's input range and hard limits and finite (the device
/// refuses anything else); device calls are counted, repeats included.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "pnn/digital_twin/calibration.hpp"
#include "pnn/drivers/physical_system.hpp"
#include "pnn/training/device_executor.hpp"

namespace pnn::training {

enum class TwinFamily { kGreyBox, kResidual, kBlackBox, kNeuralOde };
/// "grey-box" | "residual" | "mlp" | "neural-ode".
std::string to_string(TwinFamily family);
/// Throws std::invalid_argument naming the accepted names.
TwinFamily parse_twin_family(const std::string& name);

struct TwinFitOptions {
  TwinFamily family = TwinFamily::kGreyBox;
  /// Measured samples in all (fit + validation; neural-ode: trajectories), repeats not counted.
  Index samples = 4096;
  Index batch = 256;      ///< samples per device call; one θ per call (≤ the device's max batch)
  int repeats = 1;        ///< each call made this many times and the readings averaged
  double validation_fraction = 0.2;  ///< of the calls, held out to measure the NMSE
  /// x uniform in mid ± input_fraction · half-range of the device's input range.
  double input_fraction = 1.0;
  /// θ uniform in theta_center ± theta_fraction · half-span, clipped to the hard limits;
  /// theta_center empty: the middle of the limits.
  Vector theta_center;
  double theta_fraction = 1.0;
  std::vector<Index> hidden = {64, 64};  ///< MLP hidden layers (residual, black box, neural ODE)
  bool residual_uses_theta = false;      ///< θ is an input of the residual correction
  /// Neural ODE only: the learned field adds to the datasheet power equation (else it is the
  /// whole field), and the RK4 steps per input period (neural_ode.hpp).
  bool ode_physics_prior = true;
  Index ode_rk4_steps = 2;
  /// L2 weight: toward the nominal φ (grey box), toward zero weights (MLP families).
  double l2 = 1e-6;
  int max_iterations = 300;
  /// MLP families only: > 0 fits by mini-batch Adam for this many passes over the fit calls
  /// (`adam_calls_per_step` calls per step, learning rate `adam_learning_rate` decayed to 10 %
  /// by the end) instead of full-batch L-BFGS; 0 = L-BFGS (`max_iterations`).
  int adam_epochs = 0;
  int adam_calls_per_step = 16;
  double adam_learning_rate = 1e-3;
  std::uint64_t seed = 0;
};

struct TwinFitReport {
  TwinFamily family = TwinFamily::kGreyBox;
  Index samples = 0;             ///< measured samples (fit + validation)
  Index validation_samples = 0;
  std::int64_t device_calls = 0; ///< forward calls made, repeats included
  double twin_nmse = 0.0;          ///< fitted twin vs held-out measurements, Σ‖ŷ−y‖² / Σ‖y−ȳ‖²
  double twin_nmse_nominal = 0.0;  ///< the nominal twin on the same samples
  double train_mse = 0.0;          ///< fitted twin on the fit samples
  double measure_s = 0.0;
  double fit_s = 0.0;              ///< measuring and fitting
  int iterations = 0;
  Index num_phi = 0;               ///< fitted parameters
};

struct FittedTwin {
  digital_twin::ModelPtr model;
  TwinFitReport report;
};

/// The unfitted grey-box form of a nominal twin: for the oscillators the kGreyBox model with
/// κ_i = κ and no stray coupling (same outputs as `nominal`); for another twin with physical
/// parameters, the twin itself. Throws std::invalid_argument for a twin without any.
digital_twin::ModelPtr grey_box_of(const digital_twin::ModelPtr& nominal);

/// The unfitted neural-ODE twin of an STNO twin (digital_twin::StnoModel) with options.hidden,
/// ode_physics_prior, ode_rk4_steps and seed; `trajectory` selects the per-period readout.
/// Throws std::invalid_argument for another kind of twin.
digital_twin::ModelPtr neural_ode_of(const digital_twin::ModelPtr& nominal,
                                     const TwinFitOptions& options, bool trajectory);

/// Measures `device` (ACTIVE) at options.samples random (x, θ) within its limits, options.batch
/// per call. A device error is returned as it came; `device_calls` counts the calls made.
drivers::Result<std::vector<digital_twin::Measurement>> measure_samples(
    drivers::PhysicalSystem& device, const TwinFitOptions& options, std::int64_t& device_calls,
    const DeviceExecutor& executor = {});

/// Measures options.samples trajectories of a sequence device (the STNO reads p only at the end
/// of the sequence): prefixes[k − 1] is the same device (same serial and kind) run for k input
/// periods, k = 1 … T, all ACTIVE. Per call one θ and options.batch input sequences x of the
/// full length (drawn as measure_samples draws them, inside the limits); prefix device k gets
/// the first k periods of x, so y (batch × T·outputs, period-major) holds the powers at the end
/// of every period. Each reading is repeated options.repeats times and averaged; device_calls
/// counts every call. Throws std::invalid_argument on an empty list, devices that are not one
/// device run for 1 … T periods, or a bad option; a device error is returned as it came.
drivers::Result<std::vector<digital_twin::Measurement>> measure_trajectories(
    const std::vector<drivers::PhysicalSystem*>& prefixes, const TwinFitOptions& options,
    std::int64_t& device_calls, const DeviceExecutor& executor = {});

/// Fits `family` to measurements of a device whose nominal twin is `nominal` and whose input
/// range is [input_min, input_max] (normalisation). The last validation_fraction of the
/// measurements are held out. Throws std::invalid_argument on a bad option, wrong shapes, NaN
/// or Inf in a measurement, or too few samples for the family (each message names the fix).
/// For kNeuralOde the measurements are trajectories (measure_trajectories: y batch × T·N), the
/// NMSEs are over whole trajectories (the nominal twin's from its runs of 1 … T periods), at
/// least 4 trajectories must remain to fit, and the returned model reads p at the end of the
/// sequence, like the device (the trajectory readout is its with_trajectory(true)).
FittedTwin fit_twin_to(const digital_twin::ModelPtr& nominal, double input_min, double input_max,
                       const Vector& theta_min, const Vector& theta_max,
                       const std::vector<digital_twin::Measurement>& data,
                       const TwinFitOptions& options);

/// measure_samples, then fit_twin_to with the device's nominal twin and limits. Throws
/// std::invalid_argument for kNeuralOde (one device run reads only the end of the sequence: use
/// fit_trajectory_twin).
drivers::Result<FittedTwin> fit_twin(drivers::PhysicalSystem& device, const TwinFitOptions& options,
                                     const DeviceExecutor& executor = {});

/// measure_trajectories, then fit_twin_to with family kNeuralOde, the full-length device's
/// nominal twin and limits (prefixes.back()).
drivers::Result<FittedTwin> fit_trajectory_twin(
    const std::vector<drivers::PhysicalSystem*>& prefixes, const TwinFitOptions& options,
    const DeviceExecutor& executor = {});

/// Normalised mean squared error Σ‖f(x;θ) − y‖² / Σ‖y − ȳ‖² over the measurements, ȳ the mean
/// output per entry.
double twin_nmse(const digital_twin::DifferentiableModel& model,
                 const std::vector<digital_twin::Measurement>& data);

/// Saves a fitted twin's family, sizes and parameters in the checkpoint file format
/// (checkpoint.hpp: versioned, CRC-protected, written atomically); `nominal` is not saved and
/// must be given again to load (the device's datasheet twin). Throws CheckpointError.
void save_twin(const digital_twin::DifferentiableModel& twin, const std::filesystem::path& path);
/// Throws CheckpointError on a damaged file, a file that holds no twin, or one that does not
/// fit `nominal` (sizes), naming the file and the problem.
digital_twin::ModelPtr load_twin(const std::filesystem::path& path,
                                 const digital_twin::ModelPtr& nominal);

}  // namespace pnn::training
