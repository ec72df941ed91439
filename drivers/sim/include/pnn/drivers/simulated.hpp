#pragma once
/// Simulated instruments (pnn::drivers_sim): a firmware emulator per setup that serves the binary
/// frame protocol (docs/protocol.md) and runs the setup's reality simulator (built from the
/// setup's datasheet, `pnn/drivers/setups/<kind>.hpp`), reached through the in-process
/// loopback transport by the same driver class a real board uses (`make_framed_device`).
///
/// Tests and tools use this header to see the instrument's side of the wire: what it received,
/// refused and executed, and which faults were injected (`faults=` in the address).
#include <cstdint>
#include <memory>
#include <string>

#include "pnn/drivers/physical_system.hpp"
#include "pnn/firmware_iface/transport.hpp"

namespace pnn::drivers {

/// Counters kept by a simulated instrument since it was created (they survive firmware resets,
/// unlike the volatile counters the firmware reports in its status reply).
struct FirmwareStats {
  std::uint64_t frames = 0;            ///< valid frames received
  std::uint64_t frames_rejected = 0;   ///< candidate frames dropped by the decoder (CRC, header)
  std::uint64_t commands = 0;          ///< commands executed (answered or not)
  std::uint64_t errors_sent = 0;       ///< ErrorReply frames sent
  std::uint64_t limit_violations = 0;  ///< commands carrying θ or inputs outside the hard limits
  std::uint64_t runs = 0;              ///< batches executed on the physics
  std::uint64_t samples = 0;           ///< rows executed on the physics
  std::uint64_t settles = 0;           ///< settle commands that reached equilibrium
  std::uint64_t settle_timeouts = 0;   ///< settle commands that did not settle in time
  std::uint64_t spike_runs = 0;        ///< spike_run commands answered with a record
  std::uint64_t resets = 0;            ///< firmware resets (injected, or power cycles on re-plug)
  std::uint64_t safe_state = 0;        ///< Abort commands (outputs driven to the safe state)
  // Injected faults (FaultPlan): what actually happened.
  std::uint64_t dropped = 0;
  std::uint64_t corrupted = 0;
  std::uint64_t delayed = 0;
  std::uint64_t stalls = 0;
  std::uint64_t nans = 0;
  std::uint64_t unplugs = 0;
  std::uint64_t truncated = 0;  ///< spike_run replies cut off mid-batch (faults=truncate:P)
};

/// The device side of a simulated instrument. Thread-safe: stats() and applied_theta() may be
/// called from any thread while a driver talks to it.
class SimulatedFirmware : public firmware_iface::DeviceEndpoint {
 public:
  virtual FirmwareStats stats() const = 0;
  /// θ the instrument currently applies (after Abort, a reset or power-on: its safe values).
  virtual Vector applied_theta() const = 0;
  /// The safe θ: every entry as close to 0 as its hard limits allow (no drive).
  virtual Vector safe_theta() const = 0;
};

struct SimulatedDevice {
  PhysicalSystemPtr driver;                     ///< UNCONFIGURED, connected by loopback
  std::shared_ptr<SimulatedFirmware> firmware;  ///< the instrument it talks to
};

/// `sim://KIND?...` → a simulated instrument and the driver wired to it. Throws
/// std::invalid_argument for an unknown kind or bad options (naming the fix). Options every
/// simulated instrument takes besides its own: `faults=...` (fault injection, docs/config.md),
/// `timeout_ms=T` and `retries=N` (the driver's per-command timeout and retry budget),
/// `link=direct` (skip the wire protocol: the reality called in-process, for benchmarks that
/// measure what the protocol costs).
SimulatedDevice make_simulated_device(const std::string& address);

/// The firmware of a simulated instrument alone (for serving it over TCP or USB emulation).
std::shared_ptr<SimulatedFirmware> make_simulated_firmware(const std::string& address);

}  // namespace pnn::drivers
