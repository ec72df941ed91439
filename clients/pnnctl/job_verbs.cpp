// Jobs in the daemon: train --remote (SubmitJob, progress from telemetry job/<id>, CancelJob on
// Ctrl-C), jobs, runs, runs show, runs export (pnn/client/export.hpp writes the files).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "errors.hpp"
#include "matrix_io.hpp"
#include "output.hpp"
#include "pnn/client/export.hpp"
#include "pnn/training/job.hpp"
#include "progress.hpp"
#include "signals.hpp"
#include "verbs.hpp"

#include <utility>
#include <vector>

namespace pnnctl {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;


bool is_final(v1::JobState s) {
  return s == v1::SUCCEEDED || s == v1::FAILED || s == v1::CANCELLED || s == v1::ABORTED;
}

pnn::training::EpochStats to_stats(const v1::EpochMetrics& m) {
  pnn::training::EpochStats s;
  s.epoch = static_cast<int>(m.epoch());
  s.train_loss = m.train_loss();
  s.train_accuracy = m.train_accuracy();
  s.test_accuracy = m.test_accuracy();
  s.seconds = m.seconds();
  return s;
}

// Follows one job from its JobInfo updates (events or polls), printing each epoch once.
class JobProgress {
 public:
  explicit JobProgress(std::uint64_t job_id) : job_id_(job_id) {}

  void apply(const v1::JobInfo& info) {
    if (info.job_id() != job_id_) return;
    const int total = static_cast<int>(info.epochs_total());
    for (int k = shown_; k < info.metrics_size(); ++k) {
      progress_.epoch(info.metrics(k).phase(), to_stats(info.metrics(k)), total);
    }
    shown_ = std::max(shown_, info.metrics_size());
    if (info.state() == v1::RUNNING && info.num_batches() > 0) {
      progress_.batch(info.phase(), static_cast<int>(info.epoch()), total,
                      static_cast<long>(info.batch()), static_cast<long>(info.num_batches()),
                      info.running_loss());
    }
    last_ = info;
  }
  void line(const std::string& text) { progress_.line(text); }
  const v1::JobInfo& last() const { return last_; }
  bool done() const { return is_final(last_.state()); }

 private:
  std::uint64_t job_id_;
  Progress progress_{stderr};
  int shown_ = 0;
  v1::JobInfo last_;
};

v1::JobInfo job_status(Remote& remote, std::uint64_t job_id) {
  v1::Request r;
  r.mutable_job_status()->set_job_id(job_id);
  const auto reply = remote.call(std::move(r));
  if (reply.job_status().jobs_size() != 1) {
    throw DaemonError("MALFORMED", "JobStatus returned no job " + std::to_string(job_id), "");
  }
  return reply.job_status().jobs(0);
}

int finish(const RemoteOptions& options, const v1::JobInfo& info, bool interrupted) {
  const std::string rerun = "pnnctl train --remote --resume " + std::to_string(info.run_id());
  json summary;
  if (!info.summary_json().empty()) {
    summary = json::parse(info.summary_json(), nullptr, false);
    if (summary.is_discarded()) summary = json();
  }
  if (summary.is_object()) {
    summary["job_id"] = info.job_id();
    summary["run_id"] = info.run_id();
    summary["state"] = job_state_name(info.state());
    if (options.json) {
      print_json_line(summary);
    } else {
      print_summary(summary);
    }
  }
  switch (info.state()) {
    case v1::SUCCEEDED:
      std::fprintf(stderr,
                   "pnnctl: job %llu (run %llu) succeeded; details: pnnctl runs show %llu\n",
                   static_cast<unsigned long long>(info.job_id()),
                   static_cast<unsigned long long>(info.run_id()),
                   static_cast<unsigned long long>(info.run_id()));
      return kExitOk;
    case v1::CANCELLED:
      std::fprintf(stderr, "pnnctl: job %llu cancelled: %s; continue it with %s\n",
                   static_cast<unsigned long long>(info.job_id()), info.message().c_str(),
                   rerun.c_str());
      return interrupted ? kExitInterrupted : kExitFailed;
    case v1::ABORTED:
      std::fprintf(stderr, "pnnctl: job %llu aborted: %s\n",
                   static_cast<unsigned long long>(info.job_id()), info.message().c_str());
      return kExitFailed;
    default:
      std::fprintf(stderr, "pnnctl: job %llu %s: %s\n",
                   static_cast<unsigned long long>(info.job_id()),
                   job_state_name(info.state()).c_str(), info.message().c_str());
      return kExitFailed;
  }
}

int jobs(const RemoteOptions& options) {
  Remote remote(options);
  v1::Request r;
  r.mutable_job_status();
  const auto reply = remote.call(std::move(r));
  if (options.json) {
    for (const auto& j : reply.job_status().jobs()) print_json_line(to_json(j));
    return kExitOk;
  }
  std::printf("%-5s %-5s %-22s %-10s %-9s %s\n", "JOB", "RUN", "NAME", "STATE", "EPOCHS",
              "MESSAGE");
  for (const auto& j : reply.job_status().jobs()) {
    const std::string epochs =
        std::to_string(j.epochs_done()) + "/" + std::to_string(j.epochs_total());
    std::printf("%-5llu %-5llu %-22s %-10s %-9s %s\n", static_cast<unsigned long long>(j.job_id()),
                static_cast<unsigned long long>(j.run_id()), j.name().c_str(),
                job_state_name(j.state()).c_str(), epochs.c_str(), j.message().c_str());
  }
  if (reply.job_status().jobs_size() == 0) {
    std::printf("(no jobs in this daemon instance; past runs: pnnctl runs)\n");
  }
  return kExitOk;
}

int runs_list(const RemoteOptions& options, std::uint32_t limit) {
  Remote remote(options);
  v1::Request r;
  r.mutable_list_runs()->set_limit(limit);
  const auto reply = remote.call(std::move(r));
  if (options.json) {
    for (const auto& run : reply.list_runs().runs()) print_json_line(to_json(run));
    return kExitOk;
  }
  std::printf("%-5s %-22s %-10s %-6s %-19s %s\n", "RUN", "NAME", "STATE", "EPOCHS", "STARTED",
              "DEVICES");
  for (const auto& run : reply.list_runs().runs()) {
    std::string serials;
    for (const auto& s : run.device_serials()) serials += (serials.empty() ? "" : " ") + s;
    std::printf("%-5llu %-22s %-10s %-6u %-19s %s\n", static_cast<unsigned long long>(run.run_id()),
                run.name().c_str(), job_state_name(run.state()).c_str(), run.epochs_done(),
                format_time_ns(run.started_ns()).c_str(), serials.c_str());
  }
  if (reply.list_runs().runs_size() == 0) std::printf("(the run store is empty)\n");
  return kExitOk;
}

// One run of the store with its metrics (UNKNOWN_RUN is a DaemonError).
v1::GetRunReply get_run(const RemoteOptions& options, std::uint64_t run_id) {
  Remote remote(options);
  v1::Request r;
  r.mutable_get_run()->set_run_id(run_id);
  return remote.call(std::move(r)).get_run();
}

int runs_show(const RemoteOptions& options, const std::string& id_text) {
  const auto reply = get_run(options, parse_id(id_text, "runs show", "run", "pnnctl runs"));
  const auto& run = reply.run();
  if (options.json) {
    print_json_line(to_json(reply));
    return kExitOk;
  }
  std::string serials;
  for (const auto& s : run.device_serials()) serials += (serials.empty() ? "" : " ") + s;
  std::printf(
      "run %llu  %s  %s\n  started    %s\n  finished   %s\n  epochs     %u\n"
      "  devices    %s\n  checkpoint %s\n",
      static_cast<unsigned long long>(run.run_id()), run.name().c_str(),
      job_state_name(run.state()).c_str(), format_time_ns(run.started_ns()).c_str(),
      format_time_ns(run.finished_ns()).c_str(), run.epochs_done(), serials.c_str(),
      run.checkpoint_path().empty() ? "-" : run.checkpoint_path().c_str());
  if (!run.message().empty()) std::printf("  message    %s\n", run.message().c_str());
  if (reply.metrics_size() > 0) {
    std::printf("  %-10s %5s %10s %10s %10s %8s\n", "phase", "epoch", "loss", "train acc",
                "test acc", "seconds");
    for (const auto& m : reply.metrics()) {
      char test[32] = "-";
      if (m.test_accuracy() >= 0) std::snprintf(test, sizeof test, "%.4f", m.test_accuracy());
      std::printf("  %-10s %5u %10.4f %10.4f %10s %8.2f\n", m.phase().c_str(), m.epoch(),
                  m.train_loss(), m.train_accuracy(), test, m.seconds());
    }
  }
  if (!run.summary_json().empty()) {
    const json summary = json::parse(run.summary_json(), nullptr, false);
    if (summary.is_object()) print_summary(summary);
  }
  return kExitOk;
}

struct ExportArgs {
  std::string tensorboard, mlflow, csv;
  std::string experiment = "pnn-hil";
  bool overwrite = false;
};

int runs_export(const RemoteOptions& options, const std::string& id_text, const ExportArgs& a) {
  const std::uint64_t run_id = parse_id(id_text, "runs export", "run", "pnnctl runs");
  if (a.tensorboard.empty() && a.mlflow.empty() && a.csv.empty()) {
    throw UsageError("runs export " + id_text +
                     ": give at least one of --tensorboard DIR, --mlflow DIR, --csv FILE");
  }
  const auto run = get_run(options, run_id);
  pnn::client::ExportTargets targets{
      .tensorboard_dir = a.tensorboard, .mlflow_dir = a.mlflow, .csv_file = a.csv};
  pnn::client::ExportOptions export_options{
      .overwrite = a.overwrite, .experiment = a.experiment,
      .source = "pnnd at " + options.endpoint};
  std::vector<std::filesystem::path> written;
  try {
    written = pnn::client::export_run(run, targets, export_options);
  } catch (const pnn::client::ExportError& e) {
    throw UsageError(std::string("runs export ") + id_text + ": " + e.what());
  }
  // export_run returns the written paths in the order tensorboard, mlflow, csv.
  std::vector<std::pair<std::string, std::string>> outputs;
  std::size_t k = 0;
  if (!a.tensorboard.empty()) outputs.emplace_back("tensorboard", written.at(k++).string());
  if (!a.mlflow.empty()) outputs.emplace_back("mlflow", written.at(k++).string());
  if (!a.csv.empty()) outputs.emplace_back("csv", written.at(k++).string());
  if (options.json) {
    json j{{"run_id", run_id}, {"epochs", run.metrics_size()},
           {"points", pnn::client::scalar_points(run).size()}};
    for (const auto& [kind, path] : outputs) j[kind] = path;
    print_json_line(j);
    return kExitOk;
  }
  for (const auto& [kind, path] : outputs) {
    std::printf("run %llu (%d epochs) -> %s: %s\n", static_cast<unsigned long long>(run_id),
                run.metrics_size(), kind.c_str(), path.c_str());
  }
  return kExitOk;
}

}  // namespace

int train_remote(const RemoteOptions& options, const std::string& config_path,
                 const std::string& resume) {
  v1::Request request;
  auto* submit = request.mutable_submit_job();
  std::string what;
  if (!config_path.empty()) {
    const std::string yaml = read_text_file(config_path, "train");
    // Checked here too, so a config mistake is reported like the in-process run reports it.
    const auto parsed = pnn::training::parse_job_config(yaml, config_path);
    submit->set_config_yaml(yaml);
    submit->set_config_name(config_path);
    what = parsed.name + " (" + config_path + ")";
  }
  if (!resume.empty()) {
    if (resume.find_first_not_of("0123456789") != std::string::npos) {
      throw UsageError(
          "train --remote --resume takes a RUN_ID of the daemon's run store (see "
          "pnnctl runs); a checkpoint file resumes in-process (drop --remote)");
    }
    submit->set_resume_run_id(parse_id(resume, "--resume", "run", "pnnctl runs"));
    what += (what.empty() ? "" : ", ") + std::string("resuming run ") + resume;
  }
  if (config_path.empty() && resume.empty()) {
    throw UsageError("train --remote: give a job config, or --resume RUN_ID to continue a run");
  }

  SignalWatcher signals;  // before any ZeroMQ thread exists
  Remote remote(options);
  const std::string instance = remote.hello().instance_id();
  pnn::client::Subscriber sub(remote.telemetry_endpoint(), {"job/", "log/", "hb"}, remote.curve());
  // Subscriptions take effect asynchronously: wait (briefly) for the first event so the job's
  // first updates are not lost. JobStatus polls cover whatever is lost anyway.
  const auto settle_until = Clock::now() + 1500ms;
  while (Clock::now() < settle_until && !sub.next(100ms)) {
  }

  v1::Reply reply;
  try {
    reply = remote.call(request, Retry::kNever);
  } catch (const DaemonError& e) {
    if (e.code_name() == "INVALID_ARGUMENT" || e.code_name() == "UNKNOWN_DEVICE" ||
        e.code_name() == "UNKNOWN_RUN") {
      throw DaemonError(e.code_name(), e.what(), e.origin(), kExitUsage);
    }
    throw;
  }
  const std::uint64_t job_id = reply.submit_job().job_id();
  const std::uint64_t run_id = reply.submit_job().run_id();
  JobProgress progress(job_id);
  progress.line("job " + std::to_string(job_id) + " (run " + std::to_string(run_id) + ") " + what +
                " submitted to pnnd at " + options.endpoint + "; Ctrl-C cancels it");
  const std::string job_topic = "job/" + std::to_string(job_id);
  const std::string log_prefix = "job " + std::to_string(job_id) + ": ";
  bool cancel_sent = false;
  auto last_update = Clock::now();
  progress.apply(job_status(remote, job_id));
  while (!progress.done()) {
    if (signals.count() >= 2) {
      progress.line("  second interrupt: not waiting; job " + std::to_string(job_id) +
                    " stops in the daemon after its current batch");
      return kExitInterrupted;
    }
    if (signals.count() == 1 && !cancel_sent) {
      v1::Request cancel;
      cancel.mutable_cancel_job()->set_job_id(job_id);
      remote.call(std::move(cancel));
      cancel_sent = true;
      progress.line("  cancelling job " + std::to_string(job_id) +
                    ": it stops after the current batch (Ctrl-C again to stop waiting)");
    }
    auto ev = sub.next(250ms);
    if (ev) {
      if (ev->second.instance_id() != instance) {
        progress.line("  pnnd restarted (instance " + instance + " -> " + ev->second.instance_id() +
                      "): job " + std::to_string(job_id) +
                      " was stopped; its run is resumable: pnnctl train --remote --resume " +
                      std::to_string(run_id));
        return kExitFailed;
      }
      if (ev->first == job_topic && ev->second.has_job()) {
        progress.apply(ev->second.job());
        last_update = Clock::now();
      } else if (ev->first.rfind("log/", 0) == 0 &&
                 ev->second.log().text().rfind(log_prefix, 0) == 0) {
        progress.line("  " + ev->second.log().text().substr(log_prefix.size()));
      }
    }
    // Events can be lost (slow joiner, high-water mark): poll when none came for a while.
    if (Clock::now() - last_update > 2s) {
      try {
        progress.apply(job_status(remote, job_id));
      } catch (const DaemonError& e) {
        if (e.code_name() != "UNKNOWN_JOB") throw;
        progress.line("  pnnd no longer knows job " + std::to_string(job_id) +
                      " (restarted?); resume the run with pnnctl train --remote --resume " +
                      std::to_string(run_id));
        return kExitFailed;
      }
      last_update = Clock::now();
    }
  }
  return finish(options, progress.last(), cancel_sent);
}

void add_job_verbs(CLI::App& app, RemoteOptions& remote, Action& action) {
  app.add_subcommand("jobs", "the daemon's jobs (this instance): state, epochs, message")
      ->callback([&] { action = [&] { return jobs(remote); }; });

  struct Args {
    std::uint32_t limit = 20;
    std::string run_id;
  };
  auto a = std::make_shared<Args>();
  auto* runs = app.add_subcommand("runs", "the daemon's run store, newest first");
  runs->add_option("--limit", a->limit, "at most this many runs")->capture_default_str();
  auto* show = runs->add_subcommand("show", "one run: state, metrics per epoch, result");
  show->add_option("run_id", a->run_id, "run id (see pnnctl runs)")->required();
  auto e = std::make_shared<ExportArgs>();
  auto* exp = runs->add_subcommand(
      "export", "write a run's curves for TensorBoard, MLflow or as CSV (one or several at once)");
  exp->add_option("run_id", a->run_id, "run id (see pnnctl runs)")->required();
  exp->add_option("--tensorboard", e->tensorboard,
                  "event file in DIR/run-<id>/ (point tensorboard --logdir at DIR)");
  exp->add_option("--mlflow", e->mlflow,
                  "MLflow file store DIR (mlflow ui --backend-store-uri DIR)");
  exp->add_option("--csv", e->csv, "one row per epoch: phase,epoch,train_loss,...");
  exp->add_option("--experiment", e->experiment, "MLflow experiment name")->capture_default_str();
  exp->add_flag("--overwrite", e->overwrite, "replace an earlier export of the run");
  runs->callback([a, e, runs, show, exp, &remote, &action] {
    if (show->parsed()) {
      action = [a, &remote] { return runs_show(remote, a->run_id); };
    } else if (exp->parsed()) {
      action = [a, e, &remote] { return runs_export(remote, a->run_id, *e); };
    } else {
      action = [a, &remote] { return runs_list(remote, a->limit); };
    }
  });
}

}  // namespace pnnctl
