#!/usr/bin/python3
"""cross-daemon-job: the oscillator-digits job through `pnnctl train` with osc-a on one pnnd and
osc-b on another, against the same job with both devices on one pnnd (same run, same machine).

Three daemons on loopback: "solo" serves both devices, "one" osc-a and "two" osc-b (fresh devices
for each run, so both runs see the same calls). Each job is run --repeats times, alternating; the
medians are compared. Prints one JSON line with both walls, their ratio (target ≤ 1.10: the
second connection and lease cost nothing measurable) and whether the accuracies are identical.

    /usr/bin/python3 bench/scripts/cross_daemon_job.py [--epochs 10] [--repeats 3]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "clients"))
os.environ.setdefault("PNN_PNND", os.path.join(ROOT, "build", "release", "daemon", "pnnd"))
from pnnd_fixture import Pnnd  # noqa: E402  (the test fixture: a real pnnd on loopback)

OSC_A = "sim://mechanical-oscillators?seed=1&n=64&gap=large"
OSC_B = "sim://mechanical-oscillators?seed=2&n=74&gap=large"


def job_text(a, b, epochs, out):
    with open(os.path.join(ROOT, "configs", "jobs", "oscillator-digits.yaml")) as f:
        text = f.read()
    text = text.replace(OSC_A, "pnnd://%s/osc-a" % a).replace(OSC_B, "pnnd://%s/osc-b" % b)
    text = text.replace("epochs: 40", "epochs: %d" % epochs).replace("runs/oscillator-digits", out)
    return text


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pnnctl", default=os.path.join(ROOT, "build", "release", "clients", "pnnctl", "pnnctl"))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="pnn-cross-daemon-") as tmp:
        walls = {"split": [], "single": []}
        accs = {}
        load = float(open("/proc/loadavg").read().split()[0])
        for rep in range(args.repeats):
            daemons = {}
            try:
                for name, devices in (("solo", {"osc-a": (OSC_A, True), "osc-b": (OSC_B, True)}),
                                      ("one", {"osc-a": (OSC_A, True)}),
                                      ("two", {"osc-b": (OSC_B, True)})):
                    d = os.path.join(tmp, "%s-%d" % (name, rep))
                    os.makedirs(d)
                    daemons[name] = Pnnd(d, devices=devices).start()
                lab = os.path.join(tmp, "lab-%d.yaml" % rep)
                with open(lab, "w") as f:
                    f.write("daemons:\n" + "".join("  - {name: %s, rpc: '%s'}\n" % (n, q.rpc)
                                                   for n, q in daemons.items()))
                for kind, (a, b) in (("single", ("solo", "solo")), ("split", ("one", "two"))):
                    path = os.path.join(tmp, "%s-%d.yaml" % (kind, rep))
                    with open(path, "w") as f:
                        f.write(job_text(a, b, args.epochs, os.path.join(tmp, "runs-%s-%d" % (kind, rep))))
                    env = {k: v for k, v in os.environ.items() if not k.startswith("PNN_")}
                    env["PNN_LAB"] = lab
                    t0 = time.monotonic()
                    r = subprocess.run([args.pnnctl, "train", path, "--json"], capture_output=True,
                                       text=True, env=env)
                    walls[kind].append(time.monotonic() - t0)
                    if r.returncode != 0:
                        print("cross-daemon-job: %s failed:\n%s" % (kind, r.stderr), file=sys.stderr)
                        return 1
                    summary = json.loads(r.stdout.strip().splitlines()[-1])
                    accs[kind] = [(ph["phase"], ph.get("acc_hardware"), ph.get("acc_twin"))
                                  for ph in summary["phases"]]
            finally:
                for q in daemons.values():
                    q.stop()
        single, split = statistics.median(walls["single"]), statistics.median(walls["split"])
        print(json.dumps({"name": "cross-daemon-job", "epochs": args.epochs, "repeats": args.repeats,
                          "load_before": load, "wall_single_s": single, "wall_split_s": split,
                          "ratio": split / single, "walls_single_s": walls["single"],
                          "walls_split_s": walls["split"],
                          "identical_accuracies": accs["single"] == accs["split"],
                          "phases": accs["split"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
