// Verbs on the daemon's devices: hello, devices, describe NAME, lifecycle, acquire, renew,
// release, forward, calibrate.
#include <algorithm>
#include <cstdio>
#include <future>
#include <optional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>

#include "errors.hpp"
#include "matrix_io.hpp"
#include "output.hpp"
#include "verbs.hpp"

namespace pnnctl {

namespace {

using nlohmann::json;


// The twin a device uses: a learned one (pnnctl twin use), a calibration, the datasheet's, none.
std::string twin_label(const v1::DeviceInfo& d, bool short_form) {
  if (d.twin_id() != 0) return (short_form ? "learned " : "learned twin ") + std::to_string(d.twin_id());
  if (d.no_twin()) return "none";
  if (d.twin_calibrated()) return (short_form ? "cal " : "calibration ") + std::to_string(d.calibration_id());
  return "nominal";
}

v1::DeviceInfo describe_device(Remote& remote, const std::string& name) {
  v1::Request r;
  r.mutable_describe()->set_device(name);
  return remote.call(std::move(r)).describe().device();
}


std::string lease_text(const v1::DeviceInfo& d) {
  if (d.lease_holder().empty()) return "-";
  if (d.lease_expires_in_ms() == 0) return d.lease_holder();
  return d.lease_holder() + " (" + std::to_string(d.lease_expires_in_ms() / 1000) + " s)";
}

int hello(const RemoteOptions& options) {
  Remote remote(options);
  const v1::HelloReply& h = remote.hello();
  const std::string telemetry = remote.telemetry_endpoint();
  if (options.json) {
    json j = to_json(h);
    j["endpoint"] = options.endpoint;
    j["telemetry_endpoint"] = telemetry;
    j["client_id"] = remote.client_id();
    print_json_line(j);
    return kExitOk;
  }
  std::string majors, caps;
  for (auto m : h.protocol_majors()) majors += (majors.empty() ? "" : ",") + std::to_string(m);
  for (const auto& c : h.capabilities()) caps += (caps.empty() ? "" : " ") + c;
  std::printf(
      "%s at %s\n  protocol   %s.%u\n  instance   %s\n  role       %s\n"
      "  telemetry  %s\n  max msg    %llu bytes\n  caps       %s\n  client id  %s\n",
      h.server_version().c_str(), options.endpoint.c_str(), majors.c_str(), h.protocol_minor(),
      h.instance_id().c_str(), h.role().c_str(), telemetry.c_str(),
      static_cast<unsigned long long>(h.max_message_bytes()), caps.c_str(),
      remote.client_id().c_str());
  return kExitOk;
}

constexpr const char* kDeviceRowFormat = "%-*s %-12s %-8s %-14s %-22s %9s %7s %-10s %-8s %s\n";

/// The NAME column: as wide as the longest name, at least 16, so long names keep the table
/// aligned.
int name_width(const std::vector<std::string>& names) {
  std::size_t w = 16;
  for (const auto& n : names) w = std::max(w, n.size());
  return static_cast<int>(std::min<std::size_t>(w, 200));
}

void print_device_header(int width) {
  std::printf("%-*s %-12s %-8s %-14s %-22s %7s %7s %-10s %-8s %s\n", width, "NAME", "STATE",
              "HEALTH", "SERIAL", "KIND", "IN→OUT", "PARAMS", "TWIN", "DRIFT", "LEASE");
}

/// One row of the devices table; a health message goes to `notes`, printed under the table.
void print_device_row(int width, const std::string& name, const v1::DeviceInfo& d,
                      std::string& notes) {
  const std::string io =
      std::to_string(d.spec().num_inputs()) + "→" + std::to_string(d.spec().num_outputs());
  // The drift monitor's rolling NMSE (twin vs measured; "-" before the first sample).
  char drift[32] = "off";
  if (d.drift().enabled()) {
    if (d.drift().samples() == 0) {
      std::snprintf(drift, sizeof drift, "-");
    } else {
      std::snprintf(drift, sizeof drift, "%.3g%s", d.drift().nmse(), d.drift().over_bound() ? "!" : "");
    }
  }
  std::printf(kDeviceRowFormat, width, name.c_str(), state_name(d.state()).c_str(),
              health_name(d.health()).c_str(), d.spec().serial().c_str(), d.spec().kind().c_str(),
              io.c_str(), std::to_string(d.spec().num_params()).c_str(),
              twin_label(d, true).c_str(), drift, lease_text(d).c_str());
  if (!d.health_message().empty()) notes += "  " + name + ": " + d.health_message() + "\n";
}

v1::ListDevicesReply list_devices(const RemoteOptions& options) {
  Remote remote(options);
  v1::Request r;
  r.mutable_list_devices();
  return remote.call(std::move(r)).list_devices();
}

/// Every daemon of the lab registry, asked at once: a daemon that does not answer within
/// --timeout-ms (no retries) is a row saying so, never a hang.
int lab_devices(const RemoteOptions& options) {
  const pnn::client::Lab lab = load_lab(options);
  struct Answer {
    std::optional<v1::ListDevicesReply> reply;
    std::string error;
  };
  std::vector<std::future<Answer>> asked;
  for (const auto& daemon : lab.daemons()) {
    RemoteOptions o = options_for(options, lab, daemon);
    o.retries = 0;
    asked.push_back(std::async(std::launch::async, [o] {
      try {
        return Answer{list_devices(o), ""};
      } catch (const std::exception& e) {
        return Answer{std::nullopt, e.what()};
      }
    }));
  }
  std::vector<Answer> answers;
  std::vector<std::string> names;
  for (std::size_t i = 0; i < asked.size(); ++i) {
    answers.push_back(asked[i].get());
    const std::string& daemon = lab.daemons()[i].name;
    names.push_back(daemon + "/*");
    if (answers.back().reply) {
      for (const auto& d : answers.back().reply->devices()) names.push_back(daemon + "/" + d.name());
    }
  }
  const int width = name_width(names);
  std::string notes;
  if (!options.json) print_device_header(width);
  int unreachable = 0;
  for (std::size_t i = 0; i < answers.size(); ++i) {
    const auto& daemon = lab.daemons()[i];
    const Answer& answer = answers[i];
    if (!answer.reply) {
      ++unreachable;
      if (options.json) {
        print_json_line(json{{"daemon", daemon.name}, {"endpoint", daemon.rpc}, {"reachable", false},
                             {"error", answer.error}});
      } else {
        std::printf("%-*s %s\n", width, (daemon.name + "/*").c_str(),
                    ("UNREACHABLE at " + daemon.rpc).c_str());
        notes += "  " + daemon.name + ": " + answer.error + "\n";
      }
      continue;
    }
    for (const auto& d : answer.reply->devices()) {
      if (options.json) {
        json j = to_json(d);
        j["daemon"] = daemon.name;
        j["reachable"] = true;
        print_json_line(j);
      } else {
        print_device_row(width, daemon.name + "/" + d.name(), d, notes);
      }
    }
    if (answer.reply->devices_size() == 0 && !options.json) {
      std::printf("%-*s %s\n", width, (daemon.name + "/*").c_str(), "(serves no devices)");
    }
  }
  std::fputs(notes.c_str(), stdout);
  if (!options.json && unreachable > 0) {
    std::printf("%d of %zu daemons in %s did not answer\n", unreachable, lab.daemons().size(),
                lab.source().c_str());
  }
  return kExitOk;
}

int devices(const RemoteOptions& options) {
  if (!options.lab.empty()) return lab_devices(options);
  const auto reply = list_devices(options);
  if (options.json) {
    for (const auto& d : reply.devices()) print_json_line(to_json(d));
    return kExitOk;
  }
  std::vector<std::string> names;
  for (const auto& d : reply.devices()) names.push_back(d.name());
  const int width = name_width(names);
  print_device_header(width);
  std::string notes;
  for (const auto& d : reply.devices()) print_device_row(width, d.name(), d, notes);
  if (reply.devices_size() == 0) std::printf("(the daemon serves no devices)\n");
  std::fputs(notes.c_str(), stdout);
  return kExitOk;
}

int lifecycle(const RemoteOptions& options, const std::string& device,
              const std::string& transition, const std::string& lease) {
  using T = v1::LifecycleRequest;
  const std::map<std::string, T::Transition> names = {{"configure", T::CONFIGURE},
                                                      {"activate", T::ACTIVATE},
                                                      {"deactivate", T::DEACTIVATE},
                                                      {"cleanup", T::CLEANUP},
                                                      {"recover", T::RECOVER}};
  Remote remote(options);
  LeaseScope scope(remote, device, lease);
  v1::Request r = scope.request();
  r.mutable_lifecycle()->set_device(device);
  r.mutable_lifecycle()->set_transition(names.at(transition));
  const auto reply = remote.call(std::move(r), Retry::kNever);
  const auto& d = reply.lifecycle().device();
  if (options.json) {
    print_json_line(to_json(d));
  } else {
    std::printf("%s: %s -> %s (health %s)\n", d.name().c_str(), transition.c_str(),
                state_name(d.state()).c_str(), health_name(d.health()).c_str());
  }
  return kExitOk;
}

int acquire(const RemoteOptions& options, const std::string& device, std::uint32_t ttl_ms) {
  Remote remote(options);
  v1::Request r;
  r.mutable_acquire()->set_device(device);
  r.mutable_acquire()->set_ttl_ms(ttl_ms);
  const auto reply = remote.call(std::move(r));
  const std::string token = to_hex(reply.acquire().lease_token());
  if (options.json) {
    print_json_line({{"device", device},
                     {"lease_token", token},
                     {"ttl_ms", reply.acquire().ttl_ms()},
                     {"client_id", remote.client_id()}});
  } else {
    std::printf("%s\n", token.c_str());
    std::fflush(stdout);
  }
  std::fprintf(stderr,
               "pnnctl: leased %s for %u ms. Pass the token to the writes: --lease %s (or export "
               "PNN_LEASE=%s); keep it with pnnctl renew %s, end it with pnnctl release %s. "
               "If it expires, pnnd drives the device to its safe state (INACTIVE).\n",
               device.c_str(), reply.acquire().ttl_ms(), token.c_str(), token.c_str(),
               device.c_str(), device.c_str());
  return kExitOk;
}

int renew_or_release(const RemoteOptions& options, const std::string& device,
                     const std::string& lease, bool renew) {
  if (lease.empty()) {
    throw UsageError(std::string(renew ? "renew" : "release") +
                     " needs the lease token: --lease TOKEN or PNN_LEASE (pnnctl acquire " +
                     device + " prints it)");
  }
  Remote remote(options);
  v1::Request r;
  r.set_lease_token(from_hex(lease, "--lease"));
  if (renew) {
    r.mutable_renew()->set_device(device);
  } else {
    r.mutable_release()->set_device(device);
  }
  const auto reply = remote.call(std::move(r), renew ? Retry::kSafe : Retry::kNever);
  if (options.json) {
    json j{{"device", device}, {"released", !renew}};
    if (renew) j["ttl_ms"] = reply.renew().ttl_ms();
    print_json_line(j);
  } else if (renew) {
    std::printf("%s: lease renewed for %u ms\n", device.c_str(), reply.renew().ttl_ms());
  } else {
    std::printf("%s: lease released\n", device.c_str());
  }
  return kExitOk;
}

struct ForwardArgs {
  std::string device, x_file, x_json, theta_file, theta_json, lease;
  double theta_fill = 0.0;
  bool theta_fill_set = false;
  std::uint32_t settle_ms = 0;
};

int forward(const RemoteOptions& options, const ForwardArgs& a) {
  if (a.x_file.empty() == a.x_json.empty()) {
    throw UsageError(
        "forward: give the batch with exactly one of --x FILE (JSON or CSV, '-' = "
        "stdin) or --x-json '[[...], ...]'");
  }
  const int theta_sources = !a.theta_file.empty() + !a.theta_json.empty() + a.theta_fill_set;
  if (theta_sources != 1) {
    throw UsageError(
        "forward: give θ with exactly one of --theta FILE, --theta-json '[...]' or "
        "--theta-fill VALUE (every parameter = VALUE)");
  }
  const Batch x = a.x_file.empty()
                      ? parse_batch(a.x_json, "--x-json")
                      : parse_batch(read_text_file(a.x_file, "--x"), "--x " + a.x_file);
  std::vector<double> theta;
  if (!a.theta_file.empty()) {
    theta = parse_vector(read_text_file(a.theta_file, "--theta"), "--theta " + a.theta_file);
  } else if (!a.theta_json.empty()) {
    theta = parse_vector(a.theta_json, "--theta-json");
  }
  Remote remote(options);
  if (a.theta_fill_set) {
    const auto info = describe_device(remote, a.device);
    theta.assign(info.spec().num_params(), a.theta_fill);
  }
  LeaseScope scope(remote, a.device, a.lease);
  v1::Request r = scope.request();
  auto* f = r.mutable_forward();
  f->set_device(a.device);
  f->mutable_x()->add_shape(static_cast<std::uint32_t>(x.rows));
  f->mutable_x()->add_shape(static_cast<std::uint32_t>(x.cols));
  for (double v : x.data) f->mutable_x()->add_data(static_cast<float>(v));
  for (double v : theta) f->mutable_theta()->add_data(v);
  f->set_settle_ms(a.settle_ms);
  const auto reply = remote.call(std::move(r));
  const auto& y = reply.forward().y();
  const std::size_t rows = y.shape_size() == 2 ? y.shape(0) : 0;
  const std::size_t cols = y.shape_size() == 2 ? y.shape(1) : 0;
  if (rows * cols != static_cast<std::size_t>(y.data_size())) {
    throw DaemonError("MALFORMED", "the daemon's Y has an inconsistent shape", a.device);
  }
  if (options.json) {
    json rows_json = json::array();
    for (std::size_t i = 0; i < rows; ++i) {
      json row = json::array();
      for (std::size_t j = 0; j < cols; ++j) row.push_back(y.data(static_cast<int>(i * cols + j)));
      rows_json.push_back(row);
    }
    print_json_line({{"device", a.device},
                     {"shape", {rows, cols}},
                     {"y", rows_json},
                     {"record_id", reply.forward().record_id()},
                     {"recorded", reply.forward().recorded()},
                     {"t_start_ns", reply.forward().t_start_ns()},
                     {"t_end_ns", reply.forward().t_end_ns()}});
    return kExitOk;
  }
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t j = 0; j < cols; ++j) {
      std::printf("%s%.9g", j ? "," : "",
                  static_cast<double>(y.data(static_cast<int>(i * cols + j))));
    }
    std::printf("\n");
  }
  return kExitOk;
}

int calibrate(const RemoteOptions& options, const std::string& device, const std::string& lease) {
  Remote remote(options);
  LeaseScope scope(remote, device, lease);
  v1::Request r = scope.request();
  r.mutable_calibrate()->set_device(device);
  const auto reply = remote.call(std::move(r), Retry::kNever);
  const auto& c = reply.calibrate();
  if (options.json) {
    json j = to_json(c);
    j["device"] = device;
    print_json_line(j);
    return kExitOk;
  }
  std::string phi;
  for (double v : c.phi().data()) phi += (phi.empty() ? "" : ", ") + std::to_string(v);
  std::printf("%s: twin fitted to measurements: MSE %.6g -> %.6g (calibration %llu, φ = [%s])\n",
              device.c_str(), c.mse_before(), c.mse_after(),
              static_cast<unsigned long long>(c.calibration_id()), phi.c_str());
  return kExitOk;
}


}  // namespace

int describe_remote(const RemoteOptions& options, const std::vector<std::string>& names) {
  for (const auto& name : names) {
    const auto t = resolve_device(options, name);  // each name may be on another daemon
    Remote remote(t.options);
    const auto d = describe_device(remote, t.device);
    if (options.json) {
      print_json_line(to_json(d));
      continue;
    }
    std::printf("%s  %s  (%s, health %s, twin %s, %llu forward calls, lease %s)\n%s\n",
                d.name().c_str(), d.address().c_str(), state_name(d.state()).c_str(),
                health_name(d.health()).c_str(),
                twin_label(d, false).c_str(),
                static_cast<unsigned long long>(d.forward_calls()), lease_text(d).c_str(),
                describe_spec(d.spec()).c_str());
    if (!d.health_message().empty()) std::printf("  health: %s\n\n", d.health_message().c_str());
  }
  return kExitOk;
}

void add_device_verbs(CLI::App& app, RemoteOptions& remote, Action& action) {
  app.add_subcommand("hello", "the daemon's version, protocol, instance id and your role")
      ->callback([&] { action = [&] { return hello(remote); }; });
  app.add_subcommand("devices",
                     "the daemon's devices: state, health, serial, twin, lease (with --lab: "
                     "every daemon's in the lab registry)")
      ->callback([&] { action = [&] { return devices(remote); }; });

  struct Args {
    std::string device, transition, lease;
    std::uint32_t ttl_ms = 0;
  };
  auto a = std::make_shared<Args>();
  auto* lc = app.add_subcommand("lifecycle", "drive a device's lifecycle");
  lc->add_option("name", a->device, "device name")->required();
  lc->add_option("transition", a->transition,
                 "configure | activate | deactivate | cleanup | recover (reconnect a FAULT "
                 "device: lands INACTIVE)")
      ->required()
      ->check(CLI::IsMember({"configure", "activate", "deactivate", "cleanup", "recover"}));
  add_lease_option(*lc, a->lease);
  lc->callback([a, &remote, &action] {
    action = [a, &remote] {
      const auto t = resolve_device(remote, a->device);
      return lifecycle(t.options, t.device, a->transition, a->lease);
    };
  });

  auto* acq = app.add_subcommand("acquire", "lease a device; prints the lease token");
  acq->add_option("name", a->device, "device name")->required();
  acq->add_option("--ttl-ms", a->ttl_ms, "lease time (0 = the daemon's default)");
  acq->callback([a, &remote, &action] {
    action = [a, &remote] {
      const auto t = resolve_device(remote, a->device);
      return acquire(t.options, t.device, a->ttl_ms);
    };
  });

  for (const bool renew : {true, false}) {
    auto* cmd = app.add_subcommand(renew ? "renew" : "release",
                                   renew ? "renew a lease for its TTL" : "end a lease");
    cmd->add_option("name", a->device, "device name")->required();
    add_lease_option(*cmd, a->lease);
    cmd->callback([a, renew, &remote, &action] {
      action = [a, renew, &remote] {
        const auto t = resolve_device(remote, a->device);
        return renew_or_release(t.options, t.device, a->lease, renew);
      };
    });
  }

  auto f = std::make_shared<ForwardArgs>();
  auto* fw = app.add_subcommand("forward", "run a small batch on a device (in situ); prints Y");
  fw->add_option("name", f->device, "device name")->required();
  fw->add_option("--x", f->x_file, "batch file: JSON [[...], ...] or CSV, one sample per line");
  fw->add_option("--x-json", f->x_json, "batch as JSON text, e.g. '[[0.5], [1.0]]'");
  fw->add_option("--theta", f->theta_file, "θ file: JSON list or CSV numbers");
  fw->add_option("--theta-json", f->theta_json, "θ as JSON text, e.g. '[1.5]'");
  fw->add_option("--theta-fill", f->theta_fill, "every parameter = this value")
      ->each([f](const std::string&) { f->theta_fill_set = true; });
  fw->add_option("--settle-ms", f->settle_ms, "wait after setting θ before measuring");
  add_lease_option(*fw, f->lease);
  fw->callback([f, &remote, &action] {
    action = [f, &remote] {
      const auto t = resolve_device(remote, f->device);
      ForwardArgs args = *f;
      args.device = t.device;
      return forward(t.options, args);
    };
  });

  auto* cal = app.add_subcommand("calibrate", "fit the device's twin to measurements (stored)");
  cal->add_option("name", a->device, "device name")->required();
  add_lease_option(*cal, a->lease);
  cal->callback([a, &remote, &action] {
    action = [a, &remote] {
      const auto t = resolve_device(remote, a->device);
      return calibrate(t.options, t.device, a->lease);
    };
  });
}

}  // namespace pnnctl
