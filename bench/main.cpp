// pnn-bench [NAME...] [--list] [--epochs N] [--seed S] [--gap small|large] [--family F]
//           [--samples N] [--sizes N,...] [--batches B,...] [--pretty]
// Runs the named benchmarks (all by default) and prints one JSON object per configuration: a
// line each (default, for scripts), or indented with progress lines on stderr (--pretty, what
// `pnnctl bench` shows). `pnnctl bench` runs this program, so pnnctl never links the daemon.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <iostream>

#include "pnn/bench/benchmarks.hpp"
#include "pnn/digital_twin/memory.hpp"

int main(int argc, char** argv) {
  pnn::digital_twin::tune_allocator_for_batches();
  CLI::App app{"pnn-bench: the measured benchmarks of pnn-hil (docs/benchmarks.md)"};
  std::vector<std::string> names;
  bool list = false, pretty = false;
  pnn::bench::BenchOptions options;
  app.add_option("name", names, "benchmark names (default: all)");
  app.add_flag("--list", list, "list the benchmarks");
  app.add_option("--epochs", options.epochs, "override the benchmark's epochs (steps for pat-toy)");
  app.add_option("--seed", options.seed, "seed (initialisation, shuffling, device seeds)");
  app.add_option("--gap", options.gap, "only this gap level")->check(CLI::IsMember({"small", "large"}));
  app.add_option("--family", options.family, "learned-twin-*, spin-node-stno: twin family")
      ->check(CLI::IsMember({"grey-box", "residual", "mlp", "neural-ode"}));
  app.add_option("--samples", options.samples,
                 "learned-twin-*: measured samples per device (spin-node-stno: trajectories; "
                 "spiking-*: the mock fit's probe samples, 500)");
  app.add_option("--sizes", options.sizes, "scaling: only these N (each 64..1024: the 64 pixels, padded)")
      ->delimiter(',')->check(CLI::Range(64, 1024));
  app.add_option("--batches", options.batches, "scaling: only these batch sizes")
      ->delimiter(',')->check(CLI::Range(1, 4096));
  app.add_option("--compute", options.compute,
                 "pat-oscillator-*, scaling: float32 runs twins and simulated oscillators in float32")
      ->check(CLI::IsMember({"float64", "float32"}));
  app.add_option("--backward", options.backward,
                 "spiking-*: the spiking layer's backward (measured: at the chip's record)")
      ->check(CLI::IsMember({"measured", "spike-train", "twin"}));
  app.add_option("--mock-fit", options.mock_fit, "spiking-*: mock-fit the twin to the chip first")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_flag("--pretty", pretty, "indented JSON, progress on stderr");
  CLI11_PARSE(app, argc, argv);
  if (list) {
    for (const auto& b : pnn::bench::list_benchmarks()) {
      std::printf("%-24s %s\n", b.name.c_str(), b.summary.c_str());
    }
    return 0;
  }
  if (names.empty()) {
    for (const auto& b : pnn::bench::list_benchmarks()) names.push_back(b.name);
  }
  if (pretty) {
    options.on_progress = [](const std::string& m) { std::fprintf(stderr, "  %s\n", m.c_str()); };
  }
  try {
    for (const auto& name : names) {
      for (const auto& record : pnn::bench::run_benchmark(name, options)) {
        std::cout << (pretty ? record.dump(2) : record.dump()) << std::endl;
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pnn-bench: %s\n", e.what());
    return 1;
  }
}
