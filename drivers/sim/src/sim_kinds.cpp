#include "sim_kinds.hpp"

#include <stdexcept>
#include <vector>

#include "circuit_instrument.hpp"
#include "pnn/drivers/setups.hpp"
#include "sim_devices.hpp"

namespace pnn::drivers::sim {
namespace {

// The electronic bench served alone (pnn-siminst): the instrument's keys only; `slots` belongs
// to the driver and is accepted and ignored.
std::shared_ptr<firmware_iface::DeviceEndpoint> serve_circuit_instrument(
    const DeviceAddress& address) {
  address.allow_only({"seed", "serial", "tolerance", "faults", "slots"});
  return make_circuit_instrument(address);
}

const std::vector<SimKind>& sim_kinds() {
  static const std::vector<SimKind> kinds = {
      {"mechanical-oscillators", make_oscillators},
      {"power-law", make_power_law},
      {"optical-shg", make_optical_shg},
      {"optical-spd", make_optical_spd},
      {"stno-rnn", make_stno_rnn},
      {"mtj-rf", make_mtj_rf},
      {"electronic-circuit", nullptr, make_circuit_device, serve_circuit_instrument},
      {"mechanical-plate", make_speaker_plate},
      {"resistive-network", make_resistive_network},
      {"spiking-chip", make_spiking_chip},
      {"null", nullptr, make_null},
  };
  return kinds;
}

}  // namespace

const SimKind& find_sim_kind(const DeviceAddress& address) {
  if (!find_setup_kind(address.target)) {
    throw std::invalid_argument("device address '" + address.text + "': no simulated setup '" +
                                address.target + "' (known: " + setup_kind_names() + ")");
  }
  for (const auto& k : sim_kinds()) {
    if (k.kind == address.target) return k;
  }
  throw std::logic_error("setup kind '" + address.target +
                         "' has a datasheet but no simulated instrument (drivers/sim/src/"
                         "sim_kinds.cpp)");
}

}  // namespace pnn::drivers::sim
