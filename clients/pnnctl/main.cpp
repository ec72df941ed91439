// pnnctl: the command-line client of pnn-hil. Without a daemon it runs jobs in-process.
//   pnnctl train CONFIG.yaml [--json] [--resume CHECKPOINT]
//   pnnctl bench NAME [--json] [--epochs N] [--gap small|large] | pnnctl bench --list
//   pnnctl describe [ADDRESS ...]
// Exit codes: 0 success, 1 run failed (device fault, I/O), 2 bad usage, config or data.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "pnn/bench/benchmarks.hpp"
#include "pnn/drivers/registry.hpp"
#include "pnn/training/checkpoint.hpp"
#include "pnn/training/job.hpp"
#include "progress.hpp"

namespace {

using nlohmann::json;
namespace tr = pnn::training;

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop = true; }

json job_summary(const tr::JobConfig& config, const tr::JobResult& r) {
  json j{{"name", r.name}, {"dataset", r.dataset}, {"split", r.split}, {"seed", config.seed},
         {"devices", r.device_serials}, {"epochs", config.training.epochs}, {"wall_s", r.wall_seconds},
         {"threads", r.threads}, {"checkpoint", r.checkpoint_path}, {"plot", r.plot_path}};
  if (const auto* p = r.phase("pat")) j["acc_pat_reality"] = p->acc_hardware;
  if (const auto* p = r.phase("in-silico")) {
    j["acc_insilico_reality"] = p->acc_hardware;
    j["acc_twin"] = p->acc_twin;
  }
  if (const auto* p = r.phase("digital")) j["acc_digital"] = p->acc_twin;
  json cal = json::array();
  for (const auto& c : r.calibration) {
    cal.push_back({{"layer", c.layer}, {"serial", c.serial}, {"mse_before", c.mse_before}, {"mse_after", c.mse_after}});
  }
  j["calibration"] = cal;
  json phases = json::array();
  for (const auto& p : r.phases) {
    json hist = json::array();
    for (const auto& e : p.history) {
      hist.push_back({{"epoch", e.epoch}, {"train_loss", e.train_loss}, {"train_accuracy", e.train_accuracy},
                      {"test_accuracy", e.test_accuracy}, {"seconds", e.seconds}});
    }
    phases.push_back({{"phase", p.phase}, {"acc_hardware", p.acc_hardware}, {"acc_twin", p.acc_twin},
                      {"seconds", p.seconds}, {"history", hist}});
  }
  j["phases"] = phases;
  return j;
}

void print_summary(const tr::JobResult& r) {
  std::printf("\n%s on %s (split %s), devices:", r.name.c_str(), r.dataset.c_str(), r.split.c_str());
  for (const auto& s : r.device_serials) std::printf(" %s", s.c_str());
  std::printf("\n");
  auto pct = [](double v) { return v < 0 ? std::string("     -") : std::to_string(v * 100).substr(0, 5) + " %"; };
  for (const auto& p : r.phases) {
    const char* what = p.phase == "pat"         ? "PAT-trained, measured on the hardware"
                       : p.phase == "in-silico" ? "in-silico-trained, measured on the hardware"
                                                : "digital baseline (MLP)";
    const double acc = p.phase == "digital" ? p.acc_twin : p.acc_hardware;
    std::printf("  %-46s %s   (on twin %s, %.1f s)\n", what, pct(acc).c_str(), pct(p.acc_twin).c_str(), p.seconds);
  }
  if (!r.checkpoint_path.empty()) std::printf("  checkpoint: %s\n", r.checkpoint_path.c_str());
  if (!r.plot_path.empty()) std::printf("  plot:       %s\n", r.plot_path.c_str());
  std::printf("  wall time %.1f s on %d threads\n", r.wall_seconds, r.threads);
}

int cmd_train(const std::string& path, bool as_json, const std::string& resume) {
  const tr::JobConfig config = tr::load_job_config(path);
  pnnctl::Progress progress(stderr);
  tr::JobCallbacks cb;
  cb.on_log = [&](const std::string& m) { progress.line("  " + m); };
  cb.on_batch = [&](const std::string& phase, int epoch, int epochs, pnn::Index b, pnn::Index nb, double loss) {
    progress.batch(phase, epoch, epochs, static_cast<long>(b), static_cast<long>(nb), loss);
  };
  cb.on_epoch = [&](const std::string& phase, const tr::EpochStats& s, int epochs) { progress.epoch(phase, s, epochs); };
  cb.stop_requested = [] { return g_stop.load(); };
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  tr::JobOptions options;
  if (!resume.empty()) options.resume_checkpoint = resume;
  progress.line("training " + config.name + " (" + config.source + ")");
  auto result = tr::run_job(config, cb, options);
  if (!result) {
    std::fprintf(stderr, "pnnctl train: %s\n", result.error().message.c_str());
    return 1;
  }
  if (g_stop) progress.line("  interrupted: stopped after the current batch; the last checkpoint is intact");
  if (as_json) {
    std::cout << job_summary(config, result.value()).dump() << std::endl;
  } else {
    print_summary(result.value());
  }
  return g_stop ? 130 : 0;
}

int cmd_bench(const std::string& name, bool as_json, bool list, int epochs, const std::string& gap,
              std::uint64_t seed) {
  if (list || name.empty()) {
    for (const auto& b : pnn::bench::list_benchmarks()) std::printf("%-24s %s\n", b.name.c_str(), b.summary.c_str());
    return name.empty() && !list ? 2 : 0;
  }
  pnn::bench::BenchOptions options;
  options.epochs = epochs;
  options.gap = gap;
  options.seed = seed;
  pnnctl::Progress progress(stderr);
  options.on_progress = [&](const std::string& m) { if (!as_json) progress.line("  " + m); };
  for (const auto& record : pnn::bench::run_benchmark(name, options)) {
    if (as_json) {
      std::cout << record.dump() << std::endl;
    } else {
      std::printf("%s\n", record.dump(2).c_str());
    }
  }
  return 0;
}

int cmd_describe(const std::vector<std::string>& addresses) {
  std::vector<std::string> list = addresses;
  if (list.empty()) {
    for (const auto& s : pnn::drivers::known_setups()) list.push_back(s.example_address);
  }
  for (const auto& address : list) {
    auto device = pnn::drivers::make_physical_system(address);
    std::printf("%s\n%s\n", address.c_str(), device->spec().describe().c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pnnctl: train physical neural networks with the hardware in the loop"};
  app.require_subcommand(1);

  std::string config_path, resume;
  bool train_json = false;
  auto* train = app.add_subcommand("train", "run a training job from a YAML config (in-process)");
  train->add_option("config", config_path, "job config, e.g. configs/oscillator-digits.yaml")->required();
  train->add_flag("--json", train_json, "print a machine-readable JSON summary on stdout");
  train->add_option("--resume", resume, "continue from this checkpoint");

  std::string bench_name, gap;
  bool bench_json = false, bench_list = false;
  int epochs = -1;
  std::uint64_t bench_seed = 0;
  auto* bench = app.add_subcommand("bench", "run a benchmark (see --list)");
  bench->add_option("name", bench_name, "benchmark name");
  bench->add_flag("--json", bench_json, "one JSON object per line");
  bench->add_flag("--list", bench_list, "list the benchmarks");
  bench->add_option("--epochs", epochs, "override the benchmark's epochs (steps for pat-toy)");
  bench->add_option("--seed", bench_seed, "seed (initialisation, shuffling, device seeds)");
  bench->add_option("--gap", gap, "only this gap level")->check(CLI::IsMember({"small", "large"}));

  std::vector<std::string> addresses;
  auto* describe = app.add_subcommand("describe", "show a device's units and hard limits");
  describe->add_option("address", addresses, "device address(es); default: every simulated setup");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    if (*train) return cmd_train(config_path, train_json, resume);
    if (*bench) return cmd_bench(bench_name, bench_json, bench_list, epochs, gap, bench_seed);
    if (*describe) return cmd_describe(addresses);
  } catch (const tr::ConfigError& e) {
    std::fprintf(stderr, "pnnctl: config error: %s\n", e.what());
    return 2;
  } catch (const tr::DatasetError& e) {
    std::fprintf(stderr, "pnnctl: data error: %s\n", e.what());
    return 2;
  } catch (const tr::CheckpointError& e) {
    std::fprintf(stderr, "pnnctl: checkpoint error: %s\n", e.what());
    return 2;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "pnnctl: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pnnctl: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
