// Simulated optical instruments: the SHG pulse-shaper setup and the single-photon-detection
// layer (PHYSICS.md "Optical (a)" and "Optical (b)"); declared in sim_devices.hpp.
#include <cstdint>
#include <sstream>
#include <string>

#include "pnn/digital_twin/shg.hpp"
#include "pnn/digital_twin/single_photon.hpp"
#include "faults.hpp"
#include "shg_reality.hpp"
#include "sim_devices.hpp"
#include "spd_reality.hpp"

namespace pnn::drivers::sim {
namespace {

// ---- SHG ------------------------------------------------------------------------------------
// The datasheet gain: with every channel fully open and a 1 ms exposure, the brightest
// spectrometer bin reads kFullOpenKcountsPerMs (about half of the 16-bit full scale).
constexpr double kFullOpenKcountsPerMs = 30.0;

double datasheet_gain(const digital_twin::ShgConfig& sizes, double exposure_ms) {
  digital_twin::ShgConfig unit = sizes;
  unit.gain = 1.0;
  const digital_twin::ShgModel model(unit);
  const double peak =
      model.forward(Matrix::Ones(1, sizes.num_inputs), Vector::Ones(sizes.num_params)).maxCoeff();
  return std::sqrt(kFullOpenKcountsPerMs * exposure_ms / peak);
}

}  // namespace

SimSetup make_optical_shg(const DeviceAddress& address) {
  address.allow_only({"seed", "inputs", "params", "outputs", "gap", "exposure_ms", "serial"});
  const long long seed = address.get_int("seed", 1);
  const Index inputs = int_in_range(address, "inputs", 64, 1, 512, "data channels");
  const Index params = int_in_range(address, "params", 64, 0, 512, "trainable channels");
  const Index outputs =
      int_in_range(address, "outputs", 64, 1, inputs + params, "spectrometer bins");
  const std::string gap = address.get("gap", "large");
  if (gap != "small" && gap != "large") {
    throw std::invalid_argument(address.text + ": gap '" + gap + "' is not one of small, large");
  }
  const double exposure_ms = address.get_double("exposure_ms", 1.0);
  if (!(exposure_ms > 0.0 && exposure_ms <= 1000.0)) {
    throw std::invalid_argument(address.text + ": exposure_ms must be in (0, 1000]");
  }
  DeviceSpec spec;
  spec.kind = "optical-shg";
  spec.model = "SIM-SHG (simulated pulse shaper, chi(2) crystal and spectrometer, " + gap +
               " sim-to-real gap)";
  spec.serial = address.get("serial", "SIM-SHG-" + std::to_string(seed));
  spec.firmware = "sim-1.0";
  spec.num_inputs = inputs;
  spec.num_outputs = outputs;
  spec.input_unit = "1 (pulse-shaper transmission)";
  spec.output_unit = "kcounts";
  spec.input_min = 0.0;
  spec.input_max = 1.0;
  spec.output_noise_std = 0.05;
  spec.max_batch = 4096;
  if (params > 0) {
    spec.params = {{"shaper", params, "1", 0.0, 1.0,
                    "pulse-shaper transmission of the trainable spectral channels (8-bit)"}};
  }
  digital_twin::ShgConfig datasheet{
      .num_inputs = inputs, .num_params = params, .num_outputs = outputs};
  datasheet.gain = datasheet_gain(datasheet, exposure_ms);
  ShgRealityConfig config{.datasheet = datasheet,
                          .seed = serial_seed(spec.serial),
                          .gap = gap == "small" ? kShgSmallGap : kShgLargeGap};
  auto twin = std::make_shared<digital_twin::ShgModel>(config.datasheet);
  return {std::move(spec), std::move(twin), reality_factory<ShgReality>(config)};
}

SimSetup make_optical_spd(const DeviceAddress& address) {
  address.allow_only({"seed", "inputs", "outputs", "photons", "serial"});
  const long long seed = address.get_int("seed", 1);
  const Index inputs = int_in_range(address, "inputs", 64, 1, 4096, "inputs");
  const Index outputs = int_in_range(address, "outputs", 100, 1, 4096, "detectors");
  const double photons = address.get_double("photons", 1.0);
  if (!(photons > 0.0 && photons <= 1e6)) {
    throw std::invalid_argument(address.text +
                                ": photons (mean photons per unit |Wx|) must be in "
                                "(0, 1e6]");
  }
  DeviceSpec spec;
  spec.kind = "optical-spd";
  std::ostringstream model;
  model << "SIM-SPD (simulated optical matrix-vector multiplier with SPAD array, " << photons
        << " photons per unit |Wx|)";
  spec.model = model.str();
  spec.serial = address.get("serial", "SIM-SPD-" + std::to_string(seed));
  spec.firmware = "sim-1.0";
  spec.num_inputs = inputs;
  spec.num_outputs = outputs;
  spec.input_unit = "1 (input-modulator intensity transmission)";
  spec.output_unit = "clicks";
  spec.input_min = 0.0;
  spec.input_max = 1.0;
  spec.output_noise_std = 0.5;  // Bernoulli: up to 0.5 per detector and shot
  spec.max_batch = 1 << 16;
  spec.params = {{"weight", inputs * outputs, "1", -1.0, 1.0,
                  "weight-modulator field transmission, sign by a 0/pi phase (8-bit), row-major "
                  "detectors x inputs"}};
  SpdRealityConfig config{.num_inputs = inputs,
                          .num_outputs = outputs,
                          .photons_per_unit = photons,
                          .seed = serial_seed(spec.serial)};
  auto twin = std::make_shared<digital_twin::SinglePhotonModel>(
      digital_twin::SinglePhotonConfig{.num_inputs = config.num_inputs,
                                       .num_outputs = config.num_outputs,
                                       .photons_per_unit = config.photons_per_unit});
  return {std::move(spec), std::move(twin), reality_factory<SpdReality>(config)};
}

}  // namespace pnn::drivers::sim
