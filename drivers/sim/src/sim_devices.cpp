// The simulated coupled oscillators and the toy power-law device; declared in sim_devices.hpp.
#include "sim_devices.hpp"

#include "faults.hpp"
#include "oscillator_reality.hpp"
#include "pnn/digital_twin/digital_layers.hpp"
#include "pnn/drivers/setups/mechanical_oscillators.hpp"
#include "pnn/drivers/setups/power_law.hpp"

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

}  // namespace

SimSetup make_oscillators(const DeviceAddress& address) {
  Datasheet ds = setups::mechanical_oscillators(address);
  const long long seed = address.get_int("seed", 1);
  const std::string gap = address.get("gap", "small");
  if (gap != "small" && gap != "large") {
    throw std::invalid_argument(address.text + ": gap '" + gap + "' is not one of small, large");
  }
  // The gap level sets η and J_noise; either can be overridden to explore other realities.
  GapLevel gap_level = gap == "large" ? kLargeGap : kSmallGap;
  gap_level.eta = address.get_double("eta", gap_level.eta);
  gap_level.j_noise = address.get_double("j_noise", gap_level.j_noise);
  if (gap_level.j_noise < 0.0) throw std::invalid_argument(address.text + ": j_noise must be ≥ 0");
  const std::string compute_name = address.get("compute", "float64");
  const auto compute = digital_twin::parse_precision(compute_name);
  if (!compute) {
    throw std::invalid_argument(address.text + ": compute '" + compute_name +
                                "' is not one of float64, float32");
  }
  set_simulated_identity(ds.spec,
                         "SIM-OSC (simulated coupled pendula, " + gap + " sim-to-real gap)",
                         "SIM-OSC-" + std::to_string(seed));
  OscillatorRealityConfig config{.num_oscillators = ds.spec.num_inputs,
                                 .seed = serial_seed(ds.spec.serial),
                                 .gap = gap_level,
                                 .theta_min = ds.spec.param_min(),
                                 .theta_max = ds.spec.param_max(),
                                 .compute = *compute};
  return {std::move(ds.spec), std::move(ds.twin),
          reality_factory<OscillatorReality>(std::move(config))};
}

SimSetup make_power_law(const DeviceAddress& address) {
  Datasheet ds = setups::power_law(address);
  const double prefactor = address.get_double("prefactor", 2.0);
  set_simulated_identity(ds.spec, "SIM-POW (toy device y = a·x^θ, datasheet a = 2.01)",
                         "SIM-POW-1");
  return {std::move(ds.spec), std::move(ds.twin),
          [prefactor] { return std::make_unique<PowerLawReality>(prefactor); }};
}

}  // namespace pnn::drivers::sim
