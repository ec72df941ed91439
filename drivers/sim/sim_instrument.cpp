// make_simulated_instrument: the firmware emulator of any sim:// setup, to serve over a link
// (pnn-siminst): the SCPI electronic bench, or a lab-built board speaking the frame protocol.
#include "pnn/drivers/sim_instrument.hpp"

#include <stdexcept>

#include "circuit_instrument.hpp"
#include "pnn/drivers/registry.hpp"
#include "pnn/drivers/simulated.hpp"

namespace pnn::drivers {

std::shared_ptr<firmware_iface::DeviceEndpoint> make_simulated_instrument(
    const std::string& sim_address) {
  const DeviceAddress address = DeviceAddress::parse(sim_address);
  if (address.scheme != "sim") {
    throw std::invalid_argument("'" + sim_address +
                                "' is not a simulated instrument (expected sim://KIND?…, e.g. "
                                "sim://electronic-circuit?seed=1&slots=32)");
  }
  if (address.target == "electronic-circuit") {
    address.allow_only({"seed", "serial", "tolerance", "faults", "slots"});
    return sim::make_circuit_instrument(address);
  }
  // Every other setup is a lab-built board: its firmware emulator speaks the frame protocol.
  return make_simulated_firmware(sim_address);
}

}  // namespace pnn::drivers
