#pragma once
/// Datasheet of the coupled nonlinear oscillators (PHYSICS.md "Mechanical";
/// docs/setups/mechanical-oscillators.md).
///   sim://mechanical-oscillators?seed=S&n=N&gap=small|large[&eta=η&j_noise=J]
///   usb://VID:PID?serial=S&kind=mechanical-oscillators&n=N
/// n: oscillators (1..1024, default 64): inputs q(0) and outputs in rad within [−π, π], θ = the
/// coupling C (n², ω₀², [−1, 1]) then the drive e (n, ω₀²·rad, [−1, 1]). seed, gap, eta and
/// j_noise shape only a simulated reality (no effect on hardware).
#include "pnn/drivers/datasheet.hpp"

namespace pnn::drivers::setups {

Datasheet mechanical_oscillators(const DeviceAddress& address);

}  // namespace pnn::drivers::setups
