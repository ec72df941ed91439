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

enum class TwinFamily { kGreyBox, kResidual, kBlackBox };
/// "grey-box" | "residual" | "mlp".
std::string to_string(TwinFamily family);
/// Throws std::invalid_argument naming the accepted names.
TwinFamily parse_twin_family(const std::string& name);

struct TwinFitOptions {
  TwinFamily family = TwinFamily::kGreyBox;
  Index samples = 4096;   ///< measured samples in all (fit + validation), repeats not counted
  Index batch = 256;      ///< samples per device call; one θ per call (≤ the device's max batch)
  int repeats = 1;        ///< each call made this many times and the readings averaged
  double validation_fraction = 0.2;  ///< of the calls, held out to measure the NMSE
  /// x uniform in mid ± input_fraction · half-range of the device's input range.
  double input_fraction = 1.0;
  /// θ uniform in theta_center ± theta_fraction · half-span, clipped to the hard limits;
  /// theta_center empty: the middle of the limits.
  Vector theta_center;
  double theta_fraction = 1.0;
  std::vector<Index> hidden = {64, 64};  ///< MLP hidden layers (residual, black box)
  bool residual_uses_theta = false;      ///< θ is an input of the residual correction
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

/// Measures `device` (ACTIVE) at options.samples random (x, θ) within its limits, options.batch
/// per call. A device error is returned as it came; `device_calls` counts the calls made.
drivers::Result<std::vector<digital_twin::Measurement>> measure_samples(
    drivers::PhysicalSystem& device, const TwinFitOptions& options, std::int64_t& device_calls,
    const DeviceExecutor& executor = {});

/// Fits `family` to measurements of a device whose nominal twin is `nominal` and whose input
/// range is [input_min, input_max] (normalisation). The last validation_fraction of the
/// measurements are held out. Throws std::invalid_argument on a bad option, wrong shapes, NaN
/// or Inf in a measurement, or too few samples for the family (each message names the fix).
FittedTwin fit_twin_to(const digital_twin::ModelPtr& nominal, double input_min, double input_max,
                       const Vector& theta_min, const Vector& theta_max,
                       const std::vector<digital_twin::Measurement>& data,
                       const TwinFitOptions& options);

/// measure_samples, then fit_twin_to with the device's nominal twin and limits.
drivers::Result<FittedTwin> fit_twin(drivers::PhysicalSystem& device, const TwinFitOptions& options,
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
