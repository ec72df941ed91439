#include "pnn/drivers/setups/mechanical_oscillators.hpp"

#include <numbers>

#include "pnn/digital_twin/oscillator.hpp"

namespace pnn::drivers::setups {

Datasheet mechanical_oscillators(const DeviceAddress& address) {
  address.allow_only({"seed", "n", "gap", "serial", "eta", "j_noise", "compute"});
  const Index n = int_in_range(address, "n", 64, 1, 1024, "oscillators");
  DeviceSpec spec;
  spec.kind = "mechanical-oscillators";
  spec.serial = address.get("serial", "");
  spec.num_inputs = spec.num_outputs = n;
  spec.input_unit = spec.output_unit = "rad";
  spec.input_min = -std::numbers::pi;
  spec.input_max = std::numbers::pi;
  spec.output_noise_std = 0.005;
  spec.max_batch = 4096;
  spec.params = {
      {"coupling", n * n, "ω₀²", -1.0, 1.0, "spring coupling C (symmetric part acts), row-major"},
      {"drive", n, "ω₀²·rad", -1.0, 1.0, "static drive torque e per oscillator"}};
  auto twin = std::make_shared<digital_twin::OscillatorModel>(
      digital_twin::OscillatorConfig{.num_oscillators = n});
  return {std::move(spec), std::move(twin)};
}

}  // namespace pnn::drivers::setups
