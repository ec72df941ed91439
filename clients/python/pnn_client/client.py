"""Client of the pnnd daemon API over a ZeroMQ DEALER socket (docs/clients.md).

Every request is two frames, [b"PNND" + u16 major (big-endian)] [Request protobuf]; the reply is
[protocol frame] [Reply]. A call waits `timeout_ms` per attempt; after a timeout the socket is
closed and reopened and the *same* request (same request_id) is sent again, up to `retries`
times (lazy pirate), for the calls that are safe to repeat: reads, Forward (the daemon never
re-runs a Forward it has seen: (client_id, request_id) is its idempotency key), Acquire, Renew
and the twin calls. SubmitJob, Lifecycle, Calibrate, Release and CancelJob are sent once.

Identity: each Client object picks a random 16-byte ZeroMQ routing id (ZMQ_ROUTING_ID) once and
sets it on every socket it opens, including the fresh socket of a lazy-pirate retry, so the
daemon sees a retry as coming from the same connection identity (it binds lease ownership and the
idempotency cache to that identity when CURVE is off, to the CURVE key when it is on). Request
ids start at 1 and only grow; 0 is never sent (the daemon does not deduplicate it), and an id a
caller sets by hand is skipped by the counter. A Lease's renewer socket (its own Client, own
routing id) shares the counter of the client it belongs to, so one client_id never uses one
request id twice.

Thread rule: a Client is used by one thread at a time (ZeroMQ sockets are not thread-safe);
a Lease renews on its own socket.
"""
import os
import random
import socket
import struct
import threading
import time

import numpy as np
import zmq

from ._proto import pb
from .errors import PnnError, ProtocolError, Unreachable, error_for
from .limits import input_limits, param_limits

PROTOCOL_MAJOR = 1
PROTOCOL_FRAME = b"PNND" + struct.pack(">H", PROTOCOL_MAJOR)
DEFAULT_ENDPOINT = "tcp://127.0.0.1:7700"
START_HINT = ("is pnnd running? start it with: pnnd --config configs/daemon/lab.yaml (or pass the "
              "endpoint / set PNN_ENDPOINT)")

_TRANSITIONS = {
    "configure": pb.LifecycleRequest.CONFIGURE, "activate": pb.LifecycleRequest.ACTIVATE,
    "deactivate": pb.LifecycleRequest.DEACTIVATE, "cleanup": pb.LifecycleRequest.CLEANUP,
    "recover": pb.LifecycleRequest.RECOVER,
}


def to_tensor(array, out):
    """Fills the pb.Tensor `out` from a 2-D array (a 1-D array is one sample), row-major float."""
    a = np.asarray(array, dtype=np.float32)
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2:
        raise ValueError("expected a batch of shape [batch, features], got shape %s" % (a.shape,))
    out.shape[:] = list(a.shape)
    out.data[:] = a.ravel().tolist()
    return out


def from_tensor(t):
    """A float32 array of the tensor's shape."""
    return np.asarray(t.data, dtype=np.float32).reshape(tuple(t.shape))


def read_key_file(path):
    """The (public, secret) Z85 keys of a file as `pnnd --keygen` prints it."""
    keys = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):  # whole-line comments: '#' is a Z85 digit
                continue
            key, sep, value = line.partition(":")
            if not sep or key.strip() not in ("public_key", "secret_key"):
                raise ValueError("%s:%d: expected 'public_key: \"...\"' or 'secret_key: \"...\"'"
                                 % (path, number))
            keys[key.strip()] = value.strip().strip("\"'")
    if "secret_key" not in keys:
        raise ValueError("%s: no secret_key (the file `pnnd --keygen` prints)" % path)
    public = zmq.curve_public(keys["secret_key"].encode()).decode()
    if keys.get("public_key", public) != public:
        raise ValueError("%s: public_key does not belong to secret_key" % path)
    return public, keys["secret_key"]


def new_routing_id():
    """16 random bytes for ZMQ_ROUTING_ID. libzmq reserves ids starting with a zero byte."""
    rid = bytearray(os.urandom(16))
    if rid[0] == 0:
        rid[0] = 1 + rid[1] % 255
    return bytes(rid)


def status_name(code):
    """The StatusCode name of a number; "STATUS_<n>" for a code this proto does not know."""
    try:
        return pb.StatusCode.Name(code)
    except ValueError:
        return "STATUS_%d" % code


class _RequestIds:
    """Request ids of one client_id: 1, 2, 3, ... never 0, never one already used (a caller's own
    id moves the counter past it). Thread-safe: a Lease's renewer thread shares it."""

    def __init__(self):
        self._next = 1
        self._lock = threading.Lock()

    def take(self):
        with self._lock:
            rid = self._next
            self._next += 1
            return rid

    def seen(self, rid):
        with self._lock:
            if rid >= self._next:
                self._next = rid + 1


class ForwardResult:
    """What a Forward returned: `y` (float32 [batch, num_outputs]), `recorded` (True: the call's
    record `record_id` is committed in the daemon's run store; False: recorded asynchronously,
    keyed by client_id and request_id, or not at all), `record_id` (0 unless recorded),
    `request_id`, `t_start_ns` / `t_end_ns` (device call, wall clock) and the raw
    pb.ForwardReply as `reply`."""

    __slots__ = ("y", "recorded", "record_id", "request_id", "t_start_ns", "t_end_ns", "reply")

    def __init__(self, y, reply, request_id):
        self.y = y
        self.reply = reply
        self.recorded = bool(reply.recorded)
        self.record_id = int(reply.record_id)
        self.request_id = int(request_id)
        self.t_start_ns, self.t_end_ns = int(reply.t_start_ns), int(reply.t_end_ns)

    def __repr__(self):
        return "ForwardResult(shape=%s, recorded=%r, record_id=%d, request_id=%d)" % (
            self.y.shape, self.recorded, self.record_id, self.request_id)


def _apply_curve(sock, curve):
    if curve:
        server_key, public, secret = curve
        sock.curve_serverkey = server_key.encode()
        sock.curve_publickey = public.encode()
        sock.curve_secretkey = secret.encode()


def _curve_keys(server_key, key_file):
    if not server_key and not key_file:
        return None
    if not (server_key and key_file):
        raise ValueError("CURVE needs both server_key (the daemon's public key) and key_file "
                         "(this client's key pair, listed in the daemon's security.clients)")
    public, secret = read_key_file(key_file)
    return (server_key, public, secret)


class Client:
    """Request/reply client of one daemon. Use as a context manager or call close()."""

    def __init__(self, endpoint=None, client_id=None, timeout_ms=5000, retries=1,
                 server_key=None, key_file=None, context=None, routing_id=None, _ids=None):
        self.endpoint = endpoint or os.environ.get("PNN_ENDPOINT") or DEFAULT_ENDPOINT
        self.client_id = client_id or "%s-%d-py-%08x" % (socket.gethostname(), os.getpid(),
                                                         random.getrandbits(32))
        self.timeout_ms = int(timeout_ms)
        self.retries = int(retries)
        self._server_key = server_key or os.environ.get("PNN_SERVER_KEY")
        self._key_file = key_file or os.environ.get("PNN_KEY_FILE")
        self._curve = _curve_keys(self._server_key, self._key_file)
        self._context = context or zmq.Context.instance()
        # One routing id for the life of this object: every reconnect reuses it.
        self.routing_id = bytes(routing_id) if routing_id is not None else new_routing_id()
        if not 1 <= len(self.routing_id) <= 255 or self.routing_id[0] == 0:
            raise ValueError("routing_id must be 1..255 bytes and not start with a zero byte")
        self._ids = _ids if _ids is not None else _RequestIds()
        self.last_forward = None  # ForwardResult of this client's last successful forward()
        self._socket = None
        self._tokens = {}  # device -> lease token (bytes), attached to that device's writes
        self._hello = None
        self._open()

    # ---- transport ----------------------------------------------------------------------

    def _open(self):
        if self._socket is not None:
            self._socket.close(linger=0)
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.linger = 0
        # A DEALER with no pipe to the daemon (a refused CURVE handshake, a reconnect) blocks in
        # send: bound that by the call's timeout.
        self._socket.sndtimeo = self.timeout_ms
        self._socket.setsockopt(zmq.ROUTING_ID, self.routing_id)  # the same on every reconnect
        _apply_curve(self._socket, self._curve)
        self._socket.connect(self.endpoint)

    def close(self):
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, request, retry=True):
        """Sends a pb.Request (client_id and request_id filled in if unset) and returns the OK
        pb.Reply. Raises a PnnError subclass for an error status (with the pb.Reply in
        `.reply`), Unreachable after the last timeout. request_id 0 means "pick the next one":
        0 itself is never sent."""
        if self._socket is None:
            raise ValueError("this Client is closed")
        if not request.client_id:
            request.client_id = self.client_id
        if not request.request_id:
            request.request_id = self._ids.take()
        else:
            self._ids.seen(request.request_id)
        body = request.SerializeToString()
        attempts = 1 + (self.retries if retry else 0)
        for attempt in range(attempts):
            if attempt > 0:
                self._open()  # lazy pirate: a fresh socket drops what the old one queued
            try:
                self._socket.send_multipart([PROTOCOL_FRAME, body])
            except zmq.Again:
                continue  # not taken within the timeout: an attempt without a reply
            reply = self._await(request.request_id)
            if reply is not None:
                if reply.status.code != pb.OK:
                    raise error_for(status_name(reply.status.code), reply.status.message,
                                    reply.status.origin, reply)
                return reply
        raise Unreachable("no reply from pnnd at %s within %d ms (%d attempt%s); %s"
                          % (self.endpoint, self.timeout_ms, attempts,
                             "" if attempts == 1 else "s", START_HINT))

    def _await(self, request_id):
        deadline = _now_ms() + self.timeout_ms
        while True:
            left = deadline - _now_ms()
            if left <= 0 or not self._socket.poll(left, zmq.POLLIN):
                return None
            frames = self._socket.recv_multipart()
            if len(frames) != 2 or frames[0][:4] != b"PNND" or len(frames[0]) != 6:
                raise ProtocolError("MALFORMED", "the reply from %s is not [PNND frame][Reply] "
                                    "(is that endpoint a pnnd?)" % self.endpoint)
            reply = pb.Reply()
            try:
                reply.ParseFromString(frames[1])
            except Exception:  # protobuf raises its DecodeError
                raise ProtocolError("MALFORMED", "the reply is not a valid pnn.v1.Reply") from None
            # Errors raised before the daemon could parse the request carry request_id 0.
            if reply.request_id == request_id or (reply.request_id == 0 and
                                                  reply.status.code != pb.OK):
                return reply
            # else: a late reply to an earlier attempt; drop it

    def _request(self, device=None, **fields):
        r = pb.Request(**fields)
        if device is not None and device in self._tokens:
            r.lease_token = self._tokens[device]
        return r

    # ---- RPCs ---------------------------------------------------------------------------

    def hello(self):
        """pb.HelloReply (versions, capabilities, instance id, role). Cached per client."""
        if self._hello is None:
            self._hello = self.call(pb.Request(hello=pb.HelloRequest())).hello
        return self._hello

    def telemetry_endpoint(self):
        """The PUB endpoint the daemon announces in Hello (wildcard host: this endpoint's)."""
        for cap in self.hello().capabilities:
            if cap.startswith("telemetry="):
                announced = cap[len("telemetry="):]
                host, _, port = announced[len("tcp://"):].rpartition(":")
                if announced.startswith("tcp://") and host in ("0.0.0.0", "*", "[::]"):
                    own_host = self.endpoint[len("tcp://"):].rpartition(":")[0]
                    return "tcp://%s:%s" % (own_host, port)
                return announced
        return self.endpoint.rpartition(":")[0] + ":7701"

    def list_devices(self):
        """[pb.DeviceInfo]"""
        return list(self.call(pb.Request(list_devices=pb.ListDevicesRequest())).list_devices.devices)

    def describe(self, device):
        """pb.DeviceInfo of one device (spec with units and hard limits, state, lease)."""
        return self.call(pb.Request(describe=pb.DescribeRequest(device=device))).describe.device

    def lifecycle(self, device, transition):
        """transition: "configure" | "activate" | "deactivate" | "cleanup" | "recover". Needs a lease."""
        if transition not in _TRANSITIONS:
            raise ValueError("transition must be one of %s, got %r" % (sorted(_TRANSITIONS),
                                                                     transition))
        r = self._request(device, lifecycle=pb.LifecycleRequest(
            device=device, transition=_TRANSITIONS[transition]))
        return self.call(r, retry=False).lifecycle.device

    def acquire(self, device, ttl_ms=0):
        """Leases the device; returns (token, ttl_ms). The token is then sent with this client's
        writes to that device."""
        reply = self.call(pb.Request(acquire=pb.AcquireRequest(device=device, ttl_ms=ttl_ms)))
        self._tokens[device] = reply.acquire.lease_token
        return reply.acquire.lease_token, reply.acquire.ttl_ms

    def use_lease(self, device, token):
        """Sends `token` (bytes, or the hex text pnnctl acquire prints) with writes to device."""
        self._tokens[device] = bytes.fromhex(token) if isinstance(token, str) else bytes(token)

    def renew(self, device):
        """Renews this client's lease; returns the TTL in ms."""
        return self.call(self._request(device, renew=pb.RenewRequest(device=device))).renew.ttl_ms

    def release(self, device):
        self.call(self._request(device, release=pb.ReleaseRequest(device=device)), retry=False)
        self._tokens.pop(device, None)

    def lease(self, device, ttl_ms=0, renew_every_s=None):
        """Context manager: acquires on enter, renews in the background, releases on exit.

            with client.lease("osc-a") as lease:
                y = client.forward("osc-a", x, theta)
        """
        return Lease(self, device, ttl_ms, renew_every_s)

    def forward(self, device, x, theta, settle_ms=0, return_reply=False, return_result=False):
        """Runs the batch x [batch, num_inputs] with parameters θ on the hardware. Needs a lease.

        Returns Y [batch, num_outputs] (float32); with return_reply, (Y, pb.ForwardReply); with
        return_result, a ForwardResult (y, recorded, record_id, request_id, times, reply).
        Whichever form, `client.last_forward` holds the ForwardResult of the last successful
        call, so `client.last_forward.recorded` / `.record_id` are there for callers that take
        only Y. Raises RecordFailed (store.forward_records: sync; the device ran but the record
        was not committed) or StoreFull (refused before the device ran) for run-store trouble."""
        if return_reply and return_result:
            raise ValueError("pass return_reply or return_result, not both")
        r = self._request(device)
        f = r.forward
        f.device = device
        to_tensor(x, f.x)
        f.theta.data[:] = np.asarray(theta, dtype=np.float64).ravel().tolist()
        f.settle_ms = settle_ms
        full = self.call(r)
        reply = full.forward
        y = from_tensor(reply.y)
        self.last_forward = ForwardResult(y, reply, full.request_id)
        if return_result:
            return self.last_forward
        return (y, reply) if return_reply else y

    def twin_forward(self, device, x, theta):
        """The twin's prediction for (x, θ) (nominal, or calibrated)."""
        r = pb.Request()
        r.twin_forward.device = device
        to_tensor(x, r.twin_forward.x)
        r.twin_forward.theta.data[:] = np.asarray(theta, dtype=np.float64).ravel().tolist()
        return from_tensor(self.call(r).twin_forward.y)

    def twin_vjp(self, device, x, theta, y_bar):
        """The twin's vector-Jacobian product at (x, θ): returns (x̄ float32 [batch, inputs],
        θ̄ float64 [num_params])."""
        r = pb.Request()
        v = r.twin_vjp
        v.device = device
        to_tensor(x, v.x)
        v.theta.data[:] = np.asarray(theta, dtype=np.float64).ravel().tolist()
        to_tensor(y_bar, v.y_bar)
        reply = self.call(r).twin_vjp
        return from_tensor(reply.x_bar), np.asarray(reply.theta_bar.data, dtype=np.float64)

    def calibrate(self, device, probe=None, theta=None):
        """Fits the device's twin to measurements (needs a lease); returns pb.CalibrateReply."""
        r = self._request(device)
        r.calibrate.device = device
        if probe is not None:
            to_tensor(probe, r.calibrate.probe)
        if theta is not None:
            r.calibrate.theta.data[:] = np.asarray(theta, dtype=np.float64).ravel().tolist()
        return self.call(r, retry=False).calibrate

    # ---- learned twins (docs/learned-twins.md "In pnnd") ----------------------------------

    def fit_twin(self, device, family="grey-box", samples=0, repeats=0, batch=0, seed=0,
                 use=False, from_records=False, timeout_ms=30 * 60 * 1000, **options):
        """Measures the device (needs a lease) and fits a twin of `family` (grey-box, residual,
        mlp), stored in the daemon's run store; returns the pb.TwinCard (report_json: the report
        card). `options`: hidden=[64, 64], l2, max_iterations, adam_epochs, theta_fraction (0 or
        absent: the family's default). A fit takes seconds to minutes: the call waits up to
        `timeout_ms`."""
        r = self._request(device)
        r.fit_twin.CopyFrom(pb.FitTwinRequest(device=device, family=family, samples=samples,
                                              repeats=repeats, batch=batch, seed=seed, use=use,
                                              from_records=from_records, **options))
        saved, self.timeout_ms = self.timeout_ms, max(self.timeout_ms, timeout_ms)
        try:
            return self.call(r, retry=False).fit_twin.twin
        finally:
            self.timeout_ms = saved

    def list_twins(self, device="", limit=0):
        """The stored twins (pb.TwinCard, newest first); only the device's when named."""
        r = pb.Request(list_twins=pb.ListTwinsRequest(device=device, limit=limit))
        return list(self.call(r).list_twins.twins)

    def get_twin(self, twin_id):
        """One stored twin's pb.TwinCard; NotFound (UNKNOWN_TWIN) for an unknown id."""
        return self.call(pb.Request(get_twin=pb.GetTwinRequest(twin_id=twin_id))).get_twin.twin

    def use_twin(self, device, twin_id):
        """Makes a stored twin the device's twin (0: back to its datasheet twin); needs a lease.
        InvalidRequest (TWIN_MISMATCH) for a twin of another device. Returns pb.DeviceInfo."""
        r = self._request(device)
        r.use_twin.CopyFrom(pb.UseTwinRequest(device=device, twin_id=twin_id))
        return self.call(r, retry=False).use_twin.device

    def submit_job(self, config_yaml="", config_name="", resume_run_id=0):
        """Starts a training job (docs/config.md); returns (job_id, run_id)."""
        r = pb.Request(submit_job=pb.SubmitJobRequest(
            config_yaml=config_yaml, config_name=config_name, resume_run_id=resume_run_id))
        reply = self.call(r, retry=False).submit_job
        return reply.job_id, reply.run_id

    def job_status(self, job_id=0):
        """[pb.JobInfo]: one job, or every job of this daemon instance for job_id 0."""
        return list(self.call(pb.Request(job_status=pb.JobStatusRequest(job_id=job_id))).job_status.jobs)

    def cancel_job(self, job_id):
        """Asks the job to stop after its current batch; returns its pb.JobInfo. A job that had
        already ended raises JobFinished (nothing was cancelled; `e.job` is its final JobInfo)."""
        r = pb.Request(cancel_job=pb.CancelJobRequest(job_id=job_id))
        return self.call(r, retry=False).cancel_job.job

    def list_runs(self, limit=0):
        """[pb.RunInfo], newest first."""
        return list(self.call(pb.Request(list_runs=pb.ListRunsRequest(limit=limit))).list_runs.runs)

    def get_run(self, run_id):
        """(pb.RunInfo, [pb.EpochMetrics])"""
        reply = self.call(pb.Request(get_run=pb.GetRunRequest(run_id=run_id))).get_run
        return reply.run, list(reply.metrics)

    def snapshot(self):
        """pb.SnapshotReply: instance id, seq, every device and job (late-joiner sync)."""
        return self.call(pb.Request(snapshot=pb.SnapshotRequest())).snapshot

    def subscriber(self, topics=()):
        """A Subscriber on this daemon's telemetry endpoint."""
        return Subscriber(self.telemetry_endpoint(), topics, server_key=self._server_key,
                          key_file=self._key_file, context=self._context)

    def input_limits(self, device, float32=True):
        """(min, max) of the device's input range, float32-safe by default (pnn_client.limits)."""
        return input_limits(self.describe(device).spec, float32=float32)

    def param_limits(self, device, float32=False):
        """(lo, hi) arrays of θ's hard limits (float64; float32=True: the float32 limits)."""
        return param_limits(self.describe(device).spec, float32=float32)

    def _sibling(self):
        """A second client (own socket and routing id) speaking for the same client_id, sharing
        this client's request-id counter so the two never send the same request id."""
        return Client(self.endpoint, self.client_id, self.timeout_ms, self.retries,
                      self._server_key, self._key_file, self._context, _ids=self._ids)


class Lease:
    """A device lease that renews itself on a background thread (its own socket) every
    `renew_every_s` (default: a third of the TTL) and is released on exit. If a renewal fails
    (e.g. LEASE_EXPIRED), `error` holds the PnnError and renewing stops."""

    def __init__(self, client, device, ttl_ms=0, renew_every_s=None):
        self.client = client
        self.device = device
        self._ttl_ms = ttl_ms
        self._renew_every_s = renew_every_s
        self.token = None
        self.ttl_ms = 0
        self.renewals = 0
        self.error = None
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        self.token, self.ttl_ms = self.client.acquire(self.device, self._ttl_ms)
        period = self._renew_every_s or max(0.05, self.ttl_ms / 3000.0)
        self._thread = threading.Thread(target=self._renew_loop, args=(period,), daemon=True,
                                        name="pnn-lease-" + self.device)
        self._thread.start()
        return self

    def _renew_loop(self, period):
        renewer = self.client._sibling()
        renewer.use_lease(self.device, self.token)
        try:
            while not self._stop.wait(period):
                try:
                    renewer.renew(self.device)
                    self.renewals += 1
                except PnnError as e:
                    self.error = e
                    return
        finally:
            renewer.close()

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.error is None or self.error.code == "UNREACHABLE":
            try:
                self.client.release(self.device)
            except PnnError as e:
                if exc[0] is None:
                    raise
                self.error = self.error or e
        self.client._tokens.pop(self.device, None)
        return False


class TelemetryEvent:
    """One telemetry message: topic, the pb.Event, how many events were lost just before it
    (a gap in seq), and whether the daemon restarted (a new instance id) since the last one."""

    __slots__ = ("topic", "event", "lost", "restarted")

    def __init__(self, topic, event, lost, restarted):
        self.topic, self.event, self.lost, self.restarted = topic, event, lost, restarted

    def __repr__(self):
        return "TelemetryEvent(%r, seq=%d, lost=%d, restarted=%r)" % (
            self.topic, self.event.seq, self.lost, self.restarted)


class Subscriber:
    """SUB socket on the daemon's telemetry (topics hb, state/<device>, job/<id>, log/<level>).

    It subscribes to everything and filters by the topic prefixes here, because seq counts every
    topic: only the whole stream shows lost events. Late joiners: subscribe first, then call
    Client.snapshot() and drop events with seq <= snapshot.seq."""

    def __init__(self, endpoint, topics=(), server_key=None, key_file=None, context=None):
        self.topics = tuple(topics)
        self.instance_id = None
        self.last_seq = 0
        self.lost_total = 0
        self._lost = 0  # since the last event returned (events of unwanted topics included)
        self._restarted = False
        self._socket = (context or zmq.Context.instance()).socket(zmq.SUB)
        self._socket.linger = 0
        _apply_curve(self._socket, _curve_keys(server_key, key_file))
        self._socket.setsockopt(zmq.SUBSCRIBE, b"")
        self._socket.connect(endpoint)

    def next(self, timeout_ms=1000):
        """The next TelemetryEvent on a wanted topic, or None after timeout_ms."""
        deadline = _now_ms() + timeout_ms
        while True:
            left = deadline - _now_ms()
            if left <= 0 or not self._socket.poll(left, zmq.POLLIN):
                return None
            frames = self._socket.recv_multipart()
            if len(frames) != 2:
                raise ProtocolError("MALFORMED", "telemetry message has %d frames; expected 2"
                                    % len(frames))
            event = pb.Event()
            event.ParseFromString(frames[1])
            if self.instance_id is not None and event.instance_id != self.instance_id:
                self._restarted = True
            elif self.last_seq and event.seq > self.last_seq + 1:
                self._lost += event.seq - self.last_seq - 1
                self.lost_total += event.seq - self.last_seq - 1
            self.instance_id = event.instance_id
            self.last_seq = event.seq
            topic = frames[0].decode("utf-8", "replace")
            if not self.topics or any(topic.startswith(t) for t in self.topics):
                out = TelemetryEvent(topic, event, self._lost, self._restarted)
                self._lost, self._restarted = 0, False
                return out

    def close(self):
        self._socket.close(linger=0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _now_ms():
    return int(time.monotonic() * 1000)
