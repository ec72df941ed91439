#include "pnn/drivers/setups/optical_spd.hpp"

#include <stdexcept>

namespace pnn::drivers::setups {

OpticalSpdDatasheet optical_spd(const DeviceAddress& address) {
  address.allow_only({"seed", "inputs", "outputs", "photons", "serial"});
  const Index inputs = int_in_range(address, "inputs", 64, 1, 4096, "inputs");
  const Index outputs = int_in_range(address, "outputs", 100, 1, 4096, "detectors");
  const double photons = address.get_double("photons", 1.0);
  if (!(photons > 0.0 && photons <= 1e6)) {
    throw std::invalid_argument(address.text +
                                ": photons (mean photons per unit |Wx|) must be in "
                                "(0, 1e6]");
  }
  OpticalSpdDatasheet ds;
  DeviceSpec& spec = ds.spec;
  spec.kind = "optical-spd";
  spec.serial = address.get("serial", "");
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
  ds.twin_config = {.num_inputs = inputs, .num_outputs = outputs, .photons_per_unit = photons};
  ds.twin = std::make_shared<digital_twin::SinglePhotonModel>(ds.twin_config);
  return ds;
}

}  // namespace pnn::drivers::setups
