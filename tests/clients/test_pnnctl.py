"""pnnctl against a real pnnd on 127.0.0.1: every remote verb, its --json output, its errors and
exit codes (0 ok, 1 daemon/runtime error, 2 usage/config, 3 daemon unreachable)."""
import json
import os
import signal
import socket
import subprocess
import threading
import time
import unittest

from pnnd_fixture import (PNNCTL, SMALL_OSC, FakePublisher, Pnnd, free_port, keygen, pnnctl,
                          scratch_dir)


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class DaemonCase(unittest.TestCase):
    devices = None

    @classmethod
    def setUpClass(cls):
        cls.dir = scratch_dir(cls.__name__)
        cls.addClassCleanup(cls.dir.cleanup)
        cls.pnnd = Pnnd(cls.dir.name, devices=cls.devices).start()
        cls.addClassCleanup(cls.pnnd.stop)

    def run_ok(self, *args, **kw):
        r = pnnctl(*args, endpoint=self.pnnd.rpc, **kw)
        self.assertEqual(r.returncode, 0, "pnnctl %s failed:\n%s\n%s" % (args, r.stdout, r.stderr))
        return r

    def run_fails(self, code, *args, **kw):
        r = pnnctl(*args, endpoint=self.pnnd.rpc, **kw)
        self.assertEqual(r.returncode, code, "pnnctl %s: expected exit %d, got %d:\n%s\n%s"
                         % (args, code, r.returncode, r.stdout, r.stderr))
        return r


class DeviceVerbs(DaemonCase):
    def test_hello_reports_the_instance_and_discovers_the_telemetry_endpoint(self):
        h = json_lines(self.run_ok("hello", "--json").stdout)[0]
        self.assertEqual(h["instance_id"], self.pnnd.instance)
        self.assertEqual(h["telemetry_endpoint"], self.pnnd.telemetry)
        self.assertEqual(h["role"], "operator")
        self.assertEqual(h["protocol_majors"], [1])
        text = self.run_ok("hello").stdout
        self.assertIn(self.pnnd.instance, text)

    def test_devices_lists_every_device_with_state(self):
        devices = {d["name"]: d for d in json_lines(self.run_ok("devices", "--json").stdout)}
        self.assertEqual(set(devices), {"power", "osc", "cold"})
        self.assertEqual(devices["power"]["state"], "ACTIVE")
        self.assertEqual(devices["cold"]["state"], "UNCONFIGURED")
        self.assertEqual(devices["osc"]["spec"]["num_params"], 20)
        table = self.run_ok("devices").stdout
        self.assertIn("SIM-OSC-1", table)
        self.assertTrue(table.startswith("NAME"))

    def test_describe_asks_the_daemon_for_names_and_builds_addresses_locally(self):
        d = json_lines(self.run_ok("describe", "osc", "--json").stdout)[0]
        self.assertEqual(d["address"], SMALL_OSC)
        self.assertEqual([p["name"] for p in d["spec"]["params"]], ["coupling", "drive"])
        self.assertIn("coupling × 16", self.run_ok("describe", "osc").stdout)
        # An address needs no daemon at all.
        local = pnnctl("describe", "sim://power-law?prefactor=3", "--endpoint",
                       "tcp://127.0.0.1:%d" % free_port())
        self.assertEqual(local.returncode, 0, local.stderr)
        self.assertIn("power-law", local.stdout)
        r = self.run_fails(1, "describe", "nosuch")
        self.assertIn("UNKNOWN_DEVICE", r.stderr)
        self.assertIn("osc", r.stderr)  # names the devices there are

    def test_acquire_prints_a_token_that_later_commands_use(self):
        token = self.run_ok("acquire", "power", "--ttl-ms", "60000").stdout.strip()
        self.assertRegex(token, "^[0-9a-f]{32}$")
        try:
            # Another pnnctl (another client id) is refused without the token...
            r = self.run_fails(1, "forward", "power", "--x-json", "[[1]]", "--theta-json", "[1]")
            self.assertIn("LEASE_HELD", r.stderr)
            # ... and served with it, from the environment or the option.
            r = self.run_ok("forward", "power", "--x-json", "[[1],[2],[3]]", "--theta-json", "[2]",
                            env={"PNN_LEASE": token})
            y = [float(v) for v in r.stdout.split()]
            for got, want in zip(y, [2.0, 8.0, 18.0]):  # reality y = 2 x^θ
                self.assertAlmostEqual(got, want, places=4)
            self.run_ok("renew", "power", "--lease", token)
            holder = json_lines(self.run_ok("describe", "power", "--json").stdout)[0]
            self.assertNotEqual(holder["lease_holder"], "")
        finally:
            self.run_ok("release", "power", "--lease", token)
        d = json_lines(self.run_ok("describe", "power", "--json").stdout)[0]
        self.assertEqual(d["lease_holder"], "")
        # The old token is no longer a lease.
        r = self.run_fails(1, "forward", "power", "--x-json", "[[1]]", "--theta-json", "[1]",
                           "--lease", token)
        self.assertIn("LEASE_RELEASED", r.stderr)

    def test_forward_without_a_lease_leases_for_the_one_command(self):
        out = json_lines(self.run_ok("forward", "osc", "--x-json", "[[0.1,0.2,0.3,0.4],[0,0,0,0]]",
                                     "--theta-fill", "0", "--json").stdout)[0]
        self.assertEqual(out["shape"], [2, 4])
        self.assertEqual(len(out["y"]), 2)
        self.assertGreater(out["t_end_ns"], out["t_start_ns"])
        d = json_lines(self.run_ok("describe", "osc", "--json").stdout)[0]
        self.assertEqual(d["lease_holder"], "")  # released again

    def test_forward_reads_csv_and_json_files(self):
        x = os.path.join(self.dir.name, "x.csv")
        theta = os.path.join(self.dir.name, "theta.json")
        with open(x, "w") as f:
            f.write("# one sample per line\n1.5\n2.5\n")
        with open(theta, "w") as f:
            f.write("[1.0]")
        y = [float(v) for v in self.run_ok("forward", "power", "--x", x, "--theta", theta).stdout.split()]
        self.assertAlmostEqual(y[0], 3.0, places=4)
        self.assertAlmostEqual(y[1], 5.0, places=4)

    def test_bad_forward_input_is_a_usage_error_naming_the_problem(self):
        r = self.run_fails(2, "forward", "power", "--x-json", "[[1],[2,3]]", "--theta-json", "[1]")
        self.assertIn("row 2", r.stderr)
        r = self.run_fails(2, "forward", "power", "--x-json", "[[1]]")
        self.assertIn("--theta", r.stderr)
        r = self.run_fails(2, "forward", "power", "--x-json", "[[one]]", "--theta-json", "[1]")
        self.assertIn("not valid JSON", r.stderr)
        r = self.run_fails(2, "forward", "power", "--x", "/nonexistent.csv", "--theta-json", "[1]")
        self.assertIn("cannot read", r.stderr)

    def test_daemon_errors_carry_their_status_name(self):
        r = self.run_fails(1, "forward", "power", "--x-json", "[[1, 2]]", "--theta-json", "[1]")
        self.assertIn("SHAPE_MISMATCH", r.stderr)
        r = self.run_fails(1, "forward", "power", "--x-json", "[[1]]", "--theta-json", "[100]")
        self.assertIn("OUT_OF_LIMITS", r.stderr)
        r = self.run_fails(1, "forward", "nosuch", "--x-json", "[[1]]", "--theta-json", "[1]")
        self.assertIn("UNKNOWN_DEVICE", r.stderr)
        # A token the daemon never issued: the device needs a lease.
        r = self.run_fails(1, "forward", "power", "--x-json", "[[1]]", "--theta-json", "[1]",
                           "--lease", "00" * 16)
        self.assertIn("LEASE_REQUIRED", r.stderr)
        r = self.run_fails(2, "renew", "power")  # no token at all
        self.assertIn("--lease", r.stderr)
        r = self.run_fails(2, "release", "power", "--lease", "xyz")
        self.assertIn("hex", r.stderr)

    def test_lifecycle_follows_the_state_machine(self):
        states = []
        for t in ["configure", "activate", "recover", "activate", "deactivate", "cleanup"]:
            states.append(json_lines(self.run_ok("lifecycle", "cold", t, "--json").stdout)[0]["state"])
        # recover lands INACTIVE from any state, never ACTIVE
        self.assertEqual(states, ["INACTIVE", "ACTIVE", "INACTIVE", "ACTIVE", "INACTIVE", "UNCONFIGURED"])
        r = self.run_fails(1, "lifecycle", "cold", "activate")
        self.assertIn("WRONG_STATE", r.stderr)
        self.run_fails(2, "lifecycle", "cold", "explode")

    def test_calibrate_fits_and_keeps_the_twin(self):
        c = json_lines(self.run_ok("calibrate", "osc", "--json").stdout)[0]
        self.assertLessEqual(c["mse_after"], c["mse_before"])
        self.assertGreater(c["calibration_id"], 0)
        d = json_lines(self.run_ok("describe", "osc", "--json").stdout)[0]
        self.assertTrue(d["twin_calibrated"])
        self.assertEqual(d["calibration_id"], c["calibration_id"])


TINY_JOB = """name: tiny-{tag}
seed: 0
data:
  name: digits
  max_train: {max_train}
  max_test: 64
devices:
  osc: {device}
network:
  - affine: 4
  - physical: osc
  - affine: 10
training:
  epochs: {epochs}
  batch_size: 32
compare:
  in_silico: true
output:
  dir: {out}
"""


class Twins(DaemonCase):
    def test_twin_fit_list_show_use(self):
        r = self.run_fails(1, "twin", "fit", "power", "--family", "spline")
        self.assertIn("grey-box, residual, mlp", r.stderr)
        card = json_lines(self.run_ok("twin", "fit", "power", "--family", "grey-box",
                                      "--samples", "256", "--json").stdout)[0]
        twin_id = int(card["twin_id"])
        self.assertEqual(card["family"], "grey-box")
        self.assertEqual(len(card["data_hash"]), 64)
        self.assertLess(card["report"]["twin_nmse"], 1.0)
        self.assertEqual(len(card["report"]["r2_per_output"]), 1)
        table = self.run_ok("twin", "list").stdout
        self.assertTrue(table.startswith("TWIN"))
        self.assertIn("grey-box", table)
        plot = os.path.join(self.dir.name, "twin.svg")
        text = self.run_ok("twin", "show", str(twin_id), "--plot", plot).stdout
        self.assertIn("Jacobian", text)
        self.assertIn("R² per output", text)
        with open(plot) as f:
            svg = f.read()
        self.assertIn("<svg", svg)
        self.assertIn("<circle", svg)  # the predicted-vs-measured points
        self.run_fails(2, "twin", "show", "seven")
        self.assertIn("UNKNOWN_TWIN", self.run_fails(1, "twin", "show", "99999").stderr)
        # Another device: refused with the reason.
        r = self.run_fails(1, "twin", "use", "osc", str(twin_id))
        self.assertIn("TWIN_MISMATCH", r.stderr)
        self.assertIn("pnnctl twin fit osc", r.stderr)
        self.assertIn("uses learned twin %d" % twin_id,
                      self.run_ok("twin", "use", "power", str(twin_id)).stdout)
        self.assertIn("learned %d" % twin_id, self.run_ok("devices").stdout)
        self.assertIn("datasheet twin", self.run_ok("twin", "use", "power", "nominal").stdout)
        self.assertNotIn("learned %d" % twin_id, self.run_ok("devices").stdout)


class Jobs(DaemonCase):
    def job_file(self, tag, epochs=2, max_train=96, device=SMALL_OSC):
        path = os.path.join(self.dir.name, tag + ".yaml")
        with open(path, "w") as f:
            f.write(TINY_JOB.format(tag=tag, epochs=epochs, max_train=max_train, device=device,
                                    out=os.path.join(self.dir.name, "local-" + tag)))
        return path

    def test_train_remote_streams_progress_and_prints_the_in_process_summary(self):
        job = self.job_file("remote")
        remote = self.run_ok("train", job, "--remote", "--json")
        summary = json_lines(remote.stdout)[-1]
        local = json_lines(pnnctl("train", job, "--json").stdout)[-1]
        # The same keys as the in-process run, plus where the run lives in the daemon.
        self.assertEqual(set(summary) - set(local), {"job_id", "run_id", "state"})
        self.assertEqual(set(local) - set(summary), set())
        self.assertEqual(summary["state"], "SUCCEEDED")
        self.assertEqual(summary["devices"], ["SIM-OSC-1"])
        self.assertEqual([p["phase"] for p in summary["phases"]], ["pat", "in-silico"])
        self.assertIn("pat       epoch   1/2", remote.stderr)
        self.assertIn("in-silico epoch   2/2", remote.stderr)
        # The job wrote its plot into the daemon's runs_dir.
        self.assertTrue(summary["plot"].startswith(os.path.join(self.dir.name, "runs")))
        self.assertTrue(os.path.exists(summary["plot"]), summary["plot"])
        text = self.run_ok("train", job, "--remote").stdout
        self.assertIn("PAT-trained, measured on the hardware", text)
        self.assertIn("plot:", text)

        run_id = summary["run_id"]
        jobs = {j["job_id"]: j for j in json_lines(self.run_ok("jobs", "--json").stdout)}
        self.assertEqual(jobs[summary["job_id"]]["state"], "SUCCEEDED")
        self.assertIn("SUCCEEDED", self.run_ok("jobs").stdout)
        runs = json_lines(self.run_ok("runs", "--json", "--limit", "50").stdout)
        self.assertIn(run_id, [r["run_id"] for r in runs])
        self.assertEqual(len(json_lines(self.run_ok("runs", "--limit", "1", "--json").stdout)), 1)
        shown = json_lines(self.run_ok("runs", "show", str(run_id), "--json").stdout)[0]
        self.assertEqual(shown["run"]["state"], "SUCCEEDED")
        self.assertEqual(len(shown["metrics"]), 4)  # 2 epochs × (PAT, in-silico)
        self.assertEqual(shown["run"]["summary_json"]["name"], "tiny-remote")
        self.assertIn("PAT-trained", self.run_ok("runs", "show", str(run_id)).stdout)
        r = self.run_fails(1, "runs", "show", "999999")
        self.assertIn("UNKNOWN_RUN", r.stderr)
        self.run_fails(2, "runs", "show", "seven")

    def test_job_config_mistakes_are_usage_errors(self):
        bad = os.path.join(self.dir.name, "bad.yaml")
        with open(bad, "w") as f:
            with open(self.job_file("bad")) as good:
                f.write(good.read().replace("training:", "trainig:"))
        r = self.run_fails(2, "train", bad, "--remote")
        self.assertIn("trainig", r.stderr)
        self.assertIn("did you mean", r.stderr)
        # A device the daemon does not have.
        r = self.run_fails(2, "train", self.job_file("foreign", device="sim://power-law?prefactor=3"),
                           "--remote")
        self.assertIn("UNKNOWN_DEVICE", r.stderr)
        r = self.run_fails(2, "train", "--remote", "--resume", "runs/x.pnnckpt")
        self.assertIn("RUN_ID", r.stderr)

    def test_ctrl_c_cancels_the_job_and_resume_continues_the_run(self):
        job = self.job_file("cancel", epochs=2000, max_train=512, device="osc")
        first_epoch = self.interrupt_after_epoch(["train", job, "--remote"])
        self.assertEqual(first_epoch, 1)
        runs = json_lines(self.run_ok("runs", "--json", "--limit", "1").stdout)
        run = runs[0]
        self.assertEqual(run["state"], "CANCELLED")
        self.assertGreaterEqual(run["epochs_done"], 2)
        jobs = json_lines(self.run_ok("jobs", "--json").stdout)
        self.assertEqual(jobs[-1]["state"], "CANCELLED")
        # Resume the run from its checkpoint: the first epoch now comes after the saved ones.
        resumed_first = self.interrupt_after_epoch(
            ["train", "--remote", "--resume", str(run["run_id"])])
        self.assertGreater(resumed_first, run["epochs_done"])

    def interrupt_after_epoch(self, args):
        """Runs pnnctl, sends SIGINT after the second PAT epoch line; returns the first epoch
        number printed. Checks the exit code 130 and the cancel message."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PNN_")}
        proc = subprocess.Popen([PNNCTL] + args + ["--endpoint", self.pnnd.rpc],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        timer = threading.Timer(300, proc.kill)
        timer.start()
        epochs, lines = [], []
        try:
            for line in proc.stderr:
                lines.append(line)
                if line.strip().startswith("pat ") and " epoch " in line:
                    epochs.append(int(line.split("epoch")[1].split("/")[0]))
                    if len(epochs) == 2:
                        proc.send_signal(signal.SIGINT)
            proc.wait(120)
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        text = "".join(lines)
        self.assertEqual(proc.returncode, 130, text)
        self.assertIn("cancelling job", text)
        self.assertGreaterEqual(len(epochs), 2, text)
        return epochs[0]


class EpJobs(DaemonCase):
    """Equilibrium propagation (a settle-only rule) through pnnd: pnnctl --remote and the Python
    client reach it like every other rule."""
    devices = {"resnet": ("sim://resistive-network?seed=1&inputs=64&hidden=128&outputs=10", True)}

    def job_yaml(self, tag):
        with open(os.path.join(os.path.dirname(__file__), "..", "..", "configs", "jobs",
                               "ep-resistive-digits.yaml")) as f:
            text = f.read()
        return (text.replace("sim://resistive-network?seed=1&inputs=64&hidden=128&outputs=10", "resnet")
                    .replace("epochs: 60", "epochs: 2").replace("name: ep-resistive-digits", "name: ep-" + tag))

    def test_ep_job_through_pnnctl_remote_and_the_python_client(self):
        path = os.path.join(self.dir.name, "ep.yaml")
        with open(path, "w") as f:
            f.write(self.job_yaml("cli"))
        summary = json_lines(self.run_ok("train", path, "--remote", "--json").stdout)[-1]
        self.assertEqual(summary["state"], "SUCCEEDED")
        self.assertEqual([p["phase"] for p in summary["phases"]], ["ep"])
        self.assertGreater(summary["phases"][0]["acc_hardware"], 0.5)
        import pnn_client
        with pnn_client.Client(self.pnnd.rpc) as client:
            job_id, _ = client.submit_job(config_yaml=self.job_yaml("py"))
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                info = client.job_status(job_id)[0]
                if info.state != pnn_client.pb.RUNNING:
                    break
                time.sleep(0.2)
            self.assertEqual(pnn_client.pb.JobState.Name(info.state), "SUCCEEDED", info.message)
            self.assertEqual(info.metrics[-1].phase, "ep")


class Watch(DaemonCase):
    def test_watch_prints_events_as_json_lines(self):
        events = json_lines(self.run_ok("watch", "--count", "4", "--json", "--duration-s", "60").stdout)
        self.assertEqual(len(events), 4)
        seqs = [e["event"]["seq"] for e in events]
        self.assertEqual(seqs, sorted(seqs))
        self.assertTrue(all(e["event"]["instance_id"] == self.pnnd.instance for e in events))
        text = self.run_ok("watch", "hb", "--count", "2", "--duration-s", "60").stdout
        self.assertEqual(text.count("heartbeat"), 2)

    def test_watch_filters_topics(self):
        proc = subprocess.Popen([PNNCTL, "watch", "state/power", "--count", "2", "--json",
                                 "--duration-s", "60", "--endpoint", self.pnnd.rpc],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(0.5)  # not a pass/fail timing: forwards repeat until the watcher has 2
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                pnnctl("forward", "power", "--x-json", "[[1]]", "--theta-json", "[1]",
                       endpoint=self.pnnd.rpc)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        self.assertEqual(proc.returncode, 0, err)
        events = json_lines(out)
        self.assertEqual({e["topic"] for e in events}, {"state/power"})

    def test_watch_reports_lost_events(self):
        # seq 1..9, then 13..21, ...: three events lost every tenth.
        def pattern(step):
            return "fake-instance", step + 1 + 3 * (step // 9)
        with FakePublisher(pattern) as pub:
            r = pnnctl("watch", "--telemetry", pub.endpoint, "--count", "30", "--json",
                       "--duration-s", "60")
        self.assertEqual(r.returncode, 0, r.stderr)
        gaps = [j for j in json_lines(r.stdout) if j.get("notice") == "gap"]
        self.assertGreaterEqual(len(gaps), 1)
        self.assertTrue(all(g["lost"] == 3 for g in gaps), gaps)


class WatchRestart(unittest.TestCase):
    def test_watch_says_when_the_daemon_restarted(self):
        with scratch_dir("restart") as d:
            rpc, tel = free_port(), free_port()
            first = Pnnd(d, rpc_port=rpc, telemetry_port=tel).start()
            proc = subprocess.Popen([PNNCTL, "watch", "--json", "--duration-s", "120",
                                     "--endpoint", first.rpc],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            second = None
            try:
                self.assertIn('"topic"', proc.stdout.readline())  # watching the first instance
                self.assertEqual(first.stop(), 0)
                second = Pnnd(d, rpc_port=rpc, telemetry_port=tel).start()
                notice = None
                for line in proc.stdout:
                    j = json.loads(line)
                    if j.get("notice") == "restart":
                        notice = j
                        break
                self.assertIsNotNone(notice)
                self.assertEqual(notice["old_instance"], first.instance)
                self.assertEqual(notice["new_instance"], second.instance)
                proc.send_signal(signal.SIGINT)
                self.assertEqual(proc.wait(60), 0)
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.communicate()
                first.stop()
                if second:
                    self.assertEqual(second.stop(), 0)


class Curve(unittest.TestCase):
    def test_curve_keys_give_the_listed_role(self):
        server_pub, server_sec = keygen()
        op_pub, op_sec = keygen()
        ro_pub, ro_sec = keygen()
        with scratch_dir("curve") as d:
            def key_file(name, pub, sec):
                path = os.path.join(d, name)
                with open(path, "w") as f:
                    f.write('public_key: "%s"\nsecret_key: "%s"\n' % (pub, sec))
                return path
            operator, reader = key_file("op.key", op_pub, op_sec), key_file("ro.key", ro_pub, ro_sec)
            with Pnnd(d, security=(server_sec, [(op_pub, "operator"), (ro_pub, "read-only")])) as p:
                def run(*args, key=None, server=server_pub):
                    extra = ["--timeout-ms", "1000", "--retries", "0"]
                    if key:
                        extra += ["--key-file", key, "--server-key", server]
                    return pnnctl(*(list(args) + extra), endpoint=p.rpc)
                r = run("hello", "--json", key=operator)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(json.loads(r.stdout)["role"], "operator")
                r = run("forward", "power", "--x-json", "[[1]]", "--theta-json", "[1]", key=operator)
                self.assertEqual(r.returncode, 0, r.stderr)
                r = run("hello", "--json", key=reader)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(json.loads(r.stdout)["role"], "read-only")
                r = run("acquire", "power", key=reader)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn("PERMISSION_DENIED", r.stderr)
                self.assertEqual(run("devices", key=reader).returncode, 0)
                # No keys, or a key the daemon does not list: no handshake, so no reply.
                r = run("hello")
                self.assertEqual(r.returncode, 3, r.stderr)
                stranger_pub, stranger_sec = keygen()
                r = run("hello", key=key_file("x.key", stranger_pub, stranger_sec))
                self.assertEqual(r.returncode, 3, r.stderr)
                self.assertIn(stranger_pub, r.stderr)  # names the key to add
                r = pnnctl("hello", "--server-key", server_pub, endpoint=p.rpc)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("--key-file", r.stderr)


class Unreachable(unittest.TestCase):
    def test_nothing_listening_is_exit_3_with_a_hint(self):
        r = pnnctl("devices", endpoint="tcp://127.0.0.1:%d" % free_port())
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("is pnnd running?", r.stderr)
        self.assertIn("pnnd --config", r.stderr)

    def test_a_silent_peer_times_out_as_exit_3(self):
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(8)
            endpoint = "tcp://127.0.0.1:%d" % listener.getsockname()[1]
            r = pnnctl("hello", "--timeout-ms", "300", "--retries", "1", endpoint=endpoint)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("no reply from pnnd", r.stderr)

    def test_a_stopped_daemon_is_unreachable(self):
        with scratch_dir("stopped") as d:
            p = Pnnd(d).start()
            endpoint = p.rpc
            self.assertEqual(pnnctl("hello", endpoint=endpoint).returncode, 0)
            self.assertEqual(p.stop(), 0)
            r = pnnctl("train", "--remote", "--resume", "1", endpoint=endpoint)
            self.assertEqual(r.returncode, 3, r.stderr)



class Version(unittest.TestCase):
    """--version of pnnctl and pnnd: the project version of CMakeLists.txt and the protocol
    version of proto/include/pnn/proto/wire.hpp, read here from those files."""

    @classmethod
    def setUpClass(cls):
        import re
        from pnnd_fixture import PNND, ROOT
        cls.pnnd_binary = PNND
        with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
            cls.version = re.search(r"project\(pnn_hil VERSION ([0-9.]+)", f.read()).group(1)
        with open(os.path.join(ROOT, "proto", "include", "pnn", "proto", "wire.hpp")) as f:
            wire = f.read()
        major = re.search(r"kProtocolMajor = (\d+);", wire).group(1)
        minor = re.search(r"kProtocolMinor = (\d+);", wire).group(1)
        cls.protocol = "%s.%s" % (major, minor)

    def test_pnnctl_version(self):
        r = pnnctl("--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "pnnctl %s (protocol %s)" % (self.version, self.protocol))

    def test_pnnd_version(self):
        r = subprocess.run([self.pnnd_binary, "--version"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "pnnd %s (protocol %s)" % (self.version, self.protocol))
        self.assertIn("--version", subprocess.run([self.pnnd_binary, "--bogus"], capture_output=True,
                                                  text=True, timeout=30).stderr)


if __name__ == "__main__":
    unittest.main()
