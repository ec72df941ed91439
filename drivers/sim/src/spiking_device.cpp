// The simulated spiking chip board (docs/setups/spiking-chip.md); declared in sim_devices.hpp.
#include <string>

#include "faults.hpp"
#include "pnn/drivers/setups/spiking_chip.hpp"
#include "sim_devices.hpp"
#include "spiking_reality.hpp"

namespace pnn::drivers::sim {

SimSetup make_spiking_chip(const DeviceAddress& address) {
  setups::SpikingChipDatasheet ds = setups::spiking_chip(address);
  const long long seed = address.get_int("seed", 1);
  set_simulated_identity(ds.spec,
                         "SIM-LIF (simulated analog spiking chip: LIF neurons, current-based "
                         "6-bit synapses, 8-bit membrane ADC, 1 us steps)",
                         "SIM-LIF-" + std::to_string(seed));
  SpikingRealityConfig config{.datasheet = ds.twin_config,
                              .readout = ds.readout,
                              .seed = serial_seed(ds.spec.serial)};
  const std::string gap = address.get("gap", "large");
  if (gap != "small" && gap != "large" && gap != "none") {
    throw std::invalid_argument(address.text + ": gap = '" + gap +
                                "' is not one of none, small, large");
  }
  config.gap = gap;
  config.noise = double_in_range(address, "noise", -1.0, -1.0, 1.0);
  config.jitter = double_in_range(address, "jitter", -1.0, -1.0, 10.0);
  return {std::move(ds.spec), std::move(ds.twin), reality_factory<SpikingReality>(config)};
}

}  // namespace pnn::drivers::sim
