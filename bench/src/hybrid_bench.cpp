// circuit-digits: the nonlinear RLC-junction circuit (PHYSICS.md "Electronic",
// docs/setups/electronic-circuit.md) as the hidden layer of a hybrid network on digits:
// affine 64→32, tanh (drive levels in ±1 V, inside the ±10 V DAC range), the circuit with 32
// data slots and 32 trainable parameter slots, affine 32→10 on the window-averaged capacitor
// voltages. The simulated circuit has ±5 % component tolerances, junction-temperature drift,
// noise, mains pickup and ADC/DAC quantisation the nominal twin does not know. PAT and in-silico
// training start from the same θ; a 64-32-10 ReLU MLP is the digital reference of similar size.
//
// plate-digits: the speaker-driven plate (PHYSICS.md "Mechanical", second setup;
// docs/setups/mechanical-plate.md) as the hidden layer of a hybrid network on digits:
// affine 64→32, tanh (amplifier input levels in ±1 V, the DAC range), the plate with 32 data
// slots and 32 trainable parameter slots of 1 ms, affine 32→10 on the binned microphone signal.
// The simulated plate has per-device mode spread, two unmodelled modes, amplifier compression
// and noise, the voice-coil lag, the acoustic delay to the microphone and a sampled, noisy,
// quantised microphone signal that the nominal twin does not know. PAT and in-silico training
// start from the same θ; a 64-32-10 ReLU MLP is the digital reference of similar size.
//
// Both are the same hybrid network around a time-multiplexed device; they differ in the device
// and in what the gap level sets (component tolerance, mode spread).
#include "bench_common.hpp"
#include "pnn/drivers/format.hpp"

namespace pnn::bench::detail {
namespace {

constexpr Index kSlots = 32;

struct HybridBench {
  const char* name;       // the benchmark
  const char* layer;      // the physical layer's name in the job
  const char* kind;       // sim://KIND
  const char* knob;       // the address option the gap level sets
  const char* record;     // its key in the JSON record
  double large, small;    // its value for gap large (default) and small
};

std::vector<nlohmann::json> run_hybrid(const HybridBench& b, const BenchOptions& options) {
  const std::string gap = options.gap.empty() ? "large" : options.gap;
  if (gap != "small" && gap != "large") throw std::invalid_argument("gap must be small or large");
  const int epochs = options.epochs > 0 ? options.epochs : 30;
  const double value = gap == "large" ? b.large : b.small;
  const std::string address = std::string("sim://") + b.kind + "?slots=" + std::to_string(kSlots) +
                              "&" + b.knob + "=" + drivers::format_shortest(value) +
                              "&seed=" + std::to_string(options.seed + 1);
  const training::JobConfig c =
      hybrid_digits_job(b.name, b.layer, address, kSlots, "tanh", 1e-2, epochs, options.seed);
  const training::JobResult r = run_job_quietly(c, gap, options);
  nlohmann::json j = job_record(c, r, gap);
  j[b.record] = value;
  j["digital_baseline"] = "64-32-10 ReLU MLP";
  return {std::move(j)};
}

}  // namespace

// gap: component tolerance; "large" (default) = the ±5 % of PHYSICS.md, "small" = ±1 %.
std::vector<nlohmann::json> circuit_digits(const BenchOptions& options) {
  return run_hybrid({"circuit-digits", "rlc", "electronic-circuit", "tolerance", "tolerance", 0.05, 0.01},
                    options);
}

// gap: per-device mode spread; "large" (default) = the full spread, "small" = a quarter of it.
std::vector<nlohmann::json> plate_digits(const BenchOptions& options) {
  return run_hybrid({"plate-digits", "plate", "mechanical-plate", "spread", "spread", 1.0, 0.25}, options);
}

}  // namespace pnn::bench::detail
