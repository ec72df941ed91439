// The drift monitor's part of the daemon (drift.hpp): every successful forward of a device
// passes its tap; a sample is taken at most every drift.every_ms, its twin prediction runs on the
// compute pool (never on the device's worker or the event loop), and the rolling NMSE is shown
// in DeviceInfo.drift, in state events when it moves, and as health WARNING past warn_nmse.
#include <cmath>

#include "server_impl.hpp"

namespace pnn::daemon {

namespace {
// The compute queue's identity for drift work: fair against every client's twin requests.
constexpr const char* kDriftIdentity = "\\x01pnnd-drift";
}  // namespace

void Server::Impl::attach_drift_monitor(DeviceSlot& s) {
  s.drift = std::make_shared<detail::DriftMonitor>(s.config.drift);
  // Attached even without a twin (a described board): a learned twin may be set later.
  if (!s.config.drift.enabled) return;
  DeviceSlot* slot = &s;  // slots live until the daemon stops (never removed at run time)
  std::weak_ptr<detail::DriftMonitor> monitor = s.drift;
  s.device->set_forward_tap([this, slot, monitor](const MatrixRef& x, const VectorRef& theta,
                                                  const Matrix& y) {
    auto m = monitor.lock();
    if (!m) return;
    auto sample = m->take(x, theta, y, detail::DriftMonitor::Clock::now());
    if (!sample) return;
    auto shared = std::make_shared<detail::DriftSample>(std::move(*sample));
    asio::post(io, [this, slot, shared] { evaluate_drift(*slot, shared); });
  });
}

void Server::Impl::evaluate_drift(DeviceSlot& s, std::shared_ptr<detail::DriftSample> sample) {
  digital_twin::ModelPtr model = s.twin;
  if (!model) {  // a described board without a learned twin: nothing to compare with
    s.drift->abandon();
    return;
  }
  const auto bytes = static_cast<std::uint64_t>(sample->x.size() + sample->y.size()) * sizeof(double);
  auto task = [this, &s, model, sample, bytes] {
    Matrix y_twin;
    try {
      y_twin = model->forward(sample->x, sample->theta);
    } catch (const std::exception&) {
      y_twin.resize(0, 0);  // counted as a dropped sample by add()
    }
    asio::post(io, [this, &s, sample, bytes, y_twin = std::move(y_twin)] {
      compute.done(kDriftIdentity, bytes);
      const bool bound_changed = s.drift->add(*sample, y_twin);
      const detail::DriftSnapshot d = s.drift->snapshot();
      if (bound_changed) {
        log(d.over_bound ? "warning" : "info",
            "device " + s.config.name + ": " +
                (d.over_bound ? detail::drift_warning(d, s.config.name)
                              : "twin drift back within devices." + s.config.name +
                                    ".drift.warn_nmse (rolling NMSE " + std::to_string(d.nmse) + ")"));
      }
      // A state event when the bound state changes or the NMSE moved by over 10 % since the
      // last one: telemetry follows the drift without an event per sample.
      const bool moved = s.drift_published < 0 ||
                         std::abs(d.nmse - s.drift_published) > 0.1 * std::max(s.drift_published, 1e-6);
      if (bound_changed || (d.samples > 0 && moved)) {
        s.drift_published = d.nmse;
        publish_device(s);
      }
    });
  };
  if (compute.submit(kDriftIdentity, bytes, std::move(task))) s.drift->abandon();
}

void Server::Impl::twin_changed(DeviceSlot& s) {
  if (!s.drift) return;
  const bool was_over = s.drift->snapshot().over_bound;
  s.drift->twin_changed();
  s.drift_published = -1.0;
  if (was_over) publish_device(s);
}

}  // namespace pnn::daemon
