// pnn-runs: the run-store side of `pnnctl sweep` (docs/sweeps.md). pnnctl links neither the
// daemon nor SQLite, so it runs this program, which links the daemon's RunStore:
//   pnn-runs record TRIAL_DIR         the trial's own store, TRIAL_DIR/store.db, from its
//                                     status.json (and result.json when it succeeded)
//   pnn-runs merge OUT STORE...       every trial store's run into the store OUT, keyed by the
//                                     trial's identity (sweep id, trial index, attempt): merging
//                                     again adds nothing; a re-run trial replaces its old result
// Both work on a copy in a local temporary directory: SQLite's WAL needs a local disk, and a
// sweep directory on a cluster is usually on a network file system. One JSON object per line
// on stdout. Exit codes: 0 done, 1 a store could not be read or written, 2 bad usage.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "pnn/daemon/run_store.hpp"

namespace {

namespace fs = std::filesystem;
namespace pd = pnn::daemon;
using nlohmann::json;

constexpr std::size_t kAllRuns = std::size_t{1} << 40;

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path.string() + ": cannot read");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

json read_json(const fs::path& path) {
  try {
    return json::parse(read_text(path));
  } catch (const json::exception& e) {
    throw std::runtime_error(path.string() + ": not JSON: " + e.what());
  }
}

// A private directory on local disk ($TMPDIR, else /tmp), removed when it goes out of scope.
class LocalTemp {
 public:
  LocalTemp() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/pnn-runs-XXXXXX";
    if (!::mkdtemp(pattern.data())) throw std::runtime_error(pattern + ": cannot create a temporary directory");
    path_ = pattern;
  }
  ~LocalTemp() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A closed store (no WAL left behind) copied to `to` beside it, then renamed over it.
void copy_closed_store(const fs::path& from, const fs::path& to) {
  if (fs::exists(fs::path(from.string() + "-wal")) &&
      fs::file_size(fs::path(from.string() + "-wal")) > 0) {
    throw std::runtime_error(from.string() + ": the store was closed with a WAL left behind");
  }
  const fs::path tmp = to.string() + ".tmp." + std::to_string(::getpid());
  fs::copy_file(from, tmp, fs::copy_options::overwrite_existing);
  fs::rename(tmp, to);
}

void add_metrics(pd::RunStore& store, std::uint64_t run_id, const json& summary) {
  if (!summary.contains("phases")) return;
  for (const auto& p : summary["phases"]) {
    for (const auto& e : p.value("history", json::array())) {
      pd::MetricRecord m;
      m.phase = p.value("phase", "");
      m.epoch = e.value("epoch", 0);
      m.train_loss = e.value("train_loss", 0.0);
      m.train_accuracy = e.value("train_accuracy", 0.0);
      m.test_accuracy = e.value("test_accuracy", -1.0);
      m.seconds = e.value("seconds", 0.0);
      store.add_metric(run_id, m);
    }
  }
}

int record(const fs::path& trial_dir) {
  const json status = read_json(trial_dir / "status.json");
  const bool ok = status.value("exit_code", -1) == 0;
  json summary = json::object();
  if (ok) summary = read_json(trial_dir / "result.json");
  summary["sweep"] = status;
  std::vector<std::string> serials;
  if (summary.contains("devices")) serials = summary["devices"].get<std::vector<std::string>>();
  const std::string message =
      ok ? "" : status.value("error", std::string("failed")) + "; log: " + status.value("log", "");

  LocalTemp temp;
  const fs::path db = temp.path() / "store.db";
  {
    pd::RunStore store(db.string());
    const auto run_id = store.create_run(status.value("name", ""), read_text(trial_dir / "config.yaml"),
                                         serials, "pnnctl sweep");
    add_metrics(store, run_id, summary);
    if (summary.contains("epochs") && summary.contains("checkpoint")) {
      store.set_checkpoint(run_id, summary.value("checkpoint", ""), summary.value("epochs", 0));
    }
    store.finish_run(run_id, ok ? pd::RunState::kSucceeded : pd::RunState::kFailed, summary.dump(),
                     message);
  }
  copy_closed_store(db, trial_dir / "store.db");
  std::cout << json{{"store", (trial_dir / "store.db").string()},
                    {"state", ok ? "SUCCEEDED" : "FAILED"}}.dump()
            << std::endl;
  return 0;
}

// The identity a merged run is keyed by: "<sweep id>/<trial index>".
std::string trial_key(const json& sweep) {
  return sweep.value("sweep_id", "") + "/" + std::to_string(sweep.value("trial", -1));
}

json sweep_of(const pd::RunRecord& run) {
  try {
    const json s = json::parse(run.summary_json);
    return s.contains("sweep") ? s["sweep"] : json();
  } catch (const json::exception&) {
    return json();
  }
}

const char* state_name(pd::RunState s) {
  switch (s) {
    case pd::RunState::kSucceeded: return "SUCCEEDED";
    case pd::RunState::kFailed: return "FAILED";
    case pd::RunState::kCancelled: return "CANCELLED";
    case pd::RunState::kAborted: return "ABORTED";
    case pd::RunState::kRunning: return "RUNNING";
  }
  return "?";
}

int merge(const fs::path& out, const std::vector<fs::path>& sources) {
  pd::RunStore merged(out.string());
  std::map<std::string, pd::RunRecord> existing;
  for (const auto& run : merged.list_runs(kAllRuns)) {
    const json s = sweep_of(run);
    if (s.is_object()) existing.emplace(trial_key(s), run);
  }
  int added = 0, updated = 0, unchanged = 0;
  LocalTemp temp;
  for (const auto& source : sources) {
    const fs::path copy = temp.path() / "trial.db";
    fs::copy_file(source, copy, fs::copy_options::overwrite_existing);
    std::vector<pd::RunRecord> runs;
    std::vector<std::vector<pd::MetricRecord>> metrics;
    {
      pd::RunStore trial(copy.string());
      runs = trial.list_runs(kAllRuns);
      for (const auto& r : runs) metrics.push_back(trial.metrics(r.run_id));
    }
    fs::remove(copy);
    for (std::size_t i = 0; i < runs.size(); ++i) {
      const auto& run = runs[i];
      const json s = sweep_of(run);
      if (!s.is_object()) {
        throw std::runtime_error(source.string() + ": run " + std::to_string(run.run_id) +
                                 " is not a sweep trial (no 'sweep' in its summary)");
      }
      const std::string key = trial_key(s);
      std::string action;
      std::uint64_t run_id = 0;
      const auto it = existing.find(key);
      if (it != existing.end() && sweep_of(it->second).value("attempt", "") == s.value("attempt", "")) {
        action = "unchanged";
        run_id = it->second.run_id;
        ++unchanged;
      } else {
        if (it != existing.end()) {  // a re-run of the trial: its newest attempt replaces the old
          run_id = it->second.run_id;
          merged.reopen_run(run_id);
          action = "updated";
          ++updated;
        } else {
          run_id = merged.create_run(run.name, run.config_yaml, run.device_serials, run.owner);
          action = "added";
          ++added;
        }
        for (const auto& m : metrics[i]) merged.add_metric(run_id, m);
        if (!run.checkpoint_path.empty()) merged.set_checkpoint(run_id, run.checkpoint_path, run.epochs_done);
        merged.finish_run(run_id, run.state, run.summary_json, run.message);
        existing[key] = *merged.get_run(run_id);
      }
      std::cout << json{{"name", run.name}, {"trial", s.value("trial", -1)},
                        {"run_id", run_id}, {"state", state_name(run.state)},
                        {"action", action}, {"message", run.message}}.dump()
                << std::endl;
    }
  }
  std::cout << json{{"store", out.string()}, {"added", added}, {"updated", updated},
                    {"unchanged", unchanged}, {"runs", existing.size()}}.dump()
            << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.size() == 2 && args[0] == "record") return record(args[1]);
    if (args.size() >= 2 && args[0] == "merge") {
      return merge(args[1], std::vector<fs::path>(args.begin() + 2, args.end()));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pnn-runs: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "usage: pnn-runs record TRIAL_DIR | pnn-runs merge OUT_STORE [TRIAL_STORE...]\n");
  return 2;
}
