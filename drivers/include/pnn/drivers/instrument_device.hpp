#pragma once
/// Real instruments (or simulated ones served over a real link by pnn-siminst): the driver for a
/// usb://, tcp:// or usbtmc:// address. The link comes from the scheme, the driver and the
/// datasheet (spec with units and limits, nominal twin: `pnn/drivers/setups.hpp`) from kind=.
///
///   usb://VID:PID?serial=S&kind=K&...      a lab-built board, frame protocol over USB bulk
///   tcp://HOST:PORT?kind=K&...             a board's frame protocol over TCP, or for the
///                                          electronic circuit its SCPI instruments
///   usbtmc://VID:PID?serial=S&kind=electronic-circuit&...   SCPI instruments over USBTMC
///
/// The other options are the kind's datasheet options (sizes; options that only shape a
/// simulated reality are accepted and have no effect) and, for a board, timeout_ms and retries.
/// sim:// addresses are pnn::drivers_sim's (`make_physical_system` in pnn/drivers/registry.hpp).
#include "pnn/drivers/address.hpp"
#include "pnn/drivers/physical_system.hpp"

namespace pnn::drivers {

/// The driver for `address` (UNCONFIGURED; nothing is opened until configure). Throws
/// std::invalid_argument on a scheme other than usb, tcp and usbtmc, a missing or unknown kind, a
/// scheme the kind's instruments do not speak, or a bad option, naming the fix.
PhysicalSystemPtr make_instrument_device(const DeviceAddress& address);

}  // namespace pnn::drivers
