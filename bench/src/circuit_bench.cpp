// circuit-digits: the nonlinear RLC-junction circuit (PHYSICS.md "Electronic",
// docs/setups/electronic-circuit.md) as the hidden layer of a hybrid network on digits:
// affine 64→32, tanh (drive levels in ±1 V, inside the ±10 V DAC range), the circuit with 32
// data slots and 32 trainable parameter slots, affine 32→10 on the window-averaged capacitor
// voltages. The simulated circuit has ±5 % component tolerances, junction-temperature drift,
// noise, mains pickup and ADC/DAC quantisation the nominal twin does not know. PAT and in-silico
// training start from the same θ; a 64-32-10 ReLU MLP is the digital reference of similar size.
#include "bench_common.hpp"

namespace pnn::bench::detail {
namespace {

using training::JobConfig;

constexpr Index kSlots = 32;

JobConfig circuit_job(const std::string& tolerance, int epochs, std::uint64_t seed) {
  return hybrid_digits_job("circuit-digits", "rlc",
                           "sim://electronic-circuit?slots=" + std::to_string(kSlots) +
                               "&tolerance=" + tolerance + "&seed=" + std::to_string(seed + 1),
                           kSlots, "tanh", 1e-2, epochs, seed);
}

}  // namespace

std::vector<nlohmann::json> circuit_digits(const BenchOptions& options) {
  // gap: component tolerance; "large" (default) = the ±5 % of PHYSICS.md, "small" = ±1 %.
  const std::string gap = options.gap.empty() ? "large" : options.gap;
  if (gap != "small" && gap != "large") throw std::invalid_argument("gap must be small or large");
  const int epochs = options.epochs > 0 ? options.epochs : 30;
  const JobConfig c = circuit_job(gap == "large" ? "0.05" : "0.01", epochs, options.seed);
  const training::JobResult r = run_job_quietly(c, gap, options);
  nlohmann::json j = job_record(c, r, gap);
  j["tolerance"] = gap == "large" ? 0.05 : 0.01;
  j["digital_baseline"] = "64-32-10 ReLU MLP";
  return {std::move(j)};
}

}  // namespace pnn::bench::detail
