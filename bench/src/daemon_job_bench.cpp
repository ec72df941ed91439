// daemon-job and daemon-rss: the daemon as a lab runs it, a pnnd subprocess started with
// configs/daemon/lab.yaml (ephemeral ports, a temporary store). A subprocess, not threads, because
// these two measure the process: its wall time for the main training job next to the same job
// run in this process, and its resident memory when idle.
#include <signal.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "bench_common.hpp"
#include "daemon_bench_common.hpp"
#include "pnn/bench/daemon_process.hpp"
#include "pnn/digital_twin/parallel.hpp"

namespace pnn::bench::detail {
namespace {

using nlohmann::json;
namespace v1 = pnn::v1;
using Clock = std::chrono::steady_clock;


DaemonProcess start_pnnd(const BenchDir& dir) {
  return DaemonProcess({.executable = pnnd_path(),
                                .config_path = lab_config_in(dir),
                                .log_path = dir.file("pnnd.log")});
}

void stop_pnnd(DaemonProcess& pnnd) {
  pnnd.signal(SIGTERM);
  const auto status = pnnd.wait(std::chrono::seconds(60));
  if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    throw std::runtime_error("pnnd did not stop cleanly on SIGTERM; its log ends with:\n" +
                             pnnd.log_tail());
  }
}

// The accuracies a job reports, by the keys of `pnnctl train --json`.
json accuracies(const training::JobResult& r) {
  json j;
  if (const auto* p = r.phase("pat")) j["acc_pat_reality"] = p->acc_hardware;
  if (const auto* p = r.phase("in-silico")) {
    j["acc_insilico_reality"] = p->acc_hardware;
    j["acc_twin"] = p->acc_twin;
  }
  if (const auto* p = r.phase("digital")) j["acc_digital"] = p->acc_twin;
  return j;
}

// The job in this process, as `pnnctl train` runs it (checkpoint and plot written, like the
// daemon does): its accuracies and wall time.
std::pair<json, double> run_in_process(const std::string& text, const std::string& path,
                                       const std::string& output_dir, const BenchOptions& options) {
  training::JobConfig config = training::parse_job_config(text, path);
  config.output_dir = output_dir;
  training::JobCallbacks cb;
  if (options.on_progress) {
    cb.on_epoch = [&](const std::string& phase, const training::EpochStats& s, int total) {
      options.on_progress("in-process " + phase + " epoch " + std::to_string(s.epoch) + "/" +
                          std::to_string(total));
    };
  }
  const auto t0 = Clock::now();
  const training::JobResult result = unwrap(training::run_job(config, cb));
  return {accuracies(result), seconds_since(t0)};
}

// The job through a fresh pnnd (fresh devices, so the same noise as in-process): SubmitJob,
// then JobStatus every 10 ms until it is final. Wall time from SubmitJob to the final state.
std::pair<json, double> run_in_daemon(const std::string& text, const std::string& path,
                                      const BenchDir& dir, const json& keys,
                                      const BenchOptions& options) {
  DaemonProcess pnnd = start_pnnd(dir);
  auto client = bench_client(pnnd.rpc_endpoint(), "bench-daemon-job");
  v1::Request submit;
  submit.mutable_submit_job()->set_config_yaml(text);
  submit.mutable_submit_job()->set_config_name(path);
  v1::Request status;
  const auto t0 = Clock::now();
  status.mutable_job_status()->set_job_id(
      call_ok(*client, submit, "SubmitJob").submit_job().job_id());
  v1::JobInfo info;
  std::uint32_t reported = 0;
  for (;;) {
    info = call_ok(*client, status, "JobStatus").job_status().jobs(0);
    if (info.state() != v1::RUNNING && info.state() != v1::QUEUED) break;
    if (options.on_progress && info.epochs_done() != reported) {
      reported = info.epochs_done();
      options.on_progress("pnnd job epoch " + std::to_string(reported) + "/" +
                          std::to_string(info.epochs_total()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const double wall_s = seconds_since(t0);
  stop_pnnd(pnnd);
  if (info.state() != v1::SUCCEEDED) {
    throw std::runtime_error("daemon-job: the job ended " + v1::JobState_Name(info.state()) + ": " +
                             info.message());
  }
  const json summary = json::parse(info.summary_json());
  json acc;
  for (const auto& [key, value] : keys.items()) acc[key] = summary.value(key, -1.0);
  return {acc, wall_s};
}

}  // namespace

std::vector<json> daemon_job(const BenchOptions& options) {
  const std::string path = config_file("jobs/oscillator-digits.yaml");
  YAML::Node yaml = YAML::LoadFile(path);
  if (options.epochs > 0) yaml["training"]["epochs"] = options.epochs;  // a shortened copy
  const std::string text = YAML::Dump(yaml);
  const training::JobConfig config = training::parse_job_config(text, path);

  // In-process, daemon, daemon, in-process: a drift of the machine's load over the run hits
  // both sides alike. Every run must give the same accuracies (same seed, fresh devices).
  double local_s = 0.0, daemon_s = 0.0;
  json local_acc, daemon_acc;
  bool identical = true;
  for (int run = 0; run < 4; ++run) {
    BenchDir dir("daemon-job");
    const bool in_daemon = run == 1 || run == 2;
    const auto [acc, wall_s] = in_daemon ? run_in_daemon(text, path, dir, local_acc, options)
                                         : run_in_process(text, path, dir.file("out"), options);
    (in_daemon ? daemon_s : local_s) += wall_s;
    if (run == 0) local_acc = acc;
    if (run == 1) daemon_acc = acc;
    identical = identical && acc == local_acc;
  }
  return {json{{"name", "daemon-job"},
               {"config", path},
               {"seed", config.seed},
               {"epochs", config.training.epochs},
               {"runs", 4},
               {"in_process", local_acc},
               {"daemon", daemon_acc},
               {"accuracies_identical", identical},
               {"in_process_wall_s", local_s / 2},
               {"daemon_wall_s", daemon_s / 2},
               {"wall_ratio", daemon_s / local_s},
               {"target_wall_ratio", 1.10},
               {"threads", digital_twin::num_threads()},
               {"servers", "pnnd subprocess"}}};
}

std::vector<json> daemon_rss(const BenchOptions&) {
  BenchDir dir("daemon-rss");
  DaemonProcess pnnd = start_pnnd(dir);
  auto client = bench_client(pnnd.rpc_endpoint(), "bench-daemon-rss");
  v1::Request list;
  list.mutable_list_devices();
  const int devices = call_ok(*client, list, "ListDevices").list_devices().devices_size();
  // Idle: a few heartbeats after start-up, with a client connected.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const long long rss_kb = proc_status(pnnd.pid(), "VmRSS");
  const long long hwm_kb = proc_status(pnnd.pid(), "VmHWM");
  const long long threads = proc_status(pnnd.pid(), "Threads");
  stop_pnnd(pnnd);
  if (rss_kb < 0) throw std::runtime_error("daemon-rss: no VmRSS in /proc/PID/status");
  return {json{{"name", "daemon-rss"},
               {"config", config_file("daemon/lab.yaml")},
               {"devices", devices},
               {"rss_mb", static_cast<double>(rss_kb) / 1024.0},
               {"peak_rss_mb", static_cast<double>(hwm_kb) / 1024.0},
               {"threads", threads},
               {"target_rss_mb", 50},
               {"servers", "pnnd subprocess"}}};
}

}  // namespace pnn::bench::detail
