"""Sweeps for the sweep tests: the tiny simulated job of tests/data/sweep-tiny.yaml (96 digits,
2 epochs: well under a second) and a plan over it, optionally with one trial that fails on purpose (its device unplugs after
three transfers, so the job fails at run time with the device named)."""
import json
import os

PNNCTL = os.environ.get("PNN_PNNCTL", "pnnctl")

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "sweep-tiny.yaml")) as _f:
    TINY_JOB = _f.read()

FAILING_DEVICE = "sim://mechanical-oscillators?seed=1&n=4&faults=unplug_after:3"


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]


def write_sweep(base, grid_trials, failing, name="tiny", extra=""):
    """Writes base.yaml and plan.yaml into `base`: a grid over seed (grid_trials values), plus
    a failing trial last when `failing`. Returns (plan path, sweep directory)."""
    with open(os.path.join(base, "base.yaml"), "w") as f:
        f.write(TINY_JOB)
    plan = os.path.join(base, "plan.yaml")
    with open(plan, "w") as f:
        f.write("name: %s\nbase: base.yaml\ngrid:\n  seed: [%s]\n" % (
            name, ", ".join(str(s) for s in range(grid_trials))))
        if failing:
            f.write("trials:\n  - {devices.osc: \"%s\"}\n" % FAILING_DEVICE)
        f.write(extra)
    return plan, os.path.join(base, "sweep")
