// The simulated electronic-circuit instrument: spec (units, hard limits) and lifecycle around
// CircuitReality.
#include <cmath>
#include <memory>

#include "circuit_reality.hpp"
#include "sim_devices.hpp"

namespace pnn::drivers::sim {
namespace {

class SimCircuit final : public PhysicalSystem {
 public:
  SimCircuit(DeviceSpec spec, CircuitRealityConfig config)
      : PhysicalSystem(std::move(spec)), config_(config) {}

  digital_twin::ModelPtr nominal_twin() const override {
    return std::make_shared<digital_twin::CircuitModel>(
        digital_twin::CircuitConfig{.num_slots = spec().num_inputs});
  }

 private:
  Result<void> do_configure() override {
    reality_ = std::make_unique<CircuitReality>(config_);
    return {};
  }
  Result<void> do_cleanup() override {
    reality_.reset();
    return {};
  }
  Result<Matrix> do_forward(const MatrixRef& x, const VectorRef& theta) override {
    return reality_->run(x, theta);
  }

  CircuitRealityConfig config_;
  std::unique_ptr<CircuitReality> reality_;
};

// Seeds the simulated hardware from its serial number, so one serial is one circuit.
std::uint64_t serial_seed(const std::string& s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

PhysicalSystemPtr make_electronic_circuit(const DeviceAddress& address) {
  address.allow_only({"seed", "slots", "tolerance", "serial"});
  const long long seed = address.get_int("seed", 1);
  const long long slots = address.get_int("slots", 32);
  if (slots < 1 || slots > 256) {
    throw std::invalid_argument(address.text + ": slots = " + std::to_string(slots) +
                                " is outside 1..256");
  }
  const double tolerance = address.get_double("tolerance", 0.05);
  if (tolerance < 0.0 || tolerance > 0.2) {
    throw std::invalid_argument(address.text + ": tolerance = " + std::to_string(tolerance) +
                                " is outside 0..0.2 (relative component tolerance)");
  }
  const digital_twin::CircuitConfig nominal;
  const double sps = std::round(nominal.slot_s / nominal.sample_period_s);
  CircuitRealityConfig config{.num_slots = slots, .tolerance = tolerance};
  DeviceSpec spec;
  spec.kind = "electronic-circuit";
  spec.model =
      "SIM-RLC (simulated series RLC, 30 Ω / 100 µH / 10 nF, 1N4148 junction across C; 16-bit "
      "DAC and power driver, 14-bit 1 MS/s ADC)";
  spec.serial = address.get("serial", "SIM-RLC-" + std::to_string(seed));
  spec.firmware = "sim-1.0";
  spec.num_inputs = spec.num_outputs = slots;
  spec.input_unit = spec.output_unit = "V";
  spec.input_min = -config.dac_range_v;
  spec.input_max = config.dac_range_v;
  spec.output_noise_std = config.noise_v / std::sqrt(sps);
  spec.max_batch = 4096;
  spec.params = {{"drive", slots, "V", -config.dac_range_v, config.dac_range_v,
                  "DAC level of the 1 µs parameter slot after data slot k"}};
  config.seed = serial_seed(spec.serial);
  return std::make_unique<SimCircuit>(std::move(spec), config);
}

}  // namespace pnn::drivers::sim
