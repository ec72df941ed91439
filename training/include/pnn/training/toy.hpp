#pragma once
/// The PAT toy problem (PAT repo, example 3): one device y = a·x^θ applied `num_layers` times in
/// a chain with one shared exponent θ, trained so the chain's output hits a target. Small enough
/// to be a deterministic test and a benchmark of the PAT mechanism itself.
#include <string>

namespace pnn::training {

struct ToyOptions {
  int num_layers = 10;
  double x0 = 1.0;
  double theta0 = 1.1;
  double target = 1e5;
  double learning_rate = 1e-15;  ///< plain SGD on L = (y − target)²
  int steps = 150;
  std::string device = "sim://power-law?prefactor=2";  ///< reality; its twin has prefactor 2.01
};

struct ToyResult {
  double rel_err_pat = 0.0;       ///< |y − target| / target on the device after PAT
  double rel_err_insilico = 0.0;  ///< … after training on the twin alone
  double theta_pat = 0.0;
  double theta_insilico = 0.0;
};

/// Throws std::runtime_error if the device faults.
ToyResult run_power_law_toy(const ToyOptions& options = {});

}  // namespace pnn::training
