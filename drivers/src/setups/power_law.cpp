#include "pnn/drivers/setups/power_law.hpp"

#include "pnn/digital_twin/digital_layers.hpp"

namespace pnn::drivers::setups {

Datasheet power_law(const DeviceAddress& address) {
  address.allow_only({"prefactor", "serial"});
  DeviceSpec spec;
  spec.kind = "power-law";
  spec.serial = address.get("serial", "");
  spec.num_inputs = spec.num_outputs = 1;
  spec.input_unit = spec.output_unit = "a.u.";
  spec.input_min = 1e-12;
  spec.input_max = 1e12;
  spec.max_batch = 1 << 16;
  spec.params = {{"exponent", 1, "1", 0.0, 3.0, "exponent θ"}};
  return {std::move(spec),
          std::make_shared<digital_twin::PowerLawModel>(kPowerLawDatasheetPrefactor)};
}

}  // namespace pnn::drivers::setups
