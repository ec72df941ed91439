// The daemon-free verbs: train a job in this process, run a benchmark, describe simulated setups.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "errors.hpp"
#include "output.hpp"
#include "pnn/client/remote_device.hpp"
#include "pnn/training/job_summary.hpp"
#include "pnn/drivers/registry.hpp"
#include "pnn/training/job.hpp"
#include "progress.hpp"
#include "remote.hpp"
#include "verbs.hpp"

namespace pnnctl {

namespace {

namespace tr = pnn::training;

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop = true; }


// A job device at pnnd://DAEMON/DEVICE: that daemon's device through the lab registry, leased
// for the job (docs/lab.md, "Jobs across daemons"); each change of its state, health or health
// message on its daemon's telemetry goes to `print`. Other addresses: nullptr (the registry).
pnn::drivers::PhysicalSystemPtr open_lab_device(
    const RemoteOptions& remote, const std::string& address,
    const std::function<void(const std::string&)>& print) {
  const std::string name = pnn::client::lab_device_name(address);
  if (name.empty()) return nullptr;
  try {
    if (!pnn::client::is_lab_name(name)) {
      throw UsageError("'" + address + "' is not pnnd://DAEMON/DEVICE (a daemon of the lab registry)");
    }
    const DeviceTarget t = resolve_device(remote, name);
    Remote connection(t.options);  // reads and checks the key file
    pnn::client::RemoteDeviceOptions o;
    o.label = name;
    o.device = t.device;
    o.client = connection.client_options();
    o.hint = "; " + pnn::client::unreachable_hint(t.options.lab_entry);
    o.twin_for = [](const std::string& a) {
      return pnn::drivers::make_physical_system(a)->nominal_twin();
    };
    o.telemetry = connection.telemetry_endpoint();
    o.on_state = [name, print](const pnn::v1::DeviceInfo& d) {
      print(name + " (its daemon): " + state_name(d.state()) + " health " + health_name(d.health()) +
            (d.health_message().empty() ? "" : ": " + d.health_message()));
    };
    return pnn::client::RemoteDevice::open(std::move(o));
  } catch (const UsageError& e) {
    throw std::invalid_argument(e.what());
  }
}

// Whether a failed job may be resumed once its devices' daemons answer again: the link to a
// device was lost (no reply, a broken connection, a lease that lapsed while its daemon was away).
bool link_lost(const pnn::drivers::Error& e) {
  using pnn::drivers::Errc;
  return e.code == make_error_code(Errc::kTimeout) || e.code == make_error_code(Errc::kIo);
}

// Waits until every pnnd:// daemon of the job answers Hello, or `wait_s` passes.
bool wait_for_daemons(const tr::JobConfig& config, const RemoteOptions& remote, double wait_s) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<long long>(wait_s * 1000));
  for (const auto& d : config.devices) {
    const std::string name = pnn::client::lab_device_name(d.address);
    if (name.empty()) continue;
    DeviceTarget t = resolve_device(remote, name);
    t.options.timeout_ms = 1000;
    t.options.retries = 0;
    for (;;) {
      if (g_stop) return false;
      try {
        Remote(t.options).hello();
        break;
      } catch (const std::exception&) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
    }
  }
  return true;
}

int train_local(const std::string& path, bool as_json, const std::string& resume,
                const RemoteOptions& remote, int retries, double retry_wait_s) {
  const tr::JobConfig config = tr::load_job_config(path);
  Progress progress(stderr);
  // The job's thread and the telemetry relays of its remote devices both write progress lines.
  std::mutex progress_mutex;
  tr::JobCallbacks cb;
  cb.on_log = [&](const std::string& m) {
    std::lock_guard lock(progress_mutex);
    progress.line("  " + m);
  };
  cb.on_batch = [&](const std::string& phase, int epoch, int epochs, pnn::Index b, pnn::Index nb,
                    double loss) {
    std::lock_guard lock(progress_mutex);
    progress.batch(phase, epoch, epochs, static_cast<long>(b), static_cast<long>(nb), loss);
  };
  cb.on_epoch = [&](const std::string& phase, const tr::EpochStats& s, int epochs) {
    std::lock_guard lock(progress_mutex);
    progress.epoch(phase, s, epochs);
  };
  cb.stop_requested = [] { return g_stop.load(); };
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  tr::JobOptions options;
  if (!resume.empty()) options.resume_checkpoint = resume;
  // The job's devices on other daemons report their state from their own threads, through the
  // same (locked) progress lines.
  const std::function<void(const std::string&)> print = cb.on_log;
  options.open_device = [&](const std::string& address) {
    return open_lab_device(remote, address, print);
  };
  progress.line("training " + config.name + " (" + config.source + ") in this process");
  const auto checkpoint = std::filesystem::path(config.output_dir) / "checkpoint.pnnckpt";
  auto result = tr::run_job(config, cb, options);
  for (int attempt = 1; !result && attempt <= retries && link_lost(result.error()) && !g_stop;
       ++attempt) {
    cb.on_log(result.error().message);
    cb.on_log("--retry: waiting up to " + std::to_string(static_cast<int>(retry_wait_s)) +
              " s for the devices' daemons (attempt " + std::to_string(attempt) + " of " +
              std::to_string(retries) + ")");
    if (!wait_for_daemons(config, remote, retry_wait_s)) break;
    // The checkpoint of the last finished epoch of this run (or the one resumed from).
    if (std::filesystem::exists(checkpoint)) options.resume_checkpoint = checkpoint.string();
    cb.on_log("resuming from " + (options.resume_checkpoint ? *options.resume_checkpoint
                                                           : std::string("the start")));
    result = tr::run_job(config, cb, options);
  }
  if (!result) {
    // A remote device's daemon often says more about its fault than the job saw (its health
    // message): let its telemetry, already on the way, reach the progress lines first.
    std::fprintf(stderr, "pnnctl train: %s\n", result.error().message.c_str());
    return kExitFailed;
  }
  if (g_stop) cb.on_log("interrupted: stopped after the current batch; the last checkpoint is intact");
  const auto summary = nlohmann::json::parse(pnn::training::job_summary_json(config, result.value()));
  if (as_json) {
    print_json_line(summary);
  } else {
    print_summary(summary);
  }
  return g_stop ? kExitInterrupted : kExitOk;
}

// A program of the project that pnnctl runs rather than links: the environment variable `env`,
// `name` next to this program, `build_path` (the build tree), or `name` on PATH.
std::string project_program(const char* env, const std::string& name, const char* build_path) {
  if (const char* value = std::getenv(env); value && *value) return value;
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto sibling = self.parent_path() / name;
    if (std::filesystem::exists(sibling)) return sibling.string();
  }
  if (build_path && std::filesystem::exists(build_path)) return build_path;
  return name;
}

#ifndef PNNCTL_BENCH_PATH
#define PNNCTL_BENCH_PATH nullptr
#endif
#ifndef PNNCTL_RUNS_PATH
#define PNNCTL_RUNS_PATH nullptr
#endif

// The benchmarks run in pnn-bench (pnnctl links neither the daemon nor the benchmarks).
std::string pnn_bench_path() { return project_program("PNN_BENCH", "pnn-bench", PNNCTL_BENCH_PATH); }

int bench(const std::string& name, bool as_json, bool list, int epochs, const std::string& gap,
          std::uint64_t seed) {
  if (!list && name.empty()) {
    std::fprintf(stderr, "pnnctl bench: name a benchmark (pnnctl bench --list shows them)\n");
    return kExitUsage;
  }
  const std::string program = pnn_bench_path();
  std::vector<std::string> args = {program};
  if (list) {
    args.push_back("--list");
  } else {
    args.push_back(name);
    if (epochs != -1) args.insert(args.end(), {"--epochs", std::to_string(epochs)});
    if (seed != 0) args.insert(args.end(), {"--seed", std::to_string(seed)});
    if (!gap.empty()) args.insert(args.end(), {"--gap", gap});
    if (!as_json) args.push_back("--pretty");
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(nullptr);
  ::execvp(program.c_str(), argv.data());
  std::fprintf(stderr, "pnnctl bench: cannot run %s: %s (set PNN_BENCH to the pnn-bench program)\n",
               program.c_str(), std::strerror(errno));
  return kExitFailed;
}

// The rule: a target with "://" is a device address, built here from the driver registry; any
// other target is the name of a device of the daemon.
bool is_address(const std::string& target) { return target.find("://") != std::string::npos; }

int describe(const RemoteOptions& remote, const std::vector<std::string>& targets) {
  std::vector<std::string> list = targets;
  if (list.empty()) {
    for (const auto& s : pnn::drivers::known_setups()) list.push_back(s.example_address);
  }
  int rc = kExitOk;
  for (const auto& target : list) {
    if (!is_address(target)) {
      rc = std::max(rc, describe_remote(remote, {target}));
      continue;
    }
    auto device = pnn::drivers::make_physical_system(target);
    if (remote.json) {
      const auto& s = device->spec();
      nlohmann::json params = nlohmann::json::array();
      for (const auto& p : s.params) {
        params.push_back({{"name", p.name},
                          {"count", p.count},
                          {"unit", p.unit},
                          {"hard_min", p.hard_min},
                          {"hard_max", p.hard_max},
                          {"description", p.description}});
      }
      print_json_line({{"address", target},
                       {"kind", s.kind},
                       {"model", s.model},
                       {"serial", s.serial},
                       {"firmware", s.firmware},
                       {"num_inputs", s.num_inputs},
                       {"num_outputs", s.num_outputs},
                       {"input_unit", s.input_unit},
                       {"output_unit", s.output_unit},
                       {"input_min", s.input_min},
                       {"input_max", s.input_max},
                       {"num_params", s.num_params()},
                       {"params", params},
                       {"output_noise_std", s.output_noise_std},
                       {"max_batch", s.max_batch}});
    } else {
      std::printf("%s\n%s\n", target.c_str(), device->spec().describe().c_str());
    }
  }
  return rc;
}

}  // namespace

std::string runs_program_path() { return project_program("PNN_RUNS", "pnn-runs", PNNCTL_RUNS_PATH); }

void add_local_verbs(CLI::App& app, RemoteOptions& remote, Action& action) {
  struct Train {
    std::string config, resume;
    bool remote = false;
    int retry = 0;
    double retry_wait_s = 120.0;
  };
  auto t = std::make_shared<Train>();
  auto* train = app.add_subcommand(
      "train", "run a training job from a YAML config: in this process, or in pnnd (--remote)");
  train->add_option("config", t->config, "job config, e.g. configs/jobs/oscillator-digits.yaml");
  train->add_flag("--remote", t->remote,
                  "submit the job to pnnd (SubmitJob), stream its progress; Ctrl-C cancels it");
  train->add_option("--resume", t->resume,
                    "in-process: a checkpoint file; --remote: a RUN_ID of the daemon's run store");
  train->add_option("--retry", t->retry,
                    "in-process: when a pnnd:// device's daemon stops answering, wait for it and "
                    "resume from the last checkpoint, up to N times")
      ->check(CLI::Range(0, 1000));
  train->add_option("--retry-wait-s", t->retry_wait_s, "how long each --retry waits")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 86400.0));
  train->callback([t, &remote, &action] {
    action = [t, &remote] {
      if (t->remote && t->retry > 0) {
        throw UsageError("train: --retry is for jobs run in this process (pnnd runs its own jobs)");
      }
      if (t->remote) return train_remote(remote, t->config, t->resume);
      if (t->config.empty()) {
        throw UsageError(
            "train: give the job config (e.g. pnnctl train configs/jobs/"
            "oscillator-digits.yaml); only --remote --resume RUN_ID needs none");
      }
      return train_local(t->config, remote.json, t->resume, remote, t->retry, t->retry_wait_s);
    };
  });

  struct Bench {
    std::string name, gap;
    bool list = false;
    int epochs = -1;
    std::uint64_t seed = 0;
  };
  auto b = std::make_shared<Bench>();
  auto* bench_cmd = app.add_subcommand("bench", "run a benchmark (pnn-bench; see --list)");
  bench_cmd->add_option("name", b->name, "benchmark name");
  bench_cmd->add_flag("--list", b->list, "list the benchmarks");
  bench_cmd->add_option("--epochs", b->epochs,
                        "override the benchmark's epochs (steps for pat-toy)");
  bench_cmd->add_option("--seed", b->seed, "seed (initialisation, shuffling, device seeds)");
  bench_cmd->add_option("--gap", b->gap, "only this gap level")
      ->check(CLI::IsMember({"small", "large"}));
  bench_cmd->callback([b, &remote, &action] {
    action = [b, &remote] {
      return bench(b->name, remote.json, b->list, b->epochs, b->gap, b->seed);
    };
  });

  auto targets = std::make_shared<std::vector<std::string>>();
  auto* describe_cmd = app.add_subcommand(
      "describe",
      "a device's units and hard limits: NAME asks pnnd, ADDRESS (sim://...) builds it here");
  describe_cmd->add_option("target", *targets,
                           "device names of the daemon or addresses; default: every simulated "
                           "setup (no daemon needed)");
  describe_cmd->callback([targets, &remote, &action] {
    action = [targets, &remote] { return describe(remote, *targets); };
  });
}

}  // namespace pnnctl
