#pragma once
/// The firmware of a simulated lab-built board: serves protocol v1 frames (docs/protocol.md) on
/// the device side of a link and runs the setup's reality simulator. Checks every command the
/// way the board would (sizes, finiteness, its own hard limits: an out-of-limit θ is refused and
/// counted, never applied), keeps the board's state machine (idle → loaded → outputs ready), and
/// injects the faults of its FaultPlan. Private to drivers_sim.
#include <mutex>

#include "faults.hpp"
#include "pnn/drivers/simulated.hpp"
#include "pnn/firmware_iface/frame.hpp"
#include "pnn/firmware_iface/messages.hpp"
#include "sim_setup.hpp"

namespace pnn::drivers::sim {

class FirmwareEmulator final : public SimulatedFirmware {
 public:
  /// `spec` is what the board reports (identify, capabilities, limits); the reality starts
  /// powered on.
  FirmwareEmulator(DeviceSpec spec, RealityFactory make_reality, FaultPlan faults);

  void receive(std::span<const std::uint8_t> bytes, firmware_iface::Clock::time_point now,
               std::deque<firmware_iface::DeviceOutput>& out) override;
  bool connected(firmware_iface::Clock::time_point now) override;
  void on_open(firmware_iface::Clock::time_point now) override;
  void on_clear() override;
  std::string name() const override { return spec_.serial; }

  FirmwareStats stats() const override;
  Vector applied_theta() const override;
  Vector safe_theta() const override { return safe_theta_; }

 private:
  using Message = firmware_iface::Message;
  Message execute(const Message& command, bool inject_nan);
  Message execute_settle(const firmware_iface::SettleRequest& settle, bool inject_nan);
  // Checks the events as the host does (EventLimits from the spec), runs them at the current θ
  // and answers the outputs, the hidden spikes as event lists and the output ADC codes.
  Message execute_spike_run(const firmware_iface::SpikeRunRequest& run, bool inject_nan);
  Message error(firmware_iface::DeviceError code, std::string text);
  void reset_state();  // power-on state of the board; with mutex_ held

  const DeviceSpec spec_;
  const RealityFactory make_reality_;
  const Vector safe_theta_;
  const Vector theta_min_, theta_max_;
  FaultInjector faults_;

  mutable std::mutex mutex_;
  firmware_iface::FrameDecoder decoder_;
  std::unique_ptr<Reality> reality_;
  firmware_iface::DeviceState state_ = firmware_iface::DeviceState::kIdle;
  Vector theta_;
  Matrix batch_, outputs_;
  firmware_iface::StatusReply volatile_;  // counters since the last power-on / reset
  FirmwareStats stats_;
  bool was_unplugged_ = false;
  std::vector<std::uint8_t> scratch_;
};

}  // namespace pnn::drivers::sim
