#pragma once
/// Datasheet of the analog spiking chip (docs/setups/spiking-chip.md): input spike trains (events
/// with a 5-bit channel address and a time step), one layer of analog LIF neurons with
/// current-based synapses (signed 6-bit weights), leaky-integrator output neurons whose membranes
/// are sampled every step by a saturating 8-bit ADC; accelerated time (1 µs steps).
///   sim://spiking-chip?seed=S&features=F&bias=B&hidden=H&outputs=O&steps=T[&encoding=latency|rate
///                      &surrogate=fast-sigmoid|arctan&slope=k&weights=reject|round
///                      &gap=none|small|large&noise=σ&jitter=s]
/// features 1..31 (default 4, each in [0, 1]), bias channels 0..8 (default 1; features + bias
/// ≤ 32), hidden 1..512 (default 120), outputs 1..32 (default 3), steps 8..255 (default 40).
/// forward(X, θ): X is encoded into events (the datasheet's encoding), run on the chip, and Y =
/// readout_scale · max over time of each output's sampled membrane. θ: W_in (hidden × channels)
/// then W_out (outputs × hidden), in weight levels, whole numbers in [−63, 63]; `weights=round`
/// rounds other values (the applied ones are recorded), the default refuses them. encoding,
/// surrogate and slope shape the twin and the encoder; gap, noise and jitter only a simulated
/// reality.
#include "pnn/digital_twin/spiking_lif.hpp"
#include "pnn/drivers/datasheet.hpp"

namespace pnn::drivers::setups {

/// How the chip's 8-bit membrane ADC maps to the normalised membrane (threshold 1): code 0 is
/// `lo`, code 255 is `hi`, saturating outside.
struct SpikingReadout {
  double lo = -1.0;
  double hi = 5.0;
  int bits = 8;
  int max_code() const { return (1 << bits) - 1; }
  double to_membrane(int code) const { return lo + (hi - lo) * code / max_code(); }
};

inline constexpr double kMaxWeightLevel = 63.0;  ///< signed 6-bit synapses

struct SpikingChipDatasheet : Datasheet {
  digital_twin::SpikingLifConfig twin_config;
  SpikingReadout readout;
};

SpikingChipDatasheet spiking_chip(const DeviceAddress& address);

}  // namespace pnn::drivers::setups
