// Small, deterministic end-to-end runs of the spintronic setups: PAT on the simulated STNO
// recurrent network (sequential digits), and PAT against in-silico training on the simulated MTJ
// RF synapse chips. Devices are seeded by serial and training by seed: pass or fail every time.
#include <doctest/doctest.h>

#include "pnn/training/job.hpp"

using namespace pnn;
using namespace pnn::training;

TEST_CASE("STNO recurrent network: PAT learns sequential digits through thermal noise") {
  JobConfig c;
  c.source = "spintronic_pat_test";
  c.name = "stno-small";
  c.seed = 1;
  c.dataset = "digits";
  c.data_options.max_train = 500;
  c.devices = {{"stno", "sim://stno-rnn?neurons=24&steps=8&inputs=8&seed=2"}};
  c.network = {{LayerSpec::Kind::kPhysical, "stno"}, {LayerSpec::Kind::kAffine, "", 10}};
  c.training.method = PatConfig{};
  c.training.learning_rate = 0.1;
  c.training.epochs = 30;
  c.training.seed = 1;
  c.training.evaluate_each_epoch = false;
  c.compare_in_silico = false;
  const auto r = run_job(c, {}, {.write_outputs = false});
  REQUIRE(r);
  const PhaseResult* pat = r.value().phase("pat");
  REQUIRE(pat != nullptr);
  INFO("PAT on device " << pat->acc_hardware << ", on twin " << pat->acc_twin);
  CHECK(pat->acc_hardware > 0.70);
  CHECK(pat->history.back().train_loss < pat->history.front().train_loss);
}

TEST_CASE("MTJ RF synapse chains: PAT beats in-silico on a chip with resonance offsets") {
  JobConfig c;
  c.source = "spintronic_pat_test";
  c.name = "mtj-small";
  c.seed = 3;
  c.dataset = "digits";
  c.data_options.max_train = 600;
  c.devices = {{"mtj", "sim://mtj-rf?inputs=16&chains=16&offset_mhz=8&seed=4"}};
  c.network = {{LayerSpec::Kind::kAffine, "", 16},
               {LayerSpec::Kind::kActivation, "", 0, 0, 1.0, "sigmoid"},
               {LayerSpec::Kind::kPhysical, "mtj"},
               {LayerSpec::Kind::kAffine, "", 10}};
  c.training.method = PatConfig{};
  c.training.learning_rate = 1e-2;
  c.training.epochs = 50;
  c.training.seed = 3;
  c.training.evaluate_each_epoch = false;
  c.compare_in_silico = true;
  const auto r = run_job(c, {}, {.write_outputs = false});
  REQUIRE(r);
  const PhaseResult* pat = r.value().phase("pat");
  const PhaseResult* insilico = r.value().phase("in-silico");
  REQUIRE(pat != nullptr);
  REQUIRE(insilico != nullptr);
  INFO("PAT on chip " << pat->acc_hardware << ", in-silico on chip " << insilico->acc_hardware
                      << ", in-silico on twin " << insilico->acc_twin);
  CHECK(pat->acc_hardware > 0.80);
  CHECK(pat->acc_hardware > insilico->acc_hardware + 0.03);
}
