// The simulated speaker-driven plate: its datasheet spec (units, hard limits), nominal twin and
// reality (PlateReality), served as a lab-built board over the frame protocol.
#include <cmath>
#include <memory>

#include "faults.hpp"
#include "plate_reality.hpp"
#include "pnn/drivers/format.hpp"
#include "sim_devices.hpp"

namespace pnn::drivers::sim {

// GCC 12 reports a -Wrestrict false positive (GCC bug 105329) on the string assignments of the
// spec below once the spread message is built from format_shortest; nothing here overlaps.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
SimSetup make_speaker_plate(const DeviceAddress& address) {
  address.allow_only({"seed", "slots", "spread", "serial"});
  const long long seed = address.get_int("seed", 1);
  const long long slots = address.get_int("slots", 32);
  if (slots < 1 || slots > 256) {
    throw std::invalid_argument(address.text + ": slots = " + std::to_string(slots) +
                                " is outside 1..256");
  }
  const double spread = address.get_double("spread", 1.0);
  if (spread < 0.0 || spread > 3.0) {
    throw std::invalid_argument(address.text + ": spread = " + format_shortest(spread) +
                                " is outside 0..3 (scale of the per-device mode spread)");
  }
  PlateRealityConfig config{.num_slots = slots, .spread = spread};
  DeviceSpec spec;
  spec.kind = "mechanical-plate";
  spec.model =
      "SIM-PLATE (simulated 0.5 mm steel plate on a speaker, 16-bit audio DAC, power amplifier, "
      "measurement microphone on a 16-bit 48 kS/s ADC binned per 2 ms)";
  spec.serial = address.get("serial", "SIM-PLATE-" + std::to_string(seed));
  spec.firmware = "sim-1.0";
  spec.num_inputs = spec.num_outputs = slots;
  spec.input_unit = "V";
  spec.output_unit = "V";
  spec.input_min = -config.dac_range_v;
  spec.input_max = config.dac_range_v;
  // Per output: the microphone noise averaged over a window's samples, and the amplifier noise,
  // which the plate passes with a gain of about one.
  spec.output_noise_std =
      std::hypot(config.mic_noise_v / std::sqrt(2.0 * config.adc_samples_per_slot),
                 config.amp_noise_v);
  spec.max_batch = 4096;
  spec.params = {{"drive", slots, "V", -config.dac_range_v, config.dac_range_v,
                  "amplifier input level of the 1 ms parameter slot after data slot k"}};
  config.seed = serial_seed(spec.serial);
  auto twin = std::make_shared<digital_twin::PlateModel>(digital_twin::PlateConfig{.num_slots = slots});
  return {std::move(spec), std::move(twin), reality_factory<PlateReality>(config)};
}
#pragma GCC diagnostic pop

}  // namespace pnn::drivers::sim
