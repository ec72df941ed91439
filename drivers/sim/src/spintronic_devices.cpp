// Simulated spintronic instruments: the STNO recurrent network and the MTJ spin-diode RF synapse
// chains with STNO neurons (PHYSICS.md "Spintronic (a)" and "(b)"); declared in sim_devices.hpp.
#include <string>

#include "faults.hpp"
#include "mtj_rf_reality.hpp"
#include "pnn/drivers/setups/mtj_rf.hpp"
#include "pnn/drivers/setups/stno_rnn.hpp"
#include "sim_devices.hpp"
#include "stno_reality.hpp"

namespace pnn::drivers::sim {

SimSetup make_stno_rnn(const DeviceAddress& address) {
  setups::StnoRnnDatasheet ds = setups::stno_rnn(address);
  const long long seed = address.get_int("seed", 1);
  const double spread = double_in_range(address, "spread", 0.10, 0.0, 0.5);
  set_simulated_identity(
      ds.spec,
      "SIM-STNO (simulated array of spin-torque nano-oscillators with programmable bias, "
      "input and recurrent current sources; I_th = 10 uA)",
      "SIM-STNO-" + std::to_string(seed));
  StnoRealityConfig config{
      .datasheet = ds.twin_config, .seed = serial_seed(ds.spec.serial), .spread = spread};
  return {std::move(ds.spec), std::move(ds.twin), reality_factory<StnoReality>(config)};
}

SimSetup make_mtj_rf(const DeviceAddress& address) {
  setups::MtjRfDatasheet ds = setups::mtj_rf(address);
  const long long seed = address.get_int("seed", 1);
  const double offset_mhz = double_in_range(address, "offset_mhz", 8.0, 0.0, 25.0);
  set_simulated_identity(ds.spec,
                         "SIM-MTJ-RF (simulated spin-diode MTJ synapse chains on a 64-tone RF "
                         "comb, 50 MHz spacing, with STNO neurons)",
                         "SIM-MTJ-" + std::to_string(seed));
  MtjRfRealityConfig config{
      .datasheet = ds.twin_config, .seed = serial_seed(ds.spec.serial), .offset_mhz = offset_mhz};
  return {std::move(ds.spec), std::move(ds.twin), reality_factory<MtjRfReality>(config)};
}

}  // namespace pnn::drivers::sim
