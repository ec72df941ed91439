"""Serves a Python instrument to pnnd over TCP as a board of the frame protocol 1.1.

One host at a time: a second connection while one is served gets an error_reply (busy) naming
the host being served, and is closed. A host that disconnects, even mid-frame, leaves the server
serving (the device goes to its safe state). stop(), SIGINT and SIGTERM put the device in its
safe state before the server returns. Every command is checked here too, whatever the host did:
sizes, finiteness and the hard limits of the spec (refused with the protocol's error_reply,
never applied), mirroring the C++ firmware emulator (drivers/sim/src/firmware_emulator.cpp).
"""
import select
import selectors
import signal
import socket
import threading

import numpy as np

from . import frames as fr
from .frames import MSG, DeviceError, State
from .spec import Spec


class DeviceServer:
    def __init__(self, spec, forward, safe_state=None, host="127.0.0.1", port=0, log=None):
        if not isinstance(spec, Spec):
            raise TypeError("spec must be a pnn_device.Spec")
        problem = spec.problem()
        if problem:
            raise ValueError("spec: " + problem)
        self.spec = spec
        self._forward = forward
        self._safe_state = safe_state
        self._log = log or (lambda text: None)
        self._listener = socket.create_server((host, port))
        self._listener.setblocking(False)
        self.address = self._listener.getsockname()[:2]
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._listener, selectors.EVENT_READ)
        self._client = None
        self._peer = None
        self._decoder = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._sel.register(self._wake_r, selectors.EVENT_READ)
        self._stopping = False
        self._thread = None
        self.counters = dict(commands_ok=0, commands_failed=0, runs_completed=0,
                             limit_violations=0, refused_connections=0, disconnects=0)
        self._rejected = 0
        self._error_code = 0
        self._reset_state()

    @property
    def port(self):
        return self.address[1]

    # --- lifecycle -----------------------------------------------------------------------------

    def serve_forever(self):
        """Serves until stop() (or a signal handler calling it); ends in the safe state."""
        try:
            while not self._stopping:
                for key, _ in self._sel.select(timeout=0.5):
                    if key.fileobj is self._listener:
                        self._accept()
                    elif key.fileobj is self._wake_r:
                        self._wake_r.recv(64)
                    elif key.fileobj is self._client:
                        self._read()
        finally:
            self._drop_client("server stopping")
            self._go_safe()
            self._sel.close()
            self._listener.close()
            self._wake_r.close()
            self._wake_w.close()

    def start(self):
        """serve_forever on a daemon thread (for tests and notebooks); returns self."""
        self._thread = threading.Thread(target=self.serve_forever, name="pnn_device", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stopping = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(10)

    # --- connections ---------------------------------------------------------------------------

    def _accept(self):
        try:
            conn, peer = self._listener.accept()
        except BlockingIOError:
            return
        if self._client is not None and not self._client_gone():
            # One host at a time: say so, then close.
            self.counters["refused_connections"] += 1
            msg = fr.encode_message(MSG.ERROR_REPLY, 0, code=DeviceError.BUSY,
                                    message="busy: this device is served to %s:%d; one host at "
                                            "a time" % self._peer)
            try:
                conn.sendall(msg)
            except OSError:
                pass
            conn.close()
            return
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._client, self._peer = conn, peer
        self._decoder = fr.FrameDecoder(max_payload=self.spec.max_frame_payload())
        self._sel.register(conn, selectors.EVENT_READ)
        self._log("host %s:%d connected" % peer)

    def _client_gone(self):
        """The served host closed its end (its FIN is queued): handle what it sent, then drop it."""
        r, _, _ = select.select([self._client], [], [], 0.2)
        if r:
            self._read()
        return self._client is None

    def _drop_client(self, why):
        if self._client is None:
            return
        self._sel.unregister(self._client)
        self._client.close()
        self._client = None
        if self._decoder is not None and self._decoder.buf:
            self._decoder.flush()  # a frame cut off by the disconnect
        self._rejected += self._decoder.errors() if self._decoder else 0
        self._decoder = None
        self.counters["disconnects"] += 1
        self._log("host disconnected (%s); device to its safe state" % why)
        self._go_safe()

    def _read(self):
        try:
            data = self._client.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            return self._drop_client(str(e))
        if not data:
            return self._drop_client("end of stream")
        self._decoder.feed(data)
        out = []
        while True:
            frame = self._decoder.next()
            if frame is None:
                break
            msg_type, fields = self._execute(frame)
            if msg_type == MSG.ERROR_REPLY:
                self.counters["commands_failed"] += 1
            else:
                self.counters["commands_ok"] += 1
            out.append(fr.encode_message(msg_type, frame.seq, **fields))
        if out:
            try:
                self._client.settimeout(30)  # a host that stops reading is dropped
                self._client.sendall(b"".join(out))
                self._client.setblocking(False)
            except OSError as e:
                self._drop_client(str(e))

    # --- the board -----------------------------------------------------------------------------

    def _reset_state(self):
        self.theta = self.spec.safe_theta()
        self.batch = None
        self.outputs = None
        self.state = State.IDLE

    def _go_safe(self):
        self._reset_state()
        if self._safe_state:
            try:
                self._safe_state()
            except Exception as e:  # the user's code: report, stay up
                self._log("safe_state raised: %r" % e)

    def _error(self, code, text):
        self._error_code = code
        return MSG.ERROR_REPLY, dict(code=code, message=text)

    def _ack(self, command):
        return MSG.ACK, dict(command=command)

    def _execute(self, frame):
        t = frame.type
        if t not in fr.COMMANDS:
            if t in fr.KNOWN_TYPES:
                return self._error(DeviceError.MALFORMED,
                                   "not a command a board accepts (replies go the other way)")
            return self._error(DeviceError.MALFORMED, "payload of unknown does not decode: "
                                                      "unknown message type 0x%02X" % t)
        try:
            f = fr.decode_payload(t, frame.payload)
        except fr.DecodeError as e:
            return self._error(DeviceError.MALFORMED, "payload of 0x%02X does not decode: %s"
                               % (t, e))
        s = self.spec
        if t == MSG.IDENTIFY:
            return MSG.IDENTIFY_REPLY, dict(serial=s.serial, model=s.model,
                                            firmware_version=s.firmware)
        if t == MSG.GET_CAPABILITIES:
            return MSG.CAPABILITIES_REPLY, s.capabilities()
        if t == MSG.DESCRIBE:
            return MSG.DESCRIBE_REPLY, s.description()
        if t == MSG.SET_PARAMETERS:
            theta = np.asarray(f["theta"], dtype=float)
            if len(theta) != s.num_params:
                return self._error(DeviceError.SHAPE, "expected %d parameters, got %d"
                                   % (s.num_params, len(theta)))
            lo, hi = s.param_min(), s.param_max()
            for i, v in enumerate(theta):
                if not np.isfinite(v):
                    self.counters["limit_violations"] += 1
                    return self._error(DeviceError.NON_FINITE,
                                       "parameter %s is not finite" % s.param_name(i))
                if v < lo[i] or v > hi[i]:
                    self.counters["limit_violations"] += 1
                    return self._error(DeviceError.OUT_OF_LIMITS,
                                       "parameter %s = %r outside [%r, %r]: refused"
                                       % (s.param_name(i), v, lo[i], hi[i]))
            self.theta = theta
            return self._ack(t)
        if t == MSG.LOAD_INPUT_BATCH:
            rows, cols = f["rows"], f["cols"]
            if cols != s.num_inputs or rows == 0 or rows > s.max_batch:
                return self._error(DeviceError.SHAPE, "batch %dx%d does not fit 1..%d x %d"
                                   % (rows, cols, s.max_batch, s.num_inputs))
            x = np.asarray(f["data"], dtype=float).reshape(rows, cols)
            if not np.isfinite(x).all():
                self.counters["limit_violations"] += 1
                return self._error(DeviceError.NON_FINITE, "an input is NaN or Inf: refused")
            if x.min() < s.input_min or x.max() > s.input_max:
                self.counters["limit_violations"] += 1
                return self._error(DeviceError.OUT_OF_LIMITS,
                                   "an input is outside the actuator range [%r, %r]: refused"
                                   % (s.input_min, s.input_max))
            self.batch, self.outputs, self.state = x, None, State.LOADED
            return self._ack(t)
        if t == MSG.RUN:
            if self.state != State.LOADED or self.batch is None:
                return self._error(DeviceError.NOT_LOADED, "no batch loaded")
            self.state = State.RUNNING
            try:
                y = np.asarray(self._forward(self.batch.copy(), self.theta.copy()), dtype=float)
            except Exception as e:
                self.state = State.LOADED
                return self._error(DeviceError.HARDWARE, "forward raised %r" % e)
            if y.shape != (self.batch.shape[0], s.num_outputs):
                self.state = State.LOADED
                return self._error(DeviceError.HARDWARE, "forward returned shape %s, the spec "
                                   "says (%d, %d)" % (y.shape, self.batch.shape[0], s.num_outputs))
            self.outputs, self.state = y, State.OUTPUTS_READY
            self.counters["runs_completed"] += 1
            return self._ack(t)
        if t == MSG.READ_OUTPUTS:
            if self.state != State.OUTPUTS_READY:
                return self._error(DeviceError.NO_OUTPUTS, "no outputs ready")
            rows, cols = self.outputs.shape
            return MSG.OUTPUTS_REPLY, dict(rows=rows, cols=cols, data=self.outputs.ravel())
        if t == MSG.GET_STATUS:
            c = self.counters
            rejected = self._rejected + (self._decoder.errors() if self._decoder else 0)
            return MSG.STATUS_REPLY, dict(
                state=self.state, health=0, error_code=self._error_code,
                commands_ok=c["commands_ok"], commands_failed=c["commands_failed"],
                frames_rejected=rejected, runs_completed=c["runs_completed"])
        if t == MSG.ABORT:
            self._go_safe()
            return self._ack(t)
        if t == MSG.SELF_TEST:
            return MSG.SELF_TEST_REPLY, dict(passed=True, text="pnn_device: ok")
        return self._error(DeviceError.UNSUPPORTED, "command 0x%02X not implemented" % t)


def serve(spec, forward, safe_state=None, port=7710, host="127.0.0.1", log=print, ready=None):
    """Serves `spec` with `forward(x, theta) -> y` (x: batch × inputs, y: batch × outputs, numpy)
    and `safe_state()` (drive the instrument to no drive) until SIGINT or SIGTERM, then leaves
    the device safe. `ready(server)` is called once it listens (e.g. to print the port)."""
    server = DeviceServer(spec, forward, safe_state, host=host, port=port, log=log)

    def on_signal(signum, _frame):
        server.stop()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if log:
            log("pnn_device: serving %s (%s) on tcp://%s:%d" %
                (spec.kind, spec.serial, server.address[0], server.port))
        if ready:
            ready(server)
        server.serve_forever()
        if log:
            log("pnn_device: stopped; the device is in its safe state")
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return server
