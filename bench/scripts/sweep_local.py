#!/usr/bin/python3
"""sweep-local: 8 simulated trials through `pnnctl sweep --jobs 2` on 2 cores.

Each trial is configs/jobs/oscillator-digits.yaml (PAT on two simulated oscillator networks, with
the in-silico and digital baselines) with its own seed and --epochs epochs, one thread each
(PNN_THREADS=1, what the sweep sets). Prints one JSON line: the sweep's wall time, the sum of the
trials' times (each `pnnctl train` process, start to exit) divided by the number of workers, and
their ratio (target ≤ 1.15: the pool keeps both cores busy and adds little of its own).

    /usr/bin/python3 bench/scripts/sweep_local.py [--pnnctl PATH] [--trials 8] [--jobs 2] [--epochs 10]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pnnctl", default=os.path.join(ROOT, "build", "release", "clients", "pnnctl", "pnnctl"))
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--keep", action="store_true", help="keep the sweep directory (printed)")
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="pnn-sweep-local-")
    try:
        plan = os.path.join(tmp, "plan.yaml")
        with open(plan, "w") as f:
            f.write("name: sweep-local\nbase: %s\ngrid:\n  seed: [%s]\n  training.epochs: [%d]\n" % (
                os.path.join(ROOT, "configs", "jobs", "oscillator-digits.yaml"),
                ", ".join(str(s) for s in range(args.trials)), args.epochs))
        sweep_dir = os.path.join(tmp, "sweep")
        load = float(open("/proc/loadavg").read().split()[0])
        env = {k: v for k, v in os.environ.items() if k != "PNN_THREADS"}
        t0 = time.monotonic()
        r = subprocess.run([args.pnnctl, "sweep", plan, "--dir", sweep_dir, "--jobs", str(args.jobs)],
                           capture_output=True, text=True, env=env)
        wall = time.monotonic() - t0
        if r.returncode != 0:
            print("sweep-local: the sweep failed (exit %d):\n%s" % (r.returncode, r.stderr), file=sys.stderr)
            return 1
        trial_s, train_s = [], []
        for name in sorted(os.listdir(os.path.join(sweep_dir, "trials"))):
            d = os.path.join(sweep_dir, "trials", name)
            with open(os.path.join(d, "status.json")) as f:
                trial_s.append(json.load(f)["seconds"])
            with open(os.path.join(d, "result.json")) as f:
                train_s.append(json.load(f)["wall_s"])
        ideal = sum(trial_s) / args.jobs
        print(json.dumps({
            "benchmark": "sweep-local", "trials": args.trials, "jobs": args.jobs,
            "epochs": args.epochs, "cores": os.cpu_count(), "load_before": load,
            "wall_s": round(wall, 3), "sum_trial_s": round(sum(trial_s), 3),
            "sum_trial_over_jobs_s": round(ideal, 3), "ratio": round(wall / ideal, 4),
            "target_ratio": 1.15,
            # the trials' own training time (wall_s of their summaries), for the process overhead
            "sum_train_wall_s": round(sum(train_s), 3),
            "trial_s_min_max": [round(min(trial_s), 3), round(max(trial_s), 3)]}))
        if args.keep:
            print("sweep directory: %s" % sweep_dir, file=sys.stderr)
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
