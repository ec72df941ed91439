#pragma once
/// Twin calibration: fit a twin's physical parameters φ to measured input/output pairs by least
/// squares, using the twin's own gradients (`physical_vjp`).
#include <vector>

#include "pnn/digital_twin/model.hpp"

namespace pnn::digital_twin {

/// One measured batch: inputs X sent with parameters θ, outputs Y read back.
struct Measurement {
  Matrix x;
  Vector theta;
  Matrix y;
};

/// BFGS with Armijo backtracking on the mean squared error; φ is small (a few physical
/// constants), so a dense inverse-Hessian estimate is cheap and converges in a few iterations.
struct CalibrationOptions {
  int max_iterations = 30;
  double max_first_step = 0.1;  ///< largest change of any φ entry in the first iteration
  double tolerance = 1e-10;     ///< stop when the relative MSE improvement falls below this
};

struct CalibrationResult {
  ModelPtr model;           ///< the twin with fitted φ
  Vector phi;               ///< fitted physical parameters
  double mse_before = 0.0;  ///< twin-vs-hardware mean squared error with the starting φ
  double mse_after = 0.0;   ///< … with the fitted φ (never worse than mse_before)
  int iterations = 0;
};

/// Mean squared error of `model` against the measurements (over every output entry).
double twin_mse(const DifferentiableModel& model, const std::vector<Measurement>& data);

/// Throws std::invalid_argument if the model has no physical parameters, the data are empty,
/// shapes disagree or a measurement is not finite.
CalibrationResult calibrate(const DifferentiableModel& twin, const std::vector<Measurement>& data,
                            const CalibrationOptions& options = {});

}  // namespace pnn::digital_twin
