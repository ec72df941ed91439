// spdnn-digits: a 64-100-10 network whose 100-neuron hidden layer is the single-photon-detection
// layer (PHYSICS.md "Optical (b)"), digital readout 100→10, one shot per inference.
//
// Built from the training pieces directly rather than through run_job, because the figure of
// merit besides accuracy, detected photons per multiply-accumulate, needs the trained weights:
// photons_per_mac = mean over test samples of Σ_i η λ_i / (inputs · neurons), with λ = N_ph |Wx|
// and η the detector efficiency the calibration fitted (what a lab would know; the simulator's
// true per-pixel efficiencies are not reachable from here). incident_photons_per_mac is the same
// without η: the light arriving at the detectors, the optical-energy figure papers usually quote.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include "bench_common.hpp"
#include "pnn/digital_twin/digital_layers.hpp"
#include "pnn/digital_twin/parallel.hpp"
#include "pnn/digital_twin/single_photon.hpp"
#include "pnn/drivers/registry.hpp"

namespace pnn::bench::detail {
namespace {

namespace dt = pnn::digital_twin;
using training::Mode;

constexpr Index kHidden = 100;
/// Mean photons at a detector per unit |Wx| (the source power): the smallest budget of 1, 2, 3, 5
/// that kept one-shot PAT accuracy ≥ 95 % over seeds 0–3 (docs/setups/optical.md).
constexpr int kPhotonsPerUnit = 3;
/// Independent one-shot passes over the test set: each inference is one shot, and the mean over
/// passes narrows the ±1 % sampling error of a single pass over 449 samples.
constexpr int kTestPasses = 10;

void check(const drivers::Result<void>& r) {
  if (!r) throw std::runtime_error(r.error().message);
}

struct Phase {
  double acc_reality = -1.0;      ///< mean over kTestPasses one-shot passes
  double acc_reality_std = -1.0;  ///< spread of single passes
  double acc_twin = -1.0;
};

Phase train_phase(training::Network& net, const training::RuleConfig& method, int epochs,
                  std::uint64_t seed, const training::DatasetSplit& data,
                  const BenchOptions& options, const std::string& name) {
  training::TrainOptions topt;
  topt.method = method;
  topt.learning_rate = 3e-3;
  topt.batch_size = 32;
  topt.epochs = epochs;
  topt.seed = seed;
  topt.evaluate_each_epoch = false;
  training::Trainer trainer(net, topt);
  training::TrainCallbacks cb;
  if (options.on_progress) {
    cb.on_epoch = [&](const training::EpochStats& s) {
      options.on_progress("spdnn-digits " + name + " epoch " + std::to_string(s.epoch) + "/" +
                          std::to_string(epochs) + " loss " + std::to_string(s.train_loss));
    };
  }
  unwrap(trainer.fit(data.train, nullptr, cb));
  // A last quarter at a tenth of the rate (fresh Adam state): settles θ under the click noise.
  training::TrainOptions fine_options = topt;
  fine_options.learning_rate = 0.1 * topt.learning_rate;
  fine_options.epochs = std::max(1, epochs / 4);
  fine_options.seed = seed + 17;
  training::Trainer fine(net, fine_options);
  unwrap(fine.fit(data.train, nullptr, {}));

  Phase p;
  p.acc_twin = unwrap(training::evaluate(net, data.test, Mode::kTwin));
  bool physical = false;
  for (const auto& l : net.layers()) physical |= l.is_physical();
  if (physical) {
    double sum = 0.0, sum2 = 0.0;
    for (int pass = 0; pass < kTestPasses; ++pass) {
      const double a = unwrap(training::evaluate(net, data.test, Mode::kHardware));
      sum += a;
      sum2 += a * a;
    }
    p.acc_reality = sum / kTestPasses;
    p.acc_reality_std =
        std::sqrt(std::max(0.0, sum2 / kTestPasses - p.acc_reality * p.acc_reality));
  }
  return p;
}

}  // namespace

std::vector<nlohmann::json> spdnn_digits(const BenchOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  const int epochs = options.epochs > 0 ? options.epochs : 80;
  const std::uint64_t seed = options.seed;
  const training::DatasetSplit data = training::load_dataset("digits");
  const Index inputs = data.train.x.cols();
  const std::string address =
      "sim://optical-spd?inputs=" + std::to_string(inputs) + "&outputs=" + std::to_string(kHidden) +
      "&photons=" + std::to_string(kPhotonsPerUnit) + "&seed=" + std::to_string(seed + 1);
  drivers::PhysicalSystemPtr device = drivers::make_physical_system(address);
  struct Shutdown {
    drivers::PhysicalSystem& d;
    ~Shutdown() { d.shutdown(); }
  } shutdown{*device};
  check(device->configure());
  check(device->activate());

  training::Network net;
  const dt::ModelPtr twin = device->nominal_twin();
  net.add_physical("spd", *device, twin, twin->initial_params(seed * 7919));
  auto readout = std::make_shared<dt::AffineModel>(kHidden, data.train.num_classes);
  net.add_digital("readout", readout, readout->initial_params(seed * 7919 + 1));

  // Calibrate η and p_d of the twin on the device (click statistics of a probe batch).
  const auto reports = unwrap(training::calibrate_twins(net, data.train.x.topRows(256), seed));
  const Vector phi = net.layers()[0].model->physical_params();
  std::vector<Vector> initial;
  for (const auto& l : net.layers()) initial.push_back(l.theta);

  const auto t_pat = std::chrono::steady_clock::now();
  const Phase pat = train_phase(net, training::PatConfig{}, epochs, seed, data, options, "pat");
  const double pat_seconds = seconds_since(t_pat);
  // Detected photons per MAC of the PAT-trained layer on the test set.
  const auto* spd = dynamic_cast<const dt::SinglePhotonModel*>(net.layers()[0].model.get());
  if (spd == nullptr) throw std::logic_error("spdnn-digits: the physical layer's twin is not SPD");
  const Matrix incident = spd->photons(data.test.x, net.layers()[0].theta);
  const double photons_per_neuron = phi[0] * incident.mean();
  const double photons_per_mac = photons_per_neuron / static_cast<double>(inputs);
  const double incident_per_mac = incident.mean() / static_cast<double>(inputs);

  for (std::size_t i = 0; i < initial.size(); ++i) net.layers()[i].theta = initial[i];
  const Phase insilico =
      train_phase(net, training::InSilicoConfig{}, epochs, seed, data, options, "in-silico");

  training::Network mlp;
  auto a1 = std::make_shared<dt::AffineModel>(inputs, kHidden);
  auto a2 = std::make_shared<dt::AffineModel>(kHidden, data.train.num_classes);
  mlp.add_digital("affine", a1, a1->initial_params(seed + 101));
  mlp.add_digital("relu", std::make_shared<dt::ActivationModel>(dt::Activation::kRelu, kHidden),
                  Vector());
  mlp.add_digital("affine", a2, a2->initial_params(seed + 102));
  const Phase digital =
      train_phase(mlp, training::InSilicoConfig{}, epochs, seed, data, options, "digital");

  return {nlohmann::json{{"name", "spdnn-digits"},
                         {"dataset", "digits"},
                         {"split", data.split},
                         {"seed", seed},
                         {"shots_per_inference", 1},
                         {"test_passes", kTestPasses},
                         {"photons_per_unit", kPhotonsPerUnit},
                         {"acc_pat_reality", pat.acc_reality},
                         {"acc_pat_reality_std", pat.acc_reality_std},
                         {"acc_pat_twin", pat.acc_twin},
                         {"acc_insilico_reality", insilico.acc_reality},
                         {"acc_insilico_reality_std", insilico.acc_reality_std},
                         {"acc_twin", insilico.acc_twin},
                         {"acc_digital", digital.acc_twin},
                         {"photons_per_mac", photons_per_mac},
                         {"incident_photons_per_mac", incident_per_mac},
                         {"detected_photons_per_neuron", photons_per_neuron},
                         {"efficiency_calibrated", phi[0]},
                         {"dark_probability_calibrated", phi[1]},
                         {"calib_mse_before", reports.front().mse_before},
                         {"calib_mse_after", reports.front().mse_after},
                         {"epochs", epochs},
                         {"fine_tune_epochs", std::max(1, epochs / 4)},
                         {"s_per_epoch_pat", pat_seconds / std::max(1, epochs)},
                         {"wall_s", seconds_since(t0)},
                         {"threads", dt::num_threads()}}};
}

}  // namespace pnn::bench::detail
