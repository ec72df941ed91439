#pragma once
/// The one calibration procedure of a device's twin, used by jobs (`calibrate: true`) and by the
/// daemon's Calibrate RPC: measure the device on a probe batch at θ and at two perturbed θ
/// (normal, σ = 5 % of each parameter's span, clipped to the box), then fit the twin's physical
/// parameters φ to the three measurements (digital_twin::calibrate).
#include <cstdint>
#include <random>

#include "pnn/digital_twin/calibration.hpp"
#include "pnn/drivers/physical_system.hpp"
#include "pnn/training/device_executor.hpp"

namespace pnn::training {

/// Seed of the perturbations (jobs mix in their own seed: seed ^ kCalibrationSeed).
inline constexpr std::uint64_t kCalibrationSeed = 0xCA11B4A7Eull;

/// Measures `device` on `probe` at θ and at two perturbed θ within [theta_min, theta_max], drawing
/// the perturbations from `rng`, and fits `twin`'s φ. A device error is returned as it came.
/// `forward_calls` counts the measurements taken, those before an error too.
drivers::Result<digital_twin::CalibrationResult> calibrate_device(drivers::PhysicalSystem& device,
                                                    const digital_twin::DifferentiableModel& twin,
                                                    const MatrixRef& probe, const VectorRef& theta,
                                                    const VectorRef& theta_min,
                                                    const VectorRef& theta_max, std::mt19937_64& rng,
                                                    int& forward_calls,
                                                    const DeviceExecutor& executor = {});

}  // namespace pnn::training
