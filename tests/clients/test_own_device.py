"""pnn_device, the Python board side of the frame protocol 1.1 (clients/python/pnn_device):
golden frames shared with the C++ codec, malformed frames (the C++ decoder's fault classes), the
board's own limit checks, connections, and end to end: the example device served to pnnd with
an address without kind=, `pnnctl devices`, and an SPSA job that ends SUCCEEDED above chance.
"""
import json
import math
import os
import socket
import struct
import subprocess
import sys
import time
import unittest

from pnnd_fixture import PYTHON, ROOT, Pnnd, pnnctl, scratch_dir

sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
sys.path.insert(0, os.path.join(ROOT, "tests", "data", "frames"))
import golden  # noqa: E402
import pnn_device  # noqa: E402
from pnn_device import frames as fr  # noqa: E402
from pnn_device.frames import MSG, DeviceError  # noqa: E402

FRAMES = os.path.join(ROOT, "tests", "data", "frames")


def small_spec(**kw):
    args = dict(kind="toy-gain", serial="PY-TEST-1", num_inputs=2, num_outputs=2,
                input_range=(-1.0, 1.0), input_unit="V", output_unit="V", max_batch=4,
                params=[pnn_device.Block("g", 2, -2.0, 2.0, unit="1")])
    args.update(kw)
    return pnn_device.Spec(**args)


def gain_forward(x, theta):
    return x * theta


class Link:
    """A host's side of a TCP connection to a DeviceServer, frame by frame."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.decoder = fr.FrameDecoder()
        self.seq = 100

    def send_raw(self, data):
        self.sock.sendall(data)

    def reply(self):
        while True:
            f = self.decoder.next()
            if f is not None:
                return f.type, f.seq, fr.decode_payload(f.type, f.payload)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            self.decoder.feed(data)

    def ask(self, msg_type, **fields):
        self.seq += 1
        self.send_raw(fr.encode_message(msg_type, self.seq, **fields))
        t, seq, f = self.reply()
        assert seq == self.seq, (seq, self.seq)
        return t, f

    def close(self):
        self.sock.close()


class ServerCase(unittest.TestCase):
    spec = None

    def setUp(self):
        self.safe_calls = 0

        def safe():
            self.safe_calls += 1

        self.server = pnn_device.DeviceServer(self.spec or small_spec(), gain_forward, safe).start()
        self.addCleanup(self.server.stop)
        self.link = Link(self.server.port)
        self.addCleanup(self.link.close)

    def assert_alive(self):
        t, f = self.link.ask(MSG.IDENTIFY)
        self.assertEqual(t, MSG.IDENTIFY_REPLY)
        self.assertEqual(f["serial"], "PY-TEST-1")


class GoldenFrames(unittest.TestCase):
    def test_python_encodes_every_golden_frame_byte_for_byte(self):
        for name in golden.GOLDEN:
            with self.subTest(name):
                with open(os.path.join(FRAMES, name + ".hex")) as f:
                    self.assertEqual(golden.hex_of(name), f.read().strip())

    def test_python_decodes_every_golden_frame_to_its_fields(self):
        for name, (t, seq, fields) in golden.GOLDEN.items():
            with self.subTest(name):
                with open(os.path.join(FRAMES, name + ".hex")) as f:
                    data = bytes.fromhex(f.read().strip())
                d = fr.FrameDecoder()
                d.feed(data)
                frame = d.next()
                self.assertIsNotNone(frame)
                self.assertEqual((frame.type, frame.seq), (t, seq))
                self.assertEqual(fr.decode_payload(t, frame.payload),
                                 dict(fields, **({"protocol_minor": 1} if t == MSG.DESCRIBE_REPLY
                                                 else {})))

    def test_crc32c_check_value(self):
        self.assertEqual(fr.crc32c(b"123456789"), 0xE3069283)

    def test_the_example_spec_is_what_describe_serves(self):
        s = small_spec()
        f = fr.decode_payload(MSG.DESCRIBE_REPLY,
                              fr.encode_payload(MSG.DESCRIBE_REPLY, **s.description()))
        self.assertEqual((f["num_inputs"], f["num_outputs"], f["num_params"]), (2, 2, 2))
        self.assertEqual(f["blocks"][0]["name"], "g")


class Codec(unittest.TestCase):
    """The stream decoder alone, with the C++ decoder's rules (frame_test.cpp)."""

    def test_a_frame_that_lost_a_byte_does_not_take_the_next_frame_with_it(self):
        a = fr.encode_message(MSG.SET_PARAMETERS, 1, theta=[1.0, 2.0])
        b = fr.encode_message(MSG.IDENTIFY, 2)
        d = fr.FrameDecoder()
        d.feed(a[:10] + a[11:] + b)
        frame = d.next()
        self.assertIsNotNone(frame)
        self.assertEqual((frame.type, frame.seq), (MSG.IDENTIFY, 2))
        self.assertIsNone(d.next())
        self.assertGreaterEqual(d.errors(), 1)

    def test_truncated_frames_are_counted_at_flush_and_chunks_of_any_size_decode(self):
        whole = fr.encode_message(MSG.LOAD_INPUT_BATCH, 3, rows=1, cols=2, data=[0.5, -0.5])
        d = fr.FrameDecoder()
        d.feed(whole[:-1])
        self.assertIsNone(d.next())
        d.flush()
        self.assertEqual(d.stats["truncated"], 1)
        for chunk in (1, 3, 7):
            d = fr.FrameDecoder()
            got = []
            for at in range(0, 2 * len(whole), chunk):
                d.feed((whole + whole)[at:at + chunk])
                f = d.next()
                while f is not None:
                    got.append(fr.decode_payload(f.type, f.payload))
                    f = d.next()
            self.assertEqual([g["data"] for g in got], [[0.5, -0.5]] * 2)

    def test_strict_payload_decoders(self):
        for t, payload, kind in [
                (MSG.ACK, b"\x42", "bad_value"), (MSG.ACK, b"\x05\x00", "trailing_bytes"),
                (MSG.SET_PARAMETERS, struct.pack("<I", 0xFFFFFFFF), "truncated"),
                (MSG.STATUS_REPLY, bytes([9, 0]) + bytes(36), "bad_value"),
                (MSG.DESCRIBE_REPLY, b"\x01\xff\xff", "truncated"), (0x42, b"", "unknown_message_type")]:
            with self.subTest(type=t):
                with self.assertRaises(fr.DecodeError) as e:
                    fr.decode_payload(t, payload)
                self.assertEqual(e.exception.kind, kind)


class MalformedFrames(ServerCase):
    """The C++ decoder's fault classes (tests/firmware_iface/frame_test.cpp), on the board side:
    each is counted, answered where a reply is due, and the server keeps serving."""

    def frame(self, msg_type=MSG.IDENTIFY, payload=b"", seq=7):
        return bytearray(fr.encode_frame(msg_type, seq, payload))

    def rejected(self):
        t, f = self.link.ask(MSG.GET_STATUS)
        self.assertEqual(t, MSG.STATUS_REPLY)
        return f["frames_rejected"]

    def test_bad_crc_header_version_reserved_oversize_are_dropped_and_counted(self):
        before = self.rejected()
        bad_crc = self.frame(MSG.SET_PARAMETERS, struct.pack("<Idd", 2, 0.5, 0.5))
        bad_crc[-1] ^= 0x01
        bad_header = self.frame()
        bad_header[9] ^= 0x40  # seq changed, header check not
        version = bytearray(fr.SYNC + struct.pack("<BBB3xII", 2, MSG.IDENTIFY, 0, 7, 0))
        version += struct.pack("<I", fr.crc32c(version))
        version += struct.pack("<I", fr.crc32c(b"", fr.crc32c(version[:16])))
        reserved = bytearray(fr.SYNC + struct.pack("<BBBBBBII", 1, MSG.IDENTIFY, 0, 0, 1, 0, 7, 0))
        reserved += struct.pack("<I", fr.crc32c(reserved))
        reserved += reserved[16:20]
        oversize = bytearray(fr.SYNC + struct.pack("<BBB3xII", 1, MSG.LOAD_INPUT_BATCH, 0, 7,
                                                   0x7FFFFFFF))
        oversize += struct.pack("<I", fr.crc32c(oversize))
        for bad in (bad_crc, bad_header, version, reserved, oversize, b"\x00garbage\xA5"):
            self.link.send_raw(bytes(bad))
        self.assert_alive()
        self.assertGreaterEqual(self.rejected() - before, 5)
        d = self.server._decoder.stats
        for key in ("crc_mismatch", "bad_header", "unsupported_version", "oversize"):
            self.assertGreaterEqual(d[key], 1, key)
        self.assertEqual(self.server.theta.tolist(), [0.0, 0.0])  # the damaged θ was not applied

    def test_unknown_command_reply_type_and_wrong_payload_sizes_get_malformed(self):
        cases = [(0x42, b""), (MSG.IDENTIFY_REPLY, b""), (MSG.IDENTIFY, b"\x00"),
                 (MSG.SET_PARAMETERS, struct.pack("<Id", 3, 1.0)),
                 (MSG.LOAD_INPUT_BATCH, struct.pack("<IId", 1, 2, 1.0)),
                 (MSG.LOAD_INPUT_BATCH, struct.pack("<II", 0xFFFFFFFF, 0xFFFFFFFF)),
                 (MSG.SET_PARAMETERS, struct.pack("<Iddd", 2, 1, 1, 1))]
        for seq, (t, payload) in enumerate(cases, start=1):
            with self.subTest(type=t, payload=payload.hex()):
                self.link.send_raw(fr.encode_frame(t, seq, payload))
                rt, rseq, f = self.link.reply()
                self.assertEqual((rt, rseq), (MSG.ERROR_REPLY, seq))
                self.assertEqual(f["code"], DeviceError.MALFORMED)
        self.assert_alive()

    def test_truncated_frame_then_disconnect_keeps_the_server_serving(self):
        whole = fr.encode_message(MSG.SET_PARAMETERS, 5, theta=[1.0, 1.0])
        self.link.send_raw(whole[:len(whole) // 2])
        self.link.close()
        time.sleep(0.2)
        self.link = Link(self.server.port)
        self.addCleanup(self.link.close)
        self.assert_alive()
        self.assertGreaterEqual(self.server.counters["disconnects"], 1)
        self.assertGreaterEqual(self.safe_calls, 1)
        self.assertEqual(self.server.theta.tolist(), [0.0, 0.0])

    def test_a_frame_split_into_single_bytes_is_decoded(self):
        for b in fr.encode_message(MSG.IDENTIFY, 9):
            self.link.send_raw(bytes([b]))
        t, seq, _ = self.link.reply()
        self.assertEqual((t, seq), (MSG.IDENTIFY_REPLY, 9))


class Limits(ServerCase):
    def test_out_of_limit_and_non_finite_theta_are_refused_and_not_applied(self):
        t, f = self.link.ask(MSG.SET_PARAMETERS, theta=[1.0, 2.5])
        self.assertEqual((t, f["code"]), (MSG.ERROR_REPLY, DeviceError.OUT_OF_LIMITS))
        self.assertIn("g[1]", f["message"])
        for bad in (math.nan, math.inf):
            t, f = self.link.ask(MSG.SET_PARAMETERS, theta=[bad, 0.0])
            self.assertEqual((t, f["code"]), (MSG.ERROR_REPLY, DeviceError.NON_FINITE))
        t, f = self.link.ask(MSG.SET_PARAMETERS, theta=[1.0])
        self.assertEqual(f["code"], DeviceError.SHAPE)
        self.assertEqual(self.server.theta.tolist(), [0.0, 0.0])
        self.assertEqual(self.server.counters["limit_violations"], 3)

    def test_inputs_outside_the_range_or_batch_are_refused(self):
        t, f = self.link.ask(MSG.LOAD_INPUT_BATCH, rows=1, cols=2, data=[0.5, 1.5])
        self.assertEqual(f["code"], DeviceError.OUT_OF_LIMITS)
        t, f = self.link.ask(MSG.LOAD_INPUT_BATCH, rows=1, cols=2, data=[0.5, math.nan])
        self.assertEqual(f["code"], DeviceError.NON_FINITE)
        t, f = self.link.ask(MSG.LOAD_INPUT_BATCH, rows=5, cols=2, data=[0.0] * 10)
        self.assertEqual(f["code"], DeviceError.SHAPE)
        t, f = self.link.ask(MSG.RUN)
        self.assertEqual(f["code"], DeviceError.NOT_LOADED)

    def test_a_full_forward_and_abort_to_the_safe_state(self):
        self.assertEqual(self.link.ask(MSG.SET_PARAMETERS, theta=[2.0, -1.0])[0], MSG.ACK)
        self.assertEqual(self.link.ask(MSG.LOAD_INPUT_BATCH, rows=2, cols=2,
                                       data=[0.5, 0.5, -1.0, 1.0])[0], MSG.ACK)
        t, f = self.link.ask(MSG.READ_OUTPUTS)
        self.assertEqual(f["code"], DeviceError.NO_OUTPUTS)
        self.assertEqual(self.link.ask(MSG.RUN)[0], MSG.ACK)
        t, f = self.link.ask(MSG.READ_OUTPUTS)
        self.assertEqual((t, f["rows"], f["cols"]), (MSG.OUTPUTS_REPLY, 2, 2))
        self.assertEqual(f["data"], [1.0, -0.5, -2.0, -1.0])
        t, f = self.link.ask(MSG.GET_STATUS)
        self.assertEqual((f["state"], f["runs_completed"]), (fr.State.OUTPUTS_READY, 1))
        self.assertEqual(self.link.ask(MSG.ABORT), (MSG.ACK, {"command": MSG.ABORT}))
        self.assertEqual(self.server.theta.tolist(), [0.0, 0.0])
        self.assertGreaterEqual(self.safe_calls, 1)

    def test_a_second_host_is_refused_while_one_is_served(self):
        other = Link(self.server.port)
        try:
            t, _, f = other.reply()
            self.assertEqual((t, f["code"]), (MSG.ERROR_REPLY, DeviceError.BUSY))
            self.assertIn("one host at a time", f["message"])
        finally:
            other.close()
        self.assert_alive()

    def test_a_spec_pnnd_would_refuse_never_serves(self):
        bad = [small_spec(max_batch=0), small_spec(input_range=(1.0, -1.0)),
               small_spec(input_unit="furlongs"),
               small_spec(params=[pnn_device.Block("g", 2, -math.inf, 1.0)])]
        for spec in bad:
            with self.assertRaises(ValueError):
                pnn_device.DeviceServer(spec, gain_forward)

    def test_sigint_stops_the_example_server_in_its_safe_state(self):
        with scratch_dir("own-sigint") as d:
            port_file = os.path.join(d, "port")
            proc = subprocess.Popen([PYTHON, os.path.join(ROOT, "clients/python/examples/own_device.py"),
                                     "--port", "0", "--port-file", port_file],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                for _ in range(200):
                    if os.path.exists(port_file) or proc.poll() is not None:
                        break
                    time.sleep(0.05)
                with open(port_file) as f:
                    link = Link(int(f.read()))
                self.assertEqual(link.ask(MSG.IDENTIFY)[1]["serial"], "TANH-MIX-01")
                proc.send_signal(2)
                out, _ = proc.communicate(timeout=20)
                link.close()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            self.assertEqual(proc.returncode, 0, out)
            self.assertIn("stopped; the device is in its safe state", out)

    def test_stop_leaves_the_device_safe(self):
        self.assertEqual(self.link.ask(MSG.SET_PARAMETERS, theta=[1.0, 1.0])[0], MSG.ACK)
        self.server.stop()
        self.assertEqual(self.server.theta.tolist(), [0.0, 0.0])
        self.assertGreaterEqual(self.safe_calls, 1)


DIGITS_JOB = """name: own-device
seed: 0
data:
  name: digits
  max_train: 512
  max_test: 256
devices:
  own: own
network:
  - physical: {device: own, twin: none}
  - slice: {first: 0, count: 10, gain: 4.0}
training:
  # SPSA's gains for θ in [-1, 1] and a loss of order 1 (docs/config.md, "spsa").
  method: {name: spsa, a: 2, c: 0.05}
  batch_size: 32
  epochs: 40
compare:
  in_silico: false
output:
  dir: %s
"""


class EndToEnd(unittest.TestCase):
    """The example device (clients/python/examples/own_device.py) behind pnnd."""

    @classmethod
    def setUpClass(cls):
        cls.dir = scratch_dir("own-device")
        cls.addClassCleanup(cls.dir.cleanup)
        port_file = os.path.join(cls.dir.name, "port")
        cls.device = subprocess.Popen(
            [PYTHON, os.path.join(ROOT, "clients/python/examples/own_device.py"), "--port", "0",
             "--port-file", port_file], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        cls.addClassCleanup(cls._stop_device)
        for _ in range(200):
            if os.path.exists(port_file) or cls.device.poll() is not None:
                break
            time.sleep(0.05)
        with open(port_file) as f:
            cls.port = int(f.read())
        cls.pnnd = Pnnd(cls.dir.name, devices={
            "own": ("tcp://127.0.0.1:%d" % cls.port, True)}).start()
        cls.addClassCleanup(cls.pnnd.stop)

    @classmethod
    def _stop_device(cls):
        if cls.device.poll() is None:
            cls.device.send_signal(2)  # SIGINT: the server leaves the device safe and exits
            cls.device.wait(20)

    def run_ok(self, *args, **kw):
        r = pnnctl(*args, endpoint=self.pnnd.rpc, **kw)
        self.assertEqual(r.returncode, 0, "pnnctl %s failed:\n%s\n%s" % (args, r.stdout, r.stderr))
        return r

    def test_1_devices_shows_the_described_sizes_and_no_twin(self):
        devices = {d["name"]: d for d in map(json.loads, self.run_ok("devices", "--json")
                                              .stdout.splitlines())}
        own = devices["own"]
        self.assertEqual(own["state"], "ACTIVE")
        self.assertEqual(own["spec"]["serial"], "TANH-MIX-01")
        self.assertEqual(own["spec"]["kind"], "tanh-mixer")
        self.assertEqual((own["spec"]["num_inputs"], own["spec"]["num_outputs"],
                          own["spec"]["num_params"], own["spec"]["max_batch"]), (64, 10, 650, 256))
        self.assertEqual([b["name"] for b in own["spec"]["params"]], ["W", "b"])
        self.assertEqual(own["spec"]["params"][1]["hard_max"], 0.5)
        self.assertTrue(own.get("no_twin"))
        table = self.run_ok("devices").stdout
        self.assertRegex(table, r"own\s+ACTIVE.*64→10\s+650 none")

    def test_2_an_spsa_job_trains_it_above_chance(self):
        job = os.path.join(self.dir.name, "own.yaml")
        with open(job, "w") as f:
            f.write(DIGITS_JOB % os.path.join(self.dir.name, "out"))
        r = self.run_ok("train", job, "--remote", "--json", timeout=600)
        summary = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")][-1]
        self.assertEqual(summary["state"], "SUCCEEDED")
        self.assertEqual(summary["devices"], ["TANH-MIX-01"])
        phase = summary["phases"][0]
        self.assertEqual(phase["phase"], "spsa")
        self.assertEqual(phase["acc_twin"], -1.0)  # no twin was ever evaluated
        acc = phase["acc_hardware"]
        print("own device, SPSA on digits: test accuracy %.3f" % acc, file=sys.stderr)
        self.assertGreater(acc, 0.3)  # chance is 0.1

    def test_3_a_pat_job_is_refused_for_want_of_a_twin(self):
        job = os.path.join(self.dir.name, "pat.yaml")
        with open(job, "w") as f:
            f.write((DIGITS_JOB % os.path.join(self.dir.name, "out-pat"))
                    .replace("method: {name: spsa, a: 2, c: 0.05}", "method: pat")
                    .replace("{device: own, twin: none}", "own"))
        r = pnnctl("train", job, "--remote", endpoint=self.pnnd.rpc)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no twin", r.stderr)

    def test_4_twin_rpcs_are_refused_naming_the_rules_that_work(self):
        import numpy as np
        import pnn_client
        c = pnn_client.Client(self.pnnd.rpc, timeout_ms=20000)
        try:
            with self.assertRaises(pnn_client.InvalidRequest) as e:
                c.twin_forward("own", np.zeros((1, 64), dtype=np.float32), np.zeros(650))
            self.assertIn("has no digital twin", str(e.exception))
            self.assertIn("spsa or mgd", str(e.exception))
        finally:
            c.close()


if __name__ == "__main__":
    unittest.main()
