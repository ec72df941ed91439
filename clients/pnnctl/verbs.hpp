#pragma once
// The verbs of pnnctl. Each add_* registers its sub-commands on `app`; the parsed one stores
// what to run in `action`, which main() calls and whose return value is the exit code.
// Verbs throw UsageError, DaemonError or Unreachable (errors.hpp) for main() to report.
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "remote.hpp"

namespace pnnctl {

using Action = std::function<int()>;

/// train (in-process, or --remote), bench, describe (sim:// addresses in-process, names remote).
void add_local_verbs(CLI::App& app, RemoteOptions& remote, Action& action);
/// hello, devices, lifecycle, acquire, renew, release, forward, calibrate.
void add_device_verbs(CLI::App& app, RemoteOptions& remote, Action& action);
/// jobs, runs [show RUN_ID].
void add_job_verbs(CLI::App& app, RemoteOptions& remote, Action& action);
/// twin fit|list|show|use.
void add_twin_verbs(CLI::App& app, RemoteOptions& remote, Action& action);
/// sweep PLAN [--jobs N | --slurm], sweep run|status|merge|show DIR (docs/sweeps.md).
void add_sweep_verbs(CLI::App& app, RemoteOptions& remote, Action& action);
/// watch [TOPIC...].
void add_watch_verb(CLI::App& app, RemoteOptions& remote, Action& action);

/// pnn-runs, the run-store program of sweeps (it links the daemon's RunStore; pnnctl does not):
/// PNN_RUNS, next to pnnctl, in the build tree, or on PATH.
std::string runs_program_path();
/// `describe NAME...` against the daemon.
int describe_remote(const RemoteOptions& options, const std::vector<std::string>& names);
/// `train CONFIG --remote [--resume RUN_ID]`: SubmitJob, stream progress, print the result.
int train_remote(const RemoteOptions& options, const std::string& config_path,
                 const std::string& resume);

}  // namespace pnnctl
