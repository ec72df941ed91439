#pragma once
/// A setup's datasheet: what the host knows about an instrument of a kind before it talks to it
/// (the spec with sizes, units, hard limits, read noise and largest batch, and the nominal digital
/// twin), from the options of its address. The datasheet is the primary description of a kind:
/// the drivers of real instruments use it, and a simulated instrument (pnn::drivers_sim) is built
/// from it, never the other way round. One datasheet per kind in `pnn/drivers/setups/<kind>.hpp`;
/// the table of kinds is `pnn/drivers/setups.hpp`.
#include "pnn/digital_twin/model.hpp"
#include "pnn/drivers/address.hpp"
#include "pnn/drivers/device_spec.hpp"

namespace pnn::drivers {

/// A datasheet has no identity of its own: `spec.model` and `spec.firmware` are empty and
/// `spec.serial` is the address's `serial=` (or empty); the instrument reports its own when
/// configured (a simulated one makes them up).
struct Datasheet {
  DeviceSpec spec;
  digital_twin::ModelPtr twin;  ///< nominal (uncalibrated), same sizes as the spec
};

}  // namespace pnn::drivers
