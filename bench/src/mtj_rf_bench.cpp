// mtj-rf-digits: MTJ spin-diode RF synapse chains with STNO neurons (PHYSICS.md "Spintronic (b)")
// as the hidden layer of a hybrid network on digits: affine 64→64, sigmoid (RF powers in
// [0, 1] µW on the 64-tone comb), 64 chains of 64 junctions with trainable resonances, STNO
// neurons, affine 64→10. The simulated chips carry per-junction resonance offsets (RMS
// `offset_mhz`), linewidth and sensitivity spread and rectification noise that the nominal twin
// does not know; PAT and in-silico training start from the same θ, and a 64-64-10 digital MLP
// gives the software reference.
#include "bench_common.hpp"

namespace pnn::bench::detail {
namespace {

using training::JobConfig;

JobConfig mtj_job(const std::string& offset_mhz, int epochs, std::uint64_t seed) {
  return hybrid_digits_job("mtj-rf-digits", "mtj",
                           "sim://mtj-rf?inputs=64&chains=64&offset_mhz=" + offset_mhz +
                               "&seed=" + std::to_string(seed + 1),
                           64, "sigmoid", 1e-2, epochs, seed);
}

}  // namespace

std::vector<nlohmann::json> mtj_rf_digits(const BenchOptions& options) {
  // gap: resonance-offset RMS in MHz (linewidth w = 10 MHz); "large" = 8 MHz, "small" = 1 MHz.
  std::string gap = options.gap.empty() ? "large" : options.gap;
  if (gap != "small" && gap != "large") throw std::invalid_argument("gap must be small or large");
  const int epochs = options.epochs > 0 ? options.epochs : 30;
  const JobConfig c = mtj_job(gap == "large" ? "8" : "1", epochs, options.seed);
  const training::JobResult r = run_job_quietly(c, gap, options);
  nlohmann::json j = job_record(c, r, gap);
  j["digital_baseline"] = "64-64-10 ReLU MLP";
  return {std::move(j)};
}

}  // namespace pnn::bench::detail
