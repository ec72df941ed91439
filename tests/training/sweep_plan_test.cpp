// Sweep plans (training/src/sweep_plan.cpp): grid order, explicit and seeded random trials,
// the trial configs, licences of physical setups, the sweep id, and every error naming the
// plan's file and line.
#include <doctest/doctest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "pnn/training/job.hpp"
#include "pnn/training/sweep_plan.hpp"
#include "test_util.hpp"

using namespace pnn::training;

namespace {

std::string base_config() {
  std::ifstream in(std::string(PNN_SOURCE_DIR) + "/tests/data/sweep-tiny.yaml");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

struct PlanFiles {
  pnn::test::TempDir dir{"pnn-sweep-plan", pnn::test::TempDir::in_memory()};
  PlanFiles() { write("base.yaml", base_config()); }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(dir.file(name)) << text;
  }
  SweepPlan load(const std::string& plan) const {
    write("plan.yaml", plan);
    return load_sweep_plan(dir.file("plan.yaml"), "/sweeps/x");
  }
  std::string error(const std::string& plan) const {
    try {
      (void)load(plan);
    } catch (const ConfigError& e) {
      return e.what();
    }
    FAIL("the plan was accepted: " << plan);
    return "";
  }
};

std::string param(const SweepTrial& t, const std::string& key) {
  for (const auto& [k, v] : t.params) {
    if (k == key) return v;
  }
  return "";
}

}  // namespace

TEST_CASE("a grid is the cartesian product, first key slowest, explicit trials after it") {
  const PlanFiles f;
  const auto plan = f.load(
      "name: g\nbase: base.yaml\ngrid:\n  seed: [0, 1]\n  training.learning_rate: [0.001, 0.01, 0.1]\n"
      "trials:\n  - {training.method: {name: mgd}}\n");
  REQUIRE(plan.trials.size() == 7);
  CHECK(plan.name == "g");
  CHECK(param(plan.trials[0], "seed") == "0");
  CHECK(param(plan.trials[2], "training.learning_rate") == "0.1");
  CHECK(param(plan.trials[3], "seed") == "1");
  CHECK(param(plan.trials[3], "training.learning_rate") == "0.001");
  CHECK(param(plan.trials[6], "training.method") == "{name: mgd}");
  for (const auto& t : plan.trials) CHECK(t.licenses.empty());
  // Each trial's config is a job config with its values and its own output directory.
  const JobConfig c = parse_job_config(plan.trials[5].config_yaml, "t5");
  CHECK(c.seed == 1);
  CHECK(c.training.learning_rate == doctest::Approx(0.1));
  CHECK(c.output_dir == "/sweeps/x/trials/005/run");
  CHECK(std::holds_alternative<MgdConfig>(
      parse_job_config(plan.trials[6].config_yaml, "t6").training.method));
}

TEST_CASE("a seeded random plan is the same for the same seed and within its bounds") {
  const PlanFiles f;
  const std::string plan =
      "name: r\nbase: base.yaml\nrandom:\n  trials: 20\n  seed: SEED\n  keys:\n"
      "    training.learning_rate: {log_uniform: [1e-4, 1e-1]}\n    training.momentum: {uniform: [0, 0.9]}\n"
      "    seed: {int: [3, 5]}\n    training.optimizer: {choice: [adam, sgd]}\n";
  const auto a = f.load(pnn::test::replaced(plan, "SEED", "7"));
  const auto b = f.load(pnn::test::replaced(plan, "SEED", "7"));
  const auto c = f.load(pnn::test::replaced(plan, "SEED", "8"));
  REQUIRE(a.trials.size() == 20);
  CHECK(a.sweep_id == b.sweep_id);
  CHECK(a.sweep_id != c.sweep_id);
  bool differs = false;
  std::set<std::string> seeds, optimizers;
  for (std::size_t k = 0; k < a.trials.size(); ++k) {
    CHECK(a.trials[k].params == b.trials[k].params);
    differs = differs || a.trials[k].params != c.trials[k].params;
    const double lr = std::stod(param(a.trials[k], "training.learning_rate"));
    CHECK(lr >= 1e-4);
    CHECK(lr <= 1e-1);
    const double m = std::stod(param(a.trials[k], "training.momentum"));
    CHECK(m >= 0.0);
    CHECK(m <= 0.9);
    seeds.insert(param(a.trials[k], "seed"));
    optimizers.insert(param(a.trials[k], "training.optimizer"));
  }
  CHECK(differs);
  CHECK(seeds == std::set<std::string>{"3", "4", "5"});  // both ends included
  CHECK(optimizers == std::set<std::string>{"adam", "sgd"});
}

TEST_CASE("trials on a physical setup carry its licence, simulated ones none") {
  const PlanFiles f;
  const std::vector<SweepTrial> trials =
      f.load("base: base.yaml\ngrid:\n  devices.osc: [\"sim://mechanical-oscillators?seed=1&n=4\", "
             "\"tcp://10.0.0.5:5025\", \"usbtmc://0957:1796\"]\nlicenses:\n  osc: bench-a\n")
          .trials;
  REQUIRE(trials.size() == 3);
  CHECK(trials[0].licenses.empty());
  CHECK(trials[1].licenses == std::vector<std::string>{"bench-a"});
  CHECK(trials[2].licenses == std::vector<std::string>{"bench-a"});
  // Without a licences entry the device's name is the licence.
  CHECK(f.load("base: base.yaml\ntrials:\n  - {devices.osc: \"tcp://10.0.0.5:5025\"}\n")
            .trials[0].licenses == std::vector<std::string>{"osc"});
}

TEST_CASE("the sweep id follows the trials, not the sweep directory") {
  const PlanFiles f;
  const std::string text = "name: s\nbase: base.yaml\ngrid:\n  seed: [0, 1]\n";
  f.write("plan.yaml", text);
  const auto a = load_sweep_plan(f.dir.file("plan.yaml"), "/one");
  const auto b = load_sweep_plan(f.dir.file("plan.yaml"), "/two");
  CHECK(a.sweep_id == b.sweep_id);
  CHECK(a.sweep_id.size() == 16);
  CHECK(f.load("name: s\nbase: base.yaml\ngrid:\n  seed: [0, 2]\n").sweep_id != a.sweep_id);
  CHECK(trial_dir_name(7, trial_dir_width(8)) == "007");
  CHECK(trial_dir_name(1234, trial_dir_width(2000)) == "1234");
}

TEST_CASE("plan errors name the plan file, the line and the fix") {
  const PlanFiles f;
  const std::string plan = f.dir.file("plan.yaml");
  auto has = [](const std::string& error, const std::string& needle) {
    INFO(error);
    CHECK(error.find(needle) != std::string::npos);
  };
  std::string e = f.error("base: base.yaml\ngrid:\n  training.learnin_rate: [0.1]\n");
  has(e, plan + ":3:");
  has(e, "learnin_rate");
  e = f.error("base: base.yaml\ngrid:\n  trainin.learning_rate: [0.1]\n");
  has(e, plan + ":3:");
  has(e, "'trainin' is not in the base config");
  e = f.error("base: base.yaml\ngrid:\n  network[7].physical: [osc]\n");
  has(e, "the list has 3 entries");
  e = f.error("base: base.yaml\ngrid:\n  network[x].physical: [osc]\n");
  has(e, "KEY[INDEX].KEY");
  has(f.error("base: base.yaml\ngrid:\n  seed: []\n"), plan + ":3:");
  has(f.error("base: base.yaml\ngrid:\n  seed: 4\n"), "non-empty list of values");
  has(f.error("base: base.yaml\ngrid: []\n"), "non-empty mapping");
  e = f.error("base: base.yaml\ngrid:\n  training.learning_rate:\n    - 0.01\n    - -1\n");
  has(e, plan + ":5:");  // the value the job-config parser refuses
  has(e, "trial 1 (training.learning_rate=-1)");
  has(e, "must be > 0");
  has(f.error("base: nosuch.yaml\ngrid:\n  seed: [1]\n"), "relative to the plan file");
  has(f.error("base: base.yaml\ngrid:\n  seed: [1\n"), "YAML syntax error");
  has(f.error("grid:\n  seed: [1]\n"), "base: required");
  has(f.error("base: base.yaml\n"), "no trials");
  has(f.error("base: base.yaml\ngrid: {seed: [1]}\nrandom: {trials: 1, keys: {seed: {int: [0, 1]}}}\n"),
      "not both");
  e = f.error("base: base.yaml\nrandom:\n  trials: 2\n  keys:\n    seed: {int: [0.5, 2]}\n");
  has(e, plan + ":5:");
  has(e, "whole numbers");
  has(f.error("base: base.yaml\nrandom:\n  trials: 2\n  keys:\n    training.learning_rate: {log_uniform: [0, 1]}\n"),
      "LOW > 0");
  has(f.error("base: base.yaml\nrandom:\n  trials: [2]\n  keys:\n    seed: {int: [0, 1]}\n"), plan + ":3:");
  has(f.error("base: base.yaml\nslurm: {max_parallel: many}\ngrid: {seed: [1]}\n"), "whole numbers");
  // An invalid base config is reported as such, with its own file and line.
  f.write("base.yaml", pnn::test::replaced(base_config(), "epochs: 2", "epochs: -1"));
  e = f.error("base: base.yaml\ngrid:\n  seed: [1]\n");
  has(e, "the base job config is invalid");
  has(e, "sweep-plan");  // the base's own path
  has(e, "base.yaml:13:");
}
