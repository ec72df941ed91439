// The shipped spiking-yinyang job (configs/jobs/spiking-yinyang.yaml) runs end to end on the
// simulated spiking chip: the yin-yang data set by name, the chip by address, PAT and in silico.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "pnn/training/job.hpp"

using namespace pnn::training;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  const fs::path dir =
      fs::temp_directory_path() / ("pnn-spiking-job-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("job runner: the shipped spiking-yinyang config trains the spiking chip above chance") {
  const fs::path dir = temp_dir("spiking");
  JobConfig c = load_job_config(std::string(PNN_SOURCE_DIR) + "/configs/jobs/spiking-yinyang.yaml");
  CHECK(c.dataset == "yin-yang");
  REQUIRE(c.devices.size() == 1);
  CHECK(c.devices[0].address.find("weights=round") != std::string::npos);
  c.output_dir = dir.string();
  c.training.epochs = 2;
  c.data_options.max_train = 1000;
  c.data_options.max_test = 300;
  CHECK(c.calibrate);  // the mock fit
  c.calibration_samples = 100;
  const JobResult r = run_job(c).value();
  const PhaseResult* pat = r.phase("pat");
  const PhaseResult* in_silico = r.phase("in-silico");
  REQUIRE(pat);
  REQUIRE(in_silico);
  CHECK(r.device_serials.front() == "SIM-LIF-1");
  CHECK(pat->acc_hardware > 0.45);  // three classes: chance is 1/3
  CHECK(in_silico->acc_twin > 0.45);
  REQUIRE(r.calibration.size() == 1);
  REQUIRE(r.calibration[0].mock_fit.has_value());
  CHECK(r.calibration[0].mock_fit->spike_error_after < r.calibration[0].mock_fit->spike_error_before);
  fs::remove_all(dir);
}
