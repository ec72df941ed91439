"""Test helpers: a real pnnd process on 127.0.0.1 (ports "*" unless given) with its store in a
temporary directory, the pnnctl binary, and fake telemetry publishers.

The daemon is stopped with SIGTERM when the test class ends, and the kernel sends it SIGTERM if
this test process dies first (PR_SET_PDEATHSIG), so no daemon outlives a failed or killed test.
"""
import ctypes
import os
import queue
import signal
import socket
import subprocess
import tempfile
import threading
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PNND = os.environ.get("PNN_PNND", os.path.join(ROOT, "build/release/daemon/pnnd"))
PNNCTL = os.environ.get("PNN_PNNCTL", os.path.join(ROOT, "build/release/clients/pnnctl/pnnctl"))
PYTHON = "/usr/bin/python3"

POWER = "sim://power-law?prefactor=2"
SMALL_OSC = "sim://mechanical-oscillators?seed=1&n=4"
DEVICES = {"power": (POWER, True), "osc": (SMALL_OSC, True),
           "cold": ("sim://power-law?prefactor=2&serial=SIM-POW-COLD", False)}

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    _libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def scratch_dir(tag):
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    return tempfile.TemporaryDirectory(prefix="pnn-clients-%s-" % tag, dir=base)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Pnnd:
    """One pnnd process. Attributes after start(): rpc, telemetry, instance.

    extra_config: {section: {key: value}} merged into the generated config (e.g.
    {"rpc": {"max_connections": 200}, "store": {"forward_records": "sync"}}); values are written
    as they are (strings unquoted). preexec: an extra callable run in the child before exec
    (e.g. resource.setrlimit)."""

    def __init__(self, workdir, devices=None, rpc_port="*", telemetry_port="*", heartbeat_ms=100,
                 lease_ttl_ms=10000, security=None, extra_config=None, preexec=None):
        self.workdir = workdir
        self.devices = DEVICES if devices is None else devices
        self.rpc_port, self.telemetry_port = rpc_port, telemetry_port
        self.heartbeat_ms, self.lease_ttl_ms = heartbeat_ms, lease_ttl_ms
        self.security = security  # (server_secret_key, [(public_key, role), ...]) or None
        self.extra_config = extra_config or {}
        self.preexec = preexec
        self.proc = None
        self.rpc = self.telemetry = self.instance = self.http = None
        self._lines = queue.Queue()
        self.config = os.path.join(workdir, "lab.yaml")
        self.stderr_path = os.path.join(workdir, "pnnd-%d.err" % time.monotonic_ns())

    def write_config(self):
        sections = {
            "rpc": {"bind": "tcp://127.0.0.1:%s" % self.rpc_port},
            "telemetry": {"bind": "tcp://127.0.0.1:%s" % self.telemetry_port,
                          "heartbeat_ms": self.heartbeat_ms},
            "leases": {"default_ttl_ms": self.lease_ttl_ms},
            "store": {"path": "%s/store/pnnd.sqlite" % self.workdir,
                      "runs_dir": "%s/runs" % self.workdir},
        }
        for section, values in self.extra_config.items():
            if isinstance(values, str):
                sections[section] = values
            else:
                sections.setdefault(section, {}).update(values)
        lines = ["version: 1"]
        for section, values in sections.items():
            if isinstance(values, str):  # a top-level scalar, e.g. {"lab": "/path/lab.yaml"}
                lines.append("%s: %s" % (section, values))
                continue
            lines.append("%s:" % section)
            lines += ["  %s: %s" % (k, v) for k, v in values.items()]
        lines.append("devices:")
        for name, (address, autostart) in self.devices.items():
            lines += ["  %s:" % name, "    address: %s" % address,
                      "    autostart: %s" % ("true" if autostart else "false")]
        if self.security:
            secret, clients = self.security
            lines += ["security:", '  server_secret_key: "%s"' % secret, "  clients:"]
            for public, role in clients:
                lines += ['    - public_key: "%s"' % public, "      role: %s" % role]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self, timeout_s=60):
        self.write_config()
        self._stderr = open(self.stderr_path, "w")
        extra = self.preexec

        def preexec():
            _die_with_parent()
            if extra is not None:
                extra()

        self.proc = subprocess.Popen([PNND, "--config", self.config], stdout=subprocess.PIPE,
                                     stderr=self._stderr, text=True, cwd=self.workdir,
                                     preexec_fn=preexec)
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise RuntimeError("pnnd exited with %d before it was ready:\n%s"
                                       % (self.proc.returncode, self.stderr_tail()))
                continue
            if line.startswith("pnnd ready"):
                fields = dict(f.split("=", 1) for f in line.split()[2:])
                self.rpc, self.telemetry = fields["rpc"], fields["telemetry"]
                self.instance = fields["instance"]
                self.http = fields.get("http")  # the dashboard, when http.bind is set
                return self
        self.stop()
        raise RuntimeError("pnnd did not print 'pnnd ready' within %d s:\n%s"
                           % (timeout_s, self.stderr_tail()))

    def _read(self):
        for line in self.proc.stdout:
            self._lines.put(line.strip())

    def stderr_tail(self, lines=30):
        try:
            with open(self.stderr_path) as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout_s=60):
        """SIGTERM, wait; SIGKILL if it does not stop. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()
        if self.proc.stdout:
            self.proc.stdout.close()
        return self.proc.returncode

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def keygen():
    """(public, secret) from pnnd --keygen."""
    out = subprocess.run([PNND, "--keygen"], capture_output=True, text=True, check=True).stdout
    keys = dict(line.split(": ", 1) for line in out.splitlines())
    return keys["public_key"].strip('"'), keys["secret_key"].strip('"')


def pnnctl(*args, endpoint=None, env=None, timeout=120, stdin=None):
    """Runs pnnctl; returns the CompletedProcess (text)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PNN_")}
    full_env.update(env or {})
    cmd = [PNNCTL] + list(args)
    if endpoint:
        cmd += ["--endpoint", endpoint]
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout,
                          input=stdin)


class FakePublisher:
    """A PUB socket that publishes heartbeat events with chosen (instance, seq) in a loop until
    stopped, so a subscriber joining at any time sees the pattern."""

    def __init__(self, pattern, period_s=0.01):
        import zmq
        from pnn_client import pb
        self._pb = pb
        self._socket = zmq.Context.instance().socket(zmq.PUB)
        self._socket.linger = 0
        port = self._socket.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = "tcp://127.0.0.1:%d" % port
        self._pattern = pattern  # callable: step -> (instance_id, seq)
        self._period_s = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        step = 0
        while not self._stop.is_set():
            instance, seq = self._pattern(step)
            e = self._pb.Event(instance_id=instance, seq=seq, wall_ns=time.time_ns())
            e.heartbeat.protocol_major = 1
            self._socket.send_multipart([b"hb", e.SerializeToString()])
            step += 1
            time.sleep(self._period_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._socket.close(linger=0)
