// scff-digits and pc-digits: the layer-local rules of issue 14 on the 8×8 digits (split mod4, the
// data set of the other *-digits benchmarks). docs/learning-rules.md has the table.
//   scff-digits  unsupervised SCFF features (duplicate → affine 128→256 → relu), then a linear
//                probe trained on the frozen features; and the optical-FF arrangement (Oguz et al.
//                2023): a fixed simulated physical layer (large-gap oscillators) in front of the
//                same SCFF network, against the same digital network without it.
//   pc-digits    fixed-prediction PC against backprop from the same start (max parameter
//                difference after one epoch), and strict PC's test accuracy; then PAT, fixed
//                and strict PC on the large-gap oscillator network, measured on the devices.
#include <algorithm>

#include "bench_common.hpp"
#include "pnn/digital_twin/digital_layers.hpp"
#include "pnn/digital_twin/parallel.hpp"
#include "pnn/drivers/registry.hpp"
#include "pnn/training/datasets.hpp"
#include "pnn/training/trainer.hpp"

namespace pnn::bench::detail {
namespace {

using nlohmann::json;
namespace dt = digital_twin;
using training::Mode;
using training::Network;

training::TrainOptions adam(const training::RuleConfig& rule, double learning_rate, int epochs,
                            std::uint64_t seed) {
  training::TrainOptions o;
  o.method = rule;
  o.optimizer = "adam";
  o.learning_rate = learning_rate;
  o.batch_size = 32;
  o.epochs = epochs;
  o.seed = seed;
  o.evaluate_each_epoch = false;
  return o;
}

void progress(const BenchOptions& options, const std::string& line) {
  if (options.on_progress) options.on_progress(line);
}

// The feature network after `prefix` (whose output has `width` features): duplicate, affine
// 2·width → hidden, relu, and the readout affine hidden → 10.
void add_scff_layers(Network& net, Index width, Index hidden, std::uint64_t seed) {
  auto a = std::make_shared<dt::AffineModel>(2 * width, hidden);
  auto r = std::make_shared<dt::AffineModel>(hidden, 10);
  net.add_digital("duplicate", std::make_shared<dt::DuplicateModel>(width), Vector());
  net.add_digital("affine", a, a->initial_params(seed + 1));
  net.add_digital("relu", std::make_shared<dt::ActivationModel>(dt::Activation::kRelu, hidden),
                  Vector());
  net.add_digital("readout", r, r->initial_params(seed + 2));
}

struct ScffRun {
  double acc_online = 0.0;  // the readout trained alongside (detached features), measured
  double acc_probe = 0.0;   // the probe trained afterwards on the frozen features
  std::int64_t hardware_calls = 0;
  double seconds = 0.0;
};

// SCFF for `epochs`, then a fresh readout trained on the frozen features for `probe_epochs`.
ScffRun scff_then_probe(Network& net, const training::DatasetSplit& data,
                        const training::ScffConfig& rule, int epochs, int probe_epochs,
                        std::uint64_t seed) {
  const auto t0 = std::chrono::steady_clock::now();
  ScffRun out;
  training::Trainer scff(net, adam(rule, 1e-2, epochs, seed));
  (void)unwrap(scff.fit(data.train, nullptr));
  out.acc_online = unwrap(training::evaluate(net, data.test, Mode::kHardware));
  auto& readout = net.layers().back();
  readout.theta = readout.model->initial_params(seed + 7);
  training::Trainer probe(net, adam(training::ProbeConfig{}, 3e-3, probe_epochs, seed + 1));
  (void)unwrap(probe.fit(data.train, nullptr));
  out.acc_probe = unwrap(training::evaluate(net, data.test, Mode::kHardware));
  out.hardware_calls = scff.hardware_calls() + probe.hardware_calls();
  out.seconds = seconds_since(t0);
  return out;
}

// Supervised FF as Oguz et al. ran it: the label written into 10 padded inputs, which pass with
// the image through the fixed physical layer (when `device`), then affine 74 → hidden, relu, the
// readout. Returns the readout trained alongside and a probe trained afterwards, as ScffRun.
ScffRun ff_labelled(drivers::PhysicalSystem* device, const Vector& theta,
                    const training::DatasetSplit& data, Index hidden, int epochs, int probe_epochs,
                    std::uint64_t seed) {
  const auto t0 = std::chrono::steady_clock::now();
  Network net;
  net.add_digital("pad", std::make_shared<dt::PadModel>(64, 10), Vector());
  if (device != nullptr) net.add_physical("osc", *device, nullptr, theta);
  auto a = std::make_shared<dt::AffineModel>(74, hidden);
  auto r = std::make_shared<dt::AffineModel>(hidden, 10);
  net.add_digital("affine", a, a->initial_params(seed + 1));
  net.add_digital("relu", std::make_shared<dt::ActivationModel>(dt::Activation::kRelu, hidden),
                  Vector());
  net.add_digital("readout", r, r->initial_params(seed + 2));
  training::FfConfig rule;
  rule.train_physical = false;
  ScffRun out;
  training::Trainer ff(net, adam(rule, 1e-2, epochs, seed));
  (void)unwrap(ff.fit(data.train, nullptr));
  out.acc_online = unwrap(training::evaluate(net, data.test, Mode::kHardware));
  net.layers().back().theta = net.layers().back().model->initial_params(seed + 7);
  training::Trainer probe(net, adam(training::ProbeConfig{}, 3e-3, probe_epochs, seed + 1));
  (void)unwrap(probe.fit(data.train, nullptr));
  out.acc_probe = unwrap(training::evaluate(net, data.test, Mode::kHardware));
  out.hardware_calls = ff.hardware_calls() + probe.hardware_calls();
  out.seconds = seconds_since(t0);
  return out;
}

}  // namespace

std::vector<json> scff_digits(const BenchOptions& options) {
  const auto data = training::load_digits();
  const int epochs = options.epochs > 0 ? options.epochs : 30;
  const int probe_epochs = 100;
  const std::uint64_t seed = options.seed;
  const auto t0 = std::chrono::steady_clock::now();
  training::ScffConfig rule;
  rule.threshold = 1.0;

  // (a) Digital SCFF, 256 hidden units.
  Network digital;
  add_scff_layers(digital, 64, 256, seed);
  progress(options, "scff-digits: SCFF 64→256, " + std::to_string(epochs) + " epochs");
  const ScffRun a = scff_then_probe(digital, data, rule, epochs, probe_epochs, seed);

  // (b) Optical FF: a fixed physical layer in front of trained SCFF layers, against the same
  // digital network without it: the large-gap 64-oscillator device at its datasheet θ (the
  // twin's initialisation recipe; no twin is attached, the layer is never differentiated),
  // then the SCFF network of (a); and the same with a narrow hidden layer (32), where a fixed
  // nonlinear layer in front could matter more.
  const std::string address =
      "sim://mechanical-oscillators?seed=" + std::to_string(seed + 1) + "&n=64&gap=large";
  auto device = drivers::make_physical_system(address);
  if (!device->configure() || !device->activate()) {
    throw std::runtime_error(address + ": the device did not start");
  }
  const Vector theta = device->nominal_twin()->initial_params(seed + 3);
  training::ScffConfig fixed = rule;
  fixed.train_physical = false;
  auto optical_run = [&](Index hidden) {
    Network net;
    net.add_physical("osc", *device, nullptr, theta);
    add_scff_layers(net, 64, hidden, seed);
    progress(options,
             "scff-digits: optical FF, fixed oscillators → SCFF 64→" + std::to_string(hidden));
    return scff_then_probe(net, data, fixed, epochs, probe_epochs, seed);
  };
  const ScffRun b = optical_run(256);
  const ScffRun b32 = optical_run(32);
  Network narrow;
  add_scff_layers(narrow, 64, 32, seed);
  progress(options, "scff-digits: SCFF 64→32 without the physical layer");
  const ScffRun c32 = scff_then_probe(narrow, data, rule, epochs, probe_epochs, seed);

  // (c) The same with supervised FF, the label passing through the fixed layer (74 oscillators:
  // 64 pixels + 10 label inputs), against the same FF network without the physical layer.
  const std::string address_ff =
      "sim://mechanical-oscillators?seed=" + std::to_string(seed + 1) + "&n=74&gap=large";
  auto device_ff = drivers::make_physical_system(address_ff);
  if (!device_ff->configure() || !device_ff->activate()) {
    throw std::runtime_error(address_ff + ": the device did not start");
  }
  progress(options, "scff-digits: optical FF (supervised), fixed 74 oscillators → FF 74→256");
  const ScffRun d =
      ff_labelled(device_ff.get(), device_ff->nominal_twin()->initial_params(seed + 3), data, 256,
                  epochs, probe_epochs, seed);
  progress(options, "scff-digits: the same FF 74→256 without the physical layer");
  const ScffRun e = ff_labelled(nullptr, Vector(), data, 256, epochs, probe_epochs, seed);

  json j{{"name", "scff-digits"},
         {"dataset", "digits"},
         {"split", data.split},
         {"seed", seed},
         {"acc_scff_probe", a.acc_probe},
         {"acc_scff_online", a.acc_online},
         {"hidden", 256},
         {"epochs", epochs},
         {"probe_epochs", probe_epochs},
         {"threshold", rule.threshold},
         {"wall_s_scff", a.seconds},
         {"optical_device", address},
         // the fixed physical layer is measured on the (simulated) hardware: *_reality
         {"acc_scff_optical_reality", b.acc_probe},
         {"acc_scff_optical_online_reality", b.acc_online},
         {"hardware_calls", b.hardware_calls},
         {"acc_scff_optical32_reality", b32.acc_probe},
         {"acc_scff_digital32_probe", c32.acc_probe},
         {"hardware_calls_optical32", b32.hardware_calls},
         {"wall_s_optical", b.seconds},
         {"optical_device_ff", address_ff},
         {"acc_ff_optical_reality", d.acc_online},
         {"acc_ff_optical_probe_reality", d.acc_probe},
         {"hardware_calls_ff_optical", d.hardware_calls},
         {"acc_ff_digital", e.acc_online},
         {"acc_ff_digital_probe", e.acc_probe},
         {"wall_s", seconds_since(t0)},
         {"threads", dt::num_threads()}};
  return {j};
}

std::vector<json> pc_digits(const BenchOptions& options) {
  const auto data = training::load_digits();
  const std::uint64_t seed = options.seed;
  const auto t0 = std::chrono::steady_clock::now();
  // 64 → 64 → tanh → 64 → relu → 10: five layers, four latents.
  auto make = [&] {
    Network net;
    auto a1 = std::make_shared<dt::AffineModel>(64, 64);
    auto a2 = std::make_shared<dt::AffineModel>(64, 64);
    auto a3 = std::make_shared<dt::AffineModel>(64, 10);
    net.add_digital("a1", a1, a1->initial_params(seed + 1));
    net.add_digital("tanh", std::make_shared<dt::ActivationModel>(dt::Activation::kTanh, 64),
                    Vector());
    net.add_digital("a2", a2, a2->initial_params(seed + 2));
    net.add_digital("relu", std::make_shared<dt::ActivationModel>(dt::Activation::kRelu, 64),
                    Vector());
    net.add_digital("a3", a3, a3->initial_params(seed + 3));
    return net;
  };
  auto max_diff = [](const std::vector<Vector>& a, const std::vector<Vector>& b) {
    double m = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (a[i].size() > 0) m = std::max(m, (a[i] - b[i]).cwiseAbs().maxCoeff());
    return m;
  };
  // One epoch each from the same start: backprop (the in-silico rule) and fixed-prediction PC.
  Network bp = make(), pc = make();
  const std::vector<Vector> start = bp.thetas();
  (void)unwrap(training::Trainer(bp, adam(training::InSilicoConfig{}, 3e-3, 1, seed))
                   .fit(data.train, nullptr));
  (void)unwrap(
      training::Trainer(pc, adam(training::PcConfig{}, 3e-3, 1, seed)).fit(data.train, nullptr));
  const double diff = max_diff(bp.thetas(), pc.thetas());
  const double moved = max_diff(bp.thetas(), start);

  // Accuracy after `epochs`: backprop, fixed PC, strict PC (η = 0.1, T = 20: Rosenbaum's).
  const int epochs = options.epochs > 0 ? options.epochs : 40;
  auto trained = [&](const training::RuleConfig& rule) {
    Network net = make();
    const auto t = std::chrono::steady_clock::now();
    (void)unwrap(training::Trainer(net, adam(rule, 3e-3, epochs, seed)).fit(data.train, nullptr));
    return std::pair{unwrap(training::evaluate(net, data.test, Mode::kTwin)), seconds_since(t)};
  };
  training::PcConfig strict;
  strict.variant = training::PcConfig::Variant::kStrict;
  strict.iterations = 20;
  strict.inference_rate = 0.1;
  progress(options,
           "pc-digits: backprop, fixed PC, strict PC, " + std::to_string(epochs) + " epochs");
  const auto [acc_bp, s_bp] = trained(training::InSilicoConfig{});
  const auto [acc_fixed, s_fixed] = trained(training::PcConfig{});
  const auto [acc_strict, s_strict] = trained(strict);

  // Physical layers: the pat-oscillator-digits network on the large-gap devices, PAT against
  // fixed PC (40 epochs each, same start) and strict PC (T = 10, η = 0.2, 15 epochs: each
  // inference step runs osc-b, the layer above the first, on its device).
  auto on_oscillators = [&](const training::RuleConfig& rule, int osc_epochs) {
    training::JobConfig c =
        oscillator_job("pc-digits-oscillators", "digits", "large", osc_epochs, seed, 8);
    c.training.method = rule;
    c.compare_in_silico = false;
    c.digital_hidden = 0;
    progress(options, "pc-digits: " + training::to_string(rule) + " on the large-gap oscillators");
    return run_job_quietly(c, "large", options).phases.front();
  };
  training::PcConfig strict_osc;
  strict_osc.variant = training::PcConfig::Variant::kStrict;
  strict_osc.iterations = 10;
  strict_osc.inference_rate = 0.2;
  const training::PhaseResult osc_pat = on_oscillators(training::PatConfig{}, 40);
  const training::PhaseResult osc_fixed = on_oscillators(training::PcConfig{}, 40);
  const training::PhaseResult osc_strict = on_oscillators(strict_osc, 15);
  json j{{"name", "pc-digits"},
         {"dataset", "digits"},
         {"split", data.split},
         {"seed", seed},
         {"max_param_diff_fixed_vs_backprop", diff},
         {"max_param_change_one_epoch", moved},
         {"acc_backprop", acc_bp},
         {"acc_pc_fixed", acc_fixed},
         {"acc_pc_strict", acc_strict},
         {"strict_iterations", strict.iterations},
         {"strict_inference_rate", strict.inference_rate},
         {"epochs", epochs},
         {"wall_s_backprop", s_bp},
         {"wall_s_pc_fixed", s_fixed},
         {"wall_s_pc_strict", s_strict},
         {"acc_pat_reality", osc_pat.acc_hardware},
         {"acc_pc_fixed_reality", osc_fixed.acc_hardware},
         {"hardware_calls_fixed", osc_fixed.hardware_calls},
         {"acc_pc_strict_reality", osc_strict.acc_hardware},
         {"hardware_calls", osc_strict.hardware_calls},
         {"epochs_strict_reality", 15},
         {"wall_s_pc_strict_reality", osc_strict.seconds},
         {"wall_s", seconds_since(t0)},
         {"threads", dt::num_threads()}};
  return {j};
}

}  // namespace pnn::bench::detail
