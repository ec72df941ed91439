#pragma once
/// The hardware interface: one physical setup (real, or simulated behind the same driver code).
///
/// Lifecycle (ros2_control):  UNCONFIGURED --configure--> INACTIVE --activate--> ACTIVE
///                            ACTIVE --deactivate--> INACTIVE --cleanup--> UNCONFIGURED
///                            any --shutdown--> FINALIZED (terminal)
/// Outputs are driven only in ACTIVE. Health (OK | WARNING | FAULT) is separate from lifecycle.
///
/// This class is the `final`-style wrapper of the house style: its public calls are not virtual;
/// they enforce the state machine, shapes, finiteness and hard limits, and only then call the
/// driver's private hooks. So no driver can be asked to send an out-of-limit value.
///
/// Thread rule: every public call takes the device's mutex, so calls on one device are serialized
/// (instruments execute one request at a time); different devices run in parallel.
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "pnn/digital_twin/model.hpp"
#include "pnn/digital_twin/resistive_network.hpp"
#include "pnn/digital_twin/spiking_lif.hpp"
#include "pnn/drivers/device_spec.hpp"
#include "pnn/drivers/result.hpp"

namespace pnn::drivers {

enum class Lifecycle { kUnconfigured, kInactive, kActive, kFinalized };
enum class Health { kOk, kWarning, kFault };
const char* to_string(Lifecycle s);
const char* to_string(Health h);

/// What a supervisor shows of a device: a copy taken at the end of the last call that changed
/// it, so reading it never waits for a forward in progress.
struct DeviceStatus {
  Lifecycle state = Lifecycle::kUnconfigured;
  Health health = Health::kOk;
  std::string health_message;               ///< "" when OK
  std::shared_ptr<const DeviceSpec> spec;   ///< as identified by the last configure
};

class PhysicalSystem {
 public:
  virtual ~PhysicalSystem() = default;
  PhysicalSystem(const PhysicalSystem&) = delete;
  PhysicalSystem& operator=(const PhysicalSystem&) = delete;

  Result<void> configure();
  Result<void> activate();
  /// Drives the device to its safe state, then INACTIVE.
  Result<void> deactivate();
  Result<void> cleanup();
  /// Error recovery (ros2_control's on_error): from any state but FINALIZED, drive the outputs
  /// safe as far as the device still answers, clean up (close the link), then configure again
  /// (reopen, re-identify: the serial must be the one first seen). Success: INACTIVE, health OK,
  /// never ACTIVE (outputs stay undriven until an explicit activate, and no stale θ is re-sent).
  /// Failure: UNCONFIGURED with health FAULT; call again later (the daemon backs off).
  Result<void> recover();
  /// Safe state from any state, then FINALIZED. Never fails; called by the destructor of owners.
  void shutdown() noexcept;

  /// State, health and spec as of the end of the last call that changed them. Lock-free with
  /// respect to the device: never blocks behind a forward (the daemon's event loop reads it).
  DeviceStatus status() const;
  Lifecycle state() const { return status().state; }
  Health health() const { return status().health; }
  /// The message of the error that last set health WARNING or FAULT ("" when OK).
  std::string health_message() const { return status().health_message; }
  /// The spec is fixed once configured (identification reads the serial and firmware).
  const DeviceSpec& spec() const { return spec_; }

  /// Y = device(X; θ). X: batch × num_inputs within [input_min, input_max]; θ within the hard
  /// limits. Errors (nothing is sent to the device): kWrongState unless ACTIVE, kShapeMismatch,
  /// kNonFiniteRequest, kOutOfLimits (message names the first offending entry, its value and limit),
  /// kBatchTooLarge, kDeviceFault while health is FAULT (recover() first). Device errors:
  /// kTimeout, kIo, kDeviceFault (health becomes FAULT).
  Result<Matrix> forward(const MatrixRef& x, const VectorRef& theta);

  /// The settle call of an energy-based setup (spec().settle_nodes > 0): the device relaxes to
  /// the equilibrium of batch `x` at θ under `boundary` (free, nudged(β, target: batch ×
  /// num_outputs) or clamped(values: batch × settle_output_nodes)), starting from its last
  /// equilibrium of this batch if `warm_start`, and returns the node voltages (batch ×
  /// settle_nodes). Checks as forward (nothing is sent on a refusal), plus kShapeMismatch naming
  /// the problem for a bad or unknown boundary, kNonFiniteRequest for non-finite boundary values,
  /// kWrongState for a setup without settle. kTimeout when the device does not settle within its
  /// time budget (health FAULT, as every device timeout; no reading is returned).
  Result<Matrix> settle(const MatrixRef& x, const VectorRef& theta,
                        const digital_twin::SettleBoundary& boundary, bool warm_start);
  /// Input spike trains of a batch: per sample its events, sorted by step then channel.
  using EventLists = std::vector<std::vector<digital_twin::InputEvent>>;
  /// The spike-run call of a spiking setup (spec().spike_channels > 0): batch `x` (checked as
  /// forward) is encoded into input events by the setup's twin encoding (SpikingLifModel), run
  /// once on the device at θ, and the device's measured record is returned: `outputs` (batch ×
  /// num_outputs, as forward would return them), `hidden_spikes` (batch × T·H, 0/1, step-major)
  /// and `output_traces` (batch × T·O, the sampled output membranes), T = spec().spike_steps,
  /// H = spec().spike_hidden. Errors as forward, plus kWrongState naming the setup for a setup
  /// without spike records; kIo when the device's record is malformed (unsorted or out-of-range
  /// spikes, wrong sizes); kTimeout when the device stops returning events mid-batch (health
  /// FAULT; nothing of the run is returned). The forward tap sees a successful run's outputs.
  Result<digital_twin::SpikeRecord> spike_run(const MatrixRef& x, const VectorRef& theta);
  /// The same with the input events given. Each sample's events are checked before anything is
  /// sent (kOutOfLimits naming the sample, the first bad event and the fix): sorted by (step,
  /// channel) without repeats, steps < spike_steps, channels < spike_channels, at most
  /// max_events_per_step per step and max_events_per_sample per sample; kShapeMismatch for an
  /// empty batch. The tap is not called (there is no x).
  Result<digital_twin::SpikeRecord> spike_run(const EventLists& events, const VectorRef& theta);
  /// θ as the device last applied it: the request, or with spec().round_params each entry of a
  /// block with a `step` rounded to the nearest multiple. Empty before the first forward.
  Vector applied_params() const;
  /// Whether spike_run can succeed on this driver: a spiking setup behind a driver that
  /// implements it (the framed driver; not, e.g., a device of another daemon).
  virtual bool has_spike_run() const { return false; }

  /// The setup's nominal digital twin (uncalibrated): same sizes as the spec.
  virtual digital_twin::ModelPtr nominal_twin() const = 0;

  /// Sees every successful forward: the request as sent and the readings (pnnd's drift monitor).
  /// Called on the thread that called forward, after the device's lock is released, so the
  /// device stays available; it must be quick (copy what it needs and return) and must not
  /// throw. Set it before the device is shared between threads.
  using ForwardTap = std::function<void(const MatrixRef& x, const VectorRef& theta, const Matrix& y)>;
  void set_forward_tap(ForwardTap tap) { tap_ = std::move(tap); }

 protected:
  explicit PhysicalSystem(DeviceSpec spec);
  /// Drivers may refine the spec while configuring (identify: serial, firmware).
  DeviceSpec& mutable_spec() { return spec_; }
  /// For drivers, from inside a hook (the device mutex is held): e.g. WARNING after a fault the
  /// driver recovered from by itself.
  void set_health(Health h, std::string message = "") {
    health_ = h;
    health_message_ = std::move(message);
  }

 private:
  virtual Result<void> do_configure() { return {}; }
  virtual Result<void> do_activate() { return {}; }
  /// Drive outputs to the safe state (e.g. zero drive). Must be idempotent.
  virtual Result<void> do_safe_state() { return {}; }
  virtual Result<void> do_cleanup() { return {}; }
  /// Preconditions checked by the caller: ACTIVE, shapes, finite, within limits.
  virtual Result<Matrix> do_forward(const MatrixRef& x, const VectorRef& theta) = 0;
  /// Preconditions as do_forward, and the boundary checked. Only setups with settle_nodes > 0.
  virtual Result<Matrix> do_settle(const MatrixRef& x, const VectorRef& theta,
                                   const digital_twin::SettleBoundary& boundary, bool warm_start);
  /// Preconditions: ACTIVE, θ checked and as applied, events checked against the spec's event
  /// limits. Only setups with spike_channels > 0. Returns the record with `outputs` filled.
  virtual Result<digital_twin::SpikeRecord> do_spike_run(const EventLists& events,
                                                         const VectorRef& theta);

  Result<void> transition(Lifecycle from, Lifecycle to, const char* verb,
                          Result<void> (PhysicalSystem::*hook)());
  // The same with mutex_ held by the caller.
  Result<void> transition_locked(Lifecycle from, Lifecycle to, const char* verb,
                                 Result<void> (PhysicalSystem::*hook)());
  // configure's transition, mutex_ held: a success clears the health.
  Result<void> configure_locked();
  // recover's and shutdown's first steps, mutex_ held: the safe state if ACTIVE, then cleanup
  // unless UNCONFIGURED, each best effort. Leaves state_ to the caller.
  void release_locked();
  Result<void> check_request(const MatrixRef& x, const VectorRef& theta,
                             const char* verb = "forward") const;
  // check_request's parts: ACTIVE and not FAULT; rows within max_batch; θ size, finite, limits.
  Result<void> check_ready(const char* verb) const;
  Result<void> check_batch_size(Index rows, const char* verb) const;
  Result<void> check_theta(const VectorRef& theta, const char* verb) const;
  // mutex_ held: kWrongState unless the setup has spike records.
  Result<void> check_spiking() const;
  // spike_run with mutex_ held, the setup, state, batch size and θ checked (by the caller:
  // check_request for x, the same checks for given events); checks the events, runs them, and
  // the θ applied goes to `applied`.
  Result<digital_twin::SpikeRecord> spike_run_locked(const EventLists& events,
                                                     const VectorRef& theta, Vector& applied);
  // A driver error, mutex_ held: timeouts, link and device faults set health FAULT.
  void note_device_error(const Error& e);
  // mutex_ held, request checked: θ as the device will apply it (rounded to the blocks' steps
  // when the spec says so, else refused with kOutOfLimits when off a step), recorded.
  Result<Vector> applied_request(const VectorRef& theta, const char* verb);
  // A driver call's error handling, mutex_ held: a device error sets health FAULT; NaN/Inf
  // readings are refused with health WARNING.
  Result<Matrix> checked_reading(Result<Matrix> y, const char* verb);
  // mutex_ held: health WARNING and the kNonFiniteReading error of `verb`.
  Error nonfinite_reading(const char* verb);
  // mutex_ held: copies state and health (and the spec, with_spec) into the status snapshot.
  void publish_status_locked(bool with_spec);
  // forward's driver call and reading checks, mutex_ held, request checked.
  Result<Matrix> forward_locked(const MatrixRef& x, const VectorRef& theta);

  mutable std::mutex mutex_;
  ForwardTap tap_;
  DeviceSpec spec_;
  Vector applied_;
  Lifecycle state_ = Lifecycle::kUnconfigured;
  Health health_ = Health::kOk;
  std::string health_message_;
  mutable std::mutex status_mutex_;  // guards status_ only; never held while calling a driver
  DeviceStatus status_;
};

using PhysicalSystemPtr = std::unique_ptr<PhysicalSystem>;

}  // namespace pnn::drivers
