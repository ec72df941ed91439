"""The Python client against a real pnnd on 127.0.0.1: every RPC, the error mapping, the lease
context manager, the Subscriber, the lazy-pirate retry, the PyTorch PAT layer and the example."""
import json
import os
import subprocess
import threading
import time
import unittest

import numpy as np
import zmq

import pnn_client
from pnn_client import pb
from pnnd_fixture import PYTHON, ROOT, FakePublisher, Pnnd, free_port, scratch_dir

TINY_JOB = """name: py-tiny
data: {name: digits, max_train: 96, max_test: 32}
devices: {osc: osc}
network:
  - affine: 4
  - physical: osc
  - affine: 10
training: {epochs: 2, batch_size: 32}
compare: {in_silico: false}
"""


class DaemonCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = scratch_dir(cls.__name__)
        cls.addClassCleanup(cls.dir.cleanup)
        cls.pnnd = Pnnd(cls.dir.name).start()
        cls.addClassCleanup(cls.pnnd.stop)

    def setUp(self):
        self.client = pnn_client.Client(self.pnnd.rpc, timeout_ms=20000)
        self.addCleanup(self.client.close)


class ClientRpcs(DaemonCase):
    def test_hello_devices_describe(self):
        h = self.client.hello()
        self.assertEqual(h.instance_id, self.pnnd.instance)
        self.assertIn(pnn_client.PROTOCOL_MAJOR, h.protocol_majors)
        self.assertEqual(self.client.telemetry_endpoint(), self.pnnd.telemetry)
        names = {d.name for d in self.client.list_devices()}
        self.assertEqual(names, {"power", "osc", "cold"})
        d = self.client.describe("osc")
        self.assertEqual(d.spec.num_params, 20)
        self.assertEqual(d.state, pb.ACTIVE)

    def test_learned_twins(self):
        with self.client.lease("power"):
            card = self.client.fit_twin("power", family="grey-box", samples=256)
            self.assertEqual(card.family, "grey-box")
            report = json.loads(card.report_json)
            self.assertIn("jacobian_cosine", report)
            self.assertEqual(self.client.get_twin(card.twin_id).data_hash, card.data_hash)
            self.assertIn(card.twin_id, [t.twin_id for t in self.client.list_twins("power")])
            self.assertEqual(self.client.use_twin("power", card.twin_id).twin_id, card.twin_id)
            self.assertEqual(self.client.use_twin("power", 0).twin_id, 0)
        with self.client.lease("osc"):
            with self.assertRaises(pnn_client.InvalidRequest) as e:
                self.client.use_twin("osc", card.twin_id)
            self.assertEqual(e.exception.code, "TWIN_MISMATCH")
        with self.assertRaises(pnn_client.NotFound) as e:
            self.client.get_twin(10 ** 9)
        self.assertEqual(e.exception.code, "UNKNOWN_TWIN")

    def test_errors_carry_the_status_name(self):
        with self.assertRaises(pnn_client.NotFound) as e:
            self.client.describe("nosuch")
        self.assertEqual(e.exception.code, "UNKNOWN_DEVICE")
        with self.assertRaises(pnn_client.LeaseError) as e:
            self.client.forward("power", [[1.0]], [1.0])
        self.assertEqual(e.exception.code, "LEASE_REQUIRED")
        self.assertIn("Acquire", e.exception.message)
        with self.client.lease("power"):
            with self.assertRaises(pnn_client.InvalidRequest) as e:
                self.client.forward("power", [[1.0, 2.0]], [1.0])
            self.assertEqual(e.exception.code, "SHAPE_MISMATCH")
            with self.assertRaises(pnn_client.InvalidRequest) as e:
                self.client.forward("power", [[1.0]], [100.0])
            self.assertEqual(e.exception.code, "OUT_OF_LIMITS")
            other = pnn_client.Client(self.pnnd.rpc)
            with self.assertRaises(pnn_client.LeaseError) as e:
                other.acquire("power")
            self.assertEqual(e.exception.code, "LEASE_HELD")
            other.close()
        with self.assertRaises(pnn_client.NotFound) as e:
            self.client.cancel_job(987654)
        self.assertEqual(e.exception.code, "UNKNOWN_JOB")
        with self.assertRaises(pnn_client.DeviceError) as e:
            with self.client.lease("cold"):
                self.client.lifecycle("cold", "activate")  # UNCONFIGURED: configure first
        self.assertEqual(e.exception.code, "WRONG_STATE")
        with self.assertRaises(ValueError):
            self.client.lifecycle("cold", "explode")

    def test_unreachable_daemon(self):
        c = pnn_client.Client("tcp://127.0.0.1:%d" % free_port(), timeout_ms=200, retries=1)
        with self.assertRaises(pnn_client.Unreachable) as e:
            c.hello()
        self.assertEqual(e.exception.code, "UNREACHABLE")
        self.assertIn("is pnnd running?", str(e.exception))
        c.close()

    def test_forward_and_twin(self):
        x = np.array([[1.0], [2.0], [3.0]])
        with self.client.lease("power") as lease:
            y, reply = self.client.forward("power", x, [2.0], return_reply=True)
            self.assertIsNotNone(lease.token)
        np.testing.assert_allclose(y.ravel(), [2.0, 8.0, 18.0], rtol=1e-6)  # reality a = 2
        self.assertGreater(reply.t_end_ns, reply.t_start_ns)
        # The record fields, whichever form was asked for (async store: not yet recorded).
        last = self.client.last_forward
        self.assertIs(last.reply, reply)
        self.assertEqual((last.recorded, last.record_id), (reply.recorded, reply.record_id))
        self.assertFalse(last.recorded)
        self.assertGreater(last.request_id, 0)
        twin = self.client.twin_forward("power", x, [2.0])
        np.testing.assert_allclose(twin.ravel(), 2.01 * x.ravel() ** 2, rtol=1e-5)  # datasheet a
        x_bar, theta_bar = self.client.twin_vjp("power", x, [2.0], np.ones((3, 1)))
        np.testing.assert_allclose(x_bar.ravel(), 2.01 * 2 * x.ravel(), rtol=1e-5)
        np.testing.assert_allclose(theta_bar, [np.sum(2.01 * x ** 2 * np.log(x))], rtol=1e-5)

    def test_lifecycle_and_calibrate(self):
        with self.client.lease("cold"):
            states = [self.client.lifecycle("cold", t).state
                      for t in ("configure", "activate", "recover", "activate", "deactivate",
                                "cleanup")]
        self.assertEqual(states, [pb.INACTIVE, pb.ACTIVE, pb.INACTIVE, pb.ACTIVE, pb.INACTIVE,
                                  pb.UNCONFIGURED])
        with self.client.lease("osc"):
            c = self.client.calibrate("osc")
        self.assertLessEqual(c.mse_after, c.mse_before)
        self.assertTrue(self.client.describe("osc").twin_calibrated)

    def test_a_retried_forward_is_not_run_twice(self):
        with self.client.lease("osc"):
            r = pb.Request(request_id=4242)
            r.forward.device = "osc"
            pnn_client.to_tensor(np.zeros((2, 4)), r.forward.x)
            r.forward.theta.data[:] = [0.0] * 20
            r.lease_token = self.client._tokens["osc"]
            before = self.client.describe("osc").forward_calls
            first = self.client.call(r)
            again = self.client.call(r)  # same client_id and request_id: the recorded reply
            after = self.client.describe("osc").forward_calls
        self.assertEqual(after - before, 1)
        self.assertEqual(first.forward.t_start_ns, again.forward.t_start_ns)
        self.assertEqual(list(first.forward.y.data), list(again.forward.y.data))

    def test_lease_renews_in_the_background_and_is_released(self):
        with self.client.lease("power", ttl_ms=1500, renew_every_s=0.25) as lease:
            time.sleep(3.0)  # twice the TTL: only the renewals keep the lease
            y = self.client.forward("power", [[2.0]], [1.0])
            self.assertGreaterEqual(lease.renewals, 2)
            self.assertIsNone(lease.error)
        self.assertAlmostEqual(float(y[0, 0]), 4.0, places=5)
        self.assertEqual(self.client.describe("power").lease_holder, "")
        with self.assertRaises(pnn_client.LeaseError):  # the token went with the lease
            self.client.forward("power", [[2.0]], [1.0])

    def test_jobs_and_runs(self):
        job_id, run_id = self.client.submit_job(TINY_JOB, "py-tiny.yaml")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            info = self.client.job_status(job_id)[0]
            if info.state in (pb.SUCCEEDED, pb.FAILED, pb.CANCELLED, pb.ABORTED):
                break
            time.sleep(0.1)
        self.assertEqual(info.state, pb.SUCCEEDED, info.message)
        self.assertIn(job_id, [j.job_id for j in self.client.job_status()])
        run, metrics = self.client.get_run(run_id)
        self.assertEqual(run.name, "py-tiny")
        self.assertEqual([m.epoch for m in metrics], [1, 2])
        self.assertIn(run_id, [r.run_id for r in self.client.list_runs(10)])
        with self.assertRaises(pnn_client.InvalidRequest) as e:
            self.client.submit_job(TINY_JOB.replace("training:", "trainig:"), "bad.yaml")
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")
        with self.assertRaises(pnn_client.NotFound):
            self.client.get_run(999999)
        snap = self.client.snapshot()
        self.assertEqual(snap.instance_id, self.pnnd.instance)
        self.assertEqual(len(snap.devices), 3)

    def test_subscriber_sees_device_events(self):
        with self.client.subscriber(["state/power"]) as sub:
            got = None
            deadline = time.monotonic() + 60
            while got is None and time.monotonic() < deadline:
                # Repeat until the subscription is live (slow joiner), then take the event.
                with self.client.lease("power"):
                    pass
                got = sub.next(500)
            self.assertIsNotNone(got)
            self.assertEqual(got.topic, "state/power")
            self.assertEqual(got.event.device_state.name, "power")
            self.assertEqual(got.event.instance_id, self.pnnd.instance)


class SyncRecords(unittest.TestCase):
    """store.forward_records: sync: forward() surfaces recorded and record_id."""

    @classmethod
    def setUpClass(cls):
        cls.dir = scratch_dir(cls.__name__)
        cls.addClassCleanup(cls.dir.cleanup)
        cls.pnnd = Pnnd(cls.dir.name, extra_config={"store": {"forward_records": "sync"}}).start()
        cls.addClassCleanup(cls.pnnd.stop)

    def test_forward_result_carries_the_record(self):
        with pnn_client.Client(self.pnnd.rpc, timeout_ms=20000) as c:
            with c.lease("power"):
                result = c.forward("power", [[1.0], [2.0]], [2.0], return_result=True)
                y = c.forward("power", [[3.0]], [2.0])
                second = c.last_forward
                with self.assertRaises(ValueError):
                    c.forward("power", [[3.0]], [2.0], return_reply=True, return_result=True)
        self.assertIsInstance(result, pnn_client.ForwardResult)
        np.testing.assert_allclose(result.y.ravel(), [2.0, 8.0], rtol=1e-6)
        self.assertTrue(result.recorded)
        self.assertGreater(result.record_id, 0)
        self.assertEqual(result.record_id, result.reply.record_id)
        self.assertIs(second.y, y)
        self.assertTrue(second.recorded)
        self.assertGreater(second.record_id, result.record_id)
        self.assertGreater(second.request_id, result.request_id)


class OfflineUnits(unittest.TestCase):
    """Client logic that needs no daemon: error mapping, request ids, limits."""

    def test_new_status_codes_map_to_named_errors(self):
        from pnn_client.errors import error_for
        for code, cls, base in (("RECORD_FAILED", pnn_client.RecordFailed, pnn_client.StoreError),
                                ("STORE_FULL", pnn_client.StoreFull, pnn_client.StoreError),
                                ("JOB_FINISHED", pnn_client.JobFinished, pnn_client.PnnError),
                                ("LEASE_RELEASED", pnn_client.LeaseReleased,
                                 pnn_client.LeaseError)):
            self.assertGreater(pb.StatusCode.Value(code), 22)
            e = error_for(code, "m", "o")
            self.assertIsInstance(e, cls)
            self.assertIsInstance(e, base)
            self.assertEqual((e.code, e.message, e.origin), (code, "m", "o"))
        reply = pb.Reply(status=pb.Status(code=pb.JOB_FINISHED, message="already SUCCEEDED"))
        reply.cancel_job.job.job_id = 3
        reply.cancel_job.job.state = pb.SUCCEEDED
        e = error_for("JOB_FINISHED", reply.status.message, "job 3", reply)
        self.assertEqual(e.job.state, pb.SUCCEEDED)
        self.assertIsNone(error_for("JOB_FINISHED", "x").job)
        self.assertEqual(pnn_client.status_name(pb.LEASE_RELEASED), "LEASE_RELEASED")
        self.assertEqual(pnn_client.status_name(999), "STATUS_999")  # a newer daemon's code

    def test_error_replies_carry_the_reply(self):
        router, port = _fake_router()
        seen = []

        def serve():
            if router.poll(10000):
                ident, frame, body = router.recv_multipart()
                req = pb.Request()
                req.ParseFromString(body)
                seen.append(req.request_id)
                reply = pb.Reply(request_id=req.request_id,
                                 status=pb.Status(code=pb.JOB_FINISHED, message="ended",
                                                  origin="job 5"))
                reply.cancel_job.job.job_id = 5
                reply.cancel_job.job.state = pb.FAILED
                router.send_multipart([ident, frame, reply.SerializeToString()])

        t = threading.Thread(target=serve)
        t.start()
        c = pnn_client.Client("tcp://127.0.0.1:%d" % port, timeout_ms=5000, retries=0)
        try:
            with self.assertRaises(pnn_client.JobFinished) as e:
                c.cancel_job(5)
        finally:
            t.join()
            c.close()
            router.close(linger=0)
        self.assertEqual(e.exception.job.state, pb.FAILED)
        self.assertEqual(e.exception.origin, "job 5")
        self.assertEqual(e.exception.reply.request_id, seen[0])

    def test_request_ids_start_at_1_and_skip_ids_set_by_hand(self):
        c = pnn_client.Client("tcp://127.0.0.1:%d" % free_port(), timeout_ms=50, retries=0)
        try:
            first = c._ids.take()
            self.assertEqual(first, 1)
            r = pb.Request(request_id=40, hello=pb.HelloRequest())
            with self.assertRaises(pnn_client.Unreachable):
                c.call(r)
            self.assertEqual(r.request_id, 40)
            self.assertEqual(c._ids.take(), 41)  # never reuses the id the caller chose
            sibling = c._sibling()
            self.assertNotEqual(sibling.routing_id, c.routing_id)
            self.assertEqual(sibling._ids.take(), 42)  # one counter per client_id
            sibling.close()
            z = pb.Request(hello=pb.HelloRequest())
            with self.assertRaises(pnn_client.Unreachable):
                c.call(z)
            self.assertEqual(z.request_id, 43)  # 0 means "the next one"; 0 is never sent
        finally:
            c.close()
        self.assertEqual(len(c.routing_id), 16)
        self.assertNotEqual(c.routing_id[0], 0)
        with self.assertRaises(ValueError):
            pnn_client.Client("tcp://127.0.0.1:1", routing_id=b"\0abc")

    def test_float32_limits_prefer_the_daemons_values(self):
        spec = pb.DeviceSpec(input_min=-np.pi, input_max=np.pi)
        spec.params.add(name="phase", count=2, hard_min=-np.pi, hard_max=np.pi)
        spec.params.add(name="gain", count=1, hard_min=0.0, hard_max=0.1)
        # No float32 fields (an older daemon): computed inside the doubles.
        lo, hi = pnn_client.input_limits(spec)
        self.assertGreaterEqual(lo, -np.pi)
        self.assertLessEqual(hi, np.pi)
        self.assertEqual(float(np.float32(hi)), hi)
        plo, phi = pnn_client.param_limits(spec, float32=True)
        self.assertEqual(plo.dtype, np.float32)
        self.assertTrue(np.all(plo.astype(np.float64) >= [-np.pi, -np.pi, 0.0]))
        self.assertTrue(np.all(phi.astype(np.float64) <= [np.pi, np.pi, 0.1]))
        dlo, dhi = pnn_client.param_limits(spec)
        np.testing.assert_array_equal(dhi, [np.pi, np.pi, 0.1])  # float64: the doubles, exact
        # The daemon's float32 values (minor 4) are used as they are.
        spec.input_min_f32, spec.input_max_f32 = -3.0, 3.0
        spec.params[0].hard_min_f32, spec.params[0].hard_max_f32 = -3.0, 3.0
        self.assertEqual(pnn_client.input_limits(spec), (-3.0, 3.0))
        plo, phi = pnn_client.param_limits(spec, float32=True)
        np.testing.assert_array_equal(plo[:2], [-3.0, -3.0])
        self.assertLessEqual(float(phi[2]), 0.1)  # block 2 has none: computed
        # A zero-width or outside pair is not used.
        spec.input_min_f32, spec.input_max_f32 = 0.0, 0.0
        self.assertNotEqual(pnn_client.input_limits(spec), (0.0, 0.0))
        spec.input_min_f32, spec.input_max_f32 = -4.0, 4.0
        self.assertLessEqual(pnn_client.input_limits(spec)[1], np.pi)
        x = pnn_client.clamp_inputs(spec, [[10.0, -10.0]])
        self.assertEqual(x.dtype, np.float32)
        self.assertTrue(np.all(np.abs(x.astype(np.float64)) <= np.pi))
        t = pnn_client.clamp_theta(spec, [9.0, -9.0, 9.0])
        np.testing.assert_array_equal(t, [np.pi, -np.pi, 0.1])


def _fake_router():
    router = zmq.Context.instance().socket(zmq.ROUTER)
    router.linger = 0
    return router, router.bind_to_random_port("tcp://127.0.0.1")


class SubscriberLogic(unittest.TestCase):
    def test_gaps_and_restarts_are_reported(self):
        # Instance A with seq 1..9, 13..21, ... then, from step 60 on, instance B from seq 1.
        def pattern(step):
            if step < 60:
                return "A", step + 1 + 3 * (step // 9)
            return "B", step - 59

        with FakePublisher(pattern) as pub:
            sub = pnn_client.Subscriber(pub.endpoint)
            events = []
            while len(events) < 200:
                e = sub.next(5000)
                self.assertIsNotNone(e)
                events.append(e)
                if e.event.instance_id == "B" and e.event.seq > 5:
                    break
            sub.close()
        gaps = [e for e in events if e.lost]
        restarts = [e for e in events if e.restarted]
        self.assertTrue(all(e.lost == 3 for e in gaps))
        self.assertTrue(gaps or events[0].event.instance_id == "B")
        self.assertEqual(len(restarts), 1 if events[0].event.instance_id == "A" else 0)
        for e in restarts:
            self.assertEqual(e.event.instance_id, "B")
            self.assertEqual(e.lost, 0)  # a new instance restarts seq: not a loss


class KeyFiles(unittest.TestCase):
    def test_key_files_as_pnnd_keygen_writes_them(self):
        # '#' is a Z85 digit: a key containing it must not be cut as a comment.
        for _ in range(200):
            public, secret = (k.decode() for k in zmq.curve_keypair())
            if "#" in secret:
                break
        with scratch_dir("keys") as d:
            path = os.path.join(d, "client.key")
            with open(path, "w") as f:
                f.write('# made by pnnd --keygen\npublic_key: "%s"\nsecret_key: "%s"\n'
                        % (public, secret))
            self.assertEqual(pnn_client.read_key_file(path), (public, secret))
            with open(path, "w") as f:
                f.write('public_key: "%s"\nsecret_key: "%s"\n' % (public[::-1], secret))
            with self.assertRaises(ValueError):
                pnn_client.read_key_file(path)
        with self.assertRaises(ValueError):  # a server key without a client key pair
            pnn_client.Client("tcp://127.0.0.1:1", server_key=public)


class LazyPirate(unittest.TestCase):
    def test_a_lost_reply_is_retried_with_the_same_request_id(self):
        ctx = zmq.Context.instance()
        router = ctx.socket(zmq.ROUTER)
        router.linger = 0
        port = router.bind_to_random_port("tcp://127.0.0.1")
        seen, idents = [], []

        def serve():
            # Ignores the first request (a lost reply), answers the second.
            while len(seen) < 2 and router.poll(10000):
                ident, frame, body = router.recv_multipart()
                req = pb.Request()
                req.ParseFromString(body)
                seen.append((req.client_id, req.request_id))
                idents.append(ident)
                if len(seen) == 2:
                    reply = pb.Reply(request_id=req.request_id)
                    reply.hello.server_version = "fake"
                    router.send_multipart([ident, frame, reply.SerializeToString()])

        t = threading.Thread(target=serve)
        t.start()
        c = pnn_client.Client("tcp://127.0.0.1:%d" % port, timeout_ms=300, retries=2)
        try:
            self.assertEqual(c.hello().server_version, "fake")
        finally:
            t.join()
            c.close()
            router.close(linger=0)
        self.assertEqual(len(seen), 2)
        self.assertEqual(seen[0], seen[1])  # same client_id and request_id on the retry
        self.assertNotEqual(seen[0][1], 0)
        # ...and the same routing id on the fresh socket: the daemon sees the same identity.
        self.assertEqual(idents[0], idents[1])
        self.assertEqual(idents[0], c.routing_id)
        self.assertEqual(len(idents[0]), 16)

    def test_non_idempotent_calls_are_sent_once(self):
        ctx = zmq.Context.instance()
        router = ctx.socket(zmq.ROUTER)
        router.linger = 0
        port = router.bind_to_random_port("tcp://127.0.0.1")
        c = pnn_client.Client("tcp://127.0.0.1:%d" % port, timeout_ms=200, retries=3)
        with self.assertRaises(pnn_client.Unreachable):
            c.submit_job("name: x", "x.yaml")
        count = 0
        while router.poll(200):
            router.recv_multipart()
            count += 1
        c.close()
        router.close(linger=0)
        self.assertEqual(count, 1)


class TorchLayer(DaemonCase):
    def setUp(self):
        super().setUp()
        import torch
        self.torch = torch
        from pnn_client.torch import DaemonPhysicalLayer, project_parameters
        self.Layer, self.project = DaemonPhysicalLayer, project_parameters

    def test_gradient_is_the_twin_vjp_at_the_measured_input(self):
        torch = self.torch
        torch.manual_seed(0)
        layer = self.Layer(self.client, "osc", theta_init=0.1 * torch.randn(20))
        x = (0.5 * torch.randn(8, 4)).requires_grad_()
        w = torch.randn(8, 4)
        with self.client.lease("osc"):
            y = layer(x)
            (y * w).sum().backward()
        x_bar, theta_bar = self.client.twin_vjp("osc", layer.last_input, layer.last_theta, w.numpy())
        np.testing.assert_allclose(layer.last_input, x.detach().numpy(), rtol=1e-6)
        np.testing.assert_allclose(x.grad.numpy(), x_bar, rtol=1e-6)
        np.testing.assert_allclose(layer.theta.grad.numpy(), theta_bar, rtol=1e-9)
        # The output is the measurement, not the twin's prediction (the sim-to-real gap).
        twin = self.client.twin_forward("osc", layer.last_input, layer.last_theta)
        self.assertGreater(float(np.abs(y.detach().numpy() - twin).max()), 1e-4)

    def test_output_is_measured_and_gradient_is_the_twins(self):
        torch = self.torch
        layer = self.Layer(self.client, "power", theta_init=[2.0])
        x = torch.tensor([[1.5], [2.0], [3.0]], requires_grad=True)
        with self.client.lease("power"):
            y = layer(x)
            y.sum().backward()
        xs = x.detach().numpy().ravel().astype(np.float64)
        np.testing.assert_allclose(y.detach().numpy().ravel(), 2.0 * xs ** 2, rtol=1e-6)  # reality
        np.testing.assert_allclose(x.grad.numpy().ravel(), 2.01 * 2 * xs, rtol=1e-5)  # twin
        np.testing.assert_allclose(layer.theta.grad.numpy(), [np.sum(2.01 * xs ** 2 * np.log(xs))],
                                   rtol=1e-5)

    def test_theta_stays_within_the_hard_limits(self):
        torch = self.torch
        layer = self.Layer(self.client, "power", theta_init=[5.0])  # limit [0, 3]
        self.assertEqual(float(layer.theta), 3.0)
        model = torch.nn.Sequential(layer)
        opt = torch.optim.SGD(model.parameters(), lr=1e3)
        x = torch.tensor([[2.0]])
        with self.client.lease("power"):
            for sign in (1.0, -1.0, 1.0):
                opt.zero_grad()
                (sign * model(x)).sum().backward()  # pushes θ far past a limit
                opt.step()
                self.project(model)
                self.assertGreaterEqual(float(layer.theta), 0.0)
                self.assertLessEqual(float(layer.theta), 3.0)
            # Even an unprojected θ is projected before it reaches the hardware.
            with torch.no_grad():
                layer.theta.fill_(-7.0)
            layer(x)
            self.assertEqual(float(layer.theta), 0.0)

    def test_inputs_are_clipped_to_the_actuator_range_with_zero_gradient(self):
        torch = self.torch
        layer = self.Layer(self.client, "osc")
        x = torch.tensor([[10.0, -10.0, 0.5, -0.5]], requires_grad=True)
        with self.client.lease("osc"):
            layer(x).sum().backward()
        self.assertLessEqual(float(np.abs(layer.last_input).max()), np.pi)
        self.assertEqual(x.grad[0, 0].item(), 0.0)
        self.assertEqual(x.grad[0, 1].item(), 0.0)
        self.assertNotEqual(x.grad[0, 2].item(), 0.0)

    def test_batches_above_max_batch_are_split(self):
        torch = self.torch
        layer = self.Layer(self.client, "power", theta_init=[1.5])
        x = torch.linspace(1.0, 4.0, 8).reshape(8, 1).requires_grad_()
        with self.client.lease("power"):
            whole = layer(x)
            whole.sum().backward()
            g_whole = x.grad.clone()
            x.grad = None
            before = self.client.describe("power").forward_calls
            layer.max_batch = 3
            split = layer(x)
            split.sum().backward()
            calls = self.client.describe("power").forward_calls - before
        self.assertEqual(calls, 3)
        np.testing.assert_allclose(split.detach().numpy(), whole.detach().numpy(), rtol=1e-6)
        np.testing.assert_allclose(x.grad.numpy(), g_whole.numpy(), rtol=1e-6)


class Example(DaemonCase):
    def test_train_digits_pat_runs_a_few_epochs(self):
        script = os.path.join(ROOT, "clients", "python", "examples", "train_digits_pat.py")
        env = dict(os.environ)
        r = subprocess.run([PYTHON, script, "--endpoint", self.pnnd.rpc, "--device", "osc",
                            "--epochs", "2", "--max-train", "256", "--max-test", "64"],
                           capture_output=True, text=True, env=env, timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        epochs = [l for l in r.stdout.splitlines() if l.startswith("epoch")]
        self.assertEqual(len(epochs), 2, r.stdout)
        losses = [float(l.split("loss")[1].split()[0]) for l in epochs]
        self.assertTrue(all(np.isfinite(losses)))
        self.assertIn("test acc", epochs[0])
        self.assertIn("within the hard limits: True", r.stdout)
        self.assertEqual(self.client.describe("osc").lease_holder, "")


if __name__ == "__main__":
    unittest.main()
