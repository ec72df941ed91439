"""A real single-node Slurm runs an 8-trial sweep as one array job (docs/sweeps.md).

The script starts munged (socket in /run/munge, owned by munge), then slurmctld and slurmd with a
minimal slurm.conf it writes into a temporary directory (one node: this host; proctrack/linuxproc,
task/none, no cgroups; a licence setup-x:1), submits `pnnctl sweep PLAN --slurm` with one trial
that fails on purpose, waits for the array, and checks that status and merge give 7 results and
1 failure with its log path. It stops every daemon it started. Where Slurm cannot start (not
installed, not root, a daemon does not come up) it prints SKIP and the reason and exits 77,
which CTest reports as skipped (SKIP_RETURN_CODE)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from sweep_fixture import PNNCTL, json_lines, write_sweep

SKIP = 77


class Skip(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, predicate, timeout_s, proc=None, log=None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.2)
    tail = ""
    if log and os.path.exists(log):
        with open(log, errors="replace") as f:
            tail = "".join(f.readlines()[-15:])
    raise Skip("%s did not come up within %d s%s\n%s" % (
        what, timeout_s, "" if proc is None or proc.poll() is None else
        " (it exited with %s)" % proc.returncode, tail))


class Cluster:
    """munged, slurmctld and slurmd for this host only; stop() ends what start() began."""

    def __init__(self, base):
        self.base = base
        self.procs = []
        self.munged_pid = None
        self.env = dict(os.environ, SLURM_CONF=os.path.join(base, "slurm.conf"))

    def munge_works(self):
        try:
            cred = subprocess.run(["munge", "-n"], capture_output=True, timeout=10)
            return cred.returncode == 0 and subprocess.run(
                ["unmunge"], input=cred.stdout, capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    def start_munge(self):
        if self.munge_works():
            return  # a munged is already serving /run/munge: use it, leave it running
        if not os.path.exists("/etc/munge/munge.key"):
            raise Skip("no /etc/munge/munge.key (install munge: bash scripts/setup.sh --test)")
        os.makedirs("/run/munge", exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        os.chmod("/run/munge", 0o755)
        pidfile = "/run/munge/munged.pid"
        r = subprocess.run(["runuser", "-u", "munge", "--", "munged", "--pid-file=" + pidfile],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise Skip("munged did not start: %s" % (r.stderr.strip() or r.stdout.strip()))
        wait_for("munged", self.munge_works, 15)
        with open(pidfile) as f:
            self.munged_pid = int(f.read().strip())

    def write_conf(self):
        host = socket.gethostname().split(".")[0]
        node = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, timeout=30)
        line = next((l for l in node.stdout.splitlines() if l.startswith("NodeName=")), None)
        if node.returncode != 0 or line is None:
            raise Skip("slurmd -C did not describe this host: %s" % node.stderr.strip())
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        cpus = fields.get("CPUs", "1")
        memory = fields.get("RealMemory", "1000")
        for d in ("state", "spool", "log"):
            os.makedirs(os.path.join(self.base, d), exist_ok=True)
        conf = f"""# written by tests/clients/sweep_slurm_test.py: one node, this host
ClusterName=pnn-sweep-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation={self.base}/state
SlurmdSpoolDir={self.base}/spool
SlurmctldPidFile={self.base}/slurmctld.pid
SlurmdPidFile={self.base}/slurmd.pid
SlurmctldLogFile={self.base}/log/slurmctld.log
SlurmdLogFile={self.base}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SchedulerType=sched/backfill
Licenses=setup-x:1
MinJobAge=300
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""
        with open(self.env["SLURM_CONF"], "w") as f:
            f.write(conf)
        return int(cpus)

    def start(self):
        if os.geteuid() != 0:
            raise Skip("needs root (slurmd runs jobs as their user; munged needs /run/munge)")
        for tool in ("munged", "munge", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo"):
            if shutil.which(tool) is None:
                raise Skip("%s is not installed (bash scripts/setup.sh --test installs slurm-wlm "
                           "and munge)" % tool)
        self.start_munge()
        self.cpus = self.write_conf()
        for daemon in ("slurmctld", "slurmd"):
            log = os.path.join(self.base, "log", daemon + ".out")
            with open(log, "w") as out:
                args = [daemon, "-D", "-f", self.env["SLURM_CONF"]] + (["-c"] if daemon == "slurmctld" else [])
                self.procs.append((daemon, subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                                            env=self.env, start_new_session=True), log))
            if daemon == "slurmctld":
                wait_for("slurmctld", lambda: self.run("sinfo", "-h").returncode == 0, 30,
                         self.procs[-1][1], os.path.join(self.base, "log", "slurmctld.log"))
        wait_for("the node", lambda: "idle" in self.run("sinfo", "-h", "-o", "%T").stdout, 60,
                 self.procs[-1][1], os.path.join(self.base, "log", "slurmd.log"))

    def run(self, *args, timeout=60):
        return subprocess.run(list(args), capture_output=True, text=True, env=self.env, timeout=timeout)

    def stop(self):
        for name, proc, _ in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs = []
        if self.munged_pid is not None:
            try:
                os.kill(self.munged_pid, signal.SIGTERM)
                for _ in range(100):
                    os.kill(self.munged_pid, 0)
                    time.sleep(0.1)
            except ProcessLookupError:
                pass
            self.munged_pid = None


def wait_for_queue(cluster, job_id, timeout_s=300):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        q = cluster.run("squeue", "-h", "-j", job_id)
        if q.returncode == 0 and not q.stdout.strip():
            return
        time.sleep(0.5)
    raise AssertionError("job %s did not finish in %d s:\n%s" % (job_id, timeout_s, cluster.run("squeue").stdout))


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def main():
    base = tempfile.mkdtemp(prefix="pnn-slurm-")
    os.chmod(base, 0o755)
    cluster = Cluster(base)
    try:
        try:
            cluster.start()
        except Skip as e:
            print("SKIP: a single-node Slurm cannot start here: %s" % e)
            return SKIP
        print("slurm up: %s" % cluster.run("sinfo").stdout.strip())
        plan, sweep_dir = write_sweep(base, grid_trials=7, failing=True)
        env = dict(cluster.env)
        env["TMPDIR"] = base
        r = subprocess.run([PNNCTL, "sweep", plan, "--dir", sweep_dir, "--slurm", "--max-parallel", "2",
                            "--json"], capture_output=True, text=True, env=env, timeout=120)
        check(r.returncode == 0, "sweep --slurm failed:\n%s\n%s" % (r.stdout, r.stderr))
        submitted = json_lines(r.stdout)[-1]
        check(len(submitted["jobs"]) == 1, "one array job expected: %s" % submitted)
        job_id = submitted["jobs"][0]["job_id"]
        with open(os.path.join(sweep_dir, "sweep.sbatch")) as f:
            script = f.read()
        check("#SBATCH --array=0-7%2" in script, "the array line:\n" + script)
        print("submitted array job %s" % job_id)
        # While it runs, status reports Slurm's states (pending or running) for unfinished trials.
        seen_slurm_states = set()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            q = cluster.run("squeue", "-h", "-j", job_id)
            st = subprocess.run([PNNCTL, "sweep", "status", sweep_dir, "--json"], capture_output=True,
                                text=True, env=env, timeout=60)
            for row in json_lines(st.stdout)[:-1]:
                if "slurm_state" in row:
                    seen_slurm_states.add(row["slurm_state"])
            if q.returncode == 0 and not q.stdout.strip():
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the array job did not finish in 300 s:\n%s" % cluster.run("squeue").stdout)
        print("Slurm states seen by sweep status: %s" % sorted(seen_slurm_states))
        check(seen_slurm_states & {"PENDING", "RUNNING"},
              "sweep status never reported a Slurm state while the array ran")
        st = subprocess.run([PNNCTL, "sweep", "status", sweep_dir, "--json"], capture_output=True,
                            text=True, env=env, timeout=60)
        rows = json_lines(st.stdout)
        states = [row["state"] for row in rows[:-1]]
        check(states.count("SUCCEEDED") == 7 and states.count("FAILED") == 1,
              "7 succeeded and 1 failed expected: %s" % rows)
        failed = next(row for row in rows[:-1] if row["state"] == "FAILED")
        check(failed["trial"] == 7, "trial 7 is the one that fails: %s" % failed)
        with open(failed["log"]) as f:
            log = f.read()
        check("disconnected" in log,
              "the failure's log names the reason: %s" % failed)
        check(os.path.basename(failed.get("slurm_log", "")).startswith("slurm-%s_7" % job_id),
              "the Slurm output file of the failed task: %s" % failed)
        m = json_lines(subprocess.run([PNNCTL, "sweep", "merge", sweep_dir, "--json"], capture_output=True,
                                      text=True, env=env, timeout=120).stdout)[-1]
        check(m["succeeded"] == 7 and m["failed"] == 1 and m["runs"] == 8 and m["added"] == 8,
              "merge: %s" % m)
        check(m["failures"][0]["log"] == failed["log"], "merge names the log: %s" % m)
        again = json_lines(subprocess.run([PNNCTL, "sweep", "merge", sweep_dir, "--json"], capture_output=True,
                                          text=True, env=env, timeout=120).stdout)[-1]
        check(again["added"] == 0 and again["unchanged"] == 8 and again["runs"] == 8, "merge again: %s" % again)
        print("merge: %d results, %d failure (log %s); merging again added %d" % (
            m["succeeded"], m["failed"], m["failures"][0]["log"], again["added"]))
        # The plan submitted again: only the failed trial goes to Slurm (its fault is in its
        # config, so it fails again, as a new attempt that replaces the old in the merge).
        with open(os.path.join(sweep_dir, "trials", "000", "status.json")) as f:
            first_status = f.read()
        r = subprocess.run([PNNCTL, "sweep", plan, "--dir", sweep_dir, "--slurm", "--json"],
                           capture_output=True, text=True, env=env, timeout=120)
        check(r.returncode == 0, "resubmission failed:\n%s\n%s" % (r.stdout, r.stderr))
        resubmitted = json_lines(r.stdout)[-1]["jobs"]
        check([j["array"] for j in resubmitted] == ["7"], "only trial 7 again: %s" % resubmitted)
        wait_for_queue(cluster, resubmitted[0]["job_id"])
        with open(os.path.join(sweep_dir, "trials", "000", "status.json")) as f:
            check(f.read() == first_status, "trial 0 was not run again")
        m = json_lines(subprocess.run([PNNCTL, "sweep", "merge", sweep_dir, "--json"], capture_output=True,
                                      text=True, env=env, timeout=120).stdout)[-1]
        check((m["added"], m["updated"], m["unchanged"], m["runs"], m["failed"]) == (0, 1, 7, 8, 1),
              "merge after the re-run: %s" % m)
        print("resubmitted: array %s (job %s); merge: 1 updated, 7 unchanged" % (
            resubmitted[0]["array"], resubmitted[0]["job_id"]))
        print("OK")
        return 0
    except AssertionError as e:
        print("FAIL: %s" % e)
        for name in ("slurmctld.log", "slurmd.log"):
            p = os.path.join(base, "log", name)
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    print("--- %s (tail)\n%s" % (name, "".join(f.readlines()[-20:])))
        return 1
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
