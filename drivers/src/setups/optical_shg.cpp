#include "pnn/drivers/setups/optical_shg.hpp"

#include <cmath>
#include <stdexcept>

namespace pnn::drivers::setups {
namespace {

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

OpticalShgDatasheet optical_shg(const DeviceAddress& address) {
  address.allow_only({"seed", "inputs", "params", "outputs", "gap", "exposure_ms", "serial"});
  const Index inputs = int_in_range(address, "inputs", 64, 1, 512, "data channels");
  const Index params = int_in_range(address, "params", 64, 0, 512, "trainable channels");
  const Index outputs =
      int_in_range(address, "outputs", 64, 1, inputs + params, "spectrometer bins");
  const double exposure_ms = address.get_double("exposure_ms", 1.0);
  if (!(exposure_ms > 0.0 && exposure_ms <= 1000.0)) {
    throw std::invalid_argument(address.text + ": exposure_ms must be in (0, 1000]");
  }
  OpticalShgDatasheet ds;
  DeviceSpec& spec = ds.spec;
  spec.kind = "optical-shg";
  spec.serial = address.get("serial", "");
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
  ds.twin_config = {.num_inputs = inputs, .num_params = params, .num_outputs = outputs};
  ds.twin_config.gain = datasheet_gain(ds.twin_config, exposure_ms);
  ds.twin = std::make_shared<digital_twin::ShgModel>(ds.twin_config);
  return ds;
}

}  // namespace pnn::drivers::setups
