// make_simulated_instrument: the sim:// setups whose firmware emulators can be served over a
// link (pnn-siminst). Only the SCPI electronic-circuit bench so far.
#include "pnn/drivers/sim_instrument.hpp"

#include <stdexcept>

#include "circuit_instrument.hpp"
#include "pnn/drivers/registry.hpp"

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
  throw std::invalid_argument("'" + sim_address + "': sim://" + address.target +
                              " is not served over TCP yet (served: electronic-circuit)");
}

}  // namespace pnn::drivers
