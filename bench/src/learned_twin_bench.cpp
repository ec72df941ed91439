// learned-twin-oscillator, learned-twin-shg, own-device-digits and spin-node-stno (issue 13,
// docs/learned-twins.md): fit a learned twin of every device from measured samples
// (training::fit_twin; for spin-node-stno from measured trajectories, fit_trajectory_twin), then
// train the benchmark's network with it in place of the nominal twin: PAT, and in silico
// deployed on the hardware where the benchmark compares it.
// The devices are opened here and handed to the job (external devices), so the job trains on
// exactly the devices the twins were fitted on.
#include "bench_common.hpp"
#include "child_process.hpp"
#include "daemon_bench_common.hpp"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <fstream>
#include <random>
#include <thread>

#include "pnn/drivers/registry.hpp"
#include "pnn/training/learned_twin.hpp"

namespace pnn::bench::detail {
namespace {

using nlohmann::json;
using training::JobConfig;

struct OpenDevice {
  std::string name;
  drivers::PhysicalSystemPtr device;
};

std::vector<OpenDevice> open_devices(const JobConfig& c) {
  std::vector<OpenDevice> out;
  for (const auto& d : c.devices) {
    auto dev = drivers::make_physical_system(d.address);
    for (auto step : {&drivers::PhysicalSystem::configure, &drivers::PhysicalSystem::activate}) {
      if (auto r = ((*dev).*step)(); !r) throw std::runtime_error(d.address + ": " + r.error().message);
    }
    out.push_back({d.name, std::move(dev)});
  }
  return out;
}

// Fits a twin of one opened device (the job's device `name` at `address`).
using Fitter = std::function<training::FittedTwin(const std::string& address,
                                                  drivers::PhysicalSystem& device,
                                                  const training::TwinFitOptions& options)>;

training::FittedTwin fit_from_samples(const std::string&, drivers::PhysicalSystem& device,
                                      const training::TwinFitOptions& options) {
  return unwrap(training::fit_twin(device, options));
}

// Fits every device's twin, runs the job on them, and reports (one JSON object).
json run_learned(const JobConfig& config, const training::TwinFitOptions& fit_options,
                 double probe_lo, double probe_hi, const std::string& gap,
                 const BenchOptions& options, const Fitter& fitter = fit_from_samples,
                 bool control_nominal = false) {
  auto devices = open_devices(config);
  training::JobOptions job_options{.write_outputs = false};
  json fits = json::array();
  double nmse = 0.0, nmse_nominal = 0.0, cos = 0.0, cos_nominal = 0.0, fit_s = 0.0;
  std::int64_t samples = 0, calls = 0;
  for (std::size_t i = 0; i < devices.size(); ++i) {
    auto& dev = *devices[i].device;
    training::TwinFitOptions o = fit_options;
    o.seed = fit_options.seed + 97 * i;
    const auto nominal = dev.nominal_twin();
    // θ as the job starts it: the datasheet's recipe, or 0 for a device without a twin.
    const Vector theta0 = nominal ? nominal->initial_params(config.seed * 7919 + i)
                                  : Vector::Zero(dev.spec().num_params());
    const auto fit = fitter(config.devices[i].address, dev, o);
    const auto& r = fit.report;
    // The second layer's inputs include outputs of the first: probe it over its own range.
    std::int64_t jacobian_calls = 0;
    const auto [c, c_nom] = unwrap(training::jacobian_agreement(
        dev, *fit.model, nominal.get(), theta0, i == 0 ? probe_lo : -1.0,
        i == 0 ? probe_hi : 1.0, 3, config.seed + 31 * i, jacobian_calls));
    fits.push_back({{"device", devices[i].name}, {"twin_nmse", r.twin_nmse},
                    {"twin_nmse_nominal", r.twin_nmse_nominal}, {"jacobian_cosine", c},
                    {"jacobian_cosine_nominal", c_nom}, {"samples", r.samples},
                    {"device_calls", r.device_calls}, {"fit_s", r.fit_s},
                    {"iterations", r.iterations}, {"num_phi", r.num_phi},
                    {"train_mse", r.train_mse}, {"measure_s", r.measure_s},
                    {"repeats", o.repeats}});
    if (options.on_progress) options.on_progress(fits.back().dump());
    nmse += r.twin_nmse / static_cast<double>(devices.size());
    nmse_nominal += r.twin_nmse_nominal / static_cast<double>(devices.size());
    cos += c / static_cast<double>(devices.size());
    cos_nominal += c_nom / static_cast<double>(devices.size());
    fit_s += r.fit_s;
    samples += r.samples;
    calls += r.device_calls;
    job_options.external_devices[devices[i].name] = &dev;
    job_options.twins[devices[i].name] = fit.model;
  }
  training::JobCallbacks cb;
  if (options.on_progress) {
    cb.on_epoch = [&](const std::string& phase, const training::EpochStats& s, int total) {
      options.on_progress(config.name + " " + phase + " epoch " + std::to_string(s.epoch) + "/" +
                          std::to_string(total) + " loss " + std::to_string(s.train_loss));
    };
  }
  const auto result = unwrap(training::run_job(config, cb, job_options));
  json j = job_record(config, result, gap);
  j["family"] = to_string(fit_options.family);
  j["twin_nmse"] = nmse;
  j["twin_nmse_nominal"] = nmse_nominal;
  j["jacobian_cosine"] = cos;
  j["jacobian_cosine_nominal"] = cos_nominal;
  j["fit_s"] = fit_s;
  j["samples"] = samples;
  j["fit_device_calls"] = calls;
  j["fits"] = fits;
  if (control_nominal) {
    // The same job on the same devices (after the same measurements) with the nominal twins:
    // what PAT reaches here without the learned twin, with other noise draws of the device.
    job_options.twins.clear();
    const auto control = unwrap(training::run_job(config, cb, job_options));
    j["acc_pat_reality_nominal_twin"] = job_record(config, control, gap)["acc_pat_reality"];
  }
  return j;
}

training::TwinFamily family_or(const BenchOptions& o, training::TwinFamily fallback) {
  return o.family.empty() ? fallback : training::parse_twin_family(o.family);
}

// The black-box MLP fit of a device whose θ acts like an input: 20,000 samples at 20 per call
// (1,000 distinct θ), mini-batch Adam (16 calls per step) for `adam_epochs` passes.
training::TwinFitOptions black_box_fit(const BenchOptions& options, std::vector<Index> hidden,
                                       int adam_epochs) {
  training::TwinFitOptions fit;
  fit.family = family_or(options, training::TwinFamily::kBlackBox);
  fit.samples = options.samples > 0 ? options.samples : 20000;
  fit.batch = 20;
  fit.hidden = std::move(hidden);
  fit.l2 = 1e-7;
  fit.adam_epochs = adam_epochs;
  fit.adam_calls_per_step = 16;
  fit.adam_learning_rate = 1e-3;
  fit.seed = options.seed;
  return fit;
}

// Serves bench/scripts/own_device_bench.py (a Python instrument, pnn_device) on a free loopback
// port for as long as this object lives; address() is its tcp:// address, without kind=.
class PythonDevice {
 public:
  explicit PythonDevice(const BenchDir& dir)
      : port_file_(dir.file("own-device.port")),
        process_({"/usr/bin/python3", script(), "--port", "0", "--port-file", port_file_}) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!std::filesystem::exists(port_file_)) {
      if (process_.exited() || std::chrono::steady_clock::now() > end) {
        throw std::runtime_error("the Python device (" + script() + ") did not start: run it by "
                                 "hand to see why (it needs python3-numpy)");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::ifstream in(port_file_);
    in >> port_;
  }
  std::string address() const { return "tcp://127.0.0.1:" + std::to_string(port_); }

 private:
  static std::string script() { return source_file("bench/scripts/own_device_bench.py"); }
  std::string port_file_;
  ChildProcess process_;
  int port_ = 0;
};

}  // namespace

std::vector<json> own_device_digits(const BenchOptions& options) {
  BenchDir dir("own-device-digits");
  PythonDevice device(dir);
  const int epochs = options.epochs > 0 ? options.epochs : 100;
  JobConfig c = hybrid_digits_job("own-device-digits", "own", device.address(), 16, "tanh", 3e-3,
                                  epochs, options.seed);
  const training::TwinFitOptions fit = black_box_fit(options, {64, 64}, 100);
  json j = run_learned(c, fit, -1.0, 1.0, "own", options);
  j["device"] = "bench/scripts/own_device_bench.py served by pnn_device at " + device.address();
  return {j};
}

std::vector<json> learned_twin_oscillator(const BenchOptions& options) {
  const std::string gap = options.gap.empty() ? "large" : options.gap;
  const int epochs = options.epochs > 0 ? options.epochs : 40;
  JobConfig c = oscillator_job("learned-twin-oscillator", "digits", gap, epochs, options.seed, 8);
  training::TwinFitOptions fit;
  fit.family = family_or(options, training::TwinFamily::kGreyBox);
  fit.samples = options.samples > 0 ? options.samples : 2500;  // per device: ≤ 5,000 in all
  fit.batch = 250;
  fit.theta_fraction = 0.2;
  fit.l2 = 1e-7;
  fit.max_iterations = 200;
  if (fit.family != training::TwinFamily::kGreyBox) {
    // The correction MLPs see few distinct θ (one per call): small and strongly regularised.
    fit.hidden = {32};
    fit.l2 = 1e-5;
  }
  fit.seed = options.seed;
  return {run_learned(c, fit, 0.0, 1.0, gap, options)};
}

std::vector<json> learned_twin_shg(const BenchOptions& options) {
  const std::string gap = options.gap.empty() ? "large" : options.gap;
  const int epochs = options.epochs > 0 ? options.epochs : 100;
  JobConfig c = hybrid_digits_job("learned-twin-shg", "shg",
                                  "sim://optical-shg?inputs=64&params=64&outputs=64&gap=" + gap +
                                      "&seed=" + std::to_string(options.seed + 1),
                                  64, "sigmoid", 3e-3, epochs, options.seed);
  // Mini-batch Adam: 150 passes (7,500 steps) fit better in a third of the time of 200
  // full-batch L-BFGS iterations (docs/benchmarks.md, "Learned twins").
  const training::TwinFitOptions fit = black_box_fit(options, {128, 128}, 150);
  return {run_learned(c, fit, 0.0, 1.0, gap, options)};
}

// The address of the same STNO device run for `steps` input periods (its serial, hence its
// oscillators, comes from seed=, not from the sequence length).
std::string with_steps(const std::string& address, Index steps) {
  const auto at = address.find("steps=");
  if (at == std::string::npos) throw std::logic_error(address + ": no steps= to change");
  const auto end = address.find('&', at);
  return address.substr(0, at) + "steps=" + std::to_string(steps) +
         (end == std::string::npos ? "" : address.substr(end));
}

std::vector<json> spin_node_stno(const BenchOptions& options) {
  const int epochs = options.epochs > 0 ? options.epochs : 40;
  JobConfig c = stno_job(epochs, options.seed);
  c.name = "spin-node-stno";
  // PAT only: in-silico training through the RK4 twin would double the time.
  c.compare_in_silico = false;
  training::TwinFitOptions fit;
  fit.family = family_or(options, training::TwinFamily::kNeuralOde);
  fit.samples = options.samples > 0 ? options.samples : 200;  // trajectories
  fit.batch = 20;            // 10 θ, 8 for the fit and 2 held out
  fit.repeats = 16;          // thermal noise 0.035 RMS per reading, averaged to ≈ 0.009
  fit.theta_fraction = 0.1;  // around the job's starting θ (set by the fitter below)
  fit.hidden = {8};
  fit.l2 = 1e-6;
  fit.max_iterations = 80;
  fit.seed = options.seed;
  // The device reads p only at the end of the sequence: the trajectory's point k is the same
  // device (same serial) run for the first k periods.
  const Fitter trajectories = [&c](const std::string& address, drivers::PhysicalSystem& device,
                                   const training::TwinFitOptions& options_in) {
    training::TwinFitOptions o = options_in;
    o.theta_center = device.nominal_twin()->initial_params(c.seed * 7919);  // the job's start
    const Index periods = device.spec().num_inputs / 8;
    std::vector<drivers::PhysicalSystemPtr> shorter;
    std::vector<drivers::PhysicalSystem*> prefixes;
    for (Index k = 1; k < periods; ++k) {
      shorter.push_back(drivers::make_physical_system(with_steps(address, k)));
      for (auto step : {&drivers::PhysicalSystem::configure, &drivers::PhysicalSystem::activate}) {
        if (auto r = ((*shorter.back()).*step)(); !r) throw std::runtime_error(r.error().message);
      }
      prefixes.push_back(shorter.back().get());
    }
    prefixes.push_back(&device);
    return unwrap(training::fit_trajectory_twin(prefixes, o));
  };
  json j = run_learned(c, fit, 0.0, 1.0, "", options, trajectories, true);
  j["trajectories"] = fit.samples;
  j["repeats"] = fit.repeats;
  return {j};
}

}  // namespace pnn::bench::detail
