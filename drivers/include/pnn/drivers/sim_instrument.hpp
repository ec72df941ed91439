#pragma once
/// Simulated instruments as device-side endpoints, for serving them over a real link
/// (`pnn-siminst` serves one over TCP; tests serve them in-process). The endpoint is the
/// instrument's firmware: it speaks the instrument's wire protocol and runs its reality
/// simulator; a host reaches it only through a transport and a driver.
#include <memory>
#include <string>

#include "pnn/firmware_iface/transport.hpp"

namespace pnn::drivers {

/// The simulated instrument named by a `sim://` address, e.g.
///   sim://electronic-circuit?seed=1&slots=32[&serial=…][&tolerance=0.05][&faults=…]
/// (the SCPI AWG + digitizer of the electronic setup, docs/protocol.md "SCPI instruments";
/// `slots` belongs to the driver and is accepted and ignored here).
/// Throws std::invalid_argument on a malformed address, a bad or unknown query key, or a setup
/// that is not served over a link yet (the message lists the ones that are).
std::shared_ptr<firmware_iface::DeviceEndpoint> make_simulated_instrument(
    const std::string& sim_address);

}  // namespace pnn::drivers
