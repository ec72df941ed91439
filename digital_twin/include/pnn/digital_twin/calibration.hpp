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

/// Quasi-Newton minimisation with Armijo backtracking of
///   MSE(φ) + l2 · ‖φ − φ_prior‖²
/// where φ_prior is `phi_prior` (empty: the twin's own φ, e.g. the nominal values). When φ is
/// small (a few physical constants, ≤ `dense_max` entries) a dense BFGS inverse-Hessian estimate
/// is cheap and converges in a few iterations; larger φ (a grey-box stray-coupling matrix, the
/// weights of an MLP twin) use limited-memory BFGS with `lbfgs_memory` pairs.
struct CalibrationOptions {
  int max_iterations = 30;
  double max_first_step = 0.1;  ///< largest change of any φ entry in the first iteration
  double tolerance = 1e-10;     ///< stop when the relative loss improvement falls below this
  double l2 = 0.0;              ///< weight of the pull toward phi_prior (0: none)
  Vector phi_prior;             ///< size of φ, or empty
  Index dense_max = 64;
  int lbfgs_memory = 12;
};

struct CalibrationResult {
  ModelPtr model;           ///< the twin with fitted φ
  Vector phi;               ///< fitted physical parameters
  double mse_before = 0.0;  ///< twin-vs-hardware mean squared error with the starting φ
  double mse_after = 0.0;   ///< … with the fitted φ (the regularised loss never got worse)
  int iterations = 0;
};

/// Mean squared error of `model` against the measurements (over every output entry).
double twin_mse(const DifferentiableModel& model, const std::vector<Measurement>& data);

/// Throws std::invalid_argument if the model has no physical parameters, the data are empty,
/// shapes disagree, a measurement is not finite or phi_prior has the wrong size.
CalibrationResult calibrate(const DifferentiableModel& twin, const std::vector<Measurement>& data,
                            const CalibrationOptions& options = {});

}  // namespace pnn::digital_twin
