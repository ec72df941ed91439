// plate-digits: the speaker-driven plate (PHYSICS.md "Mechanical", second setup;
// docs/setups/mechanical-plate.md) as the hidden layer of a hybrid network on digits:
// affine 64→32, tanh (amplifier input levels in ±1 V, the DAC range), the plate with 32 data
// slots and 32 trainable parameter slots of 1 ms, affine 32→10 on the binned microphone signal.
// The simulated plate has per-device mode spread, two unmodelled modes, amplifier compression
// and noise, the voice-coil lag, the acoustic delay to the microphone and a sampled, noisy,
// quantised microphone signal that the nominal twin does not know. PAT and in-silico training
// start from the same θ; a 64-32-10 ReLU MLP is the digital reference of similar size.
#include "bench_common.hpp"

namespace pnn::bench::detail {
namespace {

using training::JobConfig;

constexpr Index kSlots = 32;

JobConfig plate_job(const std::string& spread, int epochs, std::uint64_t seed) {
  return hybrid_digits_job("plate-digits", "plate",
                           "sim://mechanical-plate?slots=" + std::to_string(kSlots) +
                               "&spread=" + spread + "&seed=" + std::to_string(seed + 1),
                           kSlots, "tanh", 1e-2, epochs, seed);
}

}  // namespace

std::vector<nlohmann::json> plate_digits(const BenchOptions& options) {
  // gap: per-device mode spread; "large" (default) = the full spread, "small" = a quarter of it.
  const std::string gap = options.gap.empty() ? "large" : options.gap;
  if (gap != "small" && gap != "large") throw std::invalid_argument("gap must be small or large");
  const int epochs = options.epochs > 0 ? options.epochs : 30;
  const JobConfig c = plate_job(gap == "large" ? "1" : "0.25", epochs, options.seed);
  const training::JobResult r = run_job_quietly(c, gap, options);
  nlohmann::json j = job_record(c, r, gap);
  j["spread"] = gap == "large" ? 1.0 : 0.25;
  j["digital_baseline"] = "64-32-10 ReLU MLP";
  return {std::move(j)};
}

}  // namespace pnn::bench::detail
