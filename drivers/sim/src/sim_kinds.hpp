#pragma once
/// The table of simulated setups, one entry per kind of the datasheet table
/// (`pnn/drivers/setups.hpp`): how sim://KIND is simulated. Explicit: a kind without an entry is
/// a bug that every test of all kinds finds. Private to drivers_sim.
#include <memory>
#include <string>

#include "pnn/drivers/physical_system.hpp"
#include "pnn/firmware_iface/transport.hpp"
#include "sim_setup.hpp"

namespace pnn::drivers::sim {

struct SimKind {
  std::string kind;
  /// A lab-built board: the datasheet with the instrument's identity and reality, served by the
  /// firmware emulator over the frame protocol to the framed-board driver.
  SimSetup (*board)(const DeviceAddress& address) = nullptr;
  /// An instrument with a driver of its own: that driver wired to the simulated instrument.
  PhysicalSystemPtr (*device)(const DeviceAddress& address) = nullptr;
  /// Such an instrument alone, to serve over a link (nullptr: there is none to serve).
  std::shared_ptr<firmware_iface::DeviceEndpoint> (*instrument)(const DeviceAddress& address) =
      nullptr;
};

/// The entry of the kind `address` names (its target). Throws std::invalid_argument naming the
/// known kinds for an unknown one.
const SimKind& find_sim_kind(const DeviceAddress& address);

}  // namespace pnn::drivers::sim
