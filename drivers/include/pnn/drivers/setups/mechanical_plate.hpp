#pragma once
/// Datasheet of the speaker-driven plate (PHYSICS.md "Mechanical", second setup;
/// docs/setups/mechanical-plate.md).
///   sim://mechanical-plate?seed=S&slots=K[&spread=s&serial=…]
/// slots K (1..256, default 32): inputs, outputs and θ are K wide, in V. The drive is
/// time-multiplexed (`pnn/digital_twin/time_multiplex.hpp`): x_k and θ_k each held for 1 ms,
/// within the audio DAC's ±1 V; output k is the microphone over window k. seed and spread shape
/// only a simulated reality.
#include "pnn/drivers/datasheet.hpp"

namespace pnn::drivers::setups {

Datasheet mechanical_plate(const DeviceAddress& address);

}  // namespace pnn::drivers::setups
