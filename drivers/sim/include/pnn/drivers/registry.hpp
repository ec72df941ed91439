#pragma once
/// The one factory that names concrete drivers (docs/config.md, "Device addresses"). Part of
/// pnn::drivers_sim, because it resolves sim:// addresses too:
///
///   sim://mechanical-oscillators?seed=3&n=64&gap=large       simulated board (frame protocol)
///   sim://electronic-circuit?seed=1&slots=32                 simulated SCPI instruments
///   usb://1209:0001?serial=B7&kind=mechanical-oscillators&n=64   a real board over USB bulk
///   tcp://10.0.0.5:5025?kind=electronic-circuit&slots=32     SCPI instruments on the LAN
///   usbtmc://0957:1755?serial=MY1&kind=electronic-circuit    SCPI instruments over USBTMC
///
/// sim:// builds the simulated instrument of the kind's datasheet (pnn/drivers/simulated.hpp);
/// usb://, tcp:// and usbtmc:// are pnn::drivers' `make_instrument_device`, which needs no
/// simulator. Device addresses and the table of kinds are pnn::drivers' too; this header brings
/// them along for its callers.
#include <string>

#include "pnn/drivers/address.hpp"
#include "pnn/drivers/instrument_device.hpp"
#include "pnn/drivers/physical_system.hpp"
#include "pnn/drivers/setups.hpp"

namespace pnn::drivers {

/// Creates the driver for `address` (UNCONFIGURED). Throws std::invalid_argument on an unknown
/// scheme or kind, or bad query values, naming the fix.
PhysicalSystemPtr make_physical_system(const std::string& address);

}  // namespace pnn::drivers
