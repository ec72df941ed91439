// daemon-job and daemon-rss: the daemon as a lab runs it, a pnnd subprocess started with
// configs/lab.yaml (ephemeral ports, a temporary store). A subprocess, not threads, because
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
#include "pnn/daemon/process.hpp"

namespace pnn::bench::detail {
namespace {

using nlohmann::json;
namespace v1 = daemon::v1;
using Clock = std::chrono::steady_clock;

// A field of /proc/PID/status in kB (VmRSS, VmHWM) or as a count (Threads); -1 if absent.
long long proc_status(int pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1));
  }
  return -1;
}

daemon::DaemonProcess start_pnnd(const BenchDir& dir) {
  return daemon::DaemonProcess({.executable = pnnd_path(),
                                .config_path = lab_config_in(dir),
                                .log_path = dir.file("pnnd.log")});
}

void stop_pnnd(daemon::DaemonProcess& pnnd) {
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

}  // namespace

std::vector<json> daemon_job(const BenchOptions& options) {
  const std::string path = config_file("oscillator-digits.yaml");
  YAML::Node yaml = YAML::LoadFile(path);
  if (options.epochs > 0) yaml["training"]["epochs"] = options.epochs;  // a shortened copy
  const std::string text = YAML::Dump(yaml);
  BenchDir dir("daemon-job");

  // In this process, as `pnnctl train` runs it (checkpoint and plot written, like the daemon).
  training::JobConfig config = training::parse_job_config(text, path);
  config.output_dir = dir.file("in-process");
  training::JobCallbacks cb;
  if (options.on_progress) {
    cb.on_epoch = [&](const std::string& phase, const training::EpochStats& s, int total) {
      options.on_progress("in-process " + phase + " epoch " + std::to_string(s.epoch) + "/" +
                          std::to_string(total));
    };
  }
  const auto t0 = Clock::now();
  const training::JobResult local = unwrap(training::run_job(config, cb));
  const double local_s = seconds_since(t0);

  // Through pnnd: SubmitJob, then JobStatus until the job is final.
  daemon::DaemonProcess pnnd = start_pnnd(dir);
  auto client = bench_client(pnnd.rpc_endpoint(), "bench-daemon-job");
  v1::Request submit;
  submit.mutable_submit_job()->set_config_yaml(text);
  submit.mutable_submit_job()->set_config_name(path);
  v1::Request status;
  const auto t1 = Clock::now();
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
  const double daemon_s = seconds_since(t1);
  stop_pnnd(pnnd);
  if (info.state() != v1::SUCCEEDED) {
    throw std::runtime_error("daemon-job: the job ended " + v1::JobState_Name(info.state()) + ": " +
                             info.message());
  }
  const json summary = json::parse(info.summary_json());
  const json local_acc = accuracies(local);
  json daemon_acc;
  bool identical = true;
  for (const auto& [key, value] : local_acc.items()) {
    daemon_acc[key] = summary.value(key, -1.0);
    identical = identical && daemon_acc[key].get<double>() == value.get<double>();
  }
  return {json{{"name", "daemon-job"},
               {"config", path},
               {"seed", config.seed},
               {"epochs", config.training.epochs},
               {"in_process", local_acc},
               {"daemon", daemon_acc},
               {"accuracies_identical", identical},
               {"in_process_wall_s", local_s},
               {"daemon_wall_s", daemon_s},
               {"wall_ratio", daemon_s / local_s},
               {"target_wall_ratio", 1.10},
               {"threads", local.threads},
               {"servers", "pnnd subprocess"}}};
}

std::vector<json> daemon_rss(const BenchOptions&) {
  BenchDir dir("daemon-rss");
  daemon::DaemonProcess pnnd = start_pnnd(dir);
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
               {"config", config_file("lab.yaml")},
               {"devices", devices},
               {"rss_mb", static_cast<double>(rss_kb) / 1024.0},
               {"peak_rss_mb", static_cast<double>(hwm_kb) / 1024.0},
               {"threads", threads},
               {"target_rss_mb", 50},
               {"servers", "pnnd subprocess"}}};
}

}  // namespace pnn::bench::detail
