#pragma once
/// The table of setup kinds: for each, its help text, an example address, how a real instrument
/// of the kind is driven and its datasheet function (`pnn/drivers/setups/<kind>.hpp`). The
/// factories look kinds up here; nothing registers itself. Thread-safe (immutable).
#include <string>
#include <vector>

#include "pnn/drivers/datasheet.hpp"

namespace pnn::drivers {

/// One entry per setup kind, for help texts and `describe`.
struct SetupInfo {
  std::string kind;
  std::string summary;
  std::string example_address;  ///< a sim:// address of the kind
};

/// How a real instrument of a kind is driven (`make_instrument_device`).
enum class InstrumentDriver {
  kFramedBoard,  ///< a lab-built board speaking the frame protocol: usb:// or tcp://
  kScpiCircuit,  ///< SCPI AWG + digitizer (`make_scpi_circuit`): tcp:// or usbtmc://
  kNone,         ///< no instrument exists: only sim://KIND
};

struct SetupKind {
  SetupInfo info;
  InstrumentDriver driver;
  /// The datasheet for an address of the kind. For a frame-protocol board the address has lost
  /// its link options (kind, timeout_ms, retries); the electronic circuit's datasheet reads the
  /// driver's whole address. Throws std::invalid_argument on an unknown option or a bad value,
  /// naming the fix.
  Datasheet (*datasheet)(const DeviceAddress& address);
};

/// Every kind, in the order help texts list them.
const std::vector<SetupKind>& setup_kinds();
/// The entry of `kind`, or nullptr.
const SetupKind* find_setup_kind(const std::string& kind);
/// "mechanical-oscillators, power-law, ...", for messages.
std::string setup_kind_names();
/// The help texts of every kind.
std::vector<SetupInfo> known_setups();

}  // namespace pnn::drivers
