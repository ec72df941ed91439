#include "pnn/training/calibration.hpp"

namespace pnn::training {

drivers::Result<digital_twin::CalibrationResult> calibrate_device(drivers::PhysicalSystem& device,
                                                    const digital_twin::DifferentiableModel& twin,
                                                    const MatrixRef& probe, const VectorRef& theta,
                                                    const VectorRef& theta_min,
                                                    const VectorRef& theta_max, std::mt19937_64& rng,
                                                    int& forward_calls,
                                                    const DeviceExecutor& executor) {
  std::vector<digital_twin::Measurement> data;
  for (int k = 0; k < 3; ++k) {
    Vector t = theta;
    if (k > 0) {
      // Perturbed settings make the physical parameters identifiable beyond one θ.
      std::normal_distribution<double> normal(0.0, 0.05);
      const Vector span = theta_max - theta_min;
      for (Index j = 0; j < t.size(); ++j) t[j] += normal(rng) * span[j];
      t = t.cwiseMax(theta_min).cwiseMin(theta_max);
    }
    auto y = on_device(executor, [&] { return device.forward(probe, t); });
    if (!y) return y.error();
    ++forward_calls;
    data.push_back({probe, t, std::move(y).value()});
  }
  return digital_twin::calibrate(twin, data);
}

}  // namespace pnn::training
