#include "pnn/drivers/setups/mechanical_plate.hpp"

#include <cmath>

#include "pnn/digital_twin/plate.hpp"

namespace pnn::drivers::setups {
namespace {

// The rig's datasheet figures (docs/setups/mechanical-plate.md, "Instruments").
constexpr double kDacRangeV = 1.0;        // audio DAC output range ± (the amplifier input)
constexpr double kAmpNoiseV = 3e-3;       // amplifier noise on each slot level, rms
constexpr double kMicNoiseV = 2e-3;       // per microphone ADC sample, rms
constexpr int kAdcSamplesPerSlot = 48;    // 48 kS/s at 1 ms slots

}  // namespace

// GCC 12 reports a -Wrestrict false positive (GCC bug 105329) on the string assignments of the
// spec below; nothing here overlaps.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
Datasheet mechanical_plate(const DeviceAddress& address) {
  address.allow_only({"seed", "slots", "spread", "serial"});
  const Index slots = int_in_range(address, "slots", 32, 1, 256, "");
  DeviceSpec spec;
  spec.kind = "mechanical-plate";
  spec.serial = address.get("serial", "");
  spec.num_inputs = spec.num_outputs = slots;
  spec.input_unit = "V";
  spec.output_unit = "V";
  spec.input_min = -kDacRangeV;
  spec.input_max = kDacRangeV;
  // Per output: the microphone noise averaged over a window's samples, and the amplifier noise,
  // which the plate passes with a gain of about one.
  spec.output_noise_std =
      std::hypot(kMicNoiseV / std::sqrt(2.0 * kAdcSamplesPerSlot), kAmpNoiseV);
  spec.max_batch = 4096;
  spec.params = {{"drive", slots, "V", -kDacRangeV, kDacRangeV,
                  "amplifier input level of the 1 ms parameter slot after data slot k"}};
  auto twin =
      std::make_shared<digital_twin::PlateModel>(digital_twin::PlateConfig{.num_slots = slots});
  return {std::move(spec), std::move(twin)};
}
#pragma GCC diagnostic pop

}  // namespace pnn::drivers::setups
