#include "pnn/training/job.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <random>

#include "pnn/digital_twin/digital_layers.hpp"
#include "pnn/digital_twin/parallel.hpp"
#include "pnn/drivers/registry.hpp"
#include "pnn/training/calibration.hpp"
#include "pnn/training/checkpoint.hpp"
#include "pnn/training/learned_twin.hpp"
#include "pnn/training/plot.hpp"

namespace pnn::training {
namespace dt = pnn::digital_twin;

const PhaseResult* JobResult::phase(const std::string& name) const {
  for (const auto& p : phases) {
    if (p.phase == name) return &p;
  }
  return nullptr;
}

Result<std::vector<CalibrationReport>> calibrate_twins(Network& network, const MatrixRef& probe,
                                                       std::uint64_t seed) {
  auto trace = network.forward(probe, Mode::kHardware);
  if (!trace) return trace.error();
  std::mt19937_64 rng(seed ^ kCalibrationSeed);
  std::vector<CalibrationReport> reports;
  for (std::size_t i = 0; i < network.layers().size(); ++i) {
    Layer& layer = network.layers()[i];
    if (!layer.is_physical() || layer.model->num_physical_params() == 0) continue;
    const auto& spec = layer.device->spec();
    const Matrix x = trace.value().inputs[i].cwiseMax(spec.input_min).cwiseMin(spec.input_max);
    const auto* lif_twin = dynamic_cast<const digital_twin::SpikingLifModel*>(layer.model.get());
    if (lif_twin && layer.device->has_spike_run()) {  // whichever backward the layer uses
      const auto& lif = *lif_twin;
      auto fit = mock_fit(*layer.device, lif, x, layer.theta, {}, layer.executor);
      if (!fit) {
        return drivers::Error{fit.error().code,
                              "mock fit of '" + layer.name + "': " + fit.error().message};
      }
      const MockFitReport& m = fit.value().report;
      layer.model = fit.value().model;
      reports.push_back({layer.name, spec.serial, m.output_mse_before, m.output_mse_after,
                         layer.model->physical_params(), m});
      continue;
    }
    int measured = 0;
    auto run = calibrate_device(*layer.device, *layer.model, x, layer.theta, layer.theta_min,
                                layer.theta_max, rng, measured, layer.executor);
    if (!run) {
      return drivers::Error{run.error().code, "calibrating '" + layer.name + "': " + run.error().message};
    }
    const auto& fit = run.value();
    layer.model = fit.model;
    reports.push_back({layer.name, spec.serial, fit.mse_before, fit.mse_after, fit.phi});
  }
  return reports;
}

namespace {

// Opens every device of the job and drives them to the safe state when the job ends, whatever
// way it ends.
class DeviceSet {
 public:
  DeviceSet(const JobConfig& config, const JobOptions& options) {
    const auto& external = options.external_devices;
    for (const auto& entry : config.devices) {
      // A device the owner lends (the daemon's own), else one opened here (open_device: a device
      // of another daemon, or any address when the owner lends none).
      auto it = external.find(entry.name);
      if (!external.empty() && (it == external.end() || it->second == nullptr)) {
        drivers::PhysicalSystemPtr opened;
        try {
          if (options.open_device) opened = options.open_device(entry.address);
        } catch (const std::invalid_argument& e) {
          throw ConfigError(config.source + ": devices." + entry.name + ": " + e.what());
        }
        if (!opened) throw ConfigError(config.source + ": devices." + entry.name + ": no such device here");
        auto* raw = opened.get();
        devices_.push_back({entry.name, entry.address, raw, std::move(opened), {}});
        continue;
      }
      if (!external.empty()) {
        DeviceExecutor executor;
        if (auto e = options.device_executors.find(entry.name); e != options.device_executors.end()) {
          executor = e->second;
        }
        devices_.push_back({entry.name, "", it->second, nullptr, std::move(executor)});
        continue;
      }
      try {
        drivers::PhysicalSystemPtr owned;
        if (options.open_device) owned = options.open_device(entry.address);
        if (!owned) owned = drivers::make_physical_system(entry.address);
        auto* raw = owned.get();
        devices_.push_back({entry.name, entry.address, raw, std::move(owned), {}});
      } catch (const std::invalid_argument& e) {
        throw ConfigError(config.source + ": devices." + entry.name + ": " + e.what());
      }
    }
  }
  // Devices this job opened are driven to their safe state however the job ends; borrowed ones
  // are the owner's business.
  ~DeviceSet() {
    for (auto& d : devices_) {
      if (d.owned) d.owned->shutdown();
    }
  }
  DeviceSet(const DeviceSet&) = delete;
  DeviceSet& operator=(const DeviceSet&) = delete;

  // Owned devices are configured (which, for a device of another daemon, takes its lease) in the
  // order of their addresses: one global order, so two jobs that share devices never each hold
  // one and wait for the other's.
  Result<void> bring_up() {
    std::vector<Slot*> order;
    for (auto& d : devices_) order.push_back(&d);
    std::stable_sort(order.begin(), order.end(), [](const Slot* a, const Slot* b) {
      return a->address < b->address;
    });
    for (Slot* entry : order) {
      auto& d = *entry;
      if (!d.owned) {
        if (d.device->state() != drivers::Lifecycle::kActive) {
          return drivers::make_error(drivers::Errc::kWrongState,
                                     "device '" + d.name + "' (" + d.device->spec().serial +
                                         ") is " + drivers::to_string(d.device->state()) +
                                         "; activate it before starting the job");
        }
        continue;
      }
      if (auto r = d.device->configure(); !r) return r;
      if (auto r = d.device->activate(); !r) return r;
    }
    return {};
  }
  drivers::PhysicalSystem& get(const std::string& name) { return *find(name).device; }
  const DeviceExecutor& executor(const std::string& name) { return find(name).executor; }
  std::vector<std::string> serials() const {
    std::vector<std::string> out;
    for (const auto& d : devices_) out.push_back(d.device->spec().serial);
    return out;
  }

 private:
  struct Slot {
    std::string name;
    std::string address;  // of an owned device ("" for a borrowed one: the owner brings it up)
    drivers::PhysicalSystem* device;
    drivers::PhysicalSystemPtr owned;
    DeviceExecutor executor;  // where its calls run (empty: this thread)
  };
  Slot& find(const std::string& name) {
    for (auto& d : devices_) {
      if (d.name == name) return d;
    }
    throw std::logic_error("device " + name + " not opened");
  }
  std::vector<Slot> devices_;
};

Network build_network(const JobConfig& config, DeviceSet& devices, Index num_inputs,
                      int num_classes, const std::map<std::string, dt::ModelPtr>& twins) {
  Network net;
  Index width = num_inputs;
  for (std::size_t i = 0; i < config.network.size(); ++i) {
    const LayerSpec& s = config.network[i];
    const std::string where = config.source + ": network[" + std::to_string(i) + "]: ";
    const std::uint64_t seed = config.seed * 7919 + i;
    auto require_width = [&](Index expected, const std::string& what) {
      if (expected != width) {
        throw ConfigError(where + what + " takes " + std::to_string(expected) +
                          " inputs but the previous layer gives " + std::to_string(width) +
                          " (add a pad or slice layer, or change the device size)");
      }
    };
    switch (s.kind) {
      case LayerSpec::Kind::kPhysical: {
        auto& dev = devices.get(s.device);
        require_width(dev.spec().num_inputs, "device '" + s.device + "'");
        // θ starts from the datasheet's recipe (the nominal twin's initialisation) with or
        // without a twin, so every rule trains from the same start; a twin-free layer never
        // evaluates the twin.
        auto twin = dev.nominal_twin();
        Vector theta = twin ? twin->initial_params(seed) : Vector::Zero(dev.spec().num_params());
        if (auto it = twins.find(s.device); it != twins.end() && it->second) twin = it->second;
        net.add_physical(s.device, dev, s.twin ? twin : nullptr, std::move(theta),
                         devices.executor(s.device));
        Layer& added = net.layers().back();
        added.backward_at_record = added.backward_at_record && s.backward_at_record;
        added.spike_train_rule = added.backward_at_record && s.spike_train_rule;
        width = dev.spec().num_outputs;
        break;
      }
      case LayerSpec::Kind::kPad:
        net.add_digital("pad", std::make_shared<dt::PadModel>(width, s.count), Vector());
        width += s.count;
        break;
      case LayerSpec::Kind::kDuplicate:
        net.add_digital("duplicate", std::make_shared<dt::DuplicateModel>(width), Vector());
        width *= 2;
        break;
      case LayerSpec::Kind::kSlice:
        if (s.first + s.count > width) {
          throw ConfigError(where + "slice [" + std::to_string(s.first) + ", " +
                            std::to_string(s.first + s.count) + ") does not fit in " +
                            std::to_string(width) + " features");
        }
        net.add_digital("slice", std::make_shared<dt::SliceModel>(width, s.first, s.count, s.gain), Vector());
        width = s.count;
        break;
      case LayerSpec::Kind::kAffine: {
        auto m = std::make_shared<dt::AffineModel>(width, s.count);
        net.add_digital("affine", m, m->initial_params(seed));
        width = s.count;
        break;
      }
      case LayerSpec::Kind::kActivation:
        net.add_digital(s.activation, std::make_shared<dt::ActivationModel>(dt::parse_activation(s.activation), width), Vector());
        break;
    }
  }
  if (width != num_classes) {
    throw ConfigError(config.source + ": network: the last layer gives " + std::to_string(width) +
                      " outputs but " + config.dataset + " has " + std::to_string(num_classes) +
                      " classes (end with e.g. slice: {first: N, count: " +
                      std::to_string(num_classes) + ", gain: 3})");
  }
  return net;
}

// What the layers of `config` provide, known before any device is configured: a physical
// layer's twin is its device's nominal twin (or the one `twins` gives it) unless the layer asks
// for none.
std::vector<LayerSummary> planned_layers(const JobConfig& config, DeviceSet& devices,
                                         const std::map<std::string, dt::ModelPtr>& twins) {
  std::vector<LayerSummary> out;
  for (const LayerSpec& s : config.network) {
    if (s.kind != LayerSpec::Kind::kPhysical) {
      out.push_back({s.kind == LayerSpec::Kind::kPad         ? "pad"
                     : s.kind == LayerSpec::Kind::kSlice     ? "slice"
                     : s.kind == LayerSpec::Kind::kAffine    ? "affine"
                     : s.kind == LayerSpec::Kind::kDuplicate ? "duplicate"
                                                             : s.activation,
                     false, kModelForward | kModelVjp});
      continue;
    }
    const auto given = twins.find(s.device);
    const bool twin = s.twin && (devices.get(s.device).nominal_twin() != nullptr ||
                                 (given != twins.end() && given->second != nullptr) ||
                                 !s.fit_family.empty());
    out.push_back({s.device, true,
                   kHardwareForward | (twin ? kModelForward | kModelVjp : 0u) |
                       (can_settle(devices.get(s.device)) ? kSettle : 0u)});
  }
  return out;
}

// A rule the layers cannot provide is a config error, raised before anything runs.
void check_rule(const JobConfig& config, const RuleConfig& rule_config,
                const std::vector<LayerSummary>& layers) {
  try {
    check_rule_fits(*make_learning_rule(rule_config, config.training.seed), layers);
  } catch (const RuleError& e) {
    throw ConfigError(config.source + ": training.method: " + e.what());
  }
}

bool fits(const RuleConfig& rule_config, const std::vector<LayerSummary>& layers) {
  try {
    check_rule_fits(*make_learning_rule(rule_config, 0), layers);
    return true;
  } catch (const RuleError&) {
    return false;
  }
}

Checkpoint make_checkpoint(const JobConfig& config, const Network& net, Trainer& trainer,
                           const std::map<std::string, std::pair<std::string, std::string>>& twins) {
  Checkpoint c;
  c.epoch = trainer.epochs_done();
  c.seed = config.seed;
  for (const auto& layer : net.layers()) {
    c.layers.push_back({layer.kind(), layer.is_physical() ? layer.device->spec().serial : "",
                        layer.theta, layer.has_model() ? layer.model->physical_params() : Vector()});
  }
  c.optimizer = {trainer.optimizer().kind(), trainer.optimizer().num_steps(), trainer.optimizer().state()};
  c.rule = trainer.rule().state();
  c.metadata = {{"job", config.name}, {"config", config.source}, {"dataset", config.dataset},
                {"method", to_string(trainer.options().method)},
                {"hardware_calls", std::to_string(trainer.hardware_calls())}};
  for (const auto& [device, what] : twins) {
    c.metadata["pnn.twin." + device + ".source"] = what.first;
    c.metadata["pnn.twin." + device + ".data_hash"] = what.second;
  }
  return c;
}

TwinFitOptions layer_fit_options(const LayerSpec& s, const drivers::PhysicalSystem& device,
                                 std::uint64_t seed) {
  TwinFitOptions o = default_fit_options(parse_twin_family(s.fit_family), s.fit_samples,
                                         device.spec().max_batch);
  o.repeats = s.fit_repeats;
  o.seed = seed;
  return o;
}

// twin: {refit_on_drift: B}, after an epoch: each such layer's twin against 256 fresh
// measurements at its current θ (one or a few device calls); past B, a new fit (new samples)
// replaces it. Returns the refits made, or the device's error.
Result<std::vector<std::string>> refit_drifted_twins(
    const JobConfig& config, Network& net, int epoch,
    std::map<std::string, std::pair<std::string, std::string>>& provenance) {
  std::vector<std::string> refits;
  for (const LayerSpec& s : config.network) {
    if (s.kind != LayerSpec::Kind::kPhysical || s.refit_on_drift <= 0.0) continue;
    for (Layer& layer : net.layers()) {
      if (layer.name != s.device || !layer.is_physical() || !layer.has_model()) continue;
      TwinFitOptions probe = layer_fit_options(s, *layer.device, config.seed + 7919 * epoch);
      probe.samples = 256;
      probe.batch = default_fit_batch(256, layer.device->spec().max_batch);
      probe.theta_center = layer.theta;
      probe.theta_fraction = 0.0;
      std::int64_t calls = 0;
      auto data = measure_samples(*layer.device, probe, calls, layer.executor);
      if (!data) return data.error();
      const double nmse = twin_nmse(*layer.model, data.value());
      if (nmse <= s.refit_on_drift) break;
      auto fitted = fit_twin(*layer.device, layer_fit_options(s, *layer.device, config.seed + epoch),
                             layer.executor);
      if (!fitted) return fitted.error();
      layer.model = fitted.value().model;
      provenance[s.device] = {"fit:" + s.fit_family, fitted.value().report.data_hash};
      refits.push_back(s.device + " after epoch " + std::to_string(epoch) + ": twin NMSE " +
                       std::to_string(nmse) + " > " + std::to_string(s.refit_on_drift) +
                       ", refitted (held-out NMSE " +
                       std::to_string(fitted.value().report.twin_nmse) + ")");
      break;
    }
  }
  return refits;
}

// The learned twins of the job, by device: those the caller gives (pnnd resolves learned:<id>),
// then a fit for each `twin: {fit: ...}` layer, measured on its device now (after bring-up).
Result<void> resolve_learned_twins(const JobConfig& config, DeviceSet& devices,
                                   std::map<std::string, dt::ModelPtr>& twins,
                                   std::map<std::string, std::pair<std::string, std::string>>& provenance,
                                   const std::function<void(const std::string&)>& log) {
  for (const LayerSpec& s : config.network) {
    if (s.kind != LayerSpec::Kind::kPhysical) continue;
    if (s.learned_twin != 0 && !twins.count(s.device)) {
      throw ConfigError(config.source + ": network: physical " + s.device + ": twin: learned:" +
                        std::to_string(s.learned_twin) +
                        " names a twin of a pnnd run store, which only pnnd resolves: submit the "
                        "job to pnnd (pnnctl train --remote), or let the job fit one (twin: {fit: "
                        "residual})");
    }
    if (s.fit_family.empty() || twins.count(s.device)) continue;
    auto& device = devices.get(s.device);
    auto fitted = fit_twin(device, layer_fit_options(s, device, config.seed), devices.executor(s.device));
    if (!fitted) return fitted.error();
    const auto& r = fitted.value().report;
    log("fitted a " + s.fit_family + " twin of " + s.device + " from " + std::to_string(r.samples) +
        " samples: twin-vs-hardware NMSE " + std::to_string(r.twin_nmse) + " (datasheet twin " +
        std::to_string(r.twin_nmse_nominal) + ")");
    twins[s.device] = fitted.value().model;
    provenance[s.device] = {"fit:" + s.fit_family, r.data_hash};
  }
  return {};
}

void restore_checkpoint(const std::string& path, Network& net, Trainer& trainer,
                        const std::map<std::string, std::pair<std::string, std::string>>& twins,
                        const std::function<void(const std::string&)>& log) {
  const Checkpoint c = load_checkpoint(path);
  // A run trained with a stored twin resumes with that twin; a twin fitted by the job itself is
  // fitted again on resume (new measurements, so a new data hash), which is only noted.
  for (const auto& [key, value] : c.metadata) {
    const std::string prefix = "pnn.twin.", suffix = ".source";
    if (key.rfind(prefix, 0) != 0 || key.size() <= prefix.size() + suffix.size() ||
        key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    const std::string device = key.substr(prefix.size(), key.size() - prefix.size() - suffix.size());
    const auto hash = c.metadata.find(prefix + device + ".data_hash");
    const std::string was = value + " (data " + (hash != c.metadata.end() ? hash->second.substr(0, 12) : "?") + ")";
    const auto now = twins.find(device);
    const std::string is = now == twins.end() ? "its datasheet twin"
                                              : now->second.first + " (data " + now->second.second.substr(0, 12) + ")";
    const bool same = now != twins.end() && hash != c.metadata.end() && now->second.second == hash->second;
    if (same) continue;
    if (value.rfind("learned:", 0) == 0) {
      throw ConfigError(path + ": the run was trained on " + device + " with twin " + was +
                        ", and the job now gives it " + is + ": resume with the same twin (twin: " +
                        value + ") or start a new run");
    }
    log("note: " + device + " was trained with " + was + " and resumes with " + is);
  }
  if (c.layers.size() != net.layers().size()) {
    throw ConfigError(path + ": checkpoint has " + std::to_string(c.layers.size()) +
                      " layers, the job's network has " + std::to_string(net.layers().size()));
  }
  for (std::size_t i = 0; i < c.layers.size(); ++i) {
    Layer& layer = net.layers()[i];
    const LayerState& s = c.layers[i];
    const std::string serial = layer.is_physical() ? layer.device->spec().serial : "";
    if (s.device_serial != serial) {
      throw ConfigError(path + ": layer " + std::to_string(i) + " was trained on device '" +
                        s.device_serial + "' but the job uses '" + serial +
                        "' (a checkpoint is bound to the device it was trained on)");
    }
    if (s.theta.size() != layer.theta.size()) {
      throw ConfigError(path + ": layer " + std::to_string(i) + " θ size differs from the job's");
    }
    layer.theta = s.theta;
    if (layer.has_model() && s.twin_phi.size() > 0 &&
        layer.model->num_physical_params() == s.twin_phi.size()) {
      layer.model = layer.model->with_physical_params(s.twin_phi);
    }
  }
  trainer.optimizer().set_state(c.optimizer.step, c.optimizer.slots);
  try {
    trainer.rule().set_state(c.rule);
  } catch (const RuleError& e) {
    throw ConfigError(path + ": " + e.what());
  }
  if (auto it = c.metadata.find("hardware_calls"); it != c.metadata.end()) {
    trainer.set_hardware_calls(std::stoll(it->second));
  }
  trainer.set_epochs_done(c.epoch);
}

// training.compute: each physical layer's twin in that precision where the twin has a kernel
// for it; the others keep theirs, said in the log.
void set_twin_compute(Network& net, dt::Precision compute,
                      const std::function<void(const std::string&)>& log) {
  for (auto& layer : net.layers()) {
    if (!layer.device || !layer.model) continue;
    if (auto model = dt::with_compute(layer.model, compute)) {
      layer.model = std::move(model);
      log("twin of " + layer.name + " (" + layer.model->name() + ") computes in " +
          dt::precision_name(compute));
    } else {
      log("note: the twin of " + layer.name + " (" + layer.model->name() + ") has no " +
          dt::precision_name(compute) + " kernel and computes in " +
          dt::precision_name(layer.model->compute()));
    }
  }
}

void set_thetas(Network& net, const std::vector<Vector>& values) {
  for (std::size_t i = 0; i < values.size(); ++i) net.layers()[i].theta = values[i];
}

}  // namespace

Result<JobResult> run_job(const JobConfig& config, const JobCallbacks& callbacks,
                          const JobOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  auto log = [&](const std::string& m) {
    if (callbacks.on_log) callbacks.on_log(m);
  };
  const DatasetSplit data = load_dataset(config.dataset, config.data_options);
  DeviceSet devices(config, options);
  // Up first: configuring may refine a device's spec (identification, tighter limits), and the
  // network copies each device's limit box.
  const std::vector<LayerSummary> planned = planned_layers(config, devices, options.twins);
  check_rule(config, config.training.method, planned);
  if (auto up = devices.bring_up(); !up) return up.error();
  std::map<std::string, dt::ModelPtr> twins = options.twins;
  std::map<std::string, std::pair<std::string, std::string>> provenance = options.twin_provenance;
  if (auto r = resolve_learned_twins(config, devices, twins, provenance, log); !r) return r.error();
  Network net = build_network(config, devices, data.train.x.cols(), data.train.num_classes, twins);
  if (config.compute != dt::Precision::kFloat64) set_twin_compute(net, config.compute, log);

  JobResult result;
  result.name = config.name;
  result.dataset = config.dataset;
  result.split = data.split;
  result.device_serials = devices.serials();
  result.twins = provenance;
  result.threads = dt::num_threads();
  result.compute = dt::precision_name(config.compute);
  const std::filesystem::path out_dir(config.output_dir);
  if (options.write_outputs) {
    std::error_code ec;
    std::filesystem::create_directories(out_dir, ec);
    if (ec) {
      throw ConfigError(config.source + ": output.dir: cannot create " + out_dir.string() + ": " +
                        ec.message() + " (choose a writable directory)");
    }
    result.checkpoint_path = (out_dir / "checkpoint.pnnckpt").string();
    result.plot_path = (out_dir / "training.svg").string();
  }

  if (config.calibrate) {
    const Index n = std::min(config.calibration_samples, data.train.size());
    auto reports = calibrate_twins(net, data.train.x.topRows(n), config.seed);
    if (!reports) return reports.error();
    result.calibration = reports.value();
    for (const auto& r : result.calibration) {
      log("calibrated twin of " + r.layer + " (" + r.serial + "): twin-vs-hardware MSE " +
          std::to_string(r.mse_before) + " -> " + std::to_string(r.mse_after));
      if (r.mock_fit) {
        log("mock fit of " + r.layer + ": spike-count error " +
            std::to_string(r.mock_fit->spike_error_before) + " -> " +
            std::to_string(r.mock_fit->spike_error_after) + " spikes per neuron per input (chip "
            "against itself " + std::to_string(r.mock_fit->spike_error_floor) + ")");
      }
    }
  }
  const std::vector<Vector> initial = net.thetas();

  auto train_phase = [&](Network& network, const RuleConfig& method, const std::string& name,
                         bool checkpoints) -> Result<PhaseResult> {
    TrainOptions topt = config.training;
    topt.method = method;
    bool on_hardware = false, twinned = true;
    for (const auto& l : network.layers()) {
      on_hardware |= l.is_physical();
      twinned &= l.has_model();
    }
    if (on_hardware) topt.eval_mode = Mode::kHardware;  // the deployed accuracy is what matters
    Trainer trainer(network, topt);
    if (checkpoints && options.resume_checkpoint) {
      restore_checkpoint(*options.resume_checkpoint, network, trainer, provenance, log);
      log("resumed from " + *options.resume_checkpoint + " at epoch " + std::to_string(trainer.epochs_done()));
    }
    PhaseResult phase{name, {}, -1.0, -1.0, 0.0};
    const auto t0 = std::chrono::steady_clock::now();
    TrainCallbacks tc;
    tc.on_batch = [&](int epoch, Index b, Index nb, double loss) {
      if (callbacks.on_batch) callbacks.on_batch(name, epoch, topt.epochs, b, nb, loss);
    };
    std::optional<drivers::Error> refit_error;
    auto stop = callbacks.stop_requested;
    tc.stop_requested = [&refit_error, stop] { return refit_error.has_value() || (stop && stop()); };
    tc.on_epoch = [&](const EpochStats& s) {
      if (checkpoints && on_hardware) {  // the main phase on the devices: refit drifted twins
        auto refits = refit_drifted_twins(config, network, s.epoch, provenance);
        if (!refits) {
          refit_error = refits.error();
        } else {
          for (const auto& r : refits.value()) log("refit on drift: " + r);
          result.refits.insert(result.refits.end(), refits.value().begin(), refits.value().end());
        }
      }
      if (checkpoints && options.write_outputs) {
        save_checkpoint(make_checkpoint(config, network, trainer, provenance), result.checkpoint_path);
      }
      if (callbacks.on_epoch) callbacks.on_epoch(name, s, topt.epochs);
    };
    auto history = trainer.fit(data.train, &data.test, tc);
    if (!history) return history.error();
    if (refit_error) return *refit_error;
    phase.history = history.value();
    phase.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    phase.hardware_calls = trainer.hardware_calls();
    phase.thetas = network.thetas();
    if (twinned) {
      auto acc_twin = evaluate(network, data.test, Mode::kTwin);
      if (!acc_twin) return acc_twin.error();
      phase.acc_twin = acc_twin.value();
    }
    if (on_hardware) {
      auto acc_hw = evaluate(network, data.test, Mode::kHardware);
      if (!acc_hw) return acc_hw.error();
      phase.acc_hardware = acc_hw.value();
    }
    return phase;
  };

  const RuleConfig& main_method = config.training.method;
  auto main = train_phase(net, main_method, to_string(main_method), true);
  if (!main) return main.error();
  result.phases.push_back(main.value());
  result.twins = provenance;  // refits on drift may have replaced twins
  const std::vector<Vector> trained = net.thetas();

  // The in-silico baseline, for a rule that trains on the hardware, where every layer has a twin.
  const bool main_on_hardware = !std::holds_alternative<InSilicoConfig>(main_method);
  if (main_on_hardware && config.compare_in_silico && !fits(InSilicoConfig{}, planned)) {
    log("no in-silico comparison: a layer has no twin");
  } else if (main_on_hardware && config.compare_in_silico &&
             !(callbacks.stop_requested && callbacks.stop_requested())) {
    set_thetas(net, initial);
    auto insilico = train_phase(net, InSilicoConfig{}, "in-silico", false);
    set_thetas(net, trained);
    if (!insilico) return insilico.error();
    result.phases.push_back(insilico.value());
  }

  if (config.digital_hidden > 0 && !(callbacks.stop_requested && callbacks.stop_requested())) {
    Network mlp;
    const Index in = data.train.x.cols(), hidden = config.digital_hidden;
    auto a1 = std::make_shared<dt::AffineModel>(in, hidden);
    auto a2 = std::make_shared<dt::AffineModel>(hidden, data.train.num_classes);
    mlp.add_digital("affine", a1, a1->initial_params(config.seed + 101));
    mlp.add_digital("relu", std::make_shared<dt::ActivationModel>(dt::Activation::kRelu, hidden), Vector());
    mlp.add_digital("affine", a2, a2->initial_params(config.seed + 102));
    auto digital = train_phase(mlp, InSilicoConfig{}, "digital", false);
    if (!digital) return digital.error();
    result.phases.push_back(digital.value());
  }

  if (options.write_outputs) {
    Panel acc{"test accuracy", "accuracy", {}}, loss{"training loss", "loss", {}};
    for (const auto& p : result.phases) {
      Series a{p.phase == "pat"         ? "PAT, on hardware"
               : p.phase == "in-silico" ? "in-silico, deployed on hardware"
               : p.phase == "digital"   ? "digital MLP"
                                        : p.phase + ", on hardware",
               {}, {}};
      Series l{p.phase, {}, {}};
      for (const auto& e : p.history) {
        a.x.push_back(e.epoch);
        a.y.push_back(e.test_accuracy);
        l.x.push_back(e.epoch);
        l.y.push_back(e.train_loss);
      }
      acc.series.push_back(std::move(a));
      loss.series.push_back(std::move(l));
    }
    write_text_file_atomic(result.plot_path, render_svg(config.name + " — " + config.dataset, "epoch", {acc, loss}));
  }
  result.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace pnn::training
