// Sweeps (docs/sweeps.md): sweep PLAN.yaml [--jobs N | --slurm], sweep run DIR --trial K,
// sweep status|merge|show DIR. A sweep directory holds sweep.json (the expansion) and one
// directory per trial: config.yaml, run/ (its output), train.log, result.json, status.json and
// its own SQLite store, store.db (written by pnn-runs, which links the run store).
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "errors.hpp"
#include "output.hpp"
#include "pnn/common/atomic_write.hpp"
#include "pnn/training/plot.hpp"
#include "pnn/training/sweep_plan.hpp"
#include "verbs.hpp"

extern char** environ;

namespace pnnctl {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using pnn::training::load_sweep_plan;
using pnn::training::SweepPlan;
using pnn::training::trial_dir_name;
using pnn::training::trial_dir_width;

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

std::int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string self_path() {
  std::error_code ec;
  const auto self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "pnnctl" : self.string();
}

std::string host_name() {
  char b[256] = {};
  ::gethostname(b, sizeof b - 1);
  return b;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

json read_json_or_null(const fs::path& p) {
  if (!fs::exists(p)) return json();
  try {
    return json::parse(read_text(p));
  } catch (const json::exception&) {
    return json();
  }
}

void write_json(const fs::path& p, const json& j) { pnn::common::write_file_atomic(p, j.dump(2) + "\n"); }

// Starts `argv` with stdout and stderr sent to files ("" keeps ours; stdout_fd ≥ 0: that
// descriptor). Returns the pid; throws naming the program when it cannot start.
pid_t spawn(const std::vector<std::string>& argv, const std::string& out_path,
            const std::string& err_path, int stdout_fd = -1) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (stdout_fd >= 0) posix_spawn_file_actions_adddup2(&fa, stdout_fd, 1);
  if (!out_path.empty()) {
    posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  if (!err_path.empty()) {
    posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("cannot run " + argv[0] + ": " + std::strerror(rc));
  return pid;
}

// The exit code of a child (128 + N for a signal), waiting through EINTR.
int wait_exit(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return 1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int exit_code_of(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct Captured {
  int exit_code = 0;
  std::string out;
};

// Runs `argv` to completion, its stdout captured, its stderr ours (or discarded: a probe whose
// complaint, e.g. sacct's "accounting storage is disabled", is not the user's business).
Captured run_captured(const std::vector<std::string>& argv, bool discard_stderr = false) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  pid_t pid = 0;
  try {
    pid = spawn(argv, "", discard_stderr ? "/dev/null" : "", fds[1]);
  } catch (...) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw;
  }
  ::close(fds[1]);
  Captured c;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      c.out.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fds[0]);
  c.exit_code = wait_exit(pid);
  return c;
}

std::vector<json> json_lines(const std::string& text) {
  std::vector<json> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) {
    if (line.empty()) continue;
    try {
      out.push_back(json::parse(line));
    } catch (const json::exception&) {
    }
  }
  return out;
}

// ---- the sweep directory -------------------------------------------------------------------

struct Sweep {
  fs::path dir;
  json doc;  // sweep.json
  int num_trials() const { return static_cast<int>(doc["trials"].size()); }
  fs::path trial_dir(int k) const {
    return dir / "trials" / trial_dir_name(k, doc.value("width", 3));
  }
  const json& trial(int k) const { return doc["trials"][static_cast<std::size_t>(k)]; }
};

Sweep open_sweep(const std::string& dir) {
  const fs::path d = fs::absolute(dir).lexically_normal();
  const json doc = read_json_or_null(d / "sweep.json");
  if (!doc.is_object()) {
    throw UsageError(dir + ": not a sweep directory (no readable sweep.json; pnnctl sweep "
                     "PLAN.yaml creates one)");
  }
  return Sweep{d, doc};
}

Sweep expand(const std::string& plan_path, const std::string& dir_option) {
  // The directory is needed for the trials' output.dir, and its default for the plan's name.
  const fs::path plan_file(plan_path);
  std::string dir = dir_option;
  if (dir.empty()) {
    const auto probe = load_sweep_plan(plan_path, "/");
    dir = (fs::path("sweeps") / probe.name).string();
  }
  const fs::path d = fs::absolute(dir).lexically_normal();
  const SweepPlan plan = load_sweep_plan(plan_path, d.string());
  const json old = read_json_or_null(d / "sweep.json");
  if (old.is_object() && old.value("sweep_id", "") != plan.sweep_id) {
    throw UsageError(d.string() + " holds another sweep (id " + old.value("sweep_id", "?") +
                     ", this plan expands to " + plan.sweep_id +
                     "): give another --dir, or remove that directory");
  }
  const int width = trial_dir_width(static_cast<int>(plan.trials.size()));
  json trials = json::array();
  for (const auto& t : plan.trials) {
    json params = json::object();
    for (const auto& [k, v] : t.params) params[k] = v;
    trials.push_back({{"index", t.index}, {"dir", trial_dir_name(t.index, width)},
                      {"params", params}, {"licenses", t.licenses}});
    const fs::path td = d / "trials" / trial_dir_name(t.index, width);
    pnn::common::write_file_atomic(td / "config.yaml", t.config_yaml);
  }
  json doc{{"name", plan.name},
           {"sweep_id", plan.sweep_id},
           {"plan", plan.plan_path},
           {"base", plan.base_path},
           {"width", width},
           {"trials", trials},
           {"slurm",
            {{"max_parallel", plan.slurm.max_parallel},
             {"partition", plan.slurm.partition},
             {"time", plan.slurm.time_limit},
             {"account", plan.slurm.account},
             {"cpus_per_task", plan.slurm.cpus_per_task},
             {"extra", plan.slurm.extra}}}};
  if (old.is_object() && old.contains("slurm_jobs")) doc["slurm_jobs"] = old["slurm_jobs"];
  write_json(d / "sweep.json", doc);
  return Sweep{d, doc};
}

// ---- running trials ------------------------------------------------------------------------

std::string last_line(const fs::path& log) {
  std::stringstream ss(read_text(log));
  std::string line, last;
  while (std::getline(ss, line)) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
  }
  return last;
}

struct Running {
  int trial = 0;
  pid_t pid = 0;
  std::int64_t started_ns = 0;
  std::chrono::steady_clock::time_point start;
};

Running start_trial(const Sweep& s, int k) {
  const fs::path td = s.trial_dir(k);
  for (const char* f : {"status.json", "result.json", "store.db"}) fs::remove(td / f);
  Running r;
  r.trial = k;
  r.started_ns = wall_ns();
  r.start = std::chrono::steady_clock::now();
  r.pid = spawn({self_path(), "train", (td / "config.yaml").string(), "--json"},
                (td / "result.json.part").string(), (td / "train.log").string());
  // While it runs: who runs it, so that status tells a running trial from one that was killed.
  write_json(td / "running.json", {{"host", host_name()}, {"pid", r.pid}, {"started_ns", r.started_ns}});
  return r;
}

// Writes the trial's status.json, then its own store (pnn-runs record). Returns the exit code
// of the training (or 1 when the store could not be written).
int finish_trial(const Sweep& s, const Running& r, int exit_code) {
  const fs::path td = s.trial_dir(r.trial);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - r.start).count();
  if (exit_code == 0) {
    fs::rename(td / "result.json.part", td / "result.json");
  } else {
    fs::remove(td / "result.json.part");
  }
  const std::string host = host_name();
  json status{{"name", s.doc.value("name", "") + "/" + s.trial(r.trial).value("dir", "")},
              {"sweep", s.doc.value("name", "")},
              {"sweep_id", s.doc.value("sweep_id", "")},
              {"trial", r.trial},
              {"params", s.trial(r.trial)["params"]},
              {"exit_code", exit_code},
              {"log", (td / "train.log").string()},
              {"seconds", seconds},
              {"started_ns", r.started_ns},
              {"finished_ns", wall_ns()},
              {"host", host},
              {"attempt", host + "-" + std::to_string(::getpid()) + "-" + std::to_string(r.started_ns)}};
  if (exit_code != 0) status["error"] = "exit " + std::to_string(exit_code) + ": " + last_line(td / "train.log");
  if (const char* job = std::getenv("SLURM_ARRAY_JOB_ID")) {
    const char* task = std::getenv("SLURM_ARRAY_TASK_ID");
    status["slurm_job"] = std::string(job) + "_" + (task ? task : "");
  }
  write_json(td / "status.json", status);
  fs::remove(td / "running.json");
  const auto rec = run_captured({runs_program_path(), "record", td.string()});
  if (rec.exit_code != 0) {
    std::fprintf(stderr, "pnnctl sweep: trial %d: its store could not be written (pnn-runs exit %d)\n",
                 r.trial, rec.exit_code);
    return exit_code != 0 ? exit_code : kExitFailed;
  }
  return exit_code;
}

// Runs `trials` with at most `jobs` at a time; Ctrl-C starts no more and waits for the running
// ones (which stop after their current batch). Returns the number that failed.
int run_trials(const Sweep& s, const std::vector<int>& trials, int jobs, bool quiet) {
  if (!std::getenv("PNN_THREADS")) ::setenv("PNN_THREADS", "1", 1);  // one core per trial
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::deque<int> queue(trials.begin(), trials.end());
  std::map<pid_t, Running> running;
  int failed = 0, done = 0;
  while (!running.empty() || (!queue.empty() && !g_stop)) {
    while (!g_stop && !queue.empty() && static_cast<int>(running.size()) < jobs) {
      Running r = start_trial(s, queue.front());
      queue.pop_front();
      running.emplace(r.pid, r);
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    const auto it = running.find(pid);
    if (it == running.end()) continue;
    const Running r = it->second;
    running.erase(it);
    const int code = finish_trial(s, r, exit_code_of(status));
    ++done;
    if (code != 0) ++failed;
    if (!quiet) {
      const json st = read_json_or_null(s.trial_dir(r.trial) / "status.json");
      std::fprintf(stderr, "  trial %s %s (%.2f s) [%d/%zu]%s%s\n",
                   s.trial(r.trial).value("dir", "").c_str(), code == 0 ? "succeeded" : "FAILED",
                   st.value("seconds", 0.0), done, trials.size(),
                   code == 0 ? "" : "; log: ", code == 0 ? "" : st.value("log", "").c_str());
    }
  }
  if (g_stop && !queue.empty()) {
    std::fprintf(stderr, "pnnctl sweep: interrupted: %zu trials not started (pnnctl sweep run DIR --trial K)\n",
                 queue.size());
  }
  return failed;
}

// ---- Slurm ---------------------------------------------------------------------------------

std::string ranges(const std::vector<int>& sorted) {
  std::string out;
  for (std::size_t i = 0; i < sorted.size();) {
    std::size_t j = i;
    while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1) ++j;
    out += (out.empty() ? "" : ",") + std::to_string(sorted[i]) +
           (j > i ? "-" + std::to_string(sorted[j]) : "");
    i = j + 1;
  }
  return out;
}

struct SlurmOptions {
  int max_parallel = -1;  // -1: the plan's
  std::string partition, time_limit, account;
  bool dry_run = false;
};

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Writes sweep.sbatch (one array task per trial) and submit.sh (the sbatch commands: one array
// job for the trials on simulated devices, one per set of physical setups, each of those with
// its Slurm licences, -L SETUP:1, so hardware trials queue for their setup). Submits them
// unless --dry-run; records the job ids in sweep.json.
int submit_slurm(Sweep& s, const std::vector<int>& todo, const SlurmOptions& o, bool as_json) {
  if (todo.empty()) {
    std::printf("%s: nothing to submit: every trial has succeeded or is in the Slurm queue\n", s.dir.c_str());
    return kExitOk;
  }
  const json& d = s.doc["slurm"];
  const int k = o.max_parallel >= 0 ? o.max_parallel : d.value("max_parallel", 0);
  const std::string partition = o.partition.empty() ? d.value("partition", "") : o.partition;
  const std::string time_limit = o.time_limit.empty() ? d.value("time", "") : o.time_limit;
  const std::string account = o.account.empty() ? d.value("account", "") : o.account;
  const int width = s.doc.value("width", 3);
  const int n = s.num_trials();
  std::map<std::vector<std::string>, std::vector<int>> groups;  // licences → trials
  for (int i : todo) groups[s.trial(i)["licenses"].get<std::vector<std::string>>()].push_back(i);
  const std::string limit = k > 0 ? "%" + std::to_string(k) : "";
  std::ostringstream script;
  script << "#!/bin/bash\n"
         << "# Generated by pnnctl sweep (docs/sweeps.md): sweep " << s.doc.value("name", "")
         << " (id " << s.doc.value("sweep_id", "") << "), " << n << " trials, one array task each.\n"
         << "# Submit with submit.sh beside this file (it adds the licences of physical setups).\n"
         << "#SBATCH --job-name=pnn-" << s.doc.value("name", "") << "\n"
         << "#SBATCH --array=0-" << n - 1 << limit << "\n"
         << "#SBATCH --output=" << (s.dir / "trials" / ("%" + std::to_string(width) + "a") / "slurm-%A_%a.out").string() << "\n"
         << "#SBATCH --cpus-per-task=" << d.value("cpus_per_task", 1) << "\n";
  if (!partition.empty()) script << "#SBATCH --partition=" << partition << "\n";
  if (!time_limit.empty()) script << "#SBATCH --time=" << time_limit << "\n";
  if (!account.empty()) script << "#SBATCH --account=" << account << "\n";
  for (const auto& e : d.value("extra", std::vector<std::string>{})) script << "#SBATCH " << e << "\n";
  script << "# Each trial writes only inside its own directory: config.yaml, run/, train.log,\n"
         << "# result.json, status.json and its own SQLite store.db (built in $TMPDIR, a local\n"
         << "# disk, then copied), so no SQLite file is ever shared over the network file system.\n"
         << "export PNN_THREADS=${SLURM_CPUS_PER_TASK:-1}\n"
         << "exec " << shell_quote(self_path()) << " sweep run " << shell_quote(s.dir.string())
         << " --trial \"$SLURM_ARRAY_TASK_ID\"\n";
  const fs::path sbatch_file = s.dir / "sweep.sbatch";
  pnn::common::write_file_atomic(sbatch_file, script.str());
  std::vector<std::vector<std::string>> commands;
  std::vector<json> jobs;
  for (const auto& [licenses, trials] : groups) {
    std::vector<std::string> cmd = {"sbatch", "--parsable"};
    // The script's own --array covers every trial; a part of them is given on the command line.
    if (static_cast<int>(trials.size()) != n) cmd.push_back("--array=" + ranges(trials) + limit);
    if (!licenses.empty()) {
      std::string l;
      for (const auto& name : licenses) l += (l.empty() ? "" : ",") + name + ":1";
      cmd.push_back("-L");
      cmd.push_back(l);
    }
    cmd.push_back(sbatch_file.string());
    commands.push_back(cmd);
    jobs.push_back({{"array", ranges(trials)}, {"licenses", licenses}});
  }
  std::ostringstream submit;
  submit << "#!/bin/sh\n# The submission of sweep " << s.doc.value("name", "") << " (pnnctl sweep --slurm runs these).\nset -e\n";
  for (const auto& c : commands) {
    for (std::size_t i = 0; i < c.size(); ++i) submit << (i ? " " : "") << shell_quote(c[i]);
    submit << "\n";
  }
  pnn::common::write_file_atomic(s.dir / "submit.sh", submit.str());
  ::chmod((s.dir / "submit.sh").c_str(), 0755);
  for (std::size_t i = 0; i < commands.size(); ++i) {
    if (o.dry_run) continue;
    const auto c = run_captured(commands[i]);
    const std::string id = c.out.substr(0, c.out.find_first_of(";\n"));
    if (c.exit_code != 0 || id.empty()) {
      throw std::runtime_error("sbatch failed (exit " + std::to_string(c.exit_code) +
                               "); the script is " + sbatch_file.string() +
                               ", the commands are in " + (s.dir / "submit.sh").string());
    }
    jobs[i]["job_id"] = id;
  }
  if (!o.dry_run) {
    if (!s.doc.contains("slurm_jobs")) s.doc["slurm_jobs"] = json::array();
    for (const auto& j : jobs) s.doc["slurm_jobs"].push_back(j);
    write_json(s.dir / "sweep.json", s.doc);
  }
  if (as_json) {
    print_json_line({{"dir", s.dir.string()}, {"script", sbatch_file.string()},
                     {"submitted", !o.dry_run}, {"jobs", jobs}});
  } else {
    std::printf("%s: %d trials; script %s\n", s.dir.c_str(), n, sbatch_file.c_str());
    for (const auto& j : jobs) {
      std::printf("  %s array %s%s%s\n", o.dry_run ? "would submit" : ("job " + j.value("job_id", "")).c_str(),
                  j.value("array", "").c_str(), j["licenses"].empty() ? "" : " with licences ",
                  j["licenses"].empty() ? "" : j["licenses"].dump().c_str());
    }
    std::printf("  progress: pnnctl sweep status %s\n", s.dir.c_str());
  }
  return kExitOk;
}

// Slurm's view of the sweep's array tasks: "<index>" → state, from squeue (pending and
// running tasks) and, where accounting is configured, sacct (finished ones too).
std::map<int, std::string> slurm_states(const Sweep& s) {
  std::map<int, std::string> states;
  if (!s.doc.contains("slurm_jobs")) return states;
  std::string ids;
  for (const auto& j : s.doc["slurm_jobs"]) ids += (ids.empty() ? "" : ",") + j.value("job_id", "");
  if (ids.empty()) return states;
  auto parse = [&](const std::string& out) {
    std::stringstream ss(out);
    std::string line;
    while (std::getline(ss, line)) {
      const auto bar = line.find('|');
      const auto under = line.find('_');
      if (bar == std::string::npos || under == std::string::npos || under > bar) continue;
      const std::string index = line.substr(under + 1, bar - under - 1);
      if (index.empty() || index.find_first_not_of("0123456789") != std::string::npos) continue;
      std::string state = line.substr(bar + 1);
      state = state.substr(0, state.find_first_of(" |"));
      states[std::stoi(index)] = state;  // later lines win: newer jobs, then the queue's view
    }
  };
  try {
    const auto acct = run_captured({"sacct", "-n", "-P", "-X", "-j", ids, "-o", "JobID,State"}, true);
    if (acct.exit_code == 0) parse(acct.out);
  } catch (const std::exception&) {
  }
  try {
    const auto queue = run_captured({"squeue", "-h", "-r", "-j", ids, "-o", "%i|%T"}, true);
    if (queue.exit_code == 0) parse(queue.out);
  } catch (const std::exception&) {
  }
  return states;
}

// Whether `pid` is still this trial's pnnctl train (not a zombie, not a reused pid).
bool trial_process_alive(long pid, const fs::path& config) {
  if (pid <= 0) return false;
  const fs::path proc = fs::path("/proc") / std::to_string(pid);
  const std::string stat = read_text(proc / "stat");
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] == 'Z') return false;
  std::string cmdline = read_text(proc / "cmdline");
  std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
  return cmdline.find(config.string()) != std::string::npos;
}

// One row per trial: its state from its status.json, else from Slurm, else NOT RUN / MISSING.
std::vector<json> trial_rows(const Sweep& s) {
  const auto slurm = slurm_states(s);
  const bool submitted = s.doc.contains("slurm_jobs");
  std::vector<json> rows;
  for (int k = 0; k < s.num_trials(); ++k) {
    const fs::path td = s.trial_dir(k);
    const json st = read_json_or_null(td / "status.json");
    json row{{"trial", k}, {"dir", td.string()}, {"params", s.trial(k)["params"]}};
    if (const auto it = slurm.find(k); it != slurm.end()) row["slurm_state"] = it->second;
    std::string slurm_log;
    for (const auto& e : fs::directory_iterator(td)) {
      const auto name = e.path().filename().string();
      if (name.rfind("slurm-", 0) == 0 && name.size() > 4 && name.substr(name.size() - 4) == ".out") {
        slurm_log = e.path().string();
      }
    }
    if (!slurm_log.empty()) row["slurm_log"] = slurm_log;
    const std::string queued = row.value("slurm_state", "");
    if (queued == "PENDING" || queued == "RUNNING" || queued == "CONFIGURING") {
      row["state"] = queued;  // queued again after an earlier attempt: the queue is the news
    } else if (st.is_object()) {
      const int code = st.value("exit_code", -1);
      row["state"] = code == 0 ? "SUCCEEDED" : "FAILED";
      row["exit_code"] = code;
      row["seconds"] = st.value("seconds", 0.0);
      row["log"] = st.value("log", "");
      if (code != 0) row["error"] = st.value("error", "");
      const json result = read_json_or_null(td / "result.json");
      for (auto it = result.begin(); result.is_object() && it != result.end(); ++it) {
        const auto& key = it.key();
        if (key.rfind("acc_", 0) == 0 && key.size() > 8 && key.substr(key.size() - 8) == "_reality" &&
            key != "acc_insilico_reality") {
          row["accuracy"] = it.value();
          row["accuracy_key"] = key;
        }
      }
    } else if (const json run = read_json_or_null(td / "running.json");
               run.is_object() && !row.contains("slurm_state")) {
      // Started and not finished: running, if its process is alive (checked on its host only).
      const bool here = run.value("host", "") == host_name();
      const bool alive = here && trial_process_alive(run.value("pid", 0), td / "config.yaml");
      // Elsewhere: unknowable, unless it ran under Slurm, which no longer has it queued.
      const bool gone = here ? !alive : submitted;
      row["state"] = gone ? "INTERRUPTED" : here ? "RUNNING" : "RUNNING?";
      row["host"] = run.value("host", "");
      row["log"] = (td / "train.log").string();
      if (gone) {
        row["error"] = std::string("started on ") + run.value("host", "?") +
                       ", never finished (killed, or past its time limit?); run it again: "
                       "pnnctl sweep run DIR --trial K, or submit the plan again";
      }
    } else if (row.contains("slurm_state")) {
      const std::string state = row["slurm_state"];
      row["state"] = state == "PENDING" || state == "RUNNING" || state == "CONFIGURING" ? state : "FAILED";
      if (row["state"] == "FAILED") {
        row["error"] = "Slurm: " + state + " without a result";
        row["log"] = slurm_log;
      }
    } else {
      row["state"] = submitted ? "MISSING" : "NOT RUN";
      if (submitted) {
        row["error"] = "no result and not in the Slurm queue";
        row["log"] = slurm_log;
      }
    }
    rows.push_back(row);
  }
  return rows;
}

std::string params_text(const json& params) {
  std::string out;
  for (auto it = params.begin(); it != params.end(); ++it) {
    out += (out.empty() ? "" : " ") + it.key() + "=" + it.value().get<std::string>();
  }
  return out;
}

int status(const std::string& dir, bool as_json) {
  const Sweep s = open_sweep(dir);
  const auto rows = trial_rows(s);
  std::map<std::string, int> counts;
  for (const auto& r : rows) ++counts[r.value("state", "")];
  if (as_json) {
    for (const auto& r : rows) print_json_line(r);
    print_json_line({{"sweep", s.doc.value("name", "")}, {"trials", rows.size()}, {"states", counts}});
    return kExitOk;
  }
  std::printf("sweep %s (%s): %zu trials\n", s.doc.value("name", "").c_str(), s.dir.c_str(), rows.size());
  std::printf("%-6s %-10s %-6s %s\n", "TRIAL", "STATE", "EXIT", "PARAMS");
  for (const auto& r : rows) {
    std::printf("%-6s %-10s %-6s %s\n", fs::path(r.value("dir", "")).filename().c_str(),
                r.value("state", "").c_str(),
                r.contains("exit_code") ? std::to_string(r.value("exit_code", 0)).c_str() : "-",
                params_text(r["params"]).c_str());
    if (r.contains("error")) {
      std::printf("       %s\n       log: %s\n", r.value("error", "").c_str(), r.value("log", "").c_str());
    }
  }
  std::string summary;
  for (const auto& [state, n] : counts) summary += (summary.empty() ? "" : ", ") + std::to_string(n) + " " + state;
  std::printf("%s\n", summary.c_str());
  return kExitOk;
}

int merge(const std::string& dir, const std::string& into, bool as_json) {
  const Sweep s = open_sweep(dir);
  const fs::path out = into.empty() ? s.dir / "merged.db" : fs::absolute(into);
  std::vector<std::string> cmd = {runs_program_path(), "merge", out.string()};
  const auto rows = trial_rows(s);
  for (int k = 0; k < s.num_trials(); ++k) {
    if (fs::exists(s.trial_dir(k) / "store.db")) cmd.push_back((s.trial_dir(k) / "store.db").string());
  }
  const auto c = run_captured(cmd);
  if (c.exit_code != 0) throw std::runtime_error("merge into " + out.string() + " failed (pnn-runs exit " + std::to_string(c.exit_code) + ")");
  const auto lines = json_lines(c.out);
  json totals = lines.empty() ? json::object() : lines.back();
  json failures = json::array(), missing = json::array();
  int succeeded = 0;
  for (const auto& r : rows) {
    const std::string state = r.value("state", "");
    if (state == "SUCCEEDED") {
      ++succeeded;
    } else if (state == "FAILED") {
      failures.push_back({{"trial", r["trial"]}, {"error", r.value("error", "")}, {"log", r.value("log", "")}});
    } else {
      missing.push_back({{"trial", r["trial"]}, {"state", state}, {"log", r.value("log", "")}});
    }
  }
  totals["succeeded"] = succeeded;
  totals["failed"] = failures.size();
  totals["failures"] = failures;
  totals["not_finished"] = missing;
  if (as_json) {
    print_json_line(totals);
  } else {
    std::printf("merged into %s: %d added, %d updated, %d unchanged (%d runs in the store)\n",
                out.c_str(), totals.value("added", 0), totals.value("updated", 0),
                totals.value("unchanged", 0), totals.value("runs", 0));
    std::printf("%d succeeded, %zu failed, %zu not finished\n", succeeded, failures.size(), missing.size());
    for (const auto& f : failures) {
      std::printf("  trial %d FAILED: %s\n    log: %s\n", f.value("trial", 0), f.value("error", "").c_str(),
                  f.value("log", "").c_str());
    }
    for (const auto& m : missing) std::printf("  trial %d %s\n", m.value("trial", 0), m.value("state", "").c_str());
  }
  return kExitOk;
}

int show(const std::string& dir, const std::string& plot, bool as_json) {
  const Sweep s = open_sweep(dir);
  const auto rows = trial_rows(s);
  if (as_json) {
    for (const auto& r : rows) print_json_line(r);
  } else {
    // ACCURACY: acc_<rule>_reality, the main rule's accuracy measured on the hardware.
    std::printf("%-6s %-10s %-9s %-8s %s\n", "TRIAL", "STATE", "ACCURACY", "WALL_S", "PARAMS");
    for (const auto& r : rows) {
      char acc[32] = "-", wall[32] = "-";
      if (r.contains("accuracy") && r["accuracy"].is_number()) std::snprintf(acc, sizeof acc, "%.4f", r["accuracy"].get<double>());
      if (r.contains("seconds")) std::snprintf(wall, sizeof wall, "%.2f", r.value("seconds", 0.0));
      std::printf("%-6s %-10s %-9s %-8s %s\n", fs::path(r.value("dir", "")).filename().c_str(),
                  r.value("state", "").c_str(), acc, wall, params_text(r["params"]).c_str());
    }
  }
  if (plot.empty()) return kExitOk;
  // x: the one swept key when there is exactly one and it is numeric; else the trial index.
  std::set<std::string> keys;
  for (const auto& r : rows) {
    for (auto it = r["params"].begin(); it != r["params"].end(); ++it) keys.insert(it.key());
  }
  std::string x_key = keys.size() == 1 ? *keys.begin() : "";
  pnn::training::Series series{"trials", {}, {}, true};
  for (const auto& r : rows) {
    if (!r.contains("accuracy") || !r["accuracy"].is_number()) continue;
    double x = r.value("trial", 0);
    if (!x_key.empty()) {
      try {
        std::size_t used = 0;
        const std::string v = r["params"].value(x_key, "");
        x = std::stod(v, &used);
        if (used != v.size()) x_key.clear();
      } catch (const std::exception&) {
        x_key.clear();
      }
    }
    series.x.push_back(x);
    series.y.push_back(r["accuracy"].get<double>());
  }
  if (x_key.empty()) {  // fall back to the index for every point
    series.x.clear();
    for (const auto& r : rows) {
      if (r.contains("accuracy") && r["accuracy"].is_number()) series.x.push_back(r.value("trial", 0));
    }
  }
  const std::string svg = pnn::training::render_svg(
      "sweep " + s.doc.value("name", ""), x_key.empty() ? "trial" : x_key,
      {pnn::training::Panel{"accuracy on the hardware", "accuracy", {series}}});
  pnn::training::write_text_file_atomic(plot, svg);
  if (!as_json) std::printf("plot: %s\n", plot.c_str());
  return kExitOk;
}

}  // namespace

void add_sweep_verbs(CLI::App& app, RemoteOptions& remote, Action& action) {
  struct Args {
    std::string plan, dir, into, plot;
    int jobs = 1;
    bool slurm = false;
    SlurmOptions slurm_options;
    std::vector<int> trials;
  };
  auto a = std::make_shared<Args>();
  auto* sweep = app.add_subcommand(
      "sweep", "expand a sweep plan into trials and run them: locally (--jobs N) or on Slurm "
               "(--slurm); status|merge|show|run DIR");
  sweep->add_option("plan", a->plan, "the sweep plan (YAML; docs/sweeps.md)");
  sweep->add_option("--dir", a->dir, "the sweep directory (default: sweeps/<plan name>)");
  sweep->add_option("--jobs,-j", a->jobs, "trials run at once on this machine (default 1)")
      ->check(CLI::Range(1, 1024));
  sweep->add_flag("--slurm", a->slurm, "write one Slurm array job (sweep.sbatch) and submit it");
  sweep->add_option("--max-parallel", a->slurm_options.max_parallel,
                    "Slurm: at most K trials running at once (--array=0-N%K; 0: no limit)");
  sweep->add_option("--partition", a->slurm_options.partition, "Slurm partition");
  sweep->add_option("--time", a->slurm_options.time_limit, "Slurm time limit per trial, e.g. 00:30:00");
  sweep->add_option("--account", a->slurm_options.account, "Slurm account");
  sweep->add_flag("--dry-run", a->slurm_options.dry_run,
                  "Slurm: write sweep.sbatch and submit.sh but do not submit");
  sweep->callback([a, sweep, &remote, &action] {
    if (!sweep->get_subcommands().empty()) return;
    action = [a, &remote] {
      if (a->plan.empty()) {
        throw UsageError("sweep: give a plan (pnnctl sweep PLAN.yaml) or one of run, status, "
                         "merge, show with the sweep directory");
      }
      Sweep s = expand(a->plan, a->dir);
      // Only what has not succeeded (a resume; on Slurm also not what is queued or running).
      std::vector<int> todo;
      for (const auto& row : trial_rows(s)) {
        const std::string state = row.value("state", "");
        if (state != "SUCCEEDED" && state != "PENDING" && state != "RUNNING" &&
            state != "CONFIGURING" && state != "RUNNING?") {
          todo.push_back(row.value("trial", 0));
        }
      }
      if (a->slurm) return submit_slurm(s, todo, a->slurm_options, remote.json);
      std::fprintf(stderr, "sweep %s: %d trials in %s, %zu to run, %d at a time\n",
                   s.doc.value("name", "").c_str(), s.num_trials(), s.dir.c_str(), todo.size(), a->jobs);
      const int failed = run_trials(s, todo, a->jobs, false);
      const int rc = status(s.dir.string(), remote.json);
      if (g_stop) return kExitInterrupted;
      return failed == 0 && rc == kExitOk ? kExitOk : kExitFailed;
    };
  });

  auto* run = sweep->add_subcommand("run", "run trials of a sweep here (a failed one again, or a Slurm array task)");
  run->add_option("dir", a->dir, "the sweep directory")->required();
  run->add_option("--trial,-t", a->trials, "trial index (repeatable)")->required();
  run->add_option("--jobs,-j", a->jobs, "trials run at once (default 1)")->check(CLI::Range(1, 1024));
  run->callback([a, &action] {
    action = [a] {
      const Sweep s = open_sweep(a->dir);
      for (int k : a->trials) {
        if (k < 0 || k >= s.num_trials()) {
          throw UsageError("sweep run: trial " + std::to_string(k) + " is not in " + a->dir +
                           " (0.." + std::to_string(s.num_trials() - 1) + ")");
        }
      }
      const int failed = run_trials(s, a->trials, a->jobs, false);
      return g_stop ? kExitInterrupted : failed == 0 ? kExitOk : kExitFailed;
    };
  });
  auto* st = sweep->add_subcommand("status", "each trial's state (Slurm's where it is queued), failures with their log");
  st->add_option("dir", a->dir, "the sweep directory")->required();
  st->callback([a, &remote, &action] { action = [a, &remote] { return status(a->dir, remote.json); }; });
  auto* mg = sweep->add_subcommand("merge", "gather every trial's store into one run store (idempotent)");
  mg->add_option("dir", a->dir, "the sweep directory")->required();
  mg->add_option("--into", a->into, "the merged store (default DIR/merged.db)");
  mg->callback([a, &remote, &action] { action = [a, &remote] { return merge(a->dir, a->into, remote.json); }; });
  auto* sh = sweep->add_subcommand("show", "the results table (and --plot FILE.svg)");
  sh->add_option("dir", a->dir, "the sweep directory")->required();
  sh->add_option("--plot", a->plot, "write the accuracies as an SVG plot");
  sh->callback([a, &remote, &action] { action = [a, &remote] { return show(a->dir, a->plot, remote.json); }; });
}

}  // namespace pnnctl
