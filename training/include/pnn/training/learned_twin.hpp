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
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
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
  /// fit_twin only: points at which the Jacobian agreement with the device is measured after the
  /// fit (jacobian_agreement; 0 = not measured, the report's cosines stay NaN).
  int jacobian_points = 0;
  /// Called on the measuring thread after each measured call: (samples measured, samples in all).
  std::function<void(Index, Index)> on_measured;
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
  /// Per output entry, on the held-out measurements: NMSE Σ(ŷ−y)² / Σ(y−ȳ)² and R² = 1 − NMSE
  /// (an output that does not vary has NMSE 0 when predicted exactly, else +∞).
  std::vector<double> nmse_per_output, r2_per_output;
  std::string data_hash;           ///< measurement_hash of every measurement (fit + validation)
  /// Up to 500 held-out (measured, predicted) output values, evenly spread over the held-out
  /// samples and outputs: the report card's predicted-vs-measured plot.
  std::vector<double> scatter_measured, scatter_predicted;
  /// jacobian_agreement of the fitted and of the nominal twin (NaN: not measured, or no nominal).
  double jacobian_cosine = std::numeric_limits<double>::quiet_NaN();
  double jacobian_cosine_nominal = std::numeric_limits<double>::quiet_NaN();
};

struct FittedTwin {
  digital_twin::ModelPtr model;
  TwinFitReport report;
};

/// The unfitted grey-box form of a nominal twin: for the oscillators the kGreyBox model with
/// κ_i = κ and no stray coupling (same outputs as `nominal`); for another twin with physical
/// parameters, the twin itself. Throws std::invalid_argument for a twin without any.
digital_twin::ModelPtr grey_box_of(const digital_twin::ModelPtr& nominal);

/// Bounds on one fit asked by a user (pnnd's FitTwin, a job's twin: {fit: ...}).
inline constexpr Index kMaxFitSamples = 1'000'000;
inline constexpr int kMaxFitRepeats = 64;

/// The batch a fit of `samples` uses when none is given: ≤ 256 and ≤ the device's max batch
/// (0: none), and small enough for ≥ 8 calls, so that the held-out calls are whole θ draws.
inline Index default_fit_batch(Index samples, Index max_batch) {
  Index b = std::min<Index>(256, std::max<Index>(1, samples / 8));
  return max_batch > 0 ? std::min(b, max_batch) : b;
}
/// The unfitted neural-ODE twin of an STNO twin (digital_twin::StnoModel) with options.hidden,
/// ode_physics_prior, ode_rk4_steps and seed; `trajectory` selects the per-period readout.
/// Throws std::invalid_argument for another kind of twin.
digital_twin::ModelPtr neural_ode_of(const digital_twin::ModelPtr& nominal,
                                     const TwinFitOptions& options, bool trajectory);

/// The options pnnd and job configs start from for `family`: the recipes the benchmarks measured
/// (docs/learned-twins.md "In pnnd"). Grey box: L-BFGS, batch default_fit_batch; residual: one
/// hidden layer of 32, l2 1e-5; mlp: batch ≤ 20 (many θ draws), hidden {64, 64}, Adam for 100
/// passes.
TwinFitOptions default_fit_options(TwinFamily family, Index samples, Index max_batch);

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

/// fit_twin_to for measurements of a device of `spec` (e.g. its recorded forwards): its sizes,
/// input range and limits; `nominal` may be null (then only the mlp family fits).
FittedTwin fit_twin_for(const drivers::DeviceSpec& spec, const digital_twin::ModelPtr& nominal,
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

/// Per-output NMSE and R² of `model` on the measurements (see TwinFitReport).
void per_output_fit(const digital_twin::DifferentiableModel& model,
                    const std::vector<digital_twin::Measurement>& data, std::vector<double>& nmse,
                    std::vector<double>& r2);

/// BLAKE2b-256 (libsodium) of the measurements' shapes and IEEE-754 bytes, as 64 hex digits: the
/// identity of a twin's data, so that a twin can be told apart from one fitted on other data.
std::string measurement_hash(const std::vector<digital_twin::Measurement>& data);

/// How well a twin's input Jacobian agrees with the device's, which is what PAT needs: at
/// `points` random x uniform in [x_lo, x_hi] (at θ = `theta`), the device Jacobian ∂y/∂x from
/// central differences (step 5 % of the input range), each perturbed input repeated ≥ 256 times
/// (rows of a few batch calls, averaged: sensor and input noise are per row); then, for 4 random
/// ȳ per point, the cosine between the twin's Jᵀȳ and the device's, averaged. Returns the cosines
/// of `twin` and of `nominal` (NaN when null). `device_calls` counts the calls made.
drivers::Result<std::pair<double, double>> jacobian_agreement(
    drivers::PhysicalSystem& device, const digital_twin::DifferentiableModel& twin,
    const digital_twin::DifferentiableModel* nominal, const Vector& theta, double x_lo,
    double x_hi, int points, std::uint64_t seed, std::int64_t& device_calls,
    const DeviceExecutor& executor = {});

/// jacobian_agreement of `fitted` (and of the device's nominal twin) at options.jacobian_points
/// points: θ at the middle of the range the fit samples (options.theta_center, else the middle of
/// the limits), x over its input range; fills the report's cosines and adds the device calls.
drivers::Result<void> measure_jacobian_agreement(drivers::PhysicalSystem& device,
                                                 FittedTwin& fitted,
                                                 const TwinFitOptions& options,
                                                 const DeviceExecutor& executor = {});

/// Saves a fitted twin's family, sizes and parameters in the checkpoint file format
/// (checkpoint.hpp: versioned, CRC-protected, written atomically); `nominal` is not saved and
/// must be given again to load (the device's datasheet twin). Throws CheckpointError.
void save_twin(const digital_twin::DifferentiableModel& twin, const std::filesystem::path& path);
/// Throws CheckpointError on a damaged file, a file that holds no twin, or one that does not
/// fit `nominal` (sizes), naming the file and the problem.
digital_twin::ModelPtr load_twin(const std::filesystem::path& path,
                                 const digital_twin::ModelPtr& nominal);
/// save_twin / load_twin without the file: the same bytes (what the run store keeps). `source`
/// prefixes decode errors (e.g. "twin 4"). `sizes` are the device's; `nominal` may be null for
/// a device without a datasheet twin (then only a black-box twin decodes).
struct TwinSizes {
  Index inputs = 0, params = 0, outputs = 0;
};
std::string encode_twin(const digital_twin::DifferentiableModel& twin);
digital_twin::ModelPtr decode_twin(std::string_view bytes, const std::string& source,
                                   const digital_twin::ModelPtr& nominal, const TwinSizes& sizes);

}  // namespace pnn::training
