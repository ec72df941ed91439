"""The lab registry (docs/lab.md) end to end: two real pnnd processes on 127.0.0.1 (one plain,
one with CURVE) and a registry naming them plus one daemon that is down; pnnctl and the Python
client reach devices as DAEMON/DEVICE, `pnnctl devices` with --lab lists every daemon's devices
and marks the one that does not answer, and each registry mistake is a clear error naming the
file and line."""
import json
import os
import subprocess
import time
import unittest

import numpy as np

import pnn_client
from pnnd_fixture import (PNNCTL, POWER, SMALL_OSC, Pnnd, free_port, keygen, pnnctl,
                          scratch_dir)


def clean_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("PNN_")}


def without_times(value):
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if k not in ("seconds", "wall_s")}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class LabCase(unittest.TestCase):
    """A scratch directory for the class and daemons started in it, each stopped at the end."""
    tag = "lab"
    key_file = ""  # this client's CURVE key pair, for daemons with security

    @classmethod
    def setUpClass(cls):
        cls.dir = scratch_dir(cls.tag)
        cls.addClassCleanup(cls.dir.cleanup)

    @classmethod
    def daemon(cls, name, devices, **kw):
        os.makedirs(os.path.join(cls.dir.name, name))
        p = Pnnd(os.path.join(cls.dir.name, name), devices=devices, **kw).start()
        cls.addClassCleanup(p.stop)
        return p

    @classmethod
    def write(cls, name, text):
        path = os.path.join(cls.dir.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def run_pnnctl(self, *args, lab=None, code=0):
        env = {"PNN_KEY_FILE": self.key_file} if self.key_file else {}
        if lab is not False:
            env["PNN_LAB"] = lab or self.lab
        r = pnnctl(*(list(args) + ["--timeout-ms", "1500"]), env=env)
        self.assertEqual(r.returncode, code, "pnnctl %s: exit %d\n%s\n%s"
                         % (args, r.returncode, r.stdout, r.stderr))
        return r


class Lab(LabCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server_pub, server_sec = keygen()
        client_pub, client_sec = keygen()
        cls.key_file = os.path.join(cls.dir.name, "me.key")
        with open(cls.key_file, "w") as f:
            f.write('public_key: "%s"\nsecret_key: "%s"\n' % (client_pub, client_sec))
        cls.optics = cls.daemon("optics", {"power": (POWER, True)})
        cls.bench = cls.daemon("bench", {"osc": (SMALL_OSC, True)},
                               security=(server_sec, [(client_pub, "operator")]))
        cls.down = "tcp://127.0.0.1:%d" % free_port()
        cls.lab = cls.write("lab.yaml", (
            "daemons:\n"
            "  - name: optics\n"
            "    rpc: %s\n"
            "  - name: bench\n"
            "    rpc: %s\n"
            '    server_key: "%s"\n'
            "  - name: cellar\n"
            "    rpc: %s\n") % (cls.optics.rpc, cls.bench.rpc, cls.server_pub, cls.down))

    def test_devices_lists_every_daemon_and_marks_the_one_that_is_down(self):
        start = time.monotonic()
        r = self.run_pnnctl("devices")
        self.assertLess(time.monotonic() - start, 30)  # bounded by the timeout, never a hang
        self.assertIn("optics/power", r.stdout)
        self.assertIn("bench/osc", r.stdout)
        self.assertIn("cellar/*", r.stdout)
        self.assertIn("UNREACHABLE at " + self.down, r.stdout)
        self.assertIn("1 of 3 daemons", r.stdout)
        rows = json_lines(self.run_pnnctl("devices", "--json").stdout)
        by_daemon = {}
        for row in rows:
            by_daemon.setdefault(row["daemon"], []).append(row)
        self.assertEqual([d["name"] for d in by_daemon["optics"]], ["power"])
        self.assertEqual([d["name"] for d in by_daemon["bench"]], ["osc"])
        self.assertFalse(by_daemon["cellar"][0]["reachable"])
        # --lab on the command line does the same as PNN_LAB.
        r = self.run_pnnctl("devices", "--lab", self.lab, lab=False)
        self.assertIn("bench/osc", r.stdout)

    def test_device_verbs_reach_the_daemon_the_name_says(self):
        r = self.run_pnnctl("forward", "optics/power", "--x-json", "[[1.5]]", "--theta-json", "[2]",
                            "--json")
        self.assertAlmostEqual(json.loads(r.stdout)["y"][0][0], 2 * 1.5 ** 2, places=4)
        # Through CURVE: the registry gives the server key, PNN_KEY_FILE this client's pair.
        r = self.run_pnnctl("describe", "bench/osc", "--json")
        self.assertEqual(json.loads(r.stdout)["name"], "osc")
        token = self.run_pnnctl("acquire", "bench/osc").stdout.split()[-1]
        self.run_pnnctl("release", "bench/osc", "--lease", token)
        # A plain name still goes to --endpoint.
        r = pnnctl("describe", "power", "--json", endpoint=self.optics.rpc)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_name_and_registry_mistakes_name_the_file_and_the_fix(self):
        r = self.run_pnnctl("describe", "attic/osc", code=2)
        self.assertIn("no daemon 'attic'", r.stderr)
        self.assertIn(self.lab, r.stderr)
        self.assertIn("optics, bench, cellar", r.stderr)
        r = self.run_pnnctl("describe", "optics/osc/x", code=2)
        self.assertIn("DAEMON/DEVICE", r.stderr)
        r = self.run_pnnctl("describe", "optics/power", lab=False, code=2)
        self.assertIn("needs the lab registry", r.stderr)
        self.assertIn("PNN_LAB", r.stderr)
        r = self.run_pnnctl("devices", lab=os.path.join(self.dir.name, "missing.yaml"), code=2)
        self.assertIn("missing.yaml: cannot open the lab registry", r.stderr)
        dup = self.write("dup.yaml", "daemons:\n  - {name: a, rpc: 'tcp://127.0.0.1:1'}\n"
                                     "  - {name: a, rpc: 'tcp://127.0.0.1:2'}\n")
        r = self.run_pnnctl("devices", lab=dup, code=2)
        self.assertIn("dup.yaml:3:", r.stderr)
        self.assertIn("listed twice (first at line 2)", r.stderr)
        # A daemon whose key is not the one in the registry: no handshake, so no reply; the
        # error names the registry entry to check.
        wrong_pub, _ = keygen()
        wrong = self.write("wrong.yaml", 'daemons:\n  - name: bench\n    rpc: %s\n'
                                         '    server_key: "%s"\n' % (self.bench.rpc, wrong_pub))
        r = self.run_pnnctl("describe", "bench/osc", lab=wrong, code=3)
        self.assertIn("bench (%s line 2)" % wrong, r.stderr)
        self.assertIn("server_key", r.stderr)

    def test_python_client_resolves_names_through_the_registry(self):
        lab = pnn_client.Lab(self.lab)
        self.assertEqual(sorted(lab.daemons), ["bench", "cellar", "optics"])
        client, device = lab.resolve("optics/power")
        with client, client.lease(device):
            y = client.forward(device, np.array([[1.5]]), [2.0])
        self.assertAlmostEqual(float(y[0][0]), 4.5, places=4)
        client, device = lab.resolve("bench/osc", key_file=self.key_file)
        with client:
            self.assertEqual(client.describe(device).name, "osc")
        with self.assertRaisesRegex(pnn_client.LabError, "no daemon 'attic'.*optics, bench, cellar"):
            lab.resolve("attic/osc")
        with self.assertRaisesRegex(pnn_client.LabError, "listed twice"):
            pnn_client.Lab(text="daemons:\n  - {name: a, rpc: 'tcp://h:1'}\n"
                                "  - {name: a, rpc: 'tcp://h:2'}\n")
        with self.assertRaisesRegex(pnn_client.LabError, "<text>:2: 'daemons\\[0\\].server_key'"):
            pnn_client.Lab(text="daemons:\n  - {name: a, rpc: 'tcp://h:1', server_key: short}\n")
        with self.assertRaisesRegex(pnn_client.LabError, "cannot open"):
            pnn_client.Lab(os.path.join(self.dir.name, "missing.yaml"))


OSC_A = "sim://mechanical-oscillators?seed=1&n=64&gap=large"
OSC_B = "sim://mechanical-oscillators?seed=2&n=74&gap=large"
JOB = """name: cross-daemon
seed: 0
data: {name: digits}
devices:
  osc-a: pnnd://%s/osc-a
  osc-b: %s/osc-b          # the same: DAEMON/DEVICE, as every client names it
network:
  - physical: osc-a
  - pad: 10
  - physical: osc-b
  - slice: {first: 64, count: 10, gain: 3.0}
training: {method: pat, learning_rate: 0.003, batch_size: 32, epochs: %d}
calibration: {enabled: false}
compare: {in_silico: false, digital_hidden: 0}
output: {dir: %s}
"""


class LongNames(LabCase):
    """Names longer than the NAME column's 16 characters widen it: the table stays aligned."""
    tag = "lab-long"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.optics = cls.daemon("downstairs-optics", {"left-bench-power-meter": (POWER, True)})
        cls.lab = cls.write("lab.yaml", "daemons:\n  - name: downstairs-optics\n    rpc: %s\n"
                            % cls.optics.rpc)

    def test_the_table_stays_aligned(self):
        lines = self.run_pnnctl("devices").stdout.splitlines()
        header, row = lines[0], lines[1]
        self.assertTrue(row.startswith("downstairs-optics/left-bench-power-meter "), row)
        self.assertEqual(header.index("STATE"), row.index("ACTIVE"), "\n".join(lines))
        self.assertEqual(header.index("HEALTH"), row.index("OK"), "\n".join(lines))


class CrossDaemonJobs(LabCase):
    """A job run by pnnctl train whose network uses osc-a of one daemon and osc-b of another."""
    tag = "cross"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Fresh devices for each run that is compared (a simulated device's noise stream goes on
        # from call to call): "one" + "two" for the split run, "solo" with both for the single.
        cls.one = cls.daemon("one", {"osc-a": (OSC_A, True)})
        cls.two = cls.daemon("two", {"osc-b": (OSC_B, True)})
        cls.solo = cls.daemon("solo", {"osc-a": (OSC_A, True), "osc-b": (OSC_B, True)})
        cls.lab = cls.registry("lab.yaml", {"one": cls.one, "two": cls.two, "solo": cls.solo})

    @classmethod
    def registry(cls, name, daemons):
        path = os.path.join(cls.dir.name, name)
        with open(path, "w") as f:
            f.write("daemons:\n" + "".join("  - name: %s\n    rpc: '%s'\n" % (n, p.rpc)
                                            for n, p in daemons.items()))
        return path

    def job(self, tag, a, b, epochs):
        path = os.path.join(self.dir.name, tag + ".yaml")
        with open(path, "w") as f:
            f.write(JOB % (a, b, epochs, os.path.join(self.dir.name, "runs-" + tag)))
        return path

    def train(self, path, *extra, lab=None):
        return pnnctl("train", path, "--json", *extra, env={"PNN_LAB": lab or self.lab},
                      timeout=600)

    def lease_holders(self, pnnd):
        r = pnnctl("devices", "--json", endpoint=pnnd.rpc)
        return {d["name"]: d.get("lease_holder", "") for d in json_lines(r.stdout)}

    def test_split_over_two_daemons_trains_as_on_one(self):
        split = self.train(self.job("split", "one", "two", 2))
        self.assertEqual(split.returncode, 0, split.stderr)
        single = self.train(self.job("single", "solo", "solo", 2))
        self.assertEqual(single.returncode, 0, single.stderr)
        a, b = json_lines(split.stdout)[-1], json_lines(single.stdout)[-1]
        self.assertEqual([p["phase"] for p in a["phases"]], ["pat"])
        # Same devices, same calls: the same numbers (all but the wall-clock times).
        self.assertEqual(without_times(a["phases"]), without_times(b["phases"]))
        self.assertGreater(a["phases"][0]["acc_hardware"], 0.3)
        # Every lease was released when the job ended.
        self.assertEqual(set(self.lease_holders(self.one).values()), {""})
        self.assertEqual(set(self.lease_holders(self.two).values()), {""})
        self.assertEqual(set(self.lease_holders(self.solo).values()), {""})

    def test_an_unknown_daemon_or_device_is_a_config_error_before_training(self):
        r = self.train(self.job("attic", "one", "attic", 2))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("no daemon 'attic'", r.stderr)
        self.assertIn("devices.osc-b", r.stderr)
        r = self.train(self.job("nodev", "two", "two", 2))  # two has no osc-a
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("two/osc-a", r.stderr)
        self.assertIn("UNKNOWN_DEVICE", r.stderr)
        # pnnd runs jobs on its own devices: a pnnd:// device there is refused with the reason.
        r = pnnctl("train", self.job("inside", "one", "two", 2), "--remote", endpoint=self.one.rpc)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("a device of another daemon", r.stderr)

    def test_a_daemon_killed_mid_job_ends_it_naming_the_device_and_releases_the_rest(self):
        four = self.daemon("four", {"osc-a": (OSC_A, True)})
        three = self.daemon("three", {"osc-b": (OSC_B, True)})
        try:
            lab = self.registry("lab3.yaml", {"four": four, "three": three})
            path = self.job("killed", "four", "three", 200)
            proc = subprocess.Popen([PNNCTL, "train", path, "--json", "--timeout-ms", "1000",
                                     "--retries", "0"], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True,
                                    env=dict(clean_env(), PNN_LAB=lab))
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # until the job has run on the doomed daemon
                r = pnnctl("describe", "osc-b", "--json", endpoint=three.rpc)
                if r.returncode == 0 and int(json.loads(r.stdout).get("forward_calls", 0)) > 20:
                    break
                time.sleep(0.1)
            three.proc.kill()  # kill -9: no goodbye, its leases die with it
            out, err = proc.communicate(timeout=120)
            self.assertEqual(proc.returncode, 1, err)
            self.assertIn("three/osc-b", err)
            self.assertIn("lab3.yaml line 4", err)  # which registry entry to check
            # The job's other device was released on the way out.
            self.assertEqual(self.lease_holders(four).get("osc-a", ""), "")
        finally:
            three.stop()

    def test_with_retry_a_restarted_daemon_is_waited_for_and_the_job_resumes(self):
        five = self.daemon("five", {"osc-a": (OSC_A, True)})
        six = self.daemon("six", {"osc-b": (OSC_B, True)})
        port = six.rpc.rsplit(":", 1)[1]
        lab = self.registry("lab6.yaml", {"five": five, "six": six})
        path = self.job("retried", "five", "six", 6)
        proc = subprocess.Popen([PNNCTL, "train", path, "--json", "--timeout-ms", "1000",
                                 "--retries", "0", "--retry", "2", "--retry-wait-s", "60"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(clean_env(), PNN_LAB=lab))
        checkpoint = os.path.join(self.dir.name, "runs-retried", "checkpoint.pnnckpt")
        deadline = time.monotonic() + 120
        while not os.path.exists(checkpoint) and time.monotonic() < deadline:
            time.sleep(0.05)  # until the first epoch is checkpointed
        self.assertTrue(os.path.exists(checkpoint))
        six.proc.kill()
        six.proc.wait()
        time.sleep(1.0)  # the job notices, and waits
        again = Pnnd(six.workdir, devices={"osc-b": (OSC_B, True)}, rpc_port=port).start()
        try:
            out, err = proc.communicate(timeout=300)
        finally:
            again.stop()
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn("--retry: waiting", err)
        self.assertIn("resuming from " + checkpoint, err)
        summary = json_lines(out)[-1]
        # The resumed run goes on from the checkpoint's epoch to the last, none twice.
        epochs = [h["epoch"] for h in summary["phases"][0]["history"]]
        self.assertEqual(epochs, list(range(7 - len(epochs), 7)))
        self.assertGreaterEqual(len(epochs), 1)
        self.assertLess(len(epochs), 6)
        self.assertEqual(self.lease_holders(five).get("osc-a", ""), "")

    def test_the_remote_devices_telemetry_reaches_the_job(self):
        # osc-b unplugs on its 40th command and stays away: its daemon marks it FAULT and says
        # so on state/osc-b; the job fails on the device error and prints the daemon's account.
        eight = self.daemon("eight", {"osc-a": (OSC_A, True)})
        nine = self.daemon("nine", {"osc-b": (OSC_B + "&faults=unplug_after:40,unplug_ms:60000"
                                               "&timeout_ms=100&retries=0", True)})
        lab = self.registry("lab9.yaml", {"eight": eight, "nine": nine})
        r = self.train(self.job("unplugged", "eight", "nine", 5), lab=lab)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("nine/osc-b (its daemon): ", r.stderr)
        self.assertIn("health FAULT", r.stderr)

    def test_a_job_in_pnnd_uses_its_own_device_and_another_daemons(self):
        far = self.daemon("far", {"osc-b": (OSC_B, True)})
        registry = self.registry("hub-lab.yaml", {"far": far})
        hub = self.daemon("hub", {"osc-a": (OSC_A, True)}, extra_config={"lab": registry})
        path = os.path.join(self.dir.name, "hub-job.yaml")
        with open(path, "w") as f:
            f.write((JOB % ("x", "far", 2, "unused")).replace("pnnd://x/osc-a", "osc-a"))
        r = pnnctl("train", path, "--remote", "--json", endpoint=hub.rpc, timeout=600)
        self.assertEqual(r.returncode, 0, r.stderr)
        summary = json_lines(r.stdout)[-1]
        self.assertEqual(summary["state"], "SUCCEEDED")
        self.assertGreater(summary["phases"][0]["acc_hardware"], 0.3)
        self.assertEqual(self.lease_holders(far).get("osc-b", ""), "")
        self.assertEqual(self.lease_holders(hub).get("osc-a", ""), "")
        # The far device's state reached the job's log on the hub.
        with open(hub.stderr_path) as f:
            self.assertIn("far/osc-b (its daemon): ACTIVE HEALTH_OK", f.read())
        # An unknown daemon fails the submission, naming the registry.
        with open(path, "w") as f:
            f.write((JOB % ("x", "attic", 2, "unused")).replace("pnnd://x/osc-a", "osc-a"))
        r = pnnctl("train", path, "--remote", endpoint=hub.rpc)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("no daemon 'attic'", r.stderr)
        self.assertIn("hub-lab.yaml", r.stderr)

    def test_retry_does_not_retry_a_config_mistake(self):
        r = self.train(self.job("noretry", "one", "attic", 2), "--retry", "3")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertNotIn("--retry: waiting", r.stderr)


if __name__ == "__main__":
    unittest.main()
