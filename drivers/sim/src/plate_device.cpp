// The simulated speaker-driven plate: the datasheet's spec and nominal twin with its reality
// (PlateReality), served as a lab-built board over the frame protocol.
#include "faults.hpp"
#include "plate_reality.hpp"
#include "pnn/drivers/format.hpp"
#include "pnn/drivers/setups/mechanical_plate.hpp"
#include "sim_devices.hpp"

namespace pnn::drivers::sim {

SimSetup make_speaker_plate(const DeviceAddress& address) {
  Datasheet ds = setups::mechanical_plate(address);
  const long long seed = address.get_int("seed", 1);
  const double spread = address.get_double("spread", 1.0);
  if (spread < 0.0 || spread > 3.0) {
    throw std::invalid_argument(address.text + ": spread = " + format_shortest(spread) +
                                " is outside 0..3 (scale of the per-device mode spread)");
  }
  set_simulated_identity(
      ds.spec,
      "SIM-PLATE (simulated 0.5 mm steel plate on a speaker, 16-bit audio DAC, power amplifier, "
      "measurement microphone on a 16-bit 48 kS/s ADC binned per 2 ms)",
      "SIM-PLATE-" + std::to_string(seed));
  PlateRealityConfig config{
      .num_slots = ds.spec.num_inputs, .seed = serial_seed(ds.spec.serial), .spread = spread};
  return {std::move(ds.spec), std::move(ds.twin), reality_factory<PlateReality>(config)};
}

}  // namespace pnn::drivers::sim
