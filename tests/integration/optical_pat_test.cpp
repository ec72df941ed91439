// Small, deterministic end-to-end runs of the optical setups: PAT against in-silico training on
// the simulated SHG instrument, and one-shot PAT on the single-photon layer. Everything is seeded
// (devices by serial, training by seed), so these either pass or fail every time.
#include <doctest/doctest.h>

#include "pnn/training/job.hpp"

using namespace pnn;
using namespace pnn::training;

namespace {

JobConfig hybrid_shg_job(const std::string& gap) {
  JobConfig c;
  c.source = "optical_pat_test";
  c.name = "shg-small";
  c.seed = 1;
  c.dataset = "digits";
  c.data_options.max_train = 600;
  c.devices = {{"shg", "sim://optical-shg?inputs=16&params=16&outputs=16&seed=3&gap=" + gap}};
  c.network = {{LayerSpec::Kind::kAffine, "", 16},
               {LayerSpec::Kind::kActivation, "", 0, 0, 1.0, "sigmoid"},
               {LayerSpec::Kind::kPhysical, "shg"},
               {LayerSpec::Kind::kAffine, "", 10}};
  c.training.method = PatConfig{};
  c.training.learning_rate = 1e-2;
  c.training.batch_size = 32;
  c.training.epochs = 40;
  c.training.seed = 1;
  c.training.evaluate_each_epoch = false;
  c.calibrate = true;
  c.compare_in_silico = true;
  return c;
}

}  // namespace

TEST_CASE("optical SHG hidden layer: PAT beats in-silico on the device when the twin is wrong") {
  const auto r = run_job(hybrid_shg_job("large"), {}, {.write_outputs = false});
  REQUIRE(r);
  const PhaseResult* pat = r.value().phase("pat");
  const PhaseResult* insilico = r.value().phase("in-silico");
  REQUIRE(pat != nullptr);
  REQUIRE(insilico != nullptr);
  INFO("PAT on device " << pat->acc_hardware << ", in-silico on device " << insilico->acc_hardware
                        << ", in-silico on twin " << insilico->acc_twin);
  CHECK(pat->acc_hardware > 0.80);
  CHECK(pat->acc_hardware > insilico->acc_hardware + 0.05);
  // The in-silico network is good on the twin: its loss on the device is the sim-to-real gap.
  CHECK(insilico->acc_twin > insilico->acc_hardware + 0.05);

  // Control: with the small gap the same in-silico training transfers to the device.
  const auto small = run_job(hybrid_shg_job("small"), {}, {.write_outputs = false});
  REQUIRE(small);
  const PhaseResult* insilico_small = small.value().phase("in-silico");
  REQUIRE(insilico_small != nullptr);
  INFO("in-silico on the small-gap device " << insilico_small->acc_hardware);
  CHECK(insilico_small->acc_hardware > insilico->acc_hardware + 0.05);
  CHECK(insilico_small->acc_hardware > insilico_small->acc_twin - 0.03);
}

TEST_CASE("single-photon hidden layer: one-shot PAT learns digits through click noise") {
  JobConfig c;
  c.source = "optical_pat_test";
  c.name = "spd-small";
  c.seed = 2;
  c.dataset = "digits";
  c.data_options.max_train = 600;
  c.devices = {{"spd", "sim://optical-spd?inputs=64&outputs=100&photons=3&seed=4"}};
  c.network = {{LayerSpec::Kind::kPhysical, "spd"}, {LayerSpec::Kind::kAffine, "", 10}};
  c.training.method = PatConfig{};
  c.training.learning_rate = 1e-2;
  c.training.epochs = 30;
  c.training.seed = 2;
  c.training.evaluate_each_epoch = false;
  c.calibrate = true;
  c.compare_in_silico = false;
  const auto r = run_job(c, {}, {.write_outputs = false});
  REQUIRE(r);
  const PhaseResult* pat = r.value().phase("pat");
  REQUIRE(pat != nullptr);
  INFO("PAT one-shot on device " << pat->acc_hardware << ", on twin " << pat->acc_twin);
  CHECK(pat->acc_hardware > 0.85);
  REQUIRE(r.value().calibration.size() == 1);
  CHECK(r.value().calibration.front().phi[0] < 0.9);  // fitted η < 1: the detectors lose photons
}
