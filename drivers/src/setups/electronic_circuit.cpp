#include "pnn/drivers/setups/electronic_circuit.hpp"

#include <cmath>
#include <stdexcept>

#include "pnn/digital_twin/circuit.hpp"
#include "pnn/drivers/format.hpp"

namespace pnn::drivers::setups {

Datasheet electronic_circuit(const DeviceAddress& address) {
  if (address.scheme == "sim") {
    address.allow_only({"seed", "serial", "slots", "tolerance", "faults", "timeout_ms", "vmax"});
  } else {
    address.allow_only({"kind", "serial", "slots", "timeout_ms", "vmax"});
  }
  const Index slots = int_in_range(address, "slots", 32, 1, 256, "");
  const double vmax = address.get_double("vmax", kCircuitFullScaleV);
  if (!(vmax > 0.0 && vmax <= kCircuitFullScaleV)) {
    throw std::invalid_argument(address.text + ": vmax = " + format_decimal(vmax) +
                                " V is outside (0, 10] (the drive limit in volts, at most the "
                                "AWG's ±10 V)");
  }
  DeviceSpec spec;
  spec.kind = "electronic-circuit";
  spec.serial = address.get("serial", "");
  spec.num_inputs = spec.num_outputs = slots;
  spec.input_unit = spec.output_unit = "V";
  // The driver rounds levels to the nearest DAC code, never to one beyond ±vmax, so no
  // accepted request can trip the AWG's own limit check (set to ±vmax in configure).
  spec.input_min = -vmax;
  spec.input_max = vmax;
  spec.output_noise_std = kCircuitAdcNoiseV / std::sqrt(2.0);  // two samples per window
  spec.max_batch = 4096;
  spec.params = {
      {"drive", slots, "V", -vmax, vmax, "AWG level of the 1 µs parameter slot after data slot k"}};
  auto twin = std::make_shared<digital_twin::CircuitModel>(
      digital_twin::CircuitConfig{.num_slots = slots, .slot_s = kCircuitSlotS});
  return {std::move(spec), std::move(twin)};
}

}  // namespace pnn::drivers::setups
