"""pnnctl sweep on this machine (docs/sweeps.md): a local sweep of tiny simulated trials with one
that fails on purpose, status/merge/show, merging twice, re-running the failed trial alone, the
plan errors, seeded random plans and the Slurm script with licences (not submitted: the real
Slurm run is sweep_slurm_test.py)."""
import json
import os
import re
import signal
import sqlite3
import subprocess
import tempfile
import time
import unittest

from sweep_fixture import FAILING_DEVICE, PNNCTL, json_lines, write_sweep


def pnnctl(*args, timeout=300):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PNN_") or k == "PNN_RUNS"}
    return subprocess.run([PNNCTL] + list(args), capture_output=True, text=True, timeout=timeout,
                          env=env)


def read(path):
    with open(path) as f:
        return f.read()


def runs(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        return (con.execute("SELECT name, state, message FROM runs ORDER BY run_id").fetchall(),
                con.execute("SELECT count(*) FROM metrics").fetchone()[0])
    finally:
        con.close()


class LocalSweep(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="pnn-sweep-")
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.plan, cls.dir = write_sweep(cls.tmp.name, grid_trials=5, failing=True)
        cls.first = pnnctl("sweep", cls.plan, "--dir", cls.dir, "--jobs", "2")

    def status(self):
        r = pnnctl("sweep", "status", self.dir, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json_lines(r.stdout)[:-1]

    def merge(self):
        r = pnnctl("sweep", "merge", self.dir, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json_lines(r.stdout)[-1]

    def test_a_sweep_runs_every_trial_and_reports_the_failure_with_its_log(self):
        self.assertEqual(self.first.returncode, 1, "a failed trial fails the sweep:\n" + self.first.stderr)
        self.assertIn("trial 005 FAILED", self.first.stderr)
        rows = self.status()
        self.assertEqual([r["state"] for r in rows], ["SUCCEEDED"] * 5 + ["FAILED"])
        self.assertEqual([r["params"] for r in rows[:5]], [{"seed": str(s)} for s in range(5)])
        self.assertEqual(rows[5]["params"], {"devices.osc": FAILING_DEVICE})
        failed = rows[5]
        self.assertEqual(failed["exit_code"], 1)
        self.assertTrue(failed["log"].endswith("trials/005/train.log"), failed)
        with open(failed["log"]) as f:
            self.assertIn("disconnected", f.read())
        self.assertIn("disconnected", failed["error"])
        # Each trial: its own run directory (checkpoint) and its own store.
        for r in rows[:5]:
            self.assertTrue(os.path.exists(os.path.join(r["dir"], "run", "checkpoint.pnnckpt")), r)
            names, metrics = runs(os.path.join(r["dir"], "store.db"))
            self.assertEqual(len(names), 1)
            self.assertEqual(names[0][1], 3)  # SUCCEEDED
            self.assertEqual(metrics, 2)      # one per epoch
        # The seeds differ, and so do the results they give.
        configs = [read(os.path.join(r["dir"], "config.yaml")) for r in rows]
        self.assertEqual(len(set(configs)), 6)
        self.assertTrue(all(re.search(r"^seed: %d$" % s, configs[s], re.M) for s in range(5)))
        text = pnnctl("sweep", "status", self.dir).stdout
        self.assertIn("5 SUCCEEDED", text)
        self.assertIn("log: " + failed["log"], text)

    def test_b_merge_gives_the_results_and_the_failure_and_twice_adds_nothing(self):
        m = self.merge()
        self.assertEqual((m["added"], m["succeeded"], m["failed"], m["runs"]), (6, 5, 1, 6), m)
        self.assertEqual(m["failures"][0]["trial"], 5)
        self.assertTrue(m["failures"][0]["log"].endswith("trials/005/train.log"))
        db = os.path.join(self.dir, "merged.db")
        names, metrics = runs(db)
        self.assertEqual([n for n, _, _ in names], ["tiny/%03d" % k for k in range(6)])
        self.assertEqual([s for _, s, _ in names], [3] * 5 + [4])
        self.assertIn("trials/005/train.log", names[5][2])
        self.assertEqual(metrics, 10)
        again = self.merge()
        self.assertEqual((again["added"], again["updated"], again["unchanged"], again["runs"]),
                         (0, 0, 6, 6), again)
        self.assertEqual(runs(db), (names, metrics))
        show = pnnctl("sweep", "show", self.dir, "--plot", os.path.join(self.tmp.name, "s.svg"))
        self.assertEqual(show.returncode, 0, show.stderr)
        self.assertEqual(len([l for l in show.stdout.splitlines() if "SUCCEEDED" in l]), 5)
        with open(os.path.join(self.tmp.name, "s.svg")) as f:
            self.assertEqual(f.read().count("<circle"), 5)

    def test_c_the_failed_trial_runs_again_alone(self):
        self.merge()
        before = {r["trial"]: read(os.path.join(r["dir"], "status.json")) for r in self.status()}
        # The fault was transient: the trial's config without it, then that trial alone.
        config = os.path.join(self.dir, "trials", "005", "config.yaml")
        with open(config) as f:
            text = f.read()
        with open(config, "w") as f:
            f.write(text.replace("&faults=unplug_after:3", ""))
        r = pnnctl("sweep", "run", self.dir, "--trial", "5")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = self.status()
        self.assertEqual([x["state"] for x in rows], ["SUCCEEDED"] * 6)
        for x in rows[:5]:  # the others were not run again
            self.assertEqual(read(os.path.join(x["dir"], "status.json")), before[x["trial"]])
        m = self.merge()
        self.assertEqual((m["added"], m["updated"], m["unchanged"], m["runs"], m["failed"]),
                         (0, 1, 5, 6, 0), m)
        names, metrics = runs(os.path.join(self.dir, "merged.db"))
        self.assertEqual([s for _, s, _ in names], [3] * 6)
        self.assertEqual(metrics, 12)
        # The plan again: every trial has succeeded, nothing runs.
        again = pnnctl("sweep", self.plan, "--dir", self.dir, "--jobs", "2")
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertIn("0 to run", again.stderr)


class Interrupted(unittest.TestCase):
    def test_a_killed_sweep_shows_its_trial_interrupted_with_its_log(self):
        tmp = tempfile.TemporaryDirectory(prefix="pnn-sweep-")
        self.addCleanup(tmp.cleanup)
        plan, sweep_dir = write_sweep(tmp.name, 1, False)
        with open(plan, "a") as f:  # long enough to be caught running
            f.write("trials:\n  - {training.epochs: 100000}\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PNN_")}
        proc = subprocess.Popen([PNNCTL, "sweep", plan, "--dir", sweep_dir], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            states = []
            for _ in range(600):
                r = pnnctl("sweep", "status", sweep_dir, "--json")
                states = [x["state"] for x in json_lines(r.stdout)[:-1]] if r.returncode == 0 else []
                if states and states[-1] == "RUNNING":
                    break
                time.sleep(0.05)
            self.assertEqual(states, ["SUCCEEDED", "RUNNING"])
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its trial, as a node crash would
            proc.wait()
        row = json_lines(pnnctl("sweep", "status", sweep_dir, "--json").stdout)[1]
        self.assertEqual(row["state"], "INTERRUPTED")
        self.assertIn("never finished", row["error"])
        self.assertTrue(row["log"].endswith("trials/001/train.log"))
        m = json_lines(pnnctl("sweep", "merge", sweep_dir, "--json").stdout)[-1]
        self.assertEqual((m["added"], m["succeeded"], m["failed"]), (1, 1, 0), m)
        self.assertEqual(m["not_finished"][0]["state"], "INTERRUPTED")


class Scratch(unittest.TestCase):
    """A temporary directory with base.yaml (the tiny job) for plans to name."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="pnn-sweep-")
        self.addCleanup(self.tmp.cleanup)
        write_sweep(self.tmp.name, 1, False)


class PlanErrors(Scratch):
    def fails(self, plan_text, *needles):
        plan = os.path.join(self.tmp.name, "bad.yaml")
        with open(plan, "w") as f:
            f.write(plan_text)
        r = pnnctl("sweep", plan, "--dir", os.path.join(self.tmp.name, "out"))
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        for n in needles:
            self.assertIn(n, r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp.name, "out")), "nothing written")
        return r.stderr

    def test_each_error_names_the_file_line_and_fix(self):
        bad = os.path.join(self.tmp.name, "bad.yaml")
        self.fails("base: base.yaml\ngrid:\n  training.learnin_rate: [0.1]\n",
                   bad + ":3:", "learnin_rate", "unknown key")
        self.fails("base: base.yaml\ngrid:\n  trainin.learning_rate: [0.1]\n",
                   bad + ":3:", "'trainin' is not in the base config")
        self.fails("base: base.yaml\ngrid:\n  seed: []\n", bad + ":3:", "non-empty list")
        self.fails("base: base.yaml\ngrid: {}\n", bad + ":2:", "non-empty mapping")
        self.fails("base: base.yaml\ngrid:\n  seed: [1\n", bad + ":", "YAML syntax error")
        self.fails("base: nosuch.yaml\ngrid:\n  seed: [1]\n", bad + ":1:", "nosuch.yaml",
                   "relative to the plan")
        self.fails("base: base.yaml\ngrid:\n  training.learning_rate: [0.01, -1]\n",
                   bad + ":3:", "trial 1 (training.learning_rate=-1)", "must be > 0")
        self.fails("base: base.yaml\nrandom:\n  trials: 3\n  keys:\n    seed: {gauss: [0, 1]}\n",
                   bad + ":5:", "unknown distribution 'gauss'")
        self.fails("base: base.yaml\n", bad, "no trials")
        self.fails("base: base.yaml\ngird:\n  seed: [1]\n", bad + ":2:", "unknown key 'gird'")

    def test_not_a_sweep_directory(self):
        r = pnnctl("sweep", "status", self.tmp.name)
        self.assertEqual(r.returncode, 2)
        self.assertIn("not a sweep directory", r.stderr)


class RandomAndSlurmScript(Scratch):
    def expand(self, plan_text, name, *extra):
        plan = os.path.join(self.tmp.name, name + ".yaml")
        with open(plan, "w") as f:
            f.write(plan_text)
        out = os.path.join(self.tmp.name, name)
        r = pnnctl("sweep", plan, "--dir", out, "--slurm", "--dry-run", "--json", *extra)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(out, "sweep.json")) as f:
            return json.load(f), json_lines(r.stdout)[-1], out

    def test_a_seeded_random_plan_is_reproducible(self):
        plan = ("name: r\nbase: base.yaml\nrandom:\n  trials: 6\n  seed: %d\n  keys:\n"
                "    training.learning_rate: {log_uniform: [1e-4, 1e-1]}\n"
                "    seed: {int: [0, 1000]}\n    training.method: {choice: [pat, in-silico]}\n")
        a, _, _ = self.expand(plan % 7, "a")
        b, _, _ = self.expand(plan % 7, "b")
        c, _, _ = self.expand(plan % 8, "c")
        params = lambda s: [t["params"] for t in s["trials"]]
        self.assertEqual(params(a), params(b))
        self.assertEqual(a["sweep_id"], b["sweep_id"])
        self.assertNotEqual(params(a), params(c))
        self.assertEqual(len(a["trials"]), 6)
        for t in a["trials"]:
            self.assertTrue(1e-4 <= float(t["params"]["training.learning_rate"]) <= 1e-1)
            self.assertIn(t["params"]["training.method"], ("pat", "in-silico"))

    def test_trials_on_a_physical_setup_request_its_licence(self):
        plan = ("base: base.yaml\ngrid:\n  seed: [0, 1, 2]\ntrials:\n"
                "  - {devices.osc: \"tcp://127.0.0.1:5025\"}\nlicenses:\n  osc: setup-x\n"
                "slurm:\n  partition: gpu\n  time: \"00:10:00\"\n")
        doc, out, d = self.expand(plan, "phys", "--max-parallel", "2")
        self.assertFalse(out["submitted"])
        self.assertEqual([j["array"] for j in out["jobs"]], ["0-2", "3"])
        self.assertEqual([j["licenses"] for j in out["jobs"]], [[], ["setup-x"]])
        with open(os.path.join(d, "submit.sh")) as f:
            submit = f.read()
        self.assertIn("'--array=0-2%2'", submit)
        self.assertIn("'--array=3%2' '-L' 'setup-x:1'", submit)
        with open(os.path.join(d, "sweep.sbatch")) as f:
            script = f.read()
        for line in ("#SBATCH --array=0-3%2", "#SBATCH --partition=gpu", "#SBATCH --time=00:10:00",
                     "#SBATCH --output=%s/trials/%%3a/slurm-%%A_%%a.out" % d,
                     "sweep run '%s' --trial \"$SLURM_ARRAY_TASK_ID\"" % d):
            self.assertIn(line, script)
        self.assertNotIn("slurm_jobs", doc)


if __name__ == "__main__":
    unittest.main()
