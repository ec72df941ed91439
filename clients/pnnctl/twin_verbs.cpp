// Learned twins in the daemon (docs/learned-twins.md "In pnnd"): twin fit DEVICE, twin list,
// twin show ID [--plot FILE.svg], twin use DEVICE ID|nominal.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>
#include <nlohmann/json.hpp>

#include "errors.hpp"
#include "output.hpp"
#include "pnn/training/plot.hpp"
#include "verbs.hpp"

namespace pnnctl {

namespace {

using nlohmann::json;

// A fit measures thousands of samples and then fits: minutes, not the 5 s of a read.
constexpr int kFitTimeoutMs = 30 * 60 * 1000;
constexpr std::uint32_t kFitLeaseTtlMs = 30 * 60 * 1000;

struct TwinArgs {
  std::string device, lease, family = "grey-box", id, plot;
  std::uint32_t samples = 0, repeats = 0, batch = 0;
  std::uint64_t seed = 0;
  bool use = false, from_records = false;
  std::vector<std::uint32_t> hidden;
  double l2 = 0.0, theta_fraction = 0.0;
  std::uint32_t max_iterations = 0, adam_epochs = 0;
};


json report_of(const v1::TwinCard& t) {
  try {
    return json::parse(t.report_json());
  } catch (const json::exception&) {
    return json::object();
  }
}

// A number of the report, or NaN (null: not measured).
double number(const json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : std::nan("");
}

std::string fmt(double v, const char* f = "%.4g") {
  if (!std::isfinite(v)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, f, v);
  return b;
}


json card_json(const v1::TwinCard& t) {
  json j = to_json(t);
  j.erase("report_json");
  j["report"] = report_of(t);
  return j;
}

void print_card(const v1::TwinCard& t) {
  const json r = report_of(t);
  std::printf("twin %llu: %s, fitted on %s (%s) at %s\n",
              static_cast<unsigned long long>(t.twin_id()), t.family().c_str(),
              t.device_serial().c_str(), t.device_kind().c_str(), format_time_ns(t.created_ns()).c_str());
  std::printf("  data          %s samples (%s held out), %s device calls, hash %s\n",
              fmt(number(r, "samples"), "%.0f").c_str(),
              fmt(number(r, "validation_samples"), "%.0f").c_str(),
              fmt(number(r, "device_calls"), "%.0f").c_str(), t.data_hash().c_str());
  std::printf("  NMSE          %s (datasheet twin: %s), held-out samples\n",
              fmt(number(r, "twin_nmse")).c_str(), fmt(number(r, "twin_nmse_nominal")).c_str());
  std::printf("  Jacobian      cosine %s with the device (datasheet twin: %s)\n",
              fmt(number(r, "jacobian_cosine"), "%.3f").c_str(),
              fmt(number(r, "jacobian_cosine_nominal"), "%.3f").c_str());
  if (r.contains("r2_per_output") && r["r2_per_output"].is_array()) {
    std::string line;
    double worst = 1.0;
    for (const auto& v : r["r2_per_output"]) {
      const double x = v.is_number() ? v.get<double>() : std::nan("");
      line += (line.empty() ? "" : " ") + fmt(x, "%.3f");
      if (std::isfinite(x)) worst = std::min(worst, x);
    }
    std::printf("  R² per output %s (worst %s)\n", line.c_str(), fmt(worst, "%.3f").c_str());
  }
  if (const double nmse = number(r, "twin_nmse"); std::isfinite(nmse) && nmse > 0.5) {
    std::printf("  warning       held-out NMSE %.3g: this twin does not predict the device (1 is "
                "no better than the mean); more samples, another family, or a twin-free rule "
                "(spsa, mgd)\n", nmse);
  }
  std::printf("  fit           %s s measuring, %s s in all, %s parameters\n",
              fmt(number(r, "measure_s"), "%.1f").c_str(), fmt(number(r, "fit_s"), "%.1f").c_str(),
              fmt(number(r, "num_phi"), "%.0f").c_str());
}

int fit(const RemoteOptions& options, const TwinArgs& a) {
  RemoteOptions o = options;
  o.timeout_ms = std::max(o.timeout_ms, kFitTimeoutMs);
  Remote remote(o);
  LeaseScope scope(remote, a.device, a.lease, kFitLeaseTtlMs);
  v1::Request r = scope.request();
  auto* f = r.mutable_fit_twin();
  f->set_device(a.device);
  f->set_family(a.family);
  f->set_samples(a.samples);
  f->set_repeats(a.repeats);
  f->set_batch(a.batch);
  f->set_seed(a.seed);
  f->set_use(a.use);
  f->set_from_records(a.from_records);
  for (auto h : a.hidden) f->add_hidden(h);
  f->set_l2(a.l2);
  f->set_theta_fraction(a.theta_fraction);
  f->set_max_iterations(a.max_iterations);
  f->set_adam_epochs(a.adam_epochs);
  if (!options.json) {
    std::fprintf(stderr, "pnnctl: fitting a %s twin of %s (progress: pnnctl watch log)\n",
                 a.family.c_str(), a.device.c_str());
  }
  const auto reply = remote.call(std::move(r), Retry::kNever);
  const auto& t = reply.fit_twin().twin();
  if (options.json) {
    print_json_line(card_json(t));
    return kExitOk;
  }
  print_card(t);
  std::printf("%s\n", a.use ? ("  in use by " + a.device).c_str()
                            : ("  use it: pnnctl twin use " + a.device + " " +
                               std::to_string(t.twin_id())).c_str());
  return kExitOk;
}

int list(const RemoteOptions& options, const TwinArgs& a) {
  Remote remote(options);
  v1::Request r;
  r.mutable_list_twins()->set_device(a.device);
  const auto reply = remote.call(std::move(r));
  if (options.json) {
    for (const auto& t : reply.list_twins().twins()) print_json_line(card_json(t));
    return kExitOk;
  }
  std::printf("%-5s %-16s %-10s %-8s %-9s %-9s %-8s %s\n", "TWIN", "SERIAL", "FAMILY", "SAMPLES",
              "NMSE", "NOMINAL", "JACOBIAN", "CREATED");
  for (const auto& t : reply.list_twins().twins()) {
    const json rep = report_of(t);
    std::printf("%-5llu %-16s %-10s %-8s %-9s %-9s %-8s %s\n",
                static_cast<unsigned long long>(t.twin_id()), t.device_serial().c_str(),
                t.family().c_str(), fmt(number(rep, "samples"), "%.0f").c_str(),
                fmt(number(rep, "twin_nmse")).c_str(), fmt(number(rep, "twin_nmse_nominal")).c_str(),
                fmt(number(rep, "jacobian_cosine"), "%.3f").c_str(), format_time_ns(t.created_ns()).c_str());
  }
  if (reply.list_twins().twins_size() == 0) {
    std::printf("(no twins yet: pnnctl twin fit DEVICE --family grey-box|residual|mlp)\n");
  }
  return kExitOk;
}

// The report card's predicted-vs-measured scatter, with the identity line.
void write_plot(const v1::TwinCard& t, const std::string& path) {
  const json r = report_of(t);
  pnn::training::Series points{"held-out outputs", {}, {}, true};
  if (r.contains("scatter")) {
    for (const auto& v : r["scatter"].value("measured", json::array())) {
      points.x.push_back(v.is_number() ? v.get<double>() : std::nan(""));
    }
    for (const auto& v : r["scatter"].value("predicted", json::array())) {
      points.y.push_back(v.is_number() ? v.get<double>() : std::nan(""));
    }
  }
  if (points.x.empty()) throw UsageError("twin " + std::to_string(t.twin_id()) + " has no scatter data to plot");
  const auto [lo, hi] = std::minmax_element(points.x.begin(), points.x.end());
  pnn::training::Series identity{"predicted = measured", {*lo, *hi}, {*lo, *hi}};
  const std::string title = "twin " + std::to_string(t.twin_id()) + " (" + t.family() + ", " +
                            t.device_serial() + "): NMSE " + fmt(number(r, "twin_nmse"));
  pnn::training::write_text_file_atomic(
      path, pnn::training::render_svg(title, "measured", {{"predicted vs measured", "predicted",
                                                            {points, identity}}}));
}

int show(const RemoteOptions& options, const TwinArgs& a) {
  Remote remote(options);
  v1::Request r;
  r.mutable_get_twin()->set_twin_id(parse_id(a.id, "twin show", "twin", "pnnctl twin list"));
  const auto reply = remote.call(std::move(r));
  const auto& t = reply.get_twin().twin();
  if (!a.plot.empty()) write_plot(t, a.plot);
  if (options.json) {
    print_json_line(card_json(t));
  } else {
    print_card(t);
    if (!a.plot.empty()) std::printf("  plot          %s\n", a.plot.c_str());
  }
  return kExitOk;
}

int use(const RemoteOptions& options, const TwinArgs& a) {
  const std::uint64_t id = a.id == "nominal" ? 0 : parse_id(a.id, "twin use", "twin", "pnnctl twin list");
  Remote remote(options);
  LeaseScope scope(remote, a.device, a.lease);
  v1::Request r = scope.request();
  r.mutable_use_twin()->set_device(a.device);
  r.mutable_use_twin()->set_twin_id(id);
  const auto reply = remote.call(std::move(r), Retry::kNever);
  if (options.json) {
    print_json_line(to_json(reply.use_twin().device()));
  } else if (id == 0) {
    std::printf("%s uses its datasheet twin%s\n", a.device.c_str(),
                reply.use_twin().device().twin_calibrated() ? " (calibrated)" : "");
  } else {
    std::printf("%s uses learned twin %llu\n", a.device.c_str(), static_cast<unsigned long long>(id));
  }
  return kExitOk;
}

/// Runs `verb` on the daemon that serves a.device (DAEMON/DEVICE through the lab registry).
int on_device(const RemoteOptions& options, const TwinArgs& a,
              int (*verb)(const RemoteOptions&, const TwinArgs&)) {
  const auto t = resolve_device(options, a.device);
  TwinArgs args = a;
  args.device = t.device;
  return verb(t.options, args);
}

}  // namespace

void add_twin_verbs(CLI::App& app, RemoteOptions& remote, Action& action) {
  auto* twin = app.add_subcommand("twin", "learned twins: fit, list, show, use");
  twin->require_subcommand(1);
  auto a = std::make_shared<TwinArgs>();

  auto* f = twin->add_subcommand("fit", "measure a device and fit a twin (stored in the run store)");
  f->add_option("device", a->device, "device name")->required();
  f->add_option("--family", a->family, "grey-box | residual | mlp")->capture_default_str();
  f->add_option("--samples", a->samples, "measured samples in all (default 4096)");
  f->add_option("--repeats", a->repeats, "repeat each call and average (default 1)");
  f->add_option("--batch", a->batch, "samples per device call (default: ≤ 256, ≥ 8 calls)");
  f->add_option("--seed", a->seed, "sampling seed");
  f->add_flag("--use", a->use, "make it the device's twin once stored");
  f->add_option("--hidden", a->hidden, "MLP hidden sizes, e.g. --hidden 64,64 (residual, mlp)")
      ->delimiter(',');
  f->add_option("--l2", a->l2, "L2 weight (default per family)");
  f->add_option("--max-iterations", a->max_iterations, "L-BFGS iterations (default 300)");
  f->add_option("--adam-epochs", a->adam_epochs, "mini-batch Adam passes instead of L-BFGS");
  f->add_option("--theta-fraction", a->theta_fraction,
                "θ sampled in the middle ± this fraction of the limits' half-span (default 1)");
  f->add_flag("--from-records", a->from_records,
              "fit to the device's recorded forwards in the run store instead of measuring");
  add_lease_option(*f, a->lease);
  f->callback([a, &remote, &action] { action = [a, &remote] { return on_device(remote, *a, fit); }; });

  auto* l = twin->add_subcommand("list", "the stored twins, newest first");
  l->add_option("--device", a->device, "only this device's (by its serial)");
  l->callback([a, &remote, &action] { action = [a, &remote] { return list(remote, *a); }; });

  auto* s = twin->add_subcommand("show", "a twin's report card");
  s->add_option("id", a->id, "twin id (pnnctl twin list)")->required();
  s->add_option("--plot", a->plot, "write the predicted-vs-measured plot to this SVG file");
  s->callback([a, &remote, &action] { action = [a, &remote] { return show(remote, *a); }; });

  auto* u = twin->add_subcommand("use", "make a stored twin the device's twin (or: nominal)");
  u->add_option("device", a->device, "device name")->required();
  u->add_option("id", a->id, "twin id, or 'nominal' for the datasheet (or calibrated) twin")
      ->required();
  add_lease_option(*u, a->lease);
  u->callback([a, &remote, &action] { action = [a, &remote] { return on_device(remote, *a, use); }; });
}

}  // namespace pnnctl
