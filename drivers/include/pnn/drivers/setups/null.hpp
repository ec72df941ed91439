#pragma once
/// Datasheet of the null device (docs/setups/null.md): y = x, no parameters, no physics. A
/// benchmark fixture for measuring what the layers around a device cost (RPC, recording,
/// scheduling); there is no real instrument, only sim://null.
///   sim://null?inputs=N[&serial=S]
/// inputs N (1..1048576, default 1) = outputs, in a.u.; any finite float passes.
#include "pnn/drivers/datasheet.hpp"

namespace pnn::drivers::setups {

Datasheet null(const DeviceAddress& address);

}  // namespace pnn::drivers::setups
