#pragma once
/// Datasheet of the electronic bench (PHYSICS.md "Electronic"; docs/setups/electronic-circuit.md):
/// a series RLC circuit with a junction diode, driven by a SCPI arbitrary-waveform generator and
/// read by a digitizer (`pnn/drivers/scpi_circuit.hpp` is its driver).
///   sim://electronic-circuit?seed=S&slots=K[&tolerance=…][&serial=…][&faults=…][&timeout_ms=…]
///       [&vmax=…]
///   tcp://HOST:PORT?kind=electronic-circuit&slots=K[&serial=…][&timeout_ms=…][&vmax=…]
/// slots K (1..256, default 32): inputs, outputs and θ are K wide, in V within ±vmax ((0, 10],
/// default 10). The drive is time-multiplexed (`pnn/digital_twin/time_multiplex.hpp`): x_k and
/// θ_k each held for one 1 µs slot; output k is the mean capacitor voltage over window k.
/// seed, tolerance and faults belong to the simulated instrument, timeout_ms to the driver.
#include "pnn/drivers/datasheet.hpp"

namespace pnn::drivers::setups {

/// The AWG's full scale: codes ±32767 are ±10 V, and vmax is at most this.
inline constexpr double kCircuitFullScaleV = 10.0;
/// The digitizer's noise per sample, rms.
inline constexpr double kCircuitAdcNoiseV = 1e-3;
/// Length of every data and parameter slot (the AWG and the digitizer run at 1 MS/s).
inline constexpr double kCircuitSlotS = 1e-6;

/// The address is the driver's whole address (the allowed keys depend on its scheme).
Datasheet electronic_circuit(const DeviceAddress& address);

}  // namespace pnn::drivers::setups
