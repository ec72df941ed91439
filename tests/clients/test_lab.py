"""The lab registry (docs/lab.md) end to end: two real pnnd processes on 127.0.0.1 (one plain,
one with CURVE) and a registry naming them plus one daemon that is down; pnnctl and the Python
client reach devices as DAEMON/DEVICE, `pnnctl devices` with --lab lists every daemon's devices
and marks the one that does not answer, and each registry mistake is a clear error naming the
file and line."""
import json
import os
import time
import unittest

import numpy as np

import pnn_client
from pnnd_fixture import POWER, SMALL_OSC, Pnnd, free_port, keygen, pnnctl, scratch_dir


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class Lab(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = scratch_dir("lab")
        cls.addClassCleanup(cls.dir.cleanup)
        d = cls.dir.name
        os.makedirs(os.path.join(d, "optics"))
        os.makedirs(os.path.join(d, "bench"))
        cls.server_pub, server_sec = keygen()
        client_pub, client_sec = keygen()
        cls.key_file = os.path.join(d, "me.key")
        with open(cls.key_file, "w") as f:
            f.write('public_key: "%s"\nsecret_key: "%s"\n' % (client_pub, client_sec))
        cls.optics = Pnnd(os.path.join(d, "optics"), devices={"power": (POWER, True)}).start()
        cls.addClassCleanup(cls.optics.stop)
        cls.bench = Pnnd(os.path.join(d, "bench"), devices={"osc": (SMALL_OSC, True)},
                         security=(server_sec, [(client_pub, "operator")])).start()
        cls.addClassCleanup(cls.bench.stop)
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

    @classmethod
    def write(cls, name, text):
        path = os.path.join(cls.dir.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def run_pnnctl(self, *args, lab=None, code=0):
        env = {"PNN_KEY_FILE": self.key_file}
        if lab is not False:
            env["PNN_LAB"] = lab or self.lab
        r = pnnctl(*(list(args) + ["--timeout-ms", "1500"]), env=env)
        self.assertEqual(r.returncode, code, "pnnctl %s: exit %d\n%s\n%s"
                         % (args, r.returncode, r.stdout, r.stderr))
        return r

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


if __name__ == "__main__":
    unittest.main()
