// The device supervisor: one slot per configured device with its worker (the device's one
// execution context), its status as telemetry shows it, background recovery of a FAULT, and its
// lease (client or job).

#include "pnn/drivers/address.hpp"
#include "pnn/drivers/registry.hpp"
#include "proto_fill.hpp"
#include "server_impl.hpp"

namespace pnn::daemon {

using detail::to_proto;

namespace {
// Whether a Forward on this device may run on the event loop (forward_rpc.cpp): only a simulated
// instrument in this process without injected faults, the one kind of device whose forward is
// pure computation. Every link (USB, TCP, a remote sim) can stall for a timeout, and faults=
// models delays and stalls, so those always run on the device's worker.
bool inline_capable(const std::string& address) {
  try {
    const auto a = drivers::DeviceAddress::parse(address);
    return a.scheme == "sim" && a.query.count("faults") == 0;
  } catch (const std::invalid_argument&) {
    return false;
  }
}
}  // namespace

std::unique_ptr<DeviceSlot> Server::Impl::make_slot(const DeviceConfig& d) {
  auto s = std::make_unique<DeviceSlot>();
  s->config = d;
  try {
    s->device = drivers::make_physical_system(d.address);
  } catch (const std::invalid_argument& e) {
    throw ConfigError(config.source + ":" + std::to_string(d.line) + ": 'devices." + d.name +
                      "': " + e.what());
  }
  s->shown = s->device->status();
  s->inline_capable = inline_capable(d.address);
  s->nominal_twin = s->device->nominal_twin();
  s->twin = s->nominal_twin;
  s->lease_timer = std::make_unique<asio::steady_timer>(io);
  s->recovery_timer = std::make_unique<asio::steady_timer>(io);
  if (store) {
    try {
      use_calibrated_twin(*s);
    } catch (const std::exception& e) {
      log("warning", "device " + d.name + ": stored calibration not used: " + e.what());
    }
    // The learned twin it was set to use (pnnctl twin use), if any.
    try {
      if (const std::uint64_t id = store->active_twin(s->serial()); id != 0) {
        digital_twin::ModelPtr model;
        if (auto problem = stored_twin(*s, id, model)) throw std::runtime_error(problem->message);
        s->twin = std::move(model);
        s->twin_id = id;
        s->calibration_id = 0;
      }
    } catch (const std::exception& e) {
      log("warning", "device " + d.name + ": its learned twin is not used (" + e.what() +
                         "); it uses its datasheet twin until pnnctl twin use sets another");
    }
  }
  attach_drift_monitor(*s);
  s->worker = std::make_unique<detail::Worker>();
  return s;
}

namespace {
// On the device's worker: configure + activate. Returns the error, or "".
std::string autostart(DeviceSlot& s) {
  if (s.device->state() == Lifecycle::kUnconfigured) {
    if (auto r = s.device->configure(); !r) return r.error().message;
  }
  if (s.device->state() == Lifecycle::kInactive) {
    if (auto r = s.device->activate(); !r) return r.error().message;
  }
  return "";
}
}  // namespace

void Server::Impl::add_device_at_runtime(const DeviceConfig& d) {
  auto slot = make_slot(d);
  DeviceSlot* s = slot.get();
  devices[d.name] = std::move(slot);
  publish_device(*s);
  if (!d.autostart) return;
  on_device(*s, [this, s] {
    const std::string error = autostart(*s);
    return std::function<void()>([this, s, error] {
      if (!error.empty()) log("error", "device " + s->config.name + ": autostart failed: " + error);
    });
  });
}

// Start-up: the autostart devices in parallel on their workers, before serving.
void start_devices(std::map<std::string, std::unique_ptr<DeviceSlot>>& devices,
                   const std::function<void(const std::string&, const std::string&)>& log) {
  std::vector<std::pair<DeviceSlot*, std::future<std::string>>> started;
  for (auto& [name, s] : devices) {
    if (!s->config.autostart) continue;
    auto promise = std::make_shared<std::promise<std::string>>();
    started.emplace_back(s.get(), promise->get_future());
    DeviceSlot* slot = s.get();
    s->worker->post([slot, promise] { promise->set_value(autostart(*slot)); });
  }
  for (auto& [s, done] : started) {
    const std::string error = done.get();
    s->shown = s->device->status();
    if (!error.empty()) log("error", "device " + s->config.name + ": autostart failed: " + error);
  }
}

DeviceSlot* Server::Impl::find_device(const std::string& name) {
  auto it = devices.find(name);
  return it == devices.end() ? nullptr : it->second.get();
}

std::string Server::Impl::device_names() const {
  std::string out;
  for (const auto& [name, s] : devices) out += (out.empty() ? "" : ", ") + name;
  return out.empty() ? "none" : out;
}

std::string Server::Impl::origin(const DeviceSlot& s) const {
  return "device " + s.config.name + " (" + s.serial() + ")";
}

void Server::Impl::unknown_device(const Call& call, const std::string& name) {
  send_error(call, v1::UNKNOWN_DEVICE, "no device '" + name + "' (devices: " + device_names() + ")",
             kDaemon);
}

void Server::Impl::fill_device(const DeviceSlot& s, v1::DeviceInfo* out) const {
  const drivers::DeviceStatus st = s.device->status();
  out->set_name(s.config.name);
  out->set_address(s.config.address);
  detail::fill_spec(*st.spec, out->mutable_spec());
  out->set_state(to_proto(st.state));
  out->set_health(to_proto(st.health));
  if (s.job_id != 0) {
    out->set_lease_holder("job/" + std::to_string(s.job_id));
  } else if (!s.holder.empty()) {
    out->set_lease_holder(s.holder);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(s.expires - Clock::now());
    out->set_lease_expires_in_ms(static_cast<std::uint64_t>(std::max<long long>(0, left.count())));
  }
  out->set_forward_calls(s.forward_calls);
  out->set_inline_forward_calls(s.inline_forward_calls);
  out->set_twin_calibrated(s.calibration_id != 0);
  out->set_no_twin(!s.nominal_twin);
  out->set_calibration_id(s.calibration_id);
  out->set_twin_id(s.twin_id);
  out->set_health_message(s.refusal.empty() ? st.health_message : s.refusal);
  if (s.drift) {
    const detail::DriftSnapshot d = s.drift->snapshot();
    auto* drift = out->mutable_drift();
    drift->set_enabled(d.enabled && s.twin != nullptr);
    drift->set_samples(static_cast<std::uint32_t>(d.samples));
    drift->set_nmse(d.nmse);
    drift->set_baseline_nmse(d.baseline_nmse);
    drift->set_warn_nmse(d.warn_nmse);
    drift->set_over_bound(d.over_bound);
    drift->set_window(s.config.drift.window);
    // A device that is otherwise healthy shows the drift as its WARNING.
    if (d.over_bound && st.health == Health::kOk && s.refusal.empty()) {
      out->set_health(to_proto(Health::kWarning));
      out->set_health_message(detail::drift_warning(d, s.config.name));
    }
  }
}

void Server::Impl::publish_device(const DeviceSlot& s) {
  v1::Event e;
  fill_device(s, e.mutable_device_state());
  telemetry.publish("state/" + s.config.name, e);
}

void Server::Impl::refresh_device(DeviceSlot& s) {
  drivers::DeviceStatus st = s.device->status();
  const bool changed = st.state != s.shown.state || st.health != s.shown.health ||
                       st.spec->serial != s.shown.spec->serial;
  s.shown = std::move(st);
  if (changed) publish_device(s);
  if (s.shown.health == Health::kFault) schedule_recovery(s);
  if (changed) refuse_duplicate_instrument(s);
}

void Server::Impl::post_refresh(DeviceSlot& s) {
  asio::post(io, [this, &s] { refresh_device(s); });
}

// Two names for one instrument would let one name bypass the other's limits and leases: once
// a device has identified itself with the serial of another, it is finalized (never served).
void Server::Impl::refuse_duplicate_instrument(DeviceSlot& s) {
  const std::string serial = s.shown.spec->serial;
  if (s.duplicate || serial.empty()) return;
  for (auto& [name, other] : devices) {
    if (other.get() == &s || other->duplicate || other->serial() != serial) continue;
    if (other->device->status().state == Lifecycle::kUnconfigured) continue;  // not read yet
    s.duplicate = true;
    s.config.reconnect = false;
    s.refusal = "same instrument as device " + name + " (serial " + serial +
                "): two names for one instrument are refused; remove one of them from the config";
    log("error", "device " + s.config.name + ": " + s.refusal + "; it is finalized");
    on_device(s, [&s] {
      s.device->shutdown();
      return std::function<void()>([] {});
    });
    return;
  }
}

// A FAULTed device is recovered in the background: cleanup, reconnect, re-identify by serial
// (PhysicalSystem::recover), with exponential back-off. It lands INACTIVE: outputs stay
// undriven until a client (or job) activates it again. Not while a job owns it: the job ends
// on the fault first and hands the device back.
void Server::Impl::schedule_recovery(DeviceSlot& s) {
  if (s.recovering || !s.config.reconnect || s.job_id != 0 || phase != Phase::kServing) return;
  s.recovering = true;
  const std::uint64_t factor = std::uint64_t{1} << std::min(s.recovery_attempts, 16);
  const auto delay_ms = std::min<std::uint64_t>(config.reconnect_initial_ms * factor,
                                                config.reconnect_max_ms);
  s.recovery_timer->expires_after(std::chrono::milliseconds(delay_ms));
  s.recovery_timer->async_wait([this, &s](const boost::system::error_code& ec) {
    if (ec || phase != Phase::kServing || s.job_id != 0) {
      s.recovering = false;
      return;
    }
    on_device(s, [this, &s]() -> std::function<void()> {
      // Queued behind other calls: if one of them (a job taking the device, a client's
      // cleanup + configure) already brought it back, there is nothing to recover, and
      // recovering would clean up a device that is in use.
      if (s.device->health() != Health::kFault) return [&s] { s.recovering = false; };
      const std::string before = s.device->health_message();
      auto r = s.device->recover();
      const std::string error = r ? "" : r.error().message;
      return [this, &s, error, before] {
        s.recovering = false;
        if (error.empty()) {
          log("info", "device " + s.config.name + " recovered after '" + before +
                          "': reconnected and re-identified as " + s.serial() +
                          "; it is INACTIVE: activate it to drive outputs again");
          s.recovery_attempts = 0;
        } else {
          ++s.recovery_attempts;
          if (s.recovery_attempts == 1 || (s.recovery_attempts & (s.recovery_attempts - 1)) == 0) {
            log("warning", "device " + s.config.name + ": reconnect attempt " +
                               std::to_string(s.recovery_attempts) + " failed: " + error);
          }
        }
        if (s.device->status().health == Health::kFault) schedule_recovery(s);  // back off
      };
    });
  });
}

std::shared_ptr<asio::steady_timer> Server::Impl::arm_deadline(
    DeviceSlot& s, const Call& call, std::shared_ptr<std::atomic<int>> started) {
  auto timer = std::make_shared<asio::steady_timer>(io, call.deadline);
  timer->async_wait([this, started, call, &s](const boost::system::error_code& ec) {
    int expected = kQueued;
    if (ec || !started->compare_exchange_strong(expected, kExpired)) return;
    send_error(call, v1::DEADLINE_EXCEEDED,
               "device " + s.config.name + " was busy with earlier calls past this request's "
               "deadline (" + std::to_string(call.deadline_ms) + " ms); it was not run",
               origin(s));
  });
  return timer;
}

void Server::Impl::call_on_worker(DeviceSlot& s, const std::function<void()>& call) {
  const drivers::DeviceStatus before = s.device->status();
  if (!s.worker->run_here(call)) {
    throw std::runtime_error("device " + s.config.name + ": its worker has stopped (pnnd is "
                             "shutting down)");
  }
  const drivers::DeviceStatus after = s.device->status();
  if (after.state != before.state || after.health != before.health || after.spec != before.spec) {
    post_refresh(s);  // telemetry sees the change; a batch that changed nothing posts nothing
  }
}

}  // namespace pnn::daemon
