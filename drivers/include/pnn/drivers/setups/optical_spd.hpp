#pragma once
/// Datasheet of the optical matrix-vector multiplier read by single-photon detectors (PHYSICS.md
/// "Optical (b)"; docs/setups/optical.md).
///   sim://optical-spd?seed=S&inputs=N&outputs=M&photons=N_ph
/// inputs (1..4096, default 64, intensity transmission in [0, 1]), outputs: detectors (1..4096,
/// default 100, clicks), photons: mean detected photons per unit |Wx| ((0, 1e6], default 1);
/// θ = the weights (outputs × inputs, [−1, 1]). seed shapes only a simulated reality.
#include "pnn/digital_twin/single_photon.hpp"
#include "pnn/drivers/datasheet.hpp"

namespace pnn::drivers::setups {

struct OpticalSpdDatasheet : Datasheet {
  digital_twin::SinglePhotonConfig twin_config;  ///< sizes and photons per unit |Wx|
};

OpticalSpdDatasheet optical_spd(const DeviceAddress& address);

}  // namespace pnn::drivers::setups
