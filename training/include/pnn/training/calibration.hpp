#pragma once
/// The one calibration procedure of a device's twin, used by jobs (`calibrate: true`) and by the
/// daemon's Calibrate RPC: measure the device on a probe batch at θ and at two perturbed θ
/// (normal, σ = 5 % of each parameter's span, clipped to the box), then fit the twin's physical
/// parameters φ to the three measurements (digital_twin::calibrate).
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <stdexcept>

#include "pnn/digital_twin/calibration.hpp"
#include "pnn/drivers/physical_system.hpp"

namespace pnn::training {

/// Seed of the perturbations (jobs mix in their own seed: seed ^ kCalibrationSeed).
inline constexpr std::uint64_t kCalibrationSeed = 0xCA11B4A7Eull;

/// Where a device's calls run: the calling thread when empty; the daemon passes its per-device
/// worker, so that a job and a client never drive one device from two threads.
using DeviceExecutor = std::function<void(const std::function<void()>& call)>;

/// Runs `call` through `executor` (or directly) and returns its result.
template <class F>
auto on_device(const DeviceExecutor& executor, F&& call) -> decltype(call()) {
  if (!executor) return call();
  std::optional<decltype(call())> out;
  executor([&] { out.emplace(call()); });
  if (!out) throw std::runtime_error("the device's executor did not run the call");
  return std::move(*out);
}

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
