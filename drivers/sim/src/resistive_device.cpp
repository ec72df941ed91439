// The simulated resistive network board (docs/setups/resistive-network.md); declared in
// sim_devices.hpp.
#include <string>

#include "faults.hpp"
#include "pnn/drivers/setups/resistive_network.hpp"
#include "resistive_reality.hpp"
#include "sim_devices.hpp"

namespace pnn::drivers::sim {

SimSetup make_resistive_network(const DeviceAddress& address) {
  setups::ResistiveNetworkDatasheet ds = setups::resistive_network(address);
  const long long seed = address.get_int("seed", 1);
  set_simulated_identity(ds.spec,
                         "SIM-RESNET (simulated nonlinear resistive network: 10-bit programmable "
                         "conductances, diode-pair hidden nodes, voltage-source inputs)",
                         "SIM-RESNET-" + std::to_string(seed));
  ResistiveRealityConfig config{.datasheet = ds.twin_config, .seed = serial_seed(ds.spec.serial)};
  config.mismatch = double_in_range(address, "mismatch", config.mismatch, 0.0, 0.3);
  config.threshold_spread =
      double_in_range(address, "threshold_spread", config.threshold_spread, 0.0, 0.9);
  config.noise_mv = double_in_range(address, "noise_mv", config.noise_mv, 0.0, 100.0);
  config.settle_us = double_in_range(address, "settle_us", config.settle_us, 0.01, 1e6);
  return {std::move(ds.spec), std::move(ds.twin), reality_factory<ResistiveReality>(config)};
}

}  // namespace pnn::drivers::sim
