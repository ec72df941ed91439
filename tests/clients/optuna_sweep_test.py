"""The Optuna example (clients/python/examples/optuna_sweep.py) for a few tiny trials: two
workers' worth of runs on one journal file, each trial's value the accuracy pnnctl train --json
reported. Exits 77 (CTest: skipped) with the reason where python3-optuna is not installed."""
import json
import os
import subprocess
import sys
import tempfile

from sweep_fixture import PNNCTL, TINY_JOB

EXAMPLE = os.path.join(os.environ.get("PNN_EXAMPLES", os.path.join(
    os.path.dirname(__file__), "..", "..", "clients", "python", "examples")), "optuna_sweep.py")


def main():
    try:
        import optuna
    except ImportError as e:
        print("SKIP: python3-optuna is not installed (bash scripts/setup.sh --test): %s" % e)
        return 77
    with tempfile.TemporaryDirectory(prefix="pnn-optuna-") as tmp:
        base = os.path.join(tmp, "base.yaml")
        with open(base, "w") as f:
            f.write(TINY_JOB)
        storage = os.path.join(tmp, "study.log")
        work = os.path.join(tmp, "runs")
        cmd = [sys.executable, EXAMPLE, "--base", base, "--storage", storage, "--workdir", work,
               "--pnnctl", PNNCTL, "--seed", "3"]
        outs = []
        for n in ("2", "1"):  # a second run continues the same study
            r = subprocess.run(cmd + ["--trials", n], capture_output=True, text=True, timeout=300)
            if r.returncode != 0:
                print("FAIL: the example exited %d:\n%s\n%s" % (r.returncode, r.stdout, r.stderr))
                return 1
            outs.append(json.loads(r.stdout.strip().splitlines()[-1]))
        study = optuna.load_study(study_name="pnn-sweep", storage=optuna.storages.JournalStorage(
            optuna.storages.JournalFileStorage(storage)))
        trials = study.trials
        problems = []
        if outs[1]["trials"] != 3 or len(trials) != 3:
            problems.append("3 trials expected in the study: %s" % outs)
        for t in trials:
            if t.state != optuna.trial.TrialState.COMPLETE:
                problems.append("trial %d: %s" % (t.number, t.state))
                continue
            with open(os.path.join(t.user_attrs["run_dir"], "result.json")) as f:
                summary = json.load(f)
            if abs(summary["acc_pat_reality"] - t.value) > 0:
                problems.append("trial %d: value %s, pnnctl said %s" % (t.number, t.value,
                                                                        summary["acc_pat_reality"]))
            with open(os.path.join(t.user_attrs["run_dir"], "config.yaml")) as f:
                config = f.read()
            lr = t.params["training.learning_rate"]
            if "learning_rate: %r" % lr not in config or not (1e-3 <= lr <= 3e-2):
                problems.append("trial %d: learning rate %r not in its config" % (t.number, lr))
        if problems:
            print("FAIL:\n  " + "\n  ".join(problems))
            return 1
        print("OK: %d trials, best %.4f with %s" % (len(trials), study.best_value, study.best_params))
        return 0


if __name__ == "__main__":
    sys.exit(main())
