#pragma once
/// Datasheet of the spin-diode MTJ synapse chains on an RF comb with STNO neurons (PHYSICS.md
/// "Spintronic (b)"; docs/setups/spintronic.md).
///   sim://mtj-rf?seed=S&inputs=K&chains=N[&offset_mhz=σ]
/// inputs: frequency channels (1..256, default 64, uW per tone in [0, 1]), chains (1..1024,
/// default 64): outputs the normalised STNO powers; θ = the detuning of each junction (N·K, MHz,
/// within ± half a channel spacing). seed and offset_mhz shape only a simulated reality.
#include "pnn/digital_twin/mtj_rf.hpp"
#include "pnn/drivers/datasheet.hpp"

namespace pnn::drivers::setups {

struct MtjRfDatasheet : Datasheet {
  digital_twin::MtjRfConfig twin_config;
};

MtjRfDatasheet mtj_rf(const DeviceAddress& address);

}  // namespace pnn::drivers::setups
