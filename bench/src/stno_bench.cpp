// stno-seqdigits: the STNO recurrent network (PHYSICS.md "Spintronic (a)") on sequential digits.
// 64 oscillators receive the 8 rows of a digit one per input period (8 pixels each, through the
// trainable input currents W), are coupled by the trainable recurrent currents R, and a digital
// linear layer reads their powers p at the end of the sequence. PAT runs the sequences on the
// simulated device (complex-amplitude physics with thermal noise and ±10 % device spread) and
// backpropagates through time in the power-equation twin; in-silico training uses the twin alone.
// The digital baseline is a 64-64-10 ReLU MLP on the whole image (not sequential).
#include "bench_common.hpp"

namespace pnn::bench::detail {

using training::JobConfig;
using training::LayerSpec;

JobConfig stno_job(int epochs, std::uint64_t seed) {
  JobConfig c;
  c.source = "stno-seqdigits";
  c.name = "stno-seqdigits";
  c.seed = seed;
  c.dataset = "digits";
  c.devices = {
      {"stno", "sim://stno-rnn?neurons=64&steps=8&inputs=8&seed=" + std::to_string(seed + 1)}};
  c.network = {{LayerSpec::Kind::kPhysical, "stno"}, {LayerSpec::Kind::kAffine, "", 10}};
  // Adam steps of 0.1 µA: θ is in µA (b ≈ 20 µA), so the usual 1e-3 … 1e-2 barely moves it.
  c.training = pat_options(0.1, epochs, seed);
  c.calibrate = false;
  c.compare_in_silico = true;
  c.digital_hidden = 64;
  return c;
}

std::vector<nlohmann::json> stno_seqdigits(const BenchOptions& options) {
  const int epochs = options.epochs > 0 ? options.epochs : 40;
  const JobConfig c = stno_job(epochs, options.seed);
  const training::JobResult r = run_job_quietly(c, "", options);
  nlohmann::json j = job_record(c, r, "");
  j["digital_baseline"] = "64-64-10 ReLU MLP on the whole image";
  return {std::move(j)};
}

}  // namespace pnn::bench::detail
