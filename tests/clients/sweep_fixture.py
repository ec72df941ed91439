"""Sweeps for the sweep tests: a tiny simulated job (96 digits, 2 epochs: well under a second)
and a plan over it, optionally with one trial that fails on purpose (its device unplugs after
three transfers, so the job fails at run time with the device named)."""
import json
import os

PNNCTL = os.environ.get("PNN_PNNCTL", "pnnctl")

TINY_JOB = """name: sweep-tiny
seed: 0
data: {name: digits, max_train: 96, max_test: 64}
devices:
  osc: sim://mechanical-oscillators?seed=1&n=4
network:
  - affine: 4
  - physical: osc
  - affine: 10
training:
  epochs: 2
  batch_size: 32
  learning_rate: 0.003
compare:
  in_silico: false
"""

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
