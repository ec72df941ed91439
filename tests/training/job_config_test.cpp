// The job config reader (training/src/job_config.cpp): a value of the wrong type anywhere, or a
// non-finite number, is a ConfigError naming the file, the line, the key and what was expected;
// no yaml-cpp exception escapes (pnnd would answer INTERNAL instead of INVALID_ARGUMENT).
#include <doctest/doctest.h>

#include <string>

#include "pnn/training/job.hpp"
#include "test_util.hpp"

using namespace pnn::training;

namespace {

// Lines: 1 name, 2 seed, 3 data, 4 devices, 5 osc-a, 6 network, 7 physical, 8 slice,
// 9 training, 10 compare.
const char* kGood = R"(name: typed
seed: 3
data: {name: digits}
devices:
  osc-a: sim://mechanical-oscillators?seed=1&n=64
network:
  - physical: osc-a
  - slice: {first: 54, count: 10, gain: 3.0}
training: {epochs: 1, batch_size: 64, learning_rate: 0.01, momentum: 0.5, optimizer: sgd}
compare: {in_silico: false}
)";

std::string with(const std::string& from, const std::string& to) {
  return pnn::test::replaced(kGood, from, to);
}

// The ConfigError's message for `yaml` (fails the test if something else, or nothing, is thrown).
std::string error_of(const std::string& yaml) {
  try {
    (void)parse_job_config(yaml, "job.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("not a ConfigError: " << e.what());
    return "";
  }
  FAIL("no error for:\n" << yaml);
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

struct Case {
  std::string from, to;
  std::string where;     ///< "job.yaml:N: 'key'"
  std::string expected;  ///< what the message says was expected and what was there
};

void check_cases(const std::vector<Case>& cases) {
  for (const Case& k : cases) {
    CAPTURE(k.to);
    const std::string e = error_of(with(k.from, k.to));
    INFO(e);
    CHECK(contains(e, k.where));
    CHECK(contains(e, k.expected));
  }
}

}  // namespace

TEST_CASE("job config: the typed example parses") {
  const JobConfig c = parse_job_config(kGood, "job.yaml");
  CHECK(c.training.learning_rate == 0.01);
  CHECK(c.training.momentum == 0.5);
  CHECK(c.network[1].gain == 3.0);
}

TEST_CASE("job config: training.compute is float64 by default, float32 on request, else refused") {
  CHECK(parse_job_config(kGood, "job.yaml").compute == pnn::digital_twin::Precision::kFloat64);
  CHECK(parse_job_config(with("optimizer: sgd}", "optimizer: sgd, compute: float32}"), "job.yaml").compute ==
        pnn::digital_twin::Precision::kFloat32);
  const std::string e = error_of(with("optimizer: sgd}", "optimizer: sgd, compute: half}"));
  CHECK(contains(e, "job.yaml:9"));
  CHECK(contains(e, "training.compute"));
  CHECK(contains(e, "use float64 or float32"));
}

TEST_CASE("job config: a list or mapping where a scalar is expected names file, line, key, type") {
  check_cases({
      {"learning_rate: 0.01", "learning_rate: {value: 0.01}",
       "job.yaml:9: 'training.learning_rate'", "expected a number, got a mapping"},
      {"momentum: 0.5", "momentum: [0.5]", "job.yaml:9: 'training.momentum'",
       "expected a number, got a list"},
      {"epochs: 1", "epochs: [1, 2]", "job.yaml:9: 'training.epochs'",
       "expected a whole number, got a list"},
      {"name: typed", "name: {first: typed}", "job.yaml:1: 'name'",
       "expected a string, got a mapping"},
      {"seed: 3", "seed: [3]", "job.yaml:2: 'seed'",
       "expected a non-negative whole number, got a list"},
      {"gain: 3.0", "gain: {x: 3}", "job.yaml:8: 'network[1].slice.gain'",
       "expected a number, got a mapping"},
      {"physical: osc-a", "physical: [osc-a]", "job.yaml:7: 'network[0].physical'",
       "expected a device name from 'devices', got a list"},
      {"  - slice: {first: 54, count: 10, gain: 3.0}", "  - pad: {n: 3}",
       "job.yaml:8: 'network[1].pad'", "expected a whole number, got a mapping"},
      {"  - slice: {first: 54, count: 10, gain: 3.0}", "  - activation: [relu]",
       "job.yaml:8: 'network[1].activation'", "expected an activation name, got a list"},
      {"  - slice: {first: 54, count: 10, gain: 3.0}", "  - slice: 3",
       "job.yaml:8: 'network[1].slice'", "expected a mapping of keys to values, got '3'"},
      {"  osc-a: sim://mechanical-oscillators?seed=1&n=64", "  osc-a: [sim://power-law]",
       "job.yaml:5: 'devices.osc-a'", "expected a device address, got a list"},
      {"  osc-a: sim://mechanical-oscillators?seed=1&n=64", "  [osc-a]: sim://power-law",
       "job.yaml:5: 'devices'", "expected a key name, got a list as a key"},
      {"devices:\n  osc-a: sim://mechanical-oscillators?seed=1&n=64", "devices: 9",
       "job.yaml:4: 'devices'", "a mapping NAME: ADDRESS"},
      {"network:\n  - physical: osc-a\n  - slice: {first: 54, count: 10, gain: 3.0}", "network: 9",
       "job.yaml:6: 'network'", "required: a list of layers"},
      {"data: {name: digits}", "data: [digits]", "job.yaml:3: 'data'",
       "expected a mapping of keys to values, got a list"},
      {"data: {name: digits}", "data: {image_side: {a: 1}}", "job.yaml:3: 'data.image_side'",
       "expected a whole number, got a mapping"},
      {"compare: {in_silico: false}", "compare: {in_silico: [false]}",
       "job.yaml:10: 'compare.in_silico'", "expected true or false, got a list"},
      {"name: typed", "{x: 1}: typed",
       "job.yaml:1:", "expected a key name, got a mapping as a key"},
  });
  // A list where a number is, and a number where a list is, in the same file.
  const std::string e =
      error_of(with("network:\n  - physical: osc-a\n  - slice: {first: 54, "
                    "count: 10, gain: 3.0}",
                    "network: {physical: osc-a}"));
  CHECK(contains(e, "got a mapping"));
}

TEST_CASE("job config: .inf, -.inf and .nan are refused for every floating-point key") {
  for (const char* bad : {".inf", "-.inf", ".nan", "+.inf", ".NaN", ".INF"}) {
    const std::string v(bad);
    check_cases({
        {"learning_rate: 0.01", "learning_rate: " + v, "job.yaml:9: 'training.learning_rate'",
         "expected a number (finite), got '" + v + "'"},
        {"momentum: 0.5", "momentum: " + v, "job.yaml:9: 'training.momentum'",
         "expected a number (finite), got '" + v + "'"},
        {"gain: 3.0", "gain: " + v, "job.yaml:8: 'network[1].slice.gain'",
         "expected a number (finite), got '" + v + "'"},
        // Whole-number keys never take them either (a seed given as a float, an epoch count).
        {"seed: 3", "seed: " + v, "job.yaml:2: 'seed'", "got '" + v + "'"},
        {"epochs: 1", "epochs: " + v, "job.yaml:9: 'training.epochs'", "got '" + v + "'"},
        {"compare: {in_silico: false}",
         "compare: {in_silico: false}\ncalibration: {samples: " + v + "}",
         "job.yaml:11: 'calibration.samples'", "got '" + v + "'"},
    });
  }
  // Finite extremes stay numbers, and a seed must be a whole, non-negative number.
  CHECK(parse_job_config(with("momentum: 0.5", "momentum: -1e300"), "job.yaml").training.momentum ==
        -1e300);
  check_cases({{"seed: 3", "seed: 3.5", "job.yaml:2: 'seed'", "got '3.5'"},
               {"seed: 3", "seed: -1", "job.yaml:2: 'seed'", "got '-1'"},
               {"momentum: 0.5", "momentum: 1e999", "job.yaml:9: 'training.momentum'",
                "expected a number"}});
}

TEST_CASE("job config: training.lr_schedule is constant by default, cosine on request, else refused") {
  CHECK(parse_job_config(kGood, "job.yaml").training.lr_schedule == TrainOptions::Schedule::kConstant);
  CHECK(parse_job_config(with("optimizer: sgd}", "optimizer: sgd, lr_schedule: cosine}"), "job.yaml")
            .training.lr_schedule == TrainOptions::Schedule::kCosine);
  const std::string e = error_of(with("optimizer: sgd}", "optimizer: sgd, lr_schedule: step}"));
  CHECK(contains(e, "job.yaml:9"));
  CHECK(contains(e, "training.lr_schedule"));
  CHECK(contains(e, "use constant, or cosine"));
}
