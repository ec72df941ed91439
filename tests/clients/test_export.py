"""pnnctl runs export against a real pnnd: the files are read back with readers written here,
independent of the C++ writer: TFRecord framing with a bitwise CRC-32C and TensorBoard's Event /
Summary messages built from their field numbers with python3-protobuf's descriptor API; the
MLflow file store checked field by field with python3-yaml (the layout of MLflow's FileStore:
mlflow/store/tracking/file_store.py); the CSV with the csv module. ThousandsOfEpochs exports a
run with 5,002 epochs (a real run whose store gets 5,000 more metric rows while pnnd is stopped).
"""
import csv
import os
import sqlite3
import stat
import struct
import subprocess
import unittest
import uuid

import yaml
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from pnnd_fixture import Pnnd, free_port, pnnctl, scratch_dir
from test_pnnctl import TINY_JOB, DaemonCase, json_lines

# ---- independent readers ---------------------------------------------------------------------


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_tfrecords(path):
    """The records of a TFRecord file; raises AssertionError on a bad CRC or a torn record."""
    with open(path, "rb") as f:
        data = f.read()
    records, at = [], 0
    while at < len(data):
        assert len(data) - at >= 12, "torn record header at %d" % at
        header = data[at:at + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[at + 8:at + 12])
        assert length_crc == masked_crc32c(header), "length CRC mismatch at %d" % at
        body = data[at + 12:at + 12 + length]
        assert len(body) == length, "torn record at %d" % at
        (body_crc,) = struct.unpack("<I", data[at + 12 + length:at + 16 + length])
        assert body_crc == masked_crc32c(body), "data CRC mismatch at %d" % at
        records.append(body)
        at += 16 + length
    return records


def tensorboard_event_class():
    """TensorBoard's Event with the fields the export writes (event.proto / summary.proto)."""
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="pnn_check_event.proto", package="pnncheck",
                                             syntax="proto3")

    def field(msg, name, number, ftype, type_name=None, repeated=False):
        f = msg.field.add(name=name, number=number, type=ftype,
                          label=F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL)
        if type_name:
            f.type_name = type_name

    value = fdp.message_type.add(name="Value")
    field(value, "tag", 1, F.TYPE_STRING)
    field(value, "simple_value", 2, F.TYPE_FLOAT)
    summary = fdp.message_type.add(name="Summary")
    field(summary, "value", 1, F.TYPE_MESSAGE, ".pnncheck.Value", repeated=True)
    event = fdp.message_type.add(name="Event")
    field(event, "wall_time", 1, F.TYPE_DOUBLE)
    field(event, "step", 2, F.TYPE_INT64)
    field(event, "file_version", 3, F.TYPE_STRING)
    field(event, "summary", 5, F.TYPE_MESSAGE, ".pnncheck.Summary")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    desc = pool.FindMessageTypeByName("pnncheck.Event")
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


Event = tensorboard_event_class()


def read_events(path):
    events = []
    for record in read_tfrecords(path):
        e = Event()
        e.ParseFromString(record)
        events.append(e)
    return events


def float32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def expected_points(shown):
    """(tag, step, wall_time, value) of each epoch metric, by the documented rule: the time of
    a point is the run's start plus the durations of the epochs recorded up to it."""
    t = shown["run"]["started_ns"] / 1e9
    points = []
    for m in shown["metrics"]:
        t += m.get("seconds", 0.0)
        p = m["phase"] + "/"
        points.append((p + "train_loss", m["epoch"], t, m.get("train_loss", 0.0)))
        points.append((p + "train_accuracy", m["epoch"], t, m.get("train_accuracy", 0.0)))
        if m.get("test_accuracy", 0.0) >= 0:
            points.append((p + "test_accuracy", m["epoch"], t, m.get("test_accuracy", 0.0)))
        points.append((p + "epoch_seconds", m["epoch"], t, m.get("seconds", 0.0)))
    return points


# ---- tests -------------------------------------------------------------------------------------


class ExportCase(DaemonCase):
    @classmethod
    def train(cls, tag, epochs=2):
        path = os.path.join(cls.dir.name, tag + ".yaml")
        with open(path, "w") as f:
            f.write(TINY_JOB.format(tag=tag, epochs=epochs, max_train=96, device="osc",
                                    out=os.path.join(cls.dir.name, "local-" + tag)))
        r = pnnctl("train", path, "--remote", "--json", endpoint=cls.pnnd.rpc)
        assert r.returncode == 0, r.stderr
        return json_lines(r.stdout)[-1]["run_id"]

    def show(self, run_id):
        return json_lines(self.run_ok("runs", "show", str(run_id), "--json").stdout)[0]

    def check_tensorboard(self, tb_dir, run_id, shown):
        run_dir = os.path.join(tb_dir, "run-%d" % run_id)
        files = os.listdir(run_dir)
        self.assertEqual(len(files), 1, files)
        start_s = shown["run"]["started_ns"] // 10**9
        self.assertRegex(files[0], r"^events\.out\.tfevents\.%d\..+\.pnn-hil\.%d$" % (start_s, run_id))
        events = read_events(os.path.join(run_dir, files[0]))
        self.assertEqual(events[0].file_version, "brain.Event:2")
        scalars = [(e.summary.value[0].tag, e.step, e.wall_time, e.summary.value[0].simple_value)
                   for e in events[1:]]
        for e in events[1:]:
            self.assertEqual(len(e.summary.value), 1)
        expected = expected_points(shown)
        epoch_scalars = [s for s in scalars if not s[0].startswith("final/")]
        self.assertEqual(len(epoch_scalars), len(expected))
        for got, want in zip(epoch_scalars, expected):
            self.assertEqual(got[0], want[0])
            self.assertEqual(got[1], want[1])
            self.assertAlmostEqual(got[2], want[2], delta=1e-6)
            self.assertEqual(got[3], float32(want[3]))
        return scalars


class Export(ExportCase):
    devices = {"osc": ("sim://mechanical-oscillators?seed=1&n=4", True)}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.run_id = cls.train("export")

    def out(self, name):
        return os.path.join(self.dir.name, self.id().rsplit(".", 1)[1], name)

    def test_tensorboard_event_file_reads_back(self):
        shown = self.show(self.run_id)
        self.assertEqual(len(shown["metrics"]), 4)  # 2 epochs × (PAT, in-silico)
        tb = self.out("tb")
        r = self.run_ok("runs", "export", str(self.run_id), "--tensorboard", tb, "--json")
        report = json_lines(r.stdout)[0]
        self.assertTrue(report["tensorboard"].startswith(os.path.join(tb, "run-%d" % self.run_id)))
        scalars = self.check_tensorboard(tb, self.run_id, shown)
        tags = {s[0] for s in scalars}
        for tag in ["pat/train_loss", "pat/train_accuracy", "pat/test_accuracy",
                    "in-silico/train_loss", "final/acc_pat_reality"]:
            self.assertIn(tag, tags)
        final = {s[0]: s[3] for s in scalars if s[0].startswith("final/")}
        summary = shown["run"]["summary_json"]
        self.assertEqual(final["final/acc_pat_reality"], float32(summary["acc_pat_reality"]))

    def test_mlflow_file_store_field_by_field(self):
        shown = self.show(self.run_id)
        run = shown["run"]
        ml = self.out("mlruns")
        r = self.run_ok("runs", "export", str(self.run_id), "--mlflow", ml,
                        "--experiment", "lab bench")
        exp_id = str(int.from_bytes(
            uuid.uuid5(uuid.NAMESPACE_URL, "pnn-hil:experiment:lab bench").bytes[:8], "big")
            & 0x7FFFFFFFFFFFFFFF)
        run_uuid = uuid.uuid5(uuid.NAMESPACE_URL,
                              "pnn-hil:run:%d:%d" % (self.run_id, run["started_ns"])).hex
        run_dir = os.path.join(ml, exp_id, run_uuid)
        self.assertIn(run_dir, r.stdout)
        with open(os.path.join(ml, exp_id, "meta.yaml")) as f:
            exp = yaml.safe_load(f)
        self.assertEqual(set(exp), {"artifact_location", "creation_time", "experiment_id",
                                    "last_update_time", "lifecycle_stage", "name"})
        self.assertEqual(exp["experiment_id"], exp_id)
        self.assertEqual(exp["name"], "lab bench")
        self.assertEqual(exp["lifecycle_stage"], "active")
        self.assertEqual(exp["artifact_location"], "file://" + os.path.join(ml, exp_id))
        self.assertIsInstance(exp["creation_time"], int)
        with open(os.path.join(run_dir, "meta.yaml")) as f:
            meta = yaml.safe_load(f)
        # The keys MLflow's FileStore writes for a run (_make_persisted_run_info_dict).
        self.assertEqual(set(meta), {"artifact_uri", "deleted_time", "end_time", "entry_point_name",
                                     "experiment_id", "lifecycle_stage", "run_id", "run_name",
                                     "run_uuid", "source_name", "source_type", "source_version",
                                     "start_time", "status", "tags", "user_id"})
        self.assertEqual(meta["run_id"], run_uuid)
        self.assertEqual(meta["run_uuid"], run_uuid)
        self.assertEqual(meta["experiment_id"], exp_id)
        self.assertEqual(meta["run_name"], "tiny-export")
        self.assertEqual(meta["status"], 3)  # RunStatus.FINISHED
        self.assertEqual(meta["lifecycle_stage"], "active")
        self.assertEqual(meta["source_type"], 4)  # SourceType.LOCAL
        self.assertEqual(meta["start_time"], run["started_ns"] // 10**6)
        self.assertEqual(meta["end_time"], run["finished_ns"] // 10**6)
        self.assertEqual(meta["tags"], [])
        self.assertIsNone(meta["deleted_time"])
        self.assertEqual(meta["artifact_uri"], "file://" + os.path.join(run_dir, "artifacts"))
        self.assertTrue(os.path.isdir(os.path.join(run_dir, "artifacts")))

        # metrics/<key>: "<timestamp ms> <value> <step>" lines, as FileStore._get_metric_from_line
        # parses them.
        by_key = {}
        for tag, step, t, value in expected_points(shown):
            by_key.setdefault(tag, []).append((round(t * 1000), value, step))
        for key, want in by_key.items():
            with open(os.path.join(run_dir, "metrics", key)) as f:
                lines = f.read().splitlines()
            got = []
            for line in lines:
                ts, value, step = line.split(" ")
                got.append((int(ts), float(value), int(step)))
            self.assertEqual(len(got), len(want), key)
            for g, w in zip(got, want):
                self.assertAlmostEqual(g[0], w[0], delta=1)
                self.assertEqual(g[1], w[1])
                self.assertEqual(g[2], w[2])
        summary = run["summary_json"]
        with open(os.path.join(run_dir, "params", "dataset")) as f:
            self.assertEqual(f.read(), summary["dataset"])
        with open(os.path.join(run_dir, "params", "seed")) as f:
            self.assertEqual(f.read(), str(summary["seed"]))
        with open(os.path.join(run_dir, "params", "devices")) as f:
            self.assertEqual(f.read(), "SIM-OSC-1")
        tags = {}
        for name in os.listdir(os.path.join(run_dir, "tags")):
            with open(os.path.join(run_dir, "tags", name)) as f:
                tags[name] = f.read()
        self.assertEqual(tags["mlflow.runName"], "tiny-export")
        self.assertEqual(tags["mlflow.source.name"], "pnnd at " + self.pnnd.rpc)
        self.assertEqual(tags["pnn.run_id"], str(self.run_id))
        self.assertEqual(tags["pnn.state"], "SUCCEEDED")
        self.assertEqual(tags["pnn.device_serials"], "SIM-OSC-1")

    def test_csv_reads_back_with_the_csv_module(self):
        shown = self.show(self.run_id)
        path = self.out("run.csv")
        os.makedirs(os.path.dirname(path))
        self.run_ok("runs", "export", str(self.run_id), "--csv", path)
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            self.assertEqual(reader.fieldnames, ["phase", "epoch", "train_loss", "train_accuracy",
                                                 "test_accuracy", "seconds"])
            rows = list(reader)
        self.assertEqual(len(rows), len(shown["metrics"]))
        for row, m in zip(rows, shown["metrics"]):
            self.assertEqual(row["phase"], m["phase"])
            self.assertEqual(int(row["epoch"]), m["epoch"])
            self.assertEqual(float(row["train_loss"]), m.get("train_loss", 0.0))
            self.assertEqual(float(row["train_accuracy"]), m.get("train_accuracy", 0.0))
            test = m.get("test_accuracy", 0.0)
            if test < 0:
                self.assertEqual(row["test_accuracy"], "")  # -1: not measured
            else:
                self.assertEqual(float(row["test_accuracy"]), test)
            self.assertEqual(float(row["seconds"]), m.get("seconds", 0.0))

    def test_all_three_at_once_and_an_existing_export(self):
        tb, ml, path = self.out("tb"), self.out("mlruns"), self.out("run.csv")
        args = ["runs", "export", str(self.run_id), "--tensorboard", tb, "--mlflow", ml,
                "--csv", path]
        r = self.run_ok(*args)
        self.assertEqual(len(r.stdout.splitlines()), 3, r.stdout)
        with open(path) as f:
            first_csv = f.read()
        r = self.run_fails(2, *args)
        self.assertIn("earlier export of run %d" % self.run_id, r.stderr)
        self.assertIn("--overwrite", r.stderr)
        self.run_ok(*(args + ["--overwrite"]))
        # Replaced, not appended: one event file, each metric file as long as before.
        shown = self.show(self.run_id)
        self.check_tensorboard(tb, self.run_id, shown)
        exp_dirs = [d for d in os.listdir(ml) if os.path.isdir(os.path.join(ml, d))]
        self.assertEqual(len(exp_dirs), 1)
        runs = [d for d in os.listdir(os.path.join(ml, exp_dirs[0])) if d != "meta.yaml"]
        self.assertEqual(len(runs), 1, runs)
        with open(os.path.join(ml, exp_dirs[0], runs[0], "metrics", "pat", "train_loss")) as f:
            self.assertEqual(len(f.read().splitlines()), 2)
        with open(path) as f:
            self.assertEqual(f.read(), first_csv)

    def test_bad_input_names_the_problem_and_the_fix(self):
        r = self.run_fails(1, "runs", "export", "999999", "--csv", self.out("x.csv"))
        self.assertIn("UNKNOWN_RUN", r.stderr)
        self.assertIn("ListRuns", r.stderr)
        r = self.run_fails(2, "runs", "export", "seven", "--csv", self.out("x.csv"))
        self.assertIn("not a run id", r.stderr)
        r = self.run_fails(2, "runs", "export", str(self.run_id))
        self.assertIn("--tensorboard DIR", r.stderr)
        blocker = self.out("a-file")
        os.makedirs(os.path.dirname(blocker))
        with open(blocker, "w") as f:
            f.write("x")
        r = self.run_fails(2, "runs", "export", str(self.run_id), "--tensorboard",
                           os.path.join(blocker, "tb"))
        self.assertIn("is not a directory", r.stderr)
        r = self.run_fails(2, "runs", "export", str(self.run_id), "--mlflow", blocker)
        self.assertIn("not a directory", r.stderr)
        self.assertFalse(os.path.exists(self.out("x.csv")))

    @unittest.skipIf(os.geteuid() == 0, "root writes through directory permissions; the "
                     "not-a-directory case covers an unusable target")
    def test_a_read_only_directory_is_refused(self):
        ro = self.out("read-only")
        os.makedirs(ro)
        os.chmod(ro, stat.S_IRUSR | stat.S_IXUSR)
        self.addCleanup(os.chmod, ro, stat.S_IRWXU)
        r = self.run_fails(2, "runs", "export", str(self.run_id), "--tensorboard",
                           os.path.join(ro, "tb"))
        self.assertIn("cannot be written", r.stderr)

    def test_an_unreachable_daemon_is_exit_3(self):
        endpoint = "tcp://127.0.0.1:%d" % free_port()
        r = pnnctl("runs", "export", str(self.run_id), "--csv", self.out("x.csv"),
                   "--timeout-ms", "300", "--retries", "0", endpoint=endpoint)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("pnnd --config", r.stderr)


class ThousandsOfEpochs(ExportCase):
    """A run with 5,002 epochs: a real 2-epoch run, then 5,000 more PAT metric rows added to its
    store while pnnd is stopped (the schema's own table), served again by a restarted pnnd."""
    devices = {"osc": ("sim://mechanical-oscillators?seed=1&n=4", True)}
    extra = 5000

    def test_export_of_5000_epochs_reads_back(self):
        run_id = self.train("long")
        self.pnnd.stop()
        db = sqlite3.connect(os.path.join(self.dir.name, "store", "pnnd.sqlite"))
        with db:
            db.executemany(
                "INSERT INTO metrics (run_id, phase, epoch, train_loss, train_accuracy, "
                "test_accuracy, seconds) VALUES (?, 'pat', ?, ?, ?, ?, ?)",
                [(run_id, 3 + k, 1.0 / (3 + k), 0.5 + k / 20000.0,
                  -1.0 if k % 3 else 0.4 + k / 20000.0, 0.01) for k in range(self.extra)])
        db.close()
        type(self).pnnd = Pnnd(self.dir.name, devices=self.devices).start()
        self.addCleanup(self.pnnd.stop)
        shown = self.show(run_id)
        self.assertEqual(len(shown["metrics"]), 4 + self.extra)
        tb, ml = os.path.join(self.dir.name, "tb"), os.path.join(self.dir.name, "mlruns")
        path = os.path.join(self.dir.name, "long.csv")
        r = self.run_ok("runs", "export", str(run_id), "--tensorboard", tb, "--mlflow", ml,
                        "--csv", path, "--json")
        report = json_lines(r.stdout)[0]
        self.assertEqual(report["epochs"], 4 + self.extra)
        scalars = self.check_tensorboard(tb, run_id, shown)
        self.assertGreater(len(scalars), 3 * self.extra)
        run_dir = report["mlflow"]
        with open(os.path.join(run_dir, "metrics", "pat", "train_loss")) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 2 + self.extra)
        self.assertEqual(lines[-1].split(" ")[1:], [repr(1.0 / (2 + self.extra)), str(2 + self.extra)])
        measured = [m for m in shown["metrics"]
                    if m["phase"] == "pat" and m.get("test_accuracy", 0.0) >= 0]
        self.assertGreater(len(measured), self.extra // 3)
        with open(os.path.join(run_dir, "metrics", "pat", "test_accuracy")) as f:
            self.assertEqual(len(f.read().splitlines()), len(measured))
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), 4 + self.extra)
        self.assertEqual(rows[-1]["epoch"], str(2 + self.extra))
        self.assertEqual(rows[-1]["test_accuracy"], "")  # k = 4999: not measured
        self.assertEqual(float(rows[-2]["test_accuracy"]), 0.4 + 4998 / 20000.0)


if __name__ == "__main__":
    unittest.main()
