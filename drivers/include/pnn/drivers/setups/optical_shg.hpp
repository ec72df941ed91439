#pragma once
/// Datasheet of the pulse shaper, chi(2) crystal (SHG) and spectrometer (PHYSICS.md
/// "Optical (a)"; docs/setups/optical.md).
///   sim://optical-shg?seed=S&inputs=N&params=P&outputs=M&gap=small|large[&exposure_ms=T]
/// inputs: data channels (1..512, default 64, transmission in [0, 1]), params: trainable channels
/// (0..512, default 64, transmission in [0, 1]), outputs: spectrometer bins (1..inputs+params,
/// default 64, kcounts), exposure_ms: (0, 1000], default 1 (sets the twin's gain: fully open,
/// 1 ms, the brightest bin reads 30 kcounts). seed and gap shape only a simulated reality.
#include "pnn/digital_twin/shg.hpp"
#include "pnn/drivers/datasheet.hpp"

namespace pnn::drivers::setups {

struct OpticalShgDatasheet : Datasheet {
  digital_twin::ShgConfig twin_config;  ///< the twin's sizes and gain
};

OpticalShgDatasheet optical_shg(const DeviceAddress& address);

}  // namespace pnn::drivers::setups
