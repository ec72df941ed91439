"""The dashboard in a real headless browser (Debian's chromium + chromium-driver, python3-selenium)
against a real pnnd with simulated devices: the devices table, a live job whose curves gain points
while it runs, a device that faults while the page is open, and a screenshot kept as an artefact
(PNN_ARTIFACTS, default build/test-artifacts).

Skips, saying why, where Chromium, ChromeDriver or Selenium is missing or cannot start; never a
silent pass.
"""
import json
import os
import shutil
import signal
import subprocess
import time
import unittest
import urllib.request

import numpy as np

from pnnd_fixture import PNNCTL, ROOT, Pnnd, free_port, scratch_dir

CHROMIUM = os.environ.get("PNN_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("PNN_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = os.environ.get("PNN_ARTIFACTS", os.path.join(ROOT, "build", "test-artifacts"))

FLAKY = ("sim://power-law?prefactor=2&serial=SIM-POW-FLAKY"
         "&faults=unplug_after:8,unplug_ms:600000&timeout_ms=20")

LONG_JOB = """name: dashboard-live
seed: 0
data:
  name: digits
  max_train: 256
  max_test: 64
devices:
  osc: osc
network:
  - affine: 4
  - physical: osc
  - affine: 10
training:
  epochs: 5000
  batch_size: 32
compare:
  in_silico: false
"""


def start_browser():
    """A headless Chromium session, or unittest.SkipTest with the reason."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        raise unittest.SkipTest("python3-selenium is not installed (%s): bash scripts/setup.sh --test" % e)
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(path):
            raise unittest.SkipTest("%s not found: install chromium and chromium-driver "
                                    "(bash scripts/setup.sh --test)" % path)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1500,1100", "--disable-extensions"):
        options.add_argument(arg)
    try:
        return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except Exception as e:  # WebDriverException and friends: the browser did not start
        raise unittest.SkipTest("headless Chromium could not start here: %s" % str(e).splitlines()[0])


def wait_for(predicate, timeout_s=20, interval_s=0.1, what="condition", detail=None):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError("timed out after %.0f s waiting for %s%s"
                         % (timeout_s, what, "" if detail is None else " (%s)" % detail()))


class Browser(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.driver = start_browser()
        cls.dir = scratch_dir("dashboard")
        devices = {"osc": ("sim://mechanical-oscillators?seed=1&n=4", True),
                   "power": ("sim://power-law?prefactor=2", True),
                   "flaky": (FLAKY, True)}
        cls.pnnd = Pnnd(cls.dir.name, devices=devices, heartbeat_ms=500,
                        extra_config={"http": {"bind": "127.0.0.1:0"},
                                      "supervision": {"reconnect_initial_ms": 600000,
                                                      "reconnect_max_ms": 600000}}).start()
        cls.url = cls.pnnd.http
        assert cls.url and cls.url.startswith("http://127.0.0.1:"), cls.url

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        cls.pnnd.stop()
        cls.dir.cleanup()

    def js(self, expression):
        return self.driver.execute_script("return " + expression)

    def cell(self, device, cls):
        return self.js("(document.querySelector('tr[data-device=\"%s\"] td.%s') || {}).textContent"
                       % (device, cls))

    def test_devices_live_job_and_fault(self):
        d = self.driver
        d.get(self.url + "/#devices")
        wait_for(lambda: self.js("window.pnnDashboard.devicesShown") == 3, what="3 devices in the table")
        self.assertTrue(self.js("window.pnnDashboard.hasCharts"), "uPlot was not vendored into pnnd")
        for name in ("osc", "power", "flaky"):
            self.assertEqual(self.cell(name, "state"), "ACTIVE", name)
            self.assertEqual(self.cell(name, "health"), "OK", name)
        self.assertIn("SIM-OSC-1", self.js("document.querySelector('tr[data-device=\"osc\"]').textContent"))
        self.assertIn("…", self.cell("power", "limits"))

        # A device that faults while the page is open: the table shows FAULT and the reason,
        # pushed by the event stream (the page's periodic refresh is 5 s; this must be sooner).
        from pnn_client import Client, PnnError
        client = Client(self.pnnd.rpc, timeout_ms=3000)
        client.acquire("flaky")
        seen_error = None
        for _ in range(30):
            try:
                client.forward("flaky", np.full((1, 1), 0.5, dtype=np.float32), [1.0])
            except PnnError as e:
                seen_error = e
                break
        self.assertIsNotNone(seen_error, "the flaky device never faulted")
        wait_for(lambda: self.cell("flaky", "health") == "FAULT", timeout_s=4.5, what="flaky shown FAULT")
        self.assertTrue(self.cell("flaky", "message").strip(), "a FAULT without its message")
        client.close()

        # A job: its curves gain points while it runs, not only at the end.
        d.get(self.url + "/#jobs")
        job = os.path.join(self.dir.name, "live.yaml")
        with open(job, "w") as f:
            f.write(LONG_JOB)
        trainer = subprocess.Popen([PNNCTL, "train", job, "--remote", "--endpoint", self.pnnd.rpc],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            counts = []

            def points():
                v = self.js("Object.values(window.pnnDashboard.jobPoints)[0] || 0")
                state = self.js("(document.querySelector('.job .job-state') || {}).textContent")
                if state == "RUNNING" and v and (not counts or v > counts[-1]):
                    counts.append(v)
                return len(counts) >= 4

            wait_for(points, timeout_s=60, interval_s=0.05, what="the job's curve to gain points",
                     detail=lambda: "counts while RUNNING %s, page %s, job card %r, pnnctl exit %s" % (
                         counts, self.js("JSON.stringify(window.pnnDashboard)"),
                         self.js("(document.querySelector('.job .status') || {}).textContent"), trainer.poll()))
            self.assertEqual(self.js("(document.querySelector('.job .job-state') || {}).textContent"), "RUNNING")
            self.assertEqual(counts, sorted(counts))
            chart_points = int(self.js("document.querySelector('.job .charts').dataset.points"))
            self.assertGreaterEqual(chart_points, counts[-1])
            os.makedirs(ARTIFACTS, exist_ok=True)
            shot = os.path.join(ARTIFACTS, "dashboard-jobs.png")
            d.save_screenshot(shot)
            self.assertGreater(os.path.getsize(shot), 10000)
        finally:
            trainer.send_signal(signal.SIGINT)  # pnnctl cancels the job on Ctrl-C
            trainer.wait(60)
        d.get(self.url + "/#devices")
        wait_for(lambda: self.js("window.pnnDashboard.devicesShown") == 3, what="devices again")
        # The job's forwards fed the drift monitor: the osc row shows its rolling NMSE.
        drift = wait_for(lambda: (self.cell("osc", "drift") or "").strip() not in ("", "—", "off")
                         and self.cell("osc", "drift"), timeout_s=10,
                         what="osc's drift column to show the monitor's NMSE",
                         detail=lambda: repr(self.cell("osc", "drift")))
        self.assertGreaterEqual(float(drift.rstrip(" !")), 0.0)
        d.save_screenshot(os.path.join(ARTIFACTS, "dashboard-devices.png"))

        # The run is in the store: the runs page lists it and its page has curves and the config.
        d.get(self.url + "/#runs")
        wait_for(lambda: self.js("document.querySelectorAll('#runs tbody tr').length") >= 1, what="runs listed")
        run_id = self.js("document.querySelector('#runs tbody tr').dataset.run")
        d.get(self.url + "/#run/" + run_id)
        wait_for(lambda: self.js("window.pnnDashboard.runPoints") or 0, what="the run's curves")
        self.assertIn("dashboard-live", self.js("document.querySelector('#run-config').textContent"))
        d.save_screenshot(os.path.join(ARTIFACTS, "dashboard-run.png"))

        # Page after page: each one gives its stream's connection back, so the browser's six
        # connections per server never run out (they did, before pages closed their stream).
        for i in range(10):
            d.get("about:blank")
            d.get("%s/?visit=%d#runs" % (self.url, i))
            wait_for(lambda: self.js("document.querySelectorAll('#runs tbody tr').length") >= 1,
                     timeout_s=10, what="the runs page on visit %d" % i)

    def test_page_reconnects_to_a_restarted_daemon(self):
        """The page's event stream reconnects by itself when pnnd goes away and comes back on the
        same address, sees the new instance and refetches the state (a resume within one
        instance, from Last-Event-ID, is tested in tests/daemon/dashboard_test.cpp)."""
        port = free_port()
        with scratch_dir("dashboard-restart") as workdir:
            def daemon():
                return Pnnd(workdir, devices={"power": ("sim://power-law?prefactor=2", True)},
                            heartbeat_ms=200, extra_config={"http": {"bind": "127.0.0.1:%d" % port}}).start()
            first = daemon()
            try:
                self.driver.get(first.http + "/#devices")
                wait_for(lambda: first.instance in (self.js("document.querySelector('#instance').textContent") or ""),
                         what="the first instance id on the page")
                snapshots = self.js("window.pnnDashboard.snapshots")
            finally:
                first.stop()
            wait_for(lambda: self.js("document.querySelector('#live').textContent") != "live",
                     what="the page noticing the daemon is gone")
            second = daemon()
            try:
                self.assertNotEqual(second.instance, first.instance)
                wait_for(lambda: second.instance in (self.js("document.querySelector('#instance').textContent") or ""),
                         timeout_s=30, what="the page showing the restarted daemon's instance")
                self.assertGreater(self.js("window.pnnDashboard.snapshots"), snapshots)
                self.assertEqual(self.js("document.querySelector('#live').textContent"), "live")
                self.assertEqual(self.cell("power", "state"), "ACTIVE")
            finally:
                second.stop()


class ReadOnly(unittest.TestCase):
    """Without a browser: the API over plain HTTP, and what a non-loopback bind demands."""

    def test_non_loopback_bind_without_token_is_refused(self):
        with scratch_dir("dashboard-open") as d:
            p = Pnnd(d, extra_config={"http": {"bind": "0.0.0.0:0"}})
            with self.assertRaises(RuntimeError) as cm:
                p.start(timeout_s=30)
            self.assertIn("http.token", str(cm.exception))

    def test_snapshot_json(self):
        with scratch_dir("dashboard-json") as d:
            with Pnnd(d, extra_config={"http": {"bind": "127.0.0.1:0"}}) as p:
                with urllib.request.urlopen(p.http + "/api/snapshot", timeout=10) as r:
                    snap = json.loads(r.read())
                self.assertEqual(snap["instance_id"], p.instance)
                self.assertEqual(sorted(dev["name"] for dev in snap["devices"]), ["cold", "osc", "power"])


if __name__ == "__main__":
    unittest.main()
