#pragma once
/// Datasheet of the nonlinear resistive network (docs/setups/resistive-network.md): voltage-source
/// inputs, one layer of hidden nodes with bidirectional diode pairs to ground, output node pairs,
/// trainable conductances between consecutive layers; it settles to the minimum of its power
/// dissipation (digital_twin/resistive_network.hpp has the physics).
///   sim://resistive-network?seed=S&inputs=N&hidden=H&outputs=M[&mismatch=σ&threshold_spread=s
///                           &noise_mv=n&settle_us=t]
/// inputs 1..1024 (default 64, volts in [0, 1]), hidden 1..1024 (default 128), outputs 1..100
/// (default 10 logits, 2 nodes each). θ: the conductances g_in (hidden × (2·inputs + 2)) and g_out
/// (2·outputs × hidden), mS in [0.001, 1]. forward = the free equilibrium's logits; settle
/// returns the hidden and output node voltages (hidden + 2·outputs per sample). seed, mismatch,
/// threshold_spread, noise_mv and settle_us shape only a simulated reality.
#include "pnn/digital_twin/resistive_network.hpp"
#include "pnn/drivers/datasheet.hpp"

namespace pnn::drivers::setups {

struct ResistiveNetworkDatasheet : Datasheet {
  digital_twin::ResistiveNetworkConfig twin_config;
};

ResistiveNetworkDatasheet resistive_network(const DeviceAddress& address);

}  // namespace pnn::drivers::setups
