#include "pnn/training/sweep_plan.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "pnn/training/job.hpp"

namespace pnn::training {
namespace {

namespace fs = std::filesystem;

// One step of a key path: a mapping key, or a list index (network[1]).
struct Step {
  std::string key;
  int index = -1;
};

class PlanReader {
 public:
  explicit PlanReader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const YAML::Node& node, const std::string& what) const {
    const auto mark = node.Mark();
    throw ConfigError(source_ + (mark.line >= 0 ? ":" + std::to_string(mark.line + 1) : "") +
                     ": " + what);
  }
  [[noreturn]] void fail(const std::string& what) const { throw ConfigError(source_ + ": " + what); }
  const std::string& source() const { return source_; }

 private:
  std::string source_;
};

std::vector<Step> parse_key_path(const PlanReader& r, const YAML::Node& at, const std::string& path) {
  std::vector<Step> steps;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '.')) {
    Step s;
    const auto bracket = part.find('[');
    s.key = part.substr(0, bracket);
    if (bracket != std::string::npos) {
      const auto close = part.find(']', bracket);
      const std::string digits = part.substr(bracket + 1, close - bracket - 1);
      if (close != part.size() - 1 || digits.empty() ||
          !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        r.fail(at, "'" + path + "': a key path is KEY.KEY or KEY[INDEX].KEY, e.g. "
                   "training.learning_rate or network[1].physical.twin");
      }
      s.index = std::stoi(digits);
    }
    if (s.key.empty()) {
      r.fail(at, "'" + path + "': empty key in the key path (use e.g. training.learning_rate)");
    }
    steps.push_back(s);
  }
  if (steps.empty()) r.fail(at, "an empty key path (use e.g. training.learning_rate)");
  return steps;
}

// Sets `value` at `steps` inside `root` (a clone of the base config). Every step but the last
// must exist in the base config; the last key may be new (the job-config parser judges it).
// Returns "" or what is missing.
std::string set_path(YAML::Node root, const std::vector<Step>& steps, const YAML::Node& value) {
  YAML::Node cur;
  cur.reset(root);
  std::string walked;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    const bool last = i + 1 == steps.size();
    walked += (walked.empty() ? "" : ".") + s.key;
    if (!cur.IsMap()) return "'" + walked + "': its parent is not a mapping in the base config";
    const YAML::Node& const_cur = cur;
    const bool exists = const_cur[s.key].IsDefined();
    if (last && s.index < 0) {
      cur[s.key] = YAML::Clone(value);
      return "";
    }
    if (!exists) return "'" + walked + "' is not in the base config";
    YAML::Node next;
    next.reset(cur[s.key]);
    if (s.index >= 0) {
      walked += "[" + std::to_string(s.index) + "]";
      if (!next.IsSequence() || s.index >= static_cast<int>(next.size())) {
        return "'" + walked + "' is not in the base config (" +
               (next.IsSequence() ? "the list has " + std::to_string(next.size()) + " entries"
                                  : std::string("not a list")) + ")";
      }
      if (last) {
        next[s.index] = YAML::Clone(value);
        return "";
      }
      YAML::Node item;
      item.reset(next[s.index]);
      next.reset(item);
    }
    cur.reset(next);
  }
  return "";
}

std::string flow_text(const YAML::Node& node) {
  YAML::Emitter out;
  out.SetMapFormat(YAML::Flow);
  out.SetSeqFormat(YAML::Flow);
  out << node;
  return out.c_str();
}

std::uint64_t fnv1a(std::uint64_t h, const std::string& text) {
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

// Uniform in [0, 1) from 53 random bits: the same on every platform (std::*_distribution is not).
double unit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

std::string number_text(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

struct Axis {
  std::string path;
  std::vector<Step> steps;
  YAML::Node key_node;              // where errors point
  std::vector<YAML::Node> values;   // grid
  YAML::Node distribution;          // random
};

double bound(const PlanReader& r, const YAML::Node& node, const std::string& path) {
  try {
    return node.as<double>();
  } catch (const YAML::Exception&) {
    r.fail(node, "'" + path + "': a bound is a number");
  }
}

// One draw of a random plan's distribution: {uniform: [a, b]}, {log_uniform: [a, b]},
// {int: [a, b]} (both ends included) or {choice: [v1, v2, ...]}.
YAML::Node draw(const PlanReader& r, const Axis& axis, std::mt19937_64& rng) {
  const YAML::Node& d = axis.distribution;
  const char* kinds = "{uniform: [LOW, HIGH]}, {log_uniform: [LOW, HIGH]}, {int: [LOW, HIGH]} "
                      "or {choice: [A, B, ...]}";
  if (!d.IsMap() || d.size() != 1) r.fail(d, "'" + axis.path + "': give one of " + kinds);
  const std::string kind = d.begin()->first.as<std::string>();
  const YAML::Node args = d.begin()->second;
  if (kind == "choice") {
    if (!args.IsSequence() || args.size() == 0) {
      r.fail(args, "'" + axis.path + "': choice needs a non-empty list, e.g. [pat, in-silico]");
    }
    return args[static_cast<std::size_t>(unit(rng) * static_cast<double>(args.size()))];
  }
  if (!args.IsSequence() || args.size() != 2) {
    r.fail(args, "'" + axis.path + "': " + kind + " needs [LOW, HIGH]");
  }
  const double lo = bound(r, args[0], axis.path), hi = bound(r, args[1], axis.path);
  if (!(lo <= hi)) r.fail(args, "'" + axis.path + "': LOW must be ≤ HIGH");
  if (kind == "uniform") return YAML::Node(number_text(lo + (hi - lo) * unit(rng)));
  if (kind == "log_uniform") {
    if (!(lo > 0.0)) r.fail(args, "'" + axis.path + "': log_uniform needs LOW > 0");
    return YAML::Node(number_text(std::exp(std::log(lo) + (std::log(hi) - std::log(lo)) * unit(rng))));
  }
  if (kind == "int") {
    if (lo != std::floor(lo) || hi != std::floor(hi)) {
      r.fail(args, "'" + axis.path + "': int needs whole numbers");
    }
    const auto span = static_cast<std::uint64_t>(hi - lo) + 1;
    return YAML::Node(std::to_string(static_cast<long long>(lo) + static_cast<long long>(rng() % span)));
  }
  r.fail(d, "'" + axis.path + "': unknown distribution '" + kind + "' (use " + kinds + ")");
}

std::vector<Axis> read_axes(const PlanReader& r, const YAML::Node& block, const char* what,
                            bool grid) {
  if (!block.IsMap() || block.size() == 0) {
    r.fail(block, std::string(what) + ": a non-empty mapping KEY.PATH: " +
                      (grid ? "[VALUES...]" : "{DISTRIBUTION}") + " (e.g. training.learning_rate: " +
                      (grid ? "[0.001, 0.003])" : "{log_uniform: [1e-4, 1e-2]})"));
  }
  std::vector<Axis> axes;
  for (const auto& kv : block) {
    Axis a;
    a.key_node = kv.first;
    a.path = kv.first.as<std::string>();
    a.steps = parse_key_path(r, kv.first, a.path);
    if (grid) {
      if (!kv.second.IsSequence() || kv.second.size() == 0) {
        r.fail(kv.second, "'" + a.path + "': a grid axis is a non-empty list of values, e.g. [0, 1, 2]");
      }
      for (const auto& v : kv.second) a.values.push_back(static_cast<const YAML::Node&>(v));
    } else {
      a.distribution = kv.second;
    }
    axes.push_back(a);
  }
  return axes;
}

void only_keys(const PlanReader& r, const YAML::Node& map, const std::string& where,
               const std::vector<std::string>& allowed) {
  for (const auto& kv : map) {
    const auto key = kv.first.as<std::string>();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      r.fail(kv.first, "unknown key '" + key + "'" + (where.empty() ? "" : " in " + where) +
                           " (known: " + list + ")");
    }
  }
}

SlurmDefaults read_slurm(const PlanReader& r, const YAML::Node& s) {
  SlurmDefaults d;
  if (!s.IsDefined()) return d;
  if (!s.IsMap()) r.fail(s, "slurm: a mapping (max_parallel, partition, time, account, cpus_per_task, extra)");
  only_keys(r, s, "slurm", {"max_parallel", "partition", "time", "account", "cpus_per_task", "extra"});
  try {
    if (s["max_parallel"]) d.max_parallel = s["max_parallel"].as<int>();
    if (s["partition"]) d.partition = s["partition"].as<std::string>();
    if (s["time"]) d.time_limit = s["time"].as<std::string>();
    if (s["account"]) d.account = s["account"].as<std::string>();
    if (s["cpus_per_task"]) d.cpus_per_task = s["cpus_per_task"].as<int>();
    if (s["extra"]) d.extra = s["extra"].as<std::vector<std::string>>();
  } catch (const YAML::Exception& e) {
    r.fail(s, "slurm: " + e.msg + " (max_parallel and cpus_per_task are whole numbers, extra a list)");
  }
  if (d.max_parallel < 0 || d.cpus_per_task < 1) {
    r.fail(s, "slurm: max_parallel must be ≥ 0 (0: no limit) and cpus_per_task ≥ 1");
  }
  return d;
}

}  // namespace

std::string trial_dir_name(int index, int width) {
  std::string s = std::to_string(index);
  return std::string(s.size() < static_cast<std::size_t>(width) ? width - s.size() : 0, '0') + s;
}

int trial_dir_width(int num_trials) {
  return std::max<int>(3, static_cast<int>(std::to_string(std::max(0, num_trials - 1)).size()));
}

static SweepPlan load_sweep_plan_checked(const std::string& path, const std::string& sweep_dir) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot read the sweep plan (check the path)");
  std::stringstream text;
  text << in.rdbuf();
  const PlanReader r(path);
  YAML::Node root;
  try {
    root = YAML::Load(text.str());
  } catch (const YAML::ParserException& e) {
    throw ConfigError(path + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg);
  }
  if (!root.IsMap()) r.fail("expected a mapping with base: and grid:, random: or trials: (docs/sweeps.md)");
  only_keys(r, root, "", {"name", "base", "grid", "random", "trials", "licenses", "slurm"});

  SweepPlan plan;
  plan.plan_path = fs::absolute(path).lexically_normal().string();
  plan.name = root["name"] ? root["name"].as<std::string>() : fs::path(path).stem().string();
  if (plan.name.empty() || plan.name.find('/') != std::string::npos) {
    r.fail(root["name"], "name: a non-empty name without '/'");
  }
  if (!root["base"]) r.fail(root, "base: required, the job config the trials start from (a path relative to the plan)");
  const fs::path base = fs::path(path).parent_path() / root["base"].as<std::string>();
  plan.base_path = fs::absolute(base).lexically_normal().string();
  std::ifstream base_in(plan.base_path);
  if (!base_in) {
    r.fail(root["base"], "base: cannot read '" + plan.base_path +
                             "' (a path relative to the plan file's directory)");
  }
  std::stringstream base_text;
  base_text << base_in.rdbuf();
  YAML::Node base_root;
  try {
    (void)parse_job_config(base_text.str(), plan.base_path);
    base_root = YAML::Load(base_text.str());
  } catch (const ConfigError& e) {
    r.fail(root["base"], std::string("base: the base job config is invalid: ") + e.what());
  }

  std::map<std::string, std::string> licenses;
  if (const auto l = root["licenses"]) {
    if (!l.IsMap()) r.fail(l, "licenses: a mapping DEVICE: LICENSE (a device name of the job config)");
    for (const auto& kv : l) licenses[kv.first.as<std::string>()] = kv.second.as<std::string>();
  }
  plan.slurm = read_slurm(r, root["slurm"]);

  // Each trial is a list of (axis, value) in the plan's order.
  struct Raw {
    std::vector<std::pair<const Axis*, YAML::Node>> set;
    YAML::Node where;
  };
  std::vector<Raw> raws;
  std::vector<Axis> grid_axes, random_axes;
  std::vector<std::vector<Axis>> explicit_axes;
  if (root["grid"] && root["random"]) {
    r.fail(root["random"], "give grid: or random:, not both (explicit trials: may go with either)");
  }
  if (const auto g = root["grid"]) {
    grid_axes = read_axes(r, g, "grid", true);
    std::size_t total = 1;
    for (const auto& a : grid_axes) total *= a.values.size();
    if (total > 100000) r.fail(g, "grid: " + std::to_string(total) + " trials; at most 100000");
    for (std::size_t k = 0; k < total; ++k) {  // the first axis varies slowest
      Raw raw;
      raw.where.reset(g);
      std::size_t rest = k;
      std::vector<std::pair<const Axis*, YAML::Node>> set(grid_axes.size());
      for (std::size_t i = grid_axes.size(); i-- > 0;) {
        set[i] = {&grid_axes[i], grid_axes[i].values[rest % grid_axes[i].values.size()]};
        rest /= grid_axes[i].values.size();
      }
      raw.set = set;
      raws.push_back(raw);
    }
  }
  if (const auto rnd = root["random"]) {
    if (!rnd.IsMap()) r.fail(rnd, "random: a mapping {trials: N, seed: S, keys: {KEY.PATH: DISTRIBUTION}}");
    only_keys(r, rnd, "random", {"trials", "seed", "keys"});
    if (!rnd["trials"] || !rnd["keys"]) r.fail(rnd, "random: needs trials: N and keys: {KEY.PATH: DISTRIBUTION}");
    const int n = rnd["trials"].as<int>();
    if (n < 1 || n > 100000) r.fail(rnd["trials"], "random.trials: must be in [1, 100000]");
    const auto seed = rnd["seed"] ? rnd["seed"].as<std::uint64_t>() : 0;
    random_axes = read_axes(r, rnd["keys"], "random.keys", false);
    std::mt19937_64 rng(seed);
    for (int k = 0; k < n; ++k) {
      Raw raw;
      raw.where.reset(rnd);
      for (const auto& a : random_axes) raw.set.emplace_back(&a, draw(r, a, rng));
      raws.push_back(raw);
    }
  }
  if (const auto list = root["trials"]) {
    if (!list.IsSequence() || list.size() == 0) {
      r.fail(list, "trials: a non-empty list of mappings KEY.PATH: VALUE, e.g. - {seed: 7}");
    }
    explicit_axes.reserve(list.size());
    for (const auto& item : list) {
      if (!item.IsMap() || item.size() == 0) {
        r.fail(item, "trials: each entry is a non-empty mapping KEY.PATH: VALUE, e.g. {seed: 7}");
      }
      explicit_axes.emplace_back();
      for (const auto& kv : item) {
        Axis a;
        a.key_node = kv.first;
        a.path = kv.first.as<std::string>();
        a.steps = parse_key_path(r, kv.first, a.path);
        a.values.push_back(kv.second);
        explicit_axes.back().push_back(a);
      }
      Raw raw;
      raw.where.reset(static_cast<const YAML::Node&>(item));
      for (const auto& a : explicit_axes.back()) raw.set.emplace_back(&a, a.values.front());
      raws.push_back(raw);
    }
  }
  if (raws.empty()) r.fail(root, "no trials: give grid:, random: or trials: (docs/sweeps.md)");

  std::uint64_t h = fnv1a(0xcbf29ce484222325ull, plan.name + "\n" + base_text.str());
  for (std::size_t k = 0; k < raws.size(); ++k) {
    YAML::Node config = YAML::Clone(base_root);
    SweepTrial t;
    t.index = static_cast<int>(k);
    for (const auto& [axis, value] : raws[k].set) {
      // A key path that is not in the base config is judged on its own first, so the error
      // points at the plan's line for it rather than at a whole trial.
      const std::string missing = set_path(config, axis->steps, value);
      if (!missing.empty()) {
        r.fail(axis->key_node, "'" + axis->path + "': " + missing + " (" + plan.base_path +
                                   "; key paths are those of docs/config.md, e.g. "
                                   "training.learning_rate, network[1].physical.twin)");
      }
      t.params.emplace_back(axis->path, flow_text(value));
    }
    // Each trial its own run directory (checkpoint, plot) inside the sweep directory.
    const int width = trial_dir_width(static_cast<int>(raws.size()));
    config["output"]["dir"] =
        (fs::path(sweep_dir) / "trials" / trial_dir_name(static_cast<int>(k), width) / "run").string();
    std::string label;
    for (const auto& [k2, v] : t.params) label += (label.empty() ? "" : ", ") + k2 + "=" + v;
    YAML::Emitter out;
    out << config;
    t.config_yaml = "# trial " + std::to_string(k) + " of sweep " + plan.name + ": " + label +
                    "\n# base: " + plan.base_path + "\n" + out.c_str() + "\n";
    try {
      const auto parsed = parse_job_config(t.config_yaml, "the trial's config");
      for (const auto& d : parsed.devices) {
        if (d.address.rfind("sim://", 0) == 0) continue;
        const auto it = licenses.find(d.name);
        t.licenses.push_back(it == licenses.end() ? d.name : it->second);
      }
    } catch (const ConfigError& e) {
      // Point at the plan's value the parser objects to, where the message names its key.
      const std::string what = e.what();
      for (const auto& [axis, value] : raws[k].set) {
        if (what.find("'" + axis->path + "'") != std::string::npos) {
          r.fail(value, "trial " + std::to_string(k) + " (" + label +
                            ") is not a valid job config: " + what);
        }
      }
      r.fail(raws[k].where, "trial " + std::to_string(k) + " (" + label +
                                ") is not a valid job config: " + e.what());
    }
    std::sort(t.licenses.begin(), t.licenses.end());
    t.licenses.erase(std::unique(t.licenses.begin(), t.licenses.end()), t.licenses.end());
    h = fnv1a(h, std::to_string(k) + "\n" + label + "\n");
    plan.trials.push_back(std::move(t));
  }
  char id[17];
  std::snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(h));
  plan.sweep_id = id;
  return plan;
}

SweepPlan load_sweep_plan(const std::string& path, const std::string& sweep_dir) {
  try {
    return load_sweep_plan_checked(path, sweep_dir);
  } catch (const YAML::Exception& e) {  // a value of the wrong kind (a list where a number goes)
    throw ConfigError(path + (e.mark.line >= 0 ? ":" + std::to_string(e.mark.line + 1) : "") +
                      ": " + e.msg + " (docs/sweeps.md shows each key of a plan)");
  }
}

}  // namespace pnn::training
