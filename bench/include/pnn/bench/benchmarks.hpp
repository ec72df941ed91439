#pragma once
/// Reproducible benchmarks (PHYSICS.md "Benchmarks"). Each produces one JSON object per
/// configuration (e.g. one per gap level) with the keys PHYSICS.md lists; figures are measured,
/// never fixed.
#include <nlohmann/json.hpp>
#include <functional>
#include <string>
#include <vector>

namespace pnn::bench {

struct BenchOptions {
  int epochs = -1;            ///< -1: the benchmark's own default
  std::string gap = "";       ///< "" = the benchmark's default gap levels; "small" or "large"
  std::uint64_t seed = 0;
  /// learned-twin-*, spin-node-stno: the twin family ("grey-box", "residual", "mlp",
  /// "neural-ode"; "" = the benchmark's own) and the measured samples (trajectories for
  /// spin-node-stno) per device (-1 = the benchmark's own); spiking-*: the mock fit's probe
  /// samples (-1: 500).
  std::string family = "";
  long samples = -1;
  /// scaling: the oscillator counts N and batch sizes to time (empty = 64 … 1024 and 32, 256).
  std::vector<long> sizes;
  std::vector<long> batches;
  /// pat-oscillator-*, scaling: "float32" runs the twins and the simulated devices in float32;
  /// "" or "float64" the default.
  std::string compute = "";
  /// spiking-*: the spiking layer's backward, "measured" (surrogate BPTT of the twin at the
  /// chip's recorded spikes and traces; the default), "spike-train" (the spike-train-level rule at
  /// that record) or "twin" (the twin's own activity); and whether the twin is
  /// mock-fitted to the chip before training ("on", the default, or "off").
  std::string backward = "";
  std::string mock_fit = "";
  /// Progress lines for humans (to stderr in the CLI); may be empty.
  std::function<void(const std::string&)> on_progress;
};

struct BenchInfo {
  std::string name;
  std::string summary;
};
std::vector<BenchInfo> list_benchmarks();

/// Runs a benchmark by name; throws std::invalid_argument for an unknown name (listing the known
/// ones) and std::runtime_error if a device faults.
std::vector<nlohmann::json> run_benchmark(const std::string& name, const BenchOptions& options = {});

}  // namespace pnn::bench
