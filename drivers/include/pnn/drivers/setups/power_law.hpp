#pragma once
/// Datasheet of the toy device y = a·x^θ (the pat-toy benchmark; docs/setups/power-law.md).
///   sim://power-law?prefactor=A[&serial=…]
/// One input and one output in a.u. (input within [1e-12, 1e12]), θ = the exponent in [0, 3].
/// The datasheet (and twin) prefactor is 2.01; `prefactor` is the simulated device's true a.
#include "pnn/drivers/datasheet.hpp"

namespace pnn::drivers::setups {

/// The prefactor a of the datasheet and the nominal twin.
inline constexpr double kPowerLawDatasheetPrefactor = 2.01;

Datasheet power_law(const DeviceAddress& address);

}  // namespace pnn::drivers::setups
