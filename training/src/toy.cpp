#include "pnn/training/toy.hpp"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <stdexcept>

#include "pnn/drivers/registry.hpp"
#include "pnn/training/network.hpp"

namespace pnn::training {

ToyResult run_power_law_toy(const ToyOptions& options) {
  auto device = drivers::make_physical_system(options.device);
  if (auto r = device->configure(); !r) throw std::runtime_error(r.error().message);
  if (auto r = device->activate(); !r) throw std::runtime_error(r.error().message);
  // The same device, used num_layers times: every layer holds the shared θ.
  Network net;
  for (int i = 0; i < options.num_layers; ++i) {
    net.add_physical("layer" + std::to_string(i), *device, device->nominal_twin(),
                     Vector::Constant(1, options.theta0));
  }
  const Matrix x = Matrix::Constant(1, 1, options.x0);
  auto set_theta = [&](double theta) {
    for (auto& l : net.layers()) l.theta[0] = theta;
  };
  auto output = [&](Mode mode) {
    auto trace = net.forward(x, mode);
    if (!trace) throw std::runtime_error(trace.error().message);
    return std::move(trace).value();
  };
  auto train = [&](Mode mode) {
    double theta = options.theta0;
    set_theta(theta);
    for (int s = 0; s < options.steps; ++s) {
      const Trace trace = output(mode);
      const Matrix y_bar = Matrix::Constant(1, 1, 2.0 * (trace.output(0, 0) - options.target));
      double grad = 0.0;  // tied weights: the shared θ collects every layer's cotangent
      for (const auto& g : net.backward(trace, y_bar)) grad += g[0];
      theta = std::clamp(theta - options.learning_rate * grad, net.layers()[0].theta_min[0],
                         net.layers()[0].theta_max[0]);
      set_theta(theta);
    }
    const double y = output(Mode::kHardware).output(0, 0);
    return std::pair{std::abs(y - options.target) / options.target, theta};
  };
  ToyResult result;
  std::tie(result.rel_err_pat, result.theta_pat) = train(Mode::kHardware);
  std::tie(result.rel_err_insilico, result.theta_insilico) = train(Mode::kTwin);
  device->shutdown();
  return result;
}

}  // namespace pnn::training
