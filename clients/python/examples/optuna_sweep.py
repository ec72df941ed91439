#!/usr/bin/python3
"""A hyper-parameter search driven by Optuna (Debian's python3-optuna), each trial one
`pnnctl train CONFIG --json` run, the study in Optuna's file-based journal storage.

    /usr/bin/python3 optuna_sweep.py --base configs/jobs/oscillator-digits.yaml \\
        --storage study.log --trials 20 --workdir optuna-runs

Run it several times at once with the same --storage (on one machine, or as the tasks of a Slurm
array on a cluster's shared file system): each process is one worker of the same study, and the
journal file keeps them consistent (it is appended to under a lock, never rewritten). Running it
again continues the study. Which keys are searched is `search_space` below: any key path of the
job config (docs/config.md), as in a pnnctl sweep plan (docs/sweeps.md).
"""
import argparse
import copy
import json
import os
import subprocess
import sys

import optuna
import yaml


def search_space(trial):
    """The values a trial tries, by job-config key path."""
    return {
        "training.learning_rate": trial.suggest_float("training.learning_rate", 1e-3, 3e-2, log=True),
        "training.batch_size": trial.suggest_categorical("training.batch_size", [16, 32, 64]),
    }


def set_key(config, path, value):
    node = config
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def main_accuracy(summary):
    """acc_<rule>_reality: the main phase's accuracy measured on the hardware."""
    keys = [k for k in summary if k.startswith("acc_") and k.endswith("_reality")
            and k != "acc_insilico_reality"]
    if not keys:
        raise RuntimeError("the summary has no acc_<rule>_reality: %s" % sorted(summary))
    return float(summary[keys[0]])


def make_objective(args, base):
    def objective(trial):
        config = copy.deepcopy(base)
        values = search_space(trial)
        for path, value in values.items():
            set_key(config, path, value)
        run_dir = os.path.abspath(os.path.join(args.workdir, "trial-%04d" % trial.number))
        os.makedirs(run_dir, exist_ok=True)
        set_key(config, "output.dir", os.path.join(run_dir, "run"))
        config_path = os.path.join(run_dir, "config.yaml")
        with open(config_path, "w") as f:
            yaml.safe_dump(config, f, sort_keys=False)
        with open(os.path.join(run_dir, "train.log"), "w") as log:
            r = subprocess.run([args.pnnctl, "train", config_path, "--json"], stdout=subprocess.PIPE,
                               stderr=log, text=True)
        trial.set_user_attr("run_dir", run_dir)
        if r.returncode != 0:
            raise RuntimeError("pnnctl train exited %d; log: %s" % (
                r.returncode, os.path.join(run_dir, "train.log")))
        summary = json.loads([line for line in r.stdout.splitlines() if line.startswith("{")][-1])
        with open(os.path.join(run_dir, "result.json"), "w") as f:
            json.dump(summary, f)
        return main_accuracy(summary)
    return objective


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", required=True, help="the base job config (YAML)")
    p.add_argument("--storage", required=True, help="Optuna's journal file (shared by workers)")
    p.add_argument("--study", default="pnn-sweep", help="study name (default pnn-sweep)")
    p.add_argument("--trials", type=int, default=10, help="trials this worker runs")
    p.add_argument("--workdir", default="optuna-runs", help="one directory per trial in here")
    p.add_argument("--seed", type=int, default=0, help="the sampler's seed")
    p.add_argument("--pnnctl", default=os.environ.get("PNN_PNNCTL", "pnnctl"))
    args = p.parse_args()
    with open(args.base) as f:
        base = yaml.safe_load(f)
    storage = optuna.storages.JournalStorage(optuna.storages.JournalFileStorage(args.storage))
    study = optuna.create_study(study_name=args.study, storage=storage, direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=args.seed),
                                load_if_exists=True)
    # A failed training is a failed trial (logged, with its log path), not the end of the study.
    study.optimize(make_objective(args, base), n_trials=args.trials, catch=(RuntimeError,))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        print("no trial completed; see the train.log files under %s" % args.workdir, file=sys.stderr)
        return 1
    best = study.best_trial
    print(json.dumps({"study": args.study, "trials": len(study.trials), "complete": len(done),
                      "best_value": best.value, "best_params": best.params,
                      "best_run_dir": best.user_attrs.get("run_dir")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
