// The twin RPCs: TwinForward / TwinVjp on the compute pool (the device's twin, nominal or
// calibrated), and Calibrate on the device's worker (training's one calibration procedure).
#include <random>

#include "pnn/drivers/format.hpp"
#include "pnn/training/calibration.hpp"
#include "proto_fill.hpp"
#include "server_impl.hpp"

namespace pnn::daemon {

using detail::set_status;
using drivers::format_shortest;

namespace {

// Why (x, θ) is outside the twin's domain, or nothing. Shapes are the twin's to check.
std::optional<std::string> twin_domain_problem(const drivers::DeviceSpec& spec, const Matrix& x,
                                               const Vector& theta) {
  if (theta.size() == static_cast<Index>(spec.num_params())) {
    const Vector lo = spec.param_min(), hi = spec.param_max();
    for (Index i = 0; i < theta.size(); ++i) {
      if (theta[i] < lo[i] || theta[i] > hi[i]) {
        return "θ[" + std::to_string(i) + "] (" + spec.param_name(i) + ") = " +
               format_shortest(theta[i]) + " is outside the hard limits [" +
               format_shortest(lo[i]) + ", " + format_shortest(hi[i]) +
               "], the twin's domain; clamp θ to the limits";
      }
    }
  }
  if (x.size() > 0 && (x.minCoeff() < spec.input_min || x.maxCoeff() > spec.input_max)) {
    const bool low = x.minCoeff() < spec.input_min;
    return std::string("x has ") +
           (low ? "a value " + format_shortest(x.minCoeff()) + " below"
                : "a value " + format_shortest(x.maxCoeff()) + " above") +
           " the device's input range [" + format_shortest(spec.input_min) + ", " +
           format_shortest(spec.input_max) + "], the twin's domain";
  }
  return std::nullopt;
}

}  // namespace

void Server::Impl::twin(const Call& call, v1::Request& request) {
  const bool is_vjp = request.body_case() == v1::Request::kTwinVjp;
  const std::string name = is_vjp ? request.twin_vjp().device() : request.twin_forward().device();
  DeviceSlot* s = find_device(name);
  if (!s) return unknown_device(call, name);
  const v1::Tensor& xt0 = is_vjp ? request.twin_vjp().x() : request.twin_forward().x();
  const std::uint32_t rows = xt0.shape_size() > 0 ? xt0.shape(0) : 0;
  if (rows > config.twin_max_batch_rows) {
    send_error(call, v1::BATCH_TOO_LARGE,
               std::to_string(rows) + " rows exceed the twin's batch limit of " +
                   std::to_string(config.twin_max_batch_rows) +
                   " (twin.max_batch_rows); split the batch",
               "twin of " + origin(*s));
    return;
  }
  if (!s->twin) {
    send_error(call, v1::INVALID_ARGUMENT,
               s->config.name + " has no digital twin (a board that describes itself); train it "
                                "with spsa or mgd, which need no twin",
               origin(*s));
    return;
  }
  auto model = s->twin;
  auto req = std::make_shared<v1::Request>(std::move(request));
  auto spec = s->device->status().spec;
  on_compute(call, [model, req, is_vjp, spec](v1::Reply& reply) {
    const v1::Tensor& xt = is_vjp ? req->twin_vjp().x() : req->twin_forward().x();
    const v1::Vec& tv = is_vjp ? req->twin_vjp().theta() : req->twin_forward().theta();
    auto x = from_tensor(xt, "twin x");
    if (!x) return set_status(reply, v1::SHAPE_MISMATCH, x.error().message);
    const Vector theta = from_vec(tv);
    if (!x.value().allFinite() || !theta.allFinite()) {
      return set_status(reply, v1::NON_FINITE, "x or θ contains NaN or Inf");
    }
    // The twin's domain is the device's: θ within the hard limits, x within the input range
    // (outside it a twin may answer NaN, e.g. a power law of a negative input).
    if (auto problem = twin_domain_problem(*spec, x.value(), theta)) {
      return set_status(reply, v1::INVALID_ARGUMENT, *problem);
    }
    if (!is_vjp) {
      to_tensor(model->forward(x.value(), theta), reply.mutable_twin_forward()->mutable_y());
      return;
    }
    auto y_bar = from_tensor(req->twin_vjp().y_bar(), "twin y_bar");
    if (!y_bar) return set_status(reply, v1::SHAPE_MISMATCH, y_bar.error().message);
    if (!y_bar.value().allFinite()) return set_status(reply, v1::NON_FINITE, "y_bar contains NaN or Inf");
    const auto cot = model->vjp(x.value(), theta, y_bar.value());
    to_tensor(cot.x_bar, reply.mutable_twin_vjp()->mutable_x_bar());
    to_vec(cot.theta_bar, reply.mutable_twin_vjp()->mutable_theta_bar());
  }, "twin of " + origin(*s));
}

void Server::Impl::calibrate(const Call& call, const v1::Request& request) {
  const auto& r = request.calibrate();
  DeviceSlot* s = writable_device(call, r.device(), request.lease_token());
  if (!s) return;
  if (!s->nominal_twin) {
    send_error(call, v1::INVALID_ARGUMENT,
               s->config.name + " has no digital twin to calibrate (a board that describes itself)",
               origin(*s));
    return;
  }
  if (s->nominal_twin->num_physical_params() == 0) {
    send_error(call, v1::INVALID_ARGUMENT,
               "the twin of " + s->config.name + " (" + s->nominal_twin->name() +
                   ") has no physical parameters to calibrate",
               origin(*s));
    return;
  }
  auto req = std::make_shared<v1::CalibrateRequest>(r);
  auto start_model = s->twin;
  run_on_device(*s, call, [this, s, call, req, start_model] {
    LongLeaseCall running(*s);
    auto reply = std::make_shared<v1::Reply>();
    digital_twin::ModelPtr fitted;
    std::uint64_t forward_calls = 0;
    try {
      fitted = run_calibration(*s, *req, *start_model, *reply, forward_calls);
    } catch (const std::invalid_argument& e) {
      set_status(*reply, v1::INVALID_ARGUMENT, e.what(), origin(*s));
    } catch (const std::exception& e) {
      set_status(*reply, v1::INTERNAL, e.what(), origin(*s));
    }
    return std::function<void()>([this, s, call, reply, fitted, forward_calls] {
      s->forward_calls += forward_calls;
      if (!s->token.empty()) arm_lease(*s);  // the holder was waiting: its TTL counts from now
      if (fitted) {
        s->twin = fitted;
        s->calibration_id = reply->calibrate().calibration_id();
        twin_changed(*s);
        log("info", "calibrated the twin of " + s->config.name + ": MSE " +
                        std::to_string(reply->calibrate().mse_before()) + " -> " +
                        std::to_string(reply->calibrate().mse_after()));
      }
      send_reply(call, *reply);
    });
  });
}

// On the device's worker: the probe (the request's, or 64 samples uniform over the actuator
// range within ±1) and θ (the request's, or the twin's initial θ in the limits), then
// training::calibrate_device, then the calibration stored.
digital_twin::ModelPtr Server::Impl::run_calibration(DeviceSlot& s, const v1::CalibrateRequest& r,
                                                     const digital_twin::DifferentiableModel& model,
                                                     v1::Reply& reply, std::uint64_t& forward_calls) {
  const std::string where = origin(s);
  const drivers::DeviceSpec& spec = s.device->spec();
  std::mt19937_64 rng(training::kCalibrationSeed);
  Matrix probe;
  if (r.probe().data_size() > 0) {
    auto p = from_tensor(r.probe(), "calibration probe");
    if (!p) {
      set_status(reply, v1::SHAPE_MISMATCH, p.error().message, where);
      return nullptr;
    }
    probe = std::move(p).value();
  } else {
    const double lo = std::max(spec.input_min, -1.0), hi = std::min(spec.input_max, 1.0);
    std::uniform_real_distribution<double> u(lo < hi ? lo : spec.input_min,
                                             lo < hi ? hi : spec.input_max);
    probe.resize(64, spec.num_inputs);
    for (Index i = 0; i < probe.size(); ++i) probe.data()[i] = u(rng);
  }
  const Vector theta_min = spec.param_min(), theta_max = spec.param_max();
  Vector theta = r.theta().data_size() > 0 ? from_vec(r.theta()) : model.initial_params(0);
  if (r.theta().data_size() == 0) theta = theta.cwiseMax(theta_min).cwiseMin(theta_max);
  int measured = 0;
  auto run = training::calibrate_device(*s.device, model, probe, theta, theta_min, theta_max, rng,
                                        measured);
  forward_calls += static_cast<std::uint64_t>(measured);
  if (!run) {
    set_status(reply, status_code(run.error().code), "calibration: " + run.error().message, where);
    return nullptr;
  }
  const auto& fit = run.value();
  CalibrationRecord record{0, spec.serial, fit.phi, fit.mse_before, fit.mse_after, detail::wall_ns()};
  const std::uint64_t id = store->add_calibration(record);
  auto* out = reply.mutable_calibrate();
  out->set_mse_before(fit.mse_before);
  out->set_mse_after(fit.mse_after);
  to_vec(fit.phi, out->mutable_phi());
  out->set_calibration_id(id);
  return fit.model;
}

}  // namespace pnn::daemon
