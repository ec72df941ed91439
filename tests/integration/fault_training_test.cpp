// Training through simulated boards with faults injected on the wire (docs/config.md, "Fault
// injection"): the run completes with exactly the result of a clean link, or fails cleanly.
#include <doctest/doctest.h>

#include <random>

#include "pnn/digital_twin/digital_layers.hpp"
#include "pnn/drivers/simulated.hpp"
#include "pnn/training/trainer.hpp"

using namespace pnn;
using namespace pnn::training;
namespace dt = pnn::digital_twin;

namespace {

Dataset blobs(Index n, Index features, int classes, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, 0.3);
  Dataset d{"blobs", Matrix(n, features), Eigen::VectorXi(n), classes};
  for (Index i = 0; i < n; ++i) {
    d.labels[i] = static_cast<int>(i % classes);
    for (Index j = 0; j < features; ++j) {
      d.x(i, j) = (j % classes == d.labels[i] ? 1.0 : -0.5) + noise(rng);
    }
  }
  return d;
}

struct Run {
  drivers::SimulatedDevice device;
  Network net;
  Result<std::vector<EpochStats>> history = std::vector<EpochStats>{};
};

void train(Run& run, const std::string& address) {
  run.device = drivers::make_simulated_device(address);
  REQUIRE(run.device.driver->configure());
  REQUIRE(run.device.driver->activate());
  auto& dev = *run.device.driver;
  run.net.add_physical("osc", dev, dev.nominal_twin(), dev.nominal_twin()->initial_params(3));
  run.net.add_digital("slice", std::make_shared<dt::SliceModel>(8, 0, 4, 3.0), Vector());
  TrainOptions options;
  options.epochs = 3;
  options.batch_size = 16;
  options.learning_rate = 0.01;
  Trainer trainer(run.net, options);
  run.history = trainer.fit(blobs(96, 8, 4, 7), nullptr);
}

const std::string kDevice = "sim://mechanical-oscillators?seed=8&n=8&gap=large";

}  // namespace

TEST_CASE("training over a lossy link gives exactly the clean link's result, no batch run twice") {
  Run clean, lossy;
  train(clean, kDevice);
  train(lossy, kDevice + "&faults=drop:0.05,corrupt:0.05,delay_ms:1,seed:4&timeout_ms=25&retries=8");
  REQUIRE(clean.history);
  REQUIRE_MESSAGE(lossy.history, lossy.history.error().message);
  const auto s = lossy.device.firmware->stats();
  CHECK(s.dropped + s.corrupted > 5);  // the faults did happen
  // Bit-identical θ: every batch reached the physics exactly once (same noise stream).
  CHECK((clean.net.layers()[0].theta - lossy.net.layers()[0].theta).norm() == 0.0);
  CHECK(s.runs == clean.device.firmware->stats().runs);
  CHECK(s.samples == clean.device.firmware->stats().samples);
  CHECK(s.limit_violations == 0);
  CHECK(lossy.history.value().back().train_loss == clean.history.value().back().train_loss);
}

TEST_CASE("training on a board that is unplugged mid-run fails cleanly, naming layer and cause") {
  Run run;
  train(run, kDevice + "&faults=unplug_after:40,unplug_ms:100000&timeout_ms=20");
  REQUIRE_FALSE(run.history);
  CHECK(run.history.error().code == drivers::Errc::kIo);
  CHECK(run.history.error().message.find("layer 'osc'") != std::string::npos);
  CHECK(run.history.error().message.find("disconnected") != std::string::npos);
  CHECK(run.device.driver->health() == drivers::Health::kFault);
  CHECK(run.device.firmware->stats().limit_violations == 0);
  CHECK(run.net.layers()[0].theta.allFinite());
}
