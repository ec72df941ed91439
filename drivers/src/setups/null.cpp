#include "pnn/drivers/setups/null.hpp"

#include <limits>

#include "pnn/digital_twin/digital_layers.hpp"

namespace pnn::drivers::setups {

Datasheet null(const DeviceAddress& address) {
  address.allow_only({"inputs", "serial"});
  const Index n = int_in_range(address, "inputs", 1, 1, 1 << 20, "");
  DeviceSpec spec;
  spec.kind = "null";
  spec.serial = address.get("serial", "");
  spec.num_inputs = spec.num_outputs = n;
  spec.input_unit = spec.output_unit = "a.u.";
  // Any finite float passes: the limits are the float range the wire carries.
  spec.input_min = std::numeric_limits<float>::lowest();
  spec.input_max = std::numeric_limits<float>::max();
  spec.max_batch = 1 << 16;
  // The identity, as the twin of an identity device: a full-width slice with gain 1.
  return {std::move(spec), std::make_shared<digital_twin::SliceModel>(n, 0, n, 1.0)};
}

}  // namespace pnn::drivers::setups
