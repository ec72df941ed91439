#pragma once
/// Simulated instruments as device-side endpoints (pnn::drivers_sim), for serving them over a
/// real link (`pnn-siminst` serves one over TCP; tests serve them in-process). The endpoint is the
/// instrument's firmware: it speaks the instrument's wire protocol and runs its reality
/// simulator; a host reaches it only through a transport and a driver.
#include <memory>
#include <string>

#include "pnn/firmware_iface/transport.hpp"

namespace pnn::drivers {

/// The simulated instrument named by a `sim://` address: for the electronic setup its SCPI AWG +
/// digitizer (docs/protocol.md "SCPI instruments"; `slots` belongs to the driver and is accepted
/// and ignored here), for every other setup the firmware emulator of a lab-built board speaking
/// the frame protocol (`make_simulated_firmware`).
/// Throws std::invalid_argument on a malformed address or a bad or unknown query key.
std::shared_ptr<firmware_iface::DeviceEndpoint> make_simulated_instrument(
    const std::string& sim_address);

}  // namespace pnn::drivers
