#pragma once
/// A sweep plan (docs/sweeps.md): a base job config and a grid, a seeded random plan and/or a
/// list of explicit trials over key paths of the job config, expanded into trials whose configs
/// are checked by the job-config parser before anything runs (`pnnctl sweep`). Pure functions
/// of the files they read; thread-safe.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pnn::training {

/// One trial: its index (0..N-1, the Slurm array index), the values it sets (key path → the
/// value as YAML flow text, in the plan's order), the full job config (YAML text) and the Slurm
/// licences it needs (one per physical setup it uses; none for sim:// devices).
struct SweepTrial {
  int index = 0;
  std::vector<std::pair<std::string, std::string>> params;
  std::string config_yaml;
  std::vector<std::string> licenses;
};

/// Defaults of `--slurm` (the plan's `slurm:` block; command-line options override them).
struct SlurmDefaults {
  int max_parallel = 0;  ///< the %K of --array; 0: no limit
  std::string partition, time_limit, account;
  int cpus_per_task = 1;
  std::vector<std::string> extra;  ///< more sbatch options, as given
};

struct SweepPlan {
  std::string name;
  std::string plan_path, base_path;  ///< absolute
  std::string sweep_id;              ///< 16 hex digits: a hash of the base config and the trials
  std::vector<SweepTrial> trials;
  SlurmDefaults slurm;
};

/// Reads and expands the plan at `path`. Every trial's config is parsed as a job config.
/// Random values are drawn with std::mt19937_64 and a fixed transform (not std::*_distribution),
/// so a seed gives the same trials on every platform. Throws ConfigError naming the plan file, the line and the fix: bad YAML, a missing or invalid
/// base config, an empty grid or value list, an unknown key path, a bad distribution, or a
/// trial whose values make an invalid job config (which names the trial and its values).
/// Each trial's output.dir is set to SWEEP_DIR/trials/NNN/run.
SweepPlan load_sweep_plan(const std::string& path, const std::string& sweep_dir);

/// A trial's directory name inside the sweep directory: its index, zero-padded to `width`.
std::string trial_dir_name(int index, int width);
/// The width used for `num_trials` trials (at least 3 digits: what Slurm's %3a gives).
int trial_dir_width(int num_trials);

}  // namespace pnn::training
