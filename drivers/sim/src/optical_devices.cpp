// Simulated optical instruments: the SHG pulse-shaper setup and the single-photon-detection
// layer (PHYSICS.md "Optical (a)" and "Optical (b)"); declared in sim_devices.hpp.
#include <sstream>
#include <string>

#include "faults.hpp"
#include "pnn/drivers/setups/optical_shg.hpp"
#include "pnn/drivers/setups/optical_spd.hpp"
#include "shg_reality.hpp"
#include "sim_devices.hpp"
#include "spd_reality.hpp"

namespace pnn::drivers::sim {

SimSetup make_optical_shg(const DeviceAddress& address) {
  setups::OpticalShgDatasheet ds = setups::optical_shg(address);
  const long long seed = address.get_int("seed", 1);
  const std::string gap = address.get("gap", "large");
  if (gap != "small" && gap != "large") {
    throw std::invalid_argument(address.text + ": gap '" + gap + "' is not one of small, large");
  }
  set_simulated_identity(ds.spec,
                         "SIM-SHG (simulated pulse shaper, chi(2) crystal and spectrometer, " +
                             gap + " sim-to-real gap)",
                         "SIM-SHG-" + std::to_string(seed));
  ShgRealityConfig config{.datasheet = ds.twin_config,
                          .seed = serial_seed(ds.spec.serial),
                          .gap = gap == "small" ? kShgSmallGap : kShgLargeGap};
  return {std::move(ds.spec), std::move(ds.twin), reality_factory<ShgReality>(config)};
}

SimSetup make_optical_spd(const DeviceAddress& address) {
  setups::OpticalSpdDatasheet ds = setups::optical_spd(address);
  const long long seed = address.get_int("seed", 1);
  std::ostringstream model;
  model << "SIM-SPD (simulated optical matrix-vector multiplier with SPAD array, "
        << ds.twin_config.photons_per_unit << " photons per unit |Wx|)";
  set_simulated_identity(ds.spec, model.str(), "SIM-SPD-" + std::to_string(seed));
  SpdRealityConfig config{.num_inputs = ds.twin_config.num_inputs,
                          .num_outputs = ds.twin_config.num_outputs,
                          .photons_per_unit = ds.twin_config.photons_per_unit,
                          .seed = serial_seed(ds.spec.serial)};
  return {std::move(ds.spec), std::move(ds.twin), reality_factory<SpdReality>(config)};
}

}  // namespace pnn::drivers::sim
