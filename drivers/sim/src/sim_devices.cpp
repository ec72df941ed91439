#include "sim_devices.hpp"

#include <numbers>

#include "faults.hpp"
#include "oscillator_reality.hpp"
#include "pnn/digital_twin/digital_layers.hpp"

namespace pnn::drivers::sim {
namespace {

// The toy device's reality is the power law itself, with the true prefactor.
class PowerLawReality final : public Reality {
 public:
  explicit PowerLawReality(double prefactor) : model_(prefactor) {}
  Matrix run(const MatrixRef& x, const VectorRef& theta) override {
    return model_.forward(x, theta);
  }

 private:
  digital_twin::PowerLawModel model_;
};

constexpr double kDatasheetPrefactor = 2.01;

}  // namespace

SimSetup make_oscillators(const DeviceAddress& address) {
  address.allow_only({"seed", "n", "gap", "serial", "eta", "j_noise"});
  const long long seed = address.get_int("seed", 1);
  const long long n = address.get_int("n", 64);
  if (n < 1 || n > 1024) {
    throw std::invalid_argument(address.text + ": n = " + std::to_string(n) +
                                " oscillators is outside 1..1024");
  }
  const std::string gap = address.get("gap", "small");
  if (gap != "small" && gap != "large") {
    throw std::invalid_argument(address.text + ": gap '" + gap + "' is not one of small, large");
  }
  // The gap level sets η and J_noise; either can be overridden to explore other realities.
  GapLevel gap_level = gap == "large" ? kLargeGap : kSmallGap;
  gap_level.eta = address.get_double("eta", gap_level.eta);
  gap_level.j_noise = address.get_double("j_noise", gap_level.j_noise);
  if (gap_level.j_noise < 0.0) throw std::invalid_argument(address.text + ": j_noise must be ≥ 0");
  DeviceSpec spec;
  spec.kind = "mechanical-oscillators";
  spec.model = "SIM-OSC (simulated coupled pendula, " + gap + " sim-to-real gap)";
  spec.serial = address.get("serial", "SIM-OSC-" + std::to_string(seed));
  spec.firmware = "sim-1.0";
  spec.num_inputs = spec.num_outputs = n;
  spec.input_unit = spec.output_unit = "rad";
  spec.input_min = -std::numbers::pi;
  spec.input_max = std::numbers::pi;
  spec.output_noise_std = 0.005;
  spec.max_batch = 4096;
  spec.params = {
      {"coupling", n * n, "ω₀²", -1.0, 1.0, "spring coupling C (symmetric part acts), row-major"},
      {"drive", n, "ω₀²·rad", -1.0, 1.0, "static drive torque e per oscillator"}};
  OscillatorRealityConfig config{.num_oscillators = n,
                                 .seed = serial_seed(spec.serial),
                                 .gap = gap_level,
                                 .theta_min = spec.param_min(),
                                 .theta_max = spec.param_max()};
  auto twin = std::make_shared<digital_twin::OscillatorModel>(
      digital_twin::OscillatorConfig{.num_oscillators = n});
  return {std::move(spec), std::move(twin), reality_factory<OscillatorReality>(std::move(config))};
}

SimSetup make_power_law(const DeviceAddress& address) {
  address.allow_only({"prefactor", "serial"});
  const double prefactor = address.get_double("prefactor", 2.0);
  DeviceSpec spec;
  spec.kind = "power-law";
  spec.model = "SIM-POW (toy device y = a·x^θ, datasheet a = 2.01)";
  spec.serial = address.get("serial", "SIM-POW-1");
  spec.firmware = "sim-1.0";
  spec.num_inputs = spec.num_outputs = 1;
  spec.input_unit = spec.output_unit = "a.u.";
  spec.input_min = 1e-12;
  spec.input_max = 1e12;
  spec.max_batch = 1 << 16;
  spec.params = {{"exponent", 1, "1", 0.0, 3.0, "exponent θ"}};
  return {std::move(spec), std::make_shared<digital_twin::PowerLawModel>(kDatasheetPrefactor),
          [prefactor] { return std::make_unique<PowerLawReality>(prefactor); }};
}

}  // namespace pnn::drivers::sim
