#pragma once
/// Finite-difference check of a model's `vjp` (and `physical_vjp`): central differences of the
/// scalar ⟨Ȳ, f(X, θ)⟩ along random directions and along single coordinates, compared with the
/// analytic cotangents. Used by the tests of every model.
#include <string>

#include "pnn/digital_twin/model.hpp"

namespace pnn::digital_twin {

struct GradCheckOptions {
  double eps = 1e-6;             ///< central-difference step
  int num_directions = 6;        ///< random directions per argument
  int num_coordinates = 6;       ///< single coordinates per argument
  std::uint64_t seed = 1;
};

struct GradCheckReport {
  double max_rel_error_x = 0.0;
  double max_rel_error_theta = 0.0;
  double max_rel_error_phi = 0.0;
  double max_rel_error() const;
  std::string summary() const;
};

/// Relative error of each probe: |fd − analytic| / max(|fd|, |analytic|, 1e-8).
GradCheckReport check_gradients(const DifferentiableModel& model, const MatrixRef& x,
                                const VectorRef& theta, const GradCheckOptions& options = {});

}  // namespace pnn::digital_twin
