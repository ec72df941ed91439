#pragma once
/// Datasheet of the spin-torque nano-oscillator recurrent network (PHYSICS.md "Spintronic (a)";
/// docs/setups/spintronic.md).
///   sim://stno-rnn?seed=S&neurons=N&steps=T&inputs=M[&period_ns=τ&spread=s]
/// neurons (1..1024, default 64), steps: input periods (1..1024, default 8), inputs per period
/// (1..1024, default 8), period_ns ([0.01, 10]); inputs T·M drives in [0, 1], outputs the N
/// normalised powers; θ = bias (N, uA, [10, 40]), input weights (N·M, uA, [−20, 20]), recurrent
/// weights (N², uA, [−10, 10]). seed and spread shape only a simulated reality.
#include "pnn/digital_twin/stno.hpp"
#include "pnn/drivers/datasheet.hpp"

namespace pnn::drivers::setups {

struct StnoRnnDatasheet : Datasheet {
  digital_twin::StnoConfig twin_config;
};

StnoRnnDatasheet stno_rnn(const DeviceAddress& address);

}  // namespace pnn::drivers::setups
