#include "pnn/drivers/physical_system.hpp"

#include <cmath>
#include <sstream>

#include "pnn/drivers/format.hpp"
#include "pnn/firmware_iface/messages.hpp"

namespace pnn::drivers {

namespace {

// A driver hook that throws leaves the device in an unknown state: that is a device fault (the
// caller sets health FAULT), never an exception out of PhysicalSystem.
template <class R, class F>
R guarded(const std::string& serial, const char* what, F&& hook) {
  const auto failed = [&](const std::string& why) {
    return make_error(Errc::kDeviceFault, serial + ": the driver failed during " + what + " (" +
                                              why + "); the device state is unknown: recover "
                                              "it (or cleanup and configure) before using it");
  };
  try {
    return hook();
  } catch (const std::exception& e) {
    return failed(e.what());
  } catch (...) {
    return failed("unknown exception");
  }
}

class DriverCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "pnn.drivers"; }
  std::string message(int code) const override {
    switch (static_cast<Errc>(code)) {
      case Errc::kOk: return "ok";
      case Errc::kWrongState: return "wrong lifecycle state";
      case Errc::kShapeMismatch: return "shape mismatch";
      case Errc::kNonFiniteRequest: return "NaN or Inf in the request";
      case Errc::kNonFiniteReading: return "NaN or Inf readings";
      case Errc::kOutOfLimits: return "outside hard limits";
      case Errc::kTimeout: return "device timeout";
      case Errc::kIo: return "transport failure";
      case Errc::kDeviceFault: return "device fault";
      case Errc::kBadAddress: return "bad device address";
      case Errc::kBatchTooLarge: return "batch too large";
    }
    return "unknown driver error";
  }
};
}  // namespace

const std::error_category& driver_category() noexcept {
  static const DriverCategory category;
  return category;
}

const char* to_string(Lifecycle s) {
  switch (s) {
    case Lifecycle::kUnconfigured: return "UNCONFIGURED";
    case Lifecycle::kInactive: return "INACTIVE";
    case Lifecycle::kActive: return "ACTIVE";
    case Lifecycle::kFinalized: return "FINALIZED";
  }
  return "?";
}

const char* to_string(Health h) {
  switch (h) {
    case Health::kOk: return "OK";
    case Health::kWarning: return "WARNING";
    case Health::kFault: return "FAULT";
  }
  return "?";
}

PhysicalSystem::PhysicalSystem(DeviceSpec spec) : spec_(std::move(spec)) {
  status_.spec = std::make_shared<const DeviceSpec>(spec_);
}

// Every public call that may change the state, the health or (configuring) the spec publishes
// the snapshot before it releases the device mutex.
DeviceStatus PhysicalSystem::status() const {
  std::lock_guard lock(status_mutex_);
  return status_;
}

void PhysicalSystem::publish_status_locked(bool with_spec) {
  std::shared_ptr<const DeviceSpec> spec;
  if (with_spec) spec = std::make_shared<const DeviceSpec>(spec_);
  std::lock_guard lock(status_mutex_);
  status_.state = state_;
  status_.health = health_;
  if (status_.health_message != health_message_) status_.health_message = health_message_;
  if (spec) status_.spec = std::move(spec);
}

Result<void> PhysicalSystem::transition(Lifecycle from, Lifecycle to, const char* verb,
                                        Result<void> (PhysicalSystem::*hook)()) {
  std::lock_guard lock(mutex_);
  auto r = transition_locked(from, to, verb, hook);
  publish_status_locked(false);
  return r;
}

Result<void> PhysicalSystem::transition_locked(Lifecycle from, Lifecycle to, const char* verb,
                                               Result<void> (PhysicalSystem::*hook)()) {
  if (state_ != from) {
    return make_error(Errc::kWrongState, std::string("cannot ") + verb + " " + spec_.serial +
                                             ": device is " + to_string(state_) + ", " + verb +
                                             " needs " + to_string(from));
  }
  Result<void> r = guarded<Result<void>>(spec_.serial, verb, [&] { return (this->*hook)(); });
  if (!r) {
    health_ = Health::kFault;
    health_message_ = r.error().message;
    return r;
  }
  state_ = to;
  return {};
}

Result<void> PhysicalSystem::configure() {
  std::lock_guard lock(mutex_);
  auto r = configure_locked();
  publish_status_locked(true);
  return r;
}

Result<void> PhysicalSystem::configure_locked() {
  auto r = transition_locked(Lifecycle::kUnconfigured, Lifecycle::kInactive, "configure",
                             &PhysicalSystem::do_configure);
  if (r) {
    // Freshly identified: earlier faults are history.
    health_ = Health::kOk;
    health_message_.clear();
  }
  return r;
}

void PhysicalSystem::release_locked() {
  // Best effort, each step on its own (the device may be gone): a safe state that fails or
  // throws still lets cleanup close the link.
  if (state_ == Lifecycle::kActive) {
    (void)guarded<Result<void>>(spec_.serial, "safe state", [&] { return do_safe_state(); });
  }
  if (state_ != Lifecycle::kUnconfigured) {
    (void)guarded<Result<void>>(spec_.serial, "clean up", [&] { return do_cleanup(); });
  }
}

Result<void> PhysicalSystem::recover() {
  // One critical section: no other call (a job's activate, a client's configure) can slip in
  // between the cleanup and the configure.
  std::lock_guard lock(mutex_);
  if (state_ == Lifecycle::kFinalized) {
    return make_error(Errc::kWrongState, "cannot recover " + spec_.serial + ": it is FINALIZED");
  }
  release_locked();  // configure below decides whether the device is back
  state_ = Lifecycle::kUnconfigured;
  auto r = configure_locked();
  publish_status_locked(true);
  return r;
}

Result<void> PhysicalSystem::activate() {
  // Outputs are driven only after an explicit activate; a FAULTed device must be reconfigured.
  {
    std::lock_guard lock(mutex_);
    if (health_ == Health::kFault) {
      return make_error(Errc::kDeviceFault, "cannot activate " + spec_.serial +
                                                ": health is FAULT; run cleanup and configure "
                                                "to re-identify the device first");
    }
  }
  return transition(Lifecycle::kInactive, Lifecycle::kActive, "activate",
                    &PhysicalSystem::do_activate);
}

Result<void> PhysicalSystem::deactivate() {
  return transition(Lifecycle::kActive, Lifecycle::kInactive, "deactivate",
                    &PhysicalSystem::do_safe_state);
}

Result<void> PhysicalSystem::cleanup() {
  auto r = transition(Lifecycle::kInactive, Lifecycle::kUnconfigured, "clean up",
                      &PhysicalSystem::do_cleanup);
  if (r) {
    std::lock_guard lock(mutex_);
    health_ = Health::kOk;
    health_message_.clear();
    publish_status_locked(false);
  }
  return r;
}

void PhysicalSystem::shutdown() noexcept {
  std::lock_guard lock(mutex_);
  if (state_ == Lifecycle::kFinalized) return;
  try {
    release_locked();
  } catch (...) {
    // shutdown never throws: the device is finalized whatever its driver reported.
  }
  state_ = Lifecycle::kFinalized;
  publish_status_locked(false);
}

Result<void> PhysicalSystem::check_ready(const char* verb) const {
  const std::string forward_on = std::string(verb) + " on " + spec_.serial;
  if (state_ != Lifecycle::kActive) {
    return make_error(Errc::kWrongState, forward_on + " refused: device is " +
                                             to_string(state_) + "; activate it first");
  }
  if (health_ == Health::kFault) {
    return make_error(Errc::kDeviceFault, forward_on + " refused: health is FAULT (" +
                                              health_message_ +
                                              "); recover the device (cleanup + configure) first");
  }
  return {};
}

Result<void> PhysicalSystem::check_batch_size(Index rows, const char* verb) const {
  if (spec_.max_batch > 0 && rows > spec_.max_batch) {
    return make_error(Errc::kBatchTooLarge, std::string(verb) + " on " + spec_.serial +
                                                ": batch of " + std::to_string(rows) +
                                                " exceeds the " + std::to_string(spec_.max_batch) +
                                                " samples the device accepts; split the batch");
  }
  return {};
}

Result<void> PhysicalSystem::check_theta(const VectorRef& theta, const char* verb) const {
  const std::string who = spec_.serial;
  const std::string forward_on = std::string(verb) + " on ";
  if (theta.size() != spec_.num_params()) {
    return make_error(Errc::kShapeMismatch,
                      forward_on + who + ": parameter vector has " + std::to_string(theta.size()) +
                          " entries, expected " + std::to_string(spec_.num_params()));
  }
  Index at = 0;
  for (const auto& block : spec_.params) {
    for (Index i = 0; i < block.count; ++i, ++at) {
      const double v = theta[at];
      if (!std::isfinite(v)) {
        return make_error(Errc::kNonFiniteRequest,
                          forward_on + who + ": parameter " + block.name + "[" + std::to_string(i) +
                              "] is " + std::to_string(v) + "; nothing was sent to the device");
      }
      if (v < block.hard_min || v > block.hard_max) {
        std::ostringstream msg;
        msg << forward_on << who << ": parameter " << block.name << "[" << i
            << "] = " << format_shortest(v) << " " << block.unit << " is outside the hard limit ["
            << format_shortest(block.hard_min) << ", " << format_shortest(block.hard_max) << "] "
            << block.unit
            << "; nothing was sent to the device (clip θ to the limits in the optimizer)";
        return make_error(Errc::kOutOfLimits, msg.str());
      }
    }
  }
  return {};
}

Result<void> PhysicalSystem::check_request(const MatrixRef& x, const VectorRef& theta,
                                           const char* verb) const {
  if (auto ok = check_ready(verb); !ok) return ok;
  const std::string who = spec_.serial;
  const std::string forward_on = std::string(verb) + " on ";
  if (x.cols() != spec_.num_inputs || x.rows() < 1) {
    return make_error(Errc::kShapeMismatch, forward_on + who + ": input batch is " +
                                                shape_string(x) + ", expected batch×" +
                                                std::to_string(spec_.num_inputs));
  }
  if (auto ok = check_batch_size(x.rows(), verb); !ok) return ok;
  if (theta.size() != spec_.num_params()) return check_theta(theta, verb);
  if (!x.allFinite()) {  // one vectorised pass on the hot path; the loop only names the entry
    for (Index j = 0; j < x.cols(); ++j) {
      for (Index i = 0; i < x.rows(); ++i) {
        if (std::isfinite(x(i, j))) continue;
        return make_error(Errc::kNonFiniteRequest,
                          forward_on + who + ": input x[" + std::to_string(i) + ", " +
                              std::to_string(j) + "] is " + std::to_string(x(i, j)) +
                              "; nothing was sent to the device");
      }
    }
  }
  if (auto ok = check_theta(theta, verb); !ok) return ok;
  const double lo = x.minCoeff(), hi = x.maxCoeff();
  if (lo < spec_.input_min || hi > spec_.input_max) {
    std::ostringstream msg;
    msg << forward_on << who << ": input range [" << format_shortest(lo) << ", "
        << format_shortest(hi) << "] " << spec_.input_unit << " exceeds the actuator limit ["
        << format_shortest(spec_.input_min) << ", " << format_shortest(spec_.input_max) << "] "
        << spec_.input_unit << "; nothing was sent to the device";
    return make_error(Errc::kOutOfLimits, msg.str());
  }
  return {};
}

Result<Matrix> PhysicalSystem::forward(const MatrixRef& x, const VectorRef& theta) {
  Vector applied;
  Result<Matrix> y = [&]() -> Result<Matrix> {
    std::lock_guard lock(mutex_);
    if (auto ok = check_request(x, theta); !ok) return ok.error();
    Result<Vector> a = applied_request(theta, "forward");
    if (!a) return a.error();
    applied = std::move(a.value());
    Result<Matrix> out = forward_locked(x, applied);
    publish_status_locked(false);
    return out;
  }();
  if (y && tap_) tap_(x, applied, y.value());
  return y;
}

Result<Vector> PhysicalSystem::applied_request(const VectorRef& theta, const char* verb) {
  Vector applied = theta;
  Index at = 0;
  for (const auto& block : spec_.params) {
    for (Index i = 0; i < block.count; ++i, ++at) {
      if (block.step <= 0.0) continue;
      const double level = std::round(theta[at] / block.step) * block.step;
      if (level == theta[at]) continue;
      if (!spec_.round_params) {
        std::ostringstream msg;
        msg << verb << " on " << spec_.serial << ": parameter " << block.name << "[" << i
            << "] = " << format_shortest(theta[at]) << " " << block.unit
            << " is not a whole multiple of the device's step " << format_shortest(block.step)
            << " " << block.unit
            << "; nothing was sent to the device (round θ to the step, or add weights=round to "
               "the device address to have the driver round and record the applied value)";
        return make_error(Errc::kOutOfLimits, msg.str());
      }
      applied[at] = level;
    }
  }
  applied_ = applied;
  return applied;
}

Vector PhysicalSystem::applied_params() const {
  std::lock_guard lock(mutex_);
  return applied_;
}

Result<Matrix> PhysicalSystem::forward_locked(const MatrixRef& x, const VectorRef& theta) {
  return checked_reading(
      guarded<Result<Matrix>>(spec_.serial, "forward", [&] { return do_forward(x, theta); }),
      "forward");
}

void PhysicalSystem::note_device_error(const Error& e) {
  if (e.code == Errc::kTimeout || e.code == Errc::kIo || e.code == Errc::kDeviceFault) {
    health_ = Health::kFault;
    health_message_ = e.message;
  }
}

Result<Matrix> PhysicalSystem::checked_reading(Result<Matrix> y, const char* verb) {
  if (!y) {
    note_device_error(y.error());
    return y;
  }
  if (!y.value().allFinite()) return nonfinite_reading(verb);
  return y;
}

Error PhysicalSystem::nonfinite_reading(const char* verb) {
  health_ = Health::kWarning;
  health_message_ = "the device returned NaN or Inf readings";
  return make_error(Errc::kNonFiniteReading, std::string(verb) + " on " + spec_.serial +
                                                 ": the device returned NaN or Inf readings");
}

Result<Matrix> PhysicalSystem::settle(const MatrixRef& x, const VectorRef& theta,
                                      const digital_twin::SettleBoundary& boundary,
                                      bool warm_start) {
  std::lock_guard lock(mutex_);
  if (spec_.settle_nodes <= 0) {
    return make_error(Errc::kWrongState, "settle on " + spec_.serial + ": a " + spec_.kind +
                                             " setup has no settle call (only energy-based "
                                             "setups such as resistive-network settle)");
  }
  if (auto ok = check_request(x, theta, "settle"); !ok) return ok.error();
  const std::string problem = digital_twin::boundary_problem(
      spec_.num_outputs, spec_.settle_output_nodes, boundary, x.rows());
  if (!problem.empty()) {
    return make_error(boundary.values.allFinite() ? Errc::kShapeMismatch : Errc::kNonFiniteRequest,
                      "settle on " + spec_.serial + ": " + problem + "; nothing was sent");
  }
  Result<Matrix> out = checked_reading(
      guarded<Result<Matrix>>(spec_.serial, "settle",
                              [&] { return do_settle(x, theta, boundary, warm_start); }),
      "settle");
  if (out && (out.value().rows() != x.rows() || out.value().cols() != spec_.settle_nodes)) {
    out = make_error(Errc::kIo, "settle on " + spec_.serial + ": the device returned " +
                                    shape_string(out.value()) + " node voltages, expected " +
                                    std::to_string(x.rows()) + "x" +
                                    std::to_string(spec_.settle_nodes));
  }
  publish_status_locked(false);
  return out;
}

Result<Matrix> PhysicalSystem::do_settle(const MatrixRef& /*x*/, const VectorRef& /*theta*/,
                                         const digital_twin::SettleBoundary& /*boundary*/,
                                         bool /*warm_start*/) {
  return make_error(Errc::kWrongState,
                    "settle on " + spec_.serial + ": this driver has no settle call");
}

Result<void> PhysicalSystem::check_spiking() const {
  if (spec_.spike_channels <= 0) {
    return make_error(Errc::kWrongState, "spike_run on " + spec_.serial + ": a " + spec_.kind +
                                             " setup records no spikes (only spiking setups such "
                                             "as spiking-chip have spike_run); use forward");
  }
  return {};
}

Result<digital_twin::SpikeRecord> PhysicalSystem::spike_run(const MatrixRef& x,
                                                             const VectorRef& theta) {
  Vector applied;
  Result<digital_twin::SpikeRecord> out = [&]() -> Result<digital_twin::SpikeRecord> {
    std::lock_guard lock(mutex_);
    if (auto ok = check_spiking(); !ok) return ok.error();
    if (auto ok = check_request(x, theta, "spike_run"); !ok) return ok.error();
    const auto* lif = dynamic_cast<const digital_twin::SpikingLifModel*>(nominal_twin().get());
    if (!lif) {
      return make_error(Errc::kWrongState, "spike_run on " + spec_.serial +
                                               ": the setup's twin is not a spiking LIF model, so "
                                               "there is no encoding of x into events; pass the "
                                               "events to spike_run yourself");
    }
    EventLists events(static_cast<std::size_t>(x.rows()));
    for (Index r = 0; r < x.rows(); ++r) {
      events[static_cast<std::size_t>(r)] =
          digital_twin::encode_events(lif->config(), x.row(r).transpose());
    }
    return spike_run_locked(events, theta, applied);
  }();
  if (out && tap_) tap_(x, applied, out.value().outputs);
  return out;
}

Result<digital_twin::SpikeRecord> PhysicalSystem::spike_run(const EventLists& events,
                                                             const VectorRef& theta) {
  std::lock_guard lock(mutex_);
  if (auto ok = check_spiking(); !ok) return ok.error();
  if (auto ok = check_ready("spike_run"); !ok) return ok.error();
  if (events.empty()) {
    return make_error(Errc::kShapeMismatch,
                      "spike_run on " + spec_.serial +
                          ": the batch has no samples; pass at least one event list (an empty "
                          "list is a silent sample)");
  }
  if (auto ok = check_batch_size(static_cast<Index>(events.size()), "spike_run"); !ok) {
    return ok.error();
  }
  if (auto ok = check_theta(theta, "spike_run"); !ok) return ok.error();
  Vector applied;
  return spike_run_locked(events, theta, applied);
}

Result<digital_twin::SpikeRecord> PhysicalSystem::spike_run_locked(const EventLists& events,
                                                                   const VectorRef& theta,
                                                                   Vector& applied) {
  const std::string who = "spike_run on " + spec_.serial;
  const firmware_iface::EventLimits limits{
      static_cast<std::uint32_t>(spec_.spike_steps),
      static_cast<std::uint32_t>(spec_.spike_channels),
      static_cast<std::uint32_t>(spec_.max_events_per_step),
      static_cast<std::uint32_t>(spec_.max_events_per_sample), "channel"};
  std::vector<firmware_iface::SpikeEvent> wire;
  for (std::size_t b = 0; b < events.size(); ++b) {
    wire.clear();
    for (const auto& e : events[b]) wire.push_back({e.step, e.channel});
    const std::string problem = firmware_iface::event_list_problem(wire, limits);
    if (!problem.empty()) {
      return make_error(Errc::kOutOfLimits, who + ": sample " + std::to_string(b) + ": " +
                                                problem + "; nothing was sent to the device");
    }
  }
  Result<Vector> a = applied_request(theta, "spike_run");
  if (!a) return a.error();
  applied = std::move(a.value());
  Result<digital_twin::SpikeRecord> out = guarded<Result<digital_twin::SpikeRecord>>(
      spec_.serial, "spike_run", [&] { return do_spike_run(events, applied); });
  if (!out) {
    note_device_error(out.error());
  } else {
    const digital_twin::SpikeRecord& r = out.value();
    const Index rows = static_cast<Index>(events.size());
    const bool shaped = r.outputs.rows() == rows && r.outputs.cols() == spec_.num_outputs &&
                        r.hidden_spikes.rows() == rows &&
                        r.hidden_spikes.cols() == spec_.spike_steps * spec_.spike_hidden &&
                        r.output_traces.rows() == rows &&
                        r.output_traces.cols() == spec_.spike_steps * spec_.num_outputs;
    if (!shaped) {
      out = make_error(Errc::kIo, who + ": the device returned a record of the wrong size "
                                        "(outputs " + shape_string(r.outputs) + ", spikes " +
                                        shape_string(r.hidden_spikes) + ", traces " +
                                        shape_string(r.output_traces) + ")");
      note_device_error(out.error());
    } else if (!r.outputs.allFinite() || !r.output_traces.allFinite()) {
      out = nonfinite_reading("spike_run");
    }
  }
  publish_status_locked(false);
  return out;
}

Result<digital_twin::SpikeRecord> PhysicalSystem::do_spike_run(const EventLists& /*events*/,
                                                               const VectorRef& /*theta*/) {
  return make_error(Errc::kWrongState,
                    "spike_run on " + spec_.serial + ": this driver has no spike_run call");
}

}  // namespace pnn::drivers
