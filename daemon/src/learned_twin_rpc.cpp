// The learned-twin RPCs (docs/learned-twins.md "In pnnd"): FitTwin measures the leased device on
// its worker and fits a twin there (training::fit_twin), stores it in the run store with its
// report card, and may make it the device's twin; ListTwins / GetTwin read the store; UseTwin
// swaps the twin that TwinForward, TwinVjp and the drift monitor use, after checking that the
// twin was fitted on this device (serial) for its sizes.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

#include "pnn/training/learned_twin.hpp"
#include "proto_fill.hpp"
#include "server_impl.hpp"

namespace pnn::daemon {

using detail::set_status;

namespace {

// Bounds on one FitTwin request: a request beyond them is refused before the device is touched.
constexpr std::uint32_t kMaxListedTwins = 1000;

void fill_card(const TwinRecord& t, v1::TwinCard* out) {
  out->set_twin_id(t.twin_id);
  out->set_device_serial(t.device_serial);
  out->set_device_kind(t.device_kind);
  out->set_family(t.family);
  out->set_data_hash(t.data_hash);
  out->set_created_ns(t.created_ns);
  out->set_report_json(t.report_json);
}

// The report card (docs/learned-twins.md "Report card"); NaN becomes null.
std::string report_json(const training::TwinFitReport& r, const training::TwinFitOptions& o,
                        bool from_records) {
  nlohmann::json j = {{"family", training::to_string(r.family)},
                      {"data", from_records ? "forward records" : "measured"},
                      {"samples", r.samples},
                      {"validation_samples", r.validation_samples},
                      {"device_calls", r.device_calls},
                      {"twin_nmse", r.twin_nmse},
                      {"twin_nmse_nominal", r.twin_nmse_nominal},
                      {"nmse_per_output", r.nmse_per_output},
                      {"r2_per_output", r.r2_per_output},
                      {"jacobian_cosine", r.jacobian_cosine},
                      {"jacobian_cosine_nominal", r.jacobian_cosine_nominal},
                      {"train_mse", r.train_mse},
                      {"iterations", r.iterations},
                      {"num_phi", r.num_phi},
                      {"measure_s", r.measure_s},
                      {"fit_s", r.fit_s},
                      {"scatter", {{"measured", r.scatter_measured},
                                   {"predicted", r.scatter_predicted}}},
                      {"options", {{"samples", o.samples}, {"repeats", o.repeats},
                                   {"batch", o.batch}, {"seed", o.seed}, {"hidden", o.hidden},
                                   {"l2", o.l2}, {"max_iterations", o.max_iterations},
                                   {"adam_epochs", o.adam_epochs},
                                   {"theta_fraction", o.theta_fraction}}}};
  return j.dump();
}

}  // namespace

std::optional<Failure> Server::Impl::stored_twin(const DeviceSlot& s, std::uint64_t twin_id,
                                                 digital_twin::ModelPtr& model,
                                                 std::string* data_hash) const {
  const std::string id = "twin " + std::to_string(twin_id);
  const auto t = store->get_twin(twin_id);
  if (!t) {
    return Failure{v1::UNKNOWN_TWIN,
                   "no " + id + " in the run store; pnnctl twin list shows the stored twins"};
  }
  if (t->device_serial != s.serial()) {
    return Failure{v1::TWIN_MISMATCH,
                   id + " was fitted on the device with serial " + t->device_serial + ", and " +
                       s.config.name + " is serial " + s.serial() +
                       ": a twin describes one instrument; fit one for this device (pnnctl twin "
                       "fit " + s.config.name + " --family " + t->family + ")"};
  }
  try {
    const auto& spec = s.device->spec();
    model = training::decode_twin(t->model, id, s.nominal_twin,
                                  {spec.num_inputs, static_cast<Index>(spec.num_params()),
                                   spec.num_outputs});
  } catch (const std::exception& e) {
    return Failure{v1::TWIN_MISMATCH, e.what()};
  }
  if (data_hash) *data_hash = t->data_hash;
  return std::nullopt;
}

void Server::Impl::use_calibrated_twin(DeviceSlot& s) {
  s.twin = s.nominal_twin;
  s.calibration_id = 0;
  if (auto cal = store->latest_calibration(s.serial());
      cal && s.nominal_twin && s.nominal_twin->num_physical_params() == cal->phi.size()) {
    s.twin = s.nominal_twin->with_physical_params(cal->phi);
    s.calibration_id = cal->calibration_id;
  }
}

// On the device's worker: a fit to the device's recorded forwards (the newest, up to
// options.samples rows), then the Jacobian agreement measured on the device as for a fit that
// measures. Records whose shapes do not fit the device or that hold NaN/Inf are skipped.
drivers::Result<training::FittedTwin> Server::Impl::fit_from_records(
    DeviceSlot& s, const training::TwinFitOptions& options) {
  const auto& spec = s.device->spec();
  std::vector<digital_twin::Measurement> data;
  std::vector<ForwardRecord> records;
  try {
    records = store->device_forwards(spec.serial, static_cast<std::uint64_t>(options.samples));
  } catch (const StoreError& e) {
    // A damaged segment (the message names the record, the file and the fix): not a failure to
    // store the twin, which is what FitTwin's StoreError handler reports.
    throw std::runtime_error("reading the device's forward records: " + std::string(e.what()));
  }
  for (auto& r : records) {
    if (r.x.cols() != spec.num_inputs || r.y.cols() != spec.num_outputs ||
        r.theta.size() != static_cast<Index>(spec.num_params()) || !r.x.allFinite() ||
        !r.y.allFinite() || !r.theta.allFinite()) {
      continue;
    }
    data.push_back({std::move(r.x), std::move(r.theta), std::move(r.y)});
  }
  std::reverse(data.begin(), data.end());  // oldest first: the newest are held out
  if (data.size() < 2) {
    throw std::invalid_argument(
        "the run store holds " + std::to_string(data.size()) + " usable forward record(s) of " +
        s.config.name + " (recorded when store.forward_records is async or sync, docs/daemon.md): fit from "
        "measurements instead (without from_records / --from-records)");
  }
  training::FittedTwin fitted = training::fit_twin_for(spec, s.nominal_twin, data, options);
  if (auto r = training::measure_jacobian_agreement(*s.device, fitted, options); !r) return r.error();
  return fitted;
}

void Server::Impl::fit_twin(const Call& call, const v1::Request& request) {
  const auto& r = request.fit_twin();
  DeviceSlot* s = writable_device(call, r.device(), request.lease_token());
  if (!s) return;
  training::TwinFamily family{};
  try {
    family = training::parse_twin_family(r.family().empty() ? "grey-box" : r.family());
  } catch (const std::invalid_argument& e) {
    return send_error(call, v1::INVALID_ARGUMENT, e.what(), origin(*s));
  }
  const auto max_batch = static_cast<Index>(s->device->spec().max_batch);
  training::TwinFitOptions options =
      training::default_fit_options(family, r.samples() ? r.samples() : 4096, max_batch);
  if (options.family == training::TwinFamily::kNeuralOde) {
    return send_error(call, v1::INVALID_ARGUMENT,
                      "a neural-ode twin is fitted from measured trajectories (one device run "
                      "per sequence length), which FitTwin cannot do yet: fit grey-box, residual "
                      "or mlp, or see docs/learned-twins.md \"Neural ODE\"",
                      origin(*s));
  }
  if (r.samples() > training::kMaxFitSamples || r.repeats() > training::kMaxFitRepeats) {
    return send_error(call, v1::INVALID_ARGUMENT,
                      "samples must be ≤ " + std::to_string(training::kMaxFitSamples) + " and repeats ≤ " +
                          std::to_string(training::kMaxFitRepeats) + " (got " + std::to_string(r.samples()) +
                          " and " + std::to_string(r.repeats()) + "); ask for fewer",
                      origin(*s));
  }
  if (!store) {
    return send_error(call, v1::INVALID_ARGUMENT,
                      "pnnd has no run store to keep the twin in; configure store.path",
                      origin(*s));
  }
  options.repeats = static_cast<int>(r.repeats() ? r.repeats() : 1);
  if (r.batch()) options.batch = r.batch();
  if (r.hidden_size() > 0) options.hidden.assign(r.hidden().begin(), r.hidden().end());
  if (r.l2() > 0.0) options.l2 = r.l2();
  if (r.max_iterations() > 0) options.max_iterations = static_cast<int>(r.max_iterations());
  if (r.adam_epochs() > 0) options.adam_epochs = static_cast<int>(r.adam_epochs());
  if (r.theta_fraction() > 0.0) options.theta_fraction = r.theta_fraction();
  if (options.hidden.size() > 8 || std::any_of(options.hidden.begin(), options.hidden.end(),
                                               [](Index h) { return h < 1 || h > 4096; }) ||
      !std::isfinite(options.l2) || options.max_iterations > 100000 ||
      options.adam_epochs > 100000 || !(options.theta_fraction <= 1.0)) {
    return send_error(call, v1::INVALID_ARGUMENT,
                      "fit options out of range: hidden ≤ 8 layers of 1..4096 units, finite l2, "
                      "max_iterations and adam_epochs ≤ 100000, theta_fraction in (0, 1]",
                      origin(*s));
  }
  options.seed = r.seed();
  options.jacobian_points = 3;
  const bool use = r.use(), from_records = r.from_records();
  run_on_device(*s, call, [this, s, call, options, use, from_records]() mutable {
    LongLeaseCall running(*s);
    auto reply = std::make_shared<v1::Reply>();
    std::optional<TwinRecord> stored;
    digital_twin::ModelPtr model;
    std::int64_t calls = 0;
    const std::string name = s->config.name;
    // Progress on the telemetry stream, about every 10 % of the samples.
    auto next_note = std::make_shared<Index>(0);
    options.on_measured = [this, name, next_note](Index done, Index total) {
      if (done < *next_note && done < total) return;
      *next_note = done + std::max<Index>(1, total / 10);
      log_async("info", "twin fit of " + name + ": measured " + std::to_string(done) + "/" +
                            std::to_string(total) + " samples");
    };
    try {
      auto fitted = from_records ? fit_from_records(*s, options)
                                 : training::fit_twin(*s->device, options);
      if (!fitted) {
        set_status(*reply, status_code(fitted.error().code),
                   "twin fit: " + fitted.error().message + "; nothing was stored", origin(*s));
      } else {
        const auto& spec = s->device->spec();
        TwinRecord t;
        t.device_serial = spec.serial;
        t.device_kind = spec.kind;
        t.family = training::to_string(fitted.value().report.family);
        t.data_hash = fitted.value().report.data_hash;
        t.report_json = report_json(fitted.value().report, options, from_records);
        t.model = training::encode_twin(*fitted.value().model);
        t.created_ns = detail::wall_ns();
        calls = fitted.value().report.device_calls;
        t.twin_id = store->add_twin(t);  // one transaction: stored whole or not at all
        model = fitted.value().model;
        stored = std::move(t);
        fill_card(*stored, reply->mutable_fit_twin()->mutable_twin());
      }
    } catch (const StoreError& e) {
      set_status(*reply, e.disk_full() ? v1::STORE_FULL : v1::INTERNAL,
                 std::string("twin fit: storing the twin failed, nothing was stored: ") + e.what(),
                 origin(*s));
    } catch (const std::invalid_argument& e) {
      set_status(*reply, v1::INVALID_ARGUMENT, e.what(), origin(*s));
    } catch (const std::exception& e) {
      set_status(*reply, v1::INTERNAL, std::string("twin fit: ") + e.what(), origin(*s));
    }
    return std::function<void()>([this, s, call, reply, stored, model, calls, use] {
      s->forward_calls += static_cast<std::uint64_t>(calls);
      if (!s->token.empty()) arm_lease(*s);  // the holder was waiting: its TTL counts from now
      if (stored) {
        log("info", "fitted twin " + std::to_string(stored->twin_id) + " (" + stored->family +
                        ") of " + s->config.name + " from " + std::to_string(calls) +
                        " device calls");
        if (use) {
          try {
            apply_learned_twin(*s, stored->twin_id, model);
          } catch (const StoreError& e) {
            set_status(*reply, e.disk_full() ? v1::STORE_FULL : v1::INTERNAL,
                       "twin " + std::to_string(stored->twin_id) + " was stored but could not "
                       "be made the device's twin: " + e.what() + "; run pnnctl twin use " +
                       s->config.name + " " + std::to_string(stored->twin_id),
                       origin(*s));
          }
        }
      }
      send_reply(call, *reply);
    });
  });
}

void Server::Impl::apply_learned_twin(DeviceSlot& s, std::uint64_t twin_id,
                                      digital_twin::ModelPtr model) {
  store->set_active_twin(s.serial(), twin_id);
  s.twin_id = twin_id;
  if (twin_id == 0) {
    use_calibrated_twin(s);  // back to the datasheet twin, or its latest calibration
  } else {
    s.twin = std::move(model);
    s.calibration_id = 0;
  }
  twin_changed(s);
  publish_device(s);
}

void Server::Impl::use_twin(const Call& call, const v1::Request& request) {
  const auto& r = request.use_twin();
  DeviceSlot* s = writable_device(call, r.device(), request.lease_token());
  if (!s) return;
  if (!store) {
    return send_error(call, v1::INVALID_ARGUMENT, "pnnd has no run store (store.path)", origin(*s));
  }
  digital_twin::ModelPtr model;
  if (r.twin_id() != 0) {
    if (auto problem = stored_twin(*s, r.twin_id(), model)) {
      return send_error(call, problem->code, problem->message, origin(*s));
    }
  }
  apply_learned_twin(*s, r.twin_id(), model);
  log("info", s->config.name + " uses " +
                  (r.twin_id() ? "learned twin " + std::to_string(r.twin_id())
                               : std::string("its datasheet twin")));
  v1::Reply reply;
  fill_device(*s, reply.mutable_use_twin()->mutable_device());
  send_reply(call, reply);
}

void Server::Impl::twins(const Call& call, const v1::Request& request) {
  v1::Reply reply;
  if (!store) {
    return send_error(call, v1::INVALID_ARGUMENT, "pnnd has no run store (store.path)");
  }
  if (request.body_case() == v1::Request::kGetTwin) {
    auto t = store->get_twin(request.get_twin().twin_id());
    if (!t) {
      return send_error(call, v1::UNKNOWN_TWIN,
                        "no twin " + std::to_string(request.get_twin().twin_id()) +
                            " in the run store; pnnctl twin list shows the stored twins");
    }
    fill_card(*t, reply.mutable_get_twin()->mutable_twin());
    return send_reply(call, reply);
  }
  const auto& r = request.list_twins();
  std::string serial;
  if (!r.device().empty()) {
    const DeviceSlot* s = find_device(r.device());
    if (!s) return unknown_device(call, r.device());
    serial = s->serial();
  }
  const std::uint32_t limit = r.limit() == 0 ? 100 : std::min(r.limit(), kMaxListedTwins);
  for (const auto& t : store->list_twins(serial, limit)) {
    fill_card(t, reply.mutable_list_twins()->add_twins());
  }
  send_reply(call, reply);
}

}  // namespace pnn::daemon
