// shg-digits: the ultrafast-SHG setup (PHYSICS.md "Optical (a)") as the hidden layer of a hybrid
// network on digits: affine 64→64, sigmoid (the pulse shaper takes transmissions in [0, 1]),
// SHG with 64 data and 64 trainable channels read in 64 spectrometer bins, affine 64→10.
// The twin is calibrated (κ, σ) on the device first; then PAT and in-silico training start from
// the same θ, and a 64-64-10 digital MLP gives the software reference.
#include "bench_common.hpp"

namespace pnn::bench::detail {
namespace {

using training::JobConfig;

JobConfig shg_job(const std::string& gap, int epochs, std::uint64_t seed) {
  JobConfig c = hybrid_digits_job("shg-digits", "shg",
                                  "sim://optical-shg?inputs=64&params=64&outputs=64&gap=" + gap +
                                      "&seed=" + std::to_string(seed + 1),
                                  64, "sigmoid", 3e-3, epochs, seed);
  c.calibrate = true;
  c.calibration_samples = 256;
  return c;
}

}  // namespace

std::vector<nlohmann::json> shg_digits(const BenchOptions& options) {
  std::vector<std::string> gaps = {"small", "large"};
  if (!options.gap.empty()) gaps = {options.gap};
  const int epochs = options.epochs > 0 ? options.epochs : 100;
  std::vector<nlohmann::json> out;
  for (const auto& gap : gaps) {
    if (gap != "small" && gap != "large") throw std::invalid_argument("gap must be small or large");
    const JobConfig c = shg_job(gap, epochs, options.seed);
    const training::JobResult r = run_job_quietly(c, gap, options);
    nlohmann::json j = job_record(c, r, gap);
    if (!r.calibration.empty()) {
      j["calib_mse_before"] = r.calibration.front().mse_before;
      j["calib_mse_after"] = r.calibration.front().mse_after;
    }
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace pnn::bench::detail
