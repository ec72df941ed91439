#!/usr/bin/env bash
# The main job on simulated hardware, through the lab daemon: installs what is needed (Debian 12,
# as root), builds pnnd and pnnctl (Release), starts pnnd with the simulated devices of
# configs/daemon/lab.yaml, submits configs/jobs/oscillator-digits.yaml to it (PAT on two simulated
# coupled-oscillator devices), streams the progress, prints the result table and the plot's path,
# then stops pnnd with SIGTERM and checks that it exited cleanly.
#   usage: bash scripts/demo.sh [JOB.yaml]        (environment: PNN_DEMO_LAB = daemon config)
# The daemon-free equivalent: build/release/clients/pnnctl/pnnctl train JOB.yaml
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
job=${1:-configs/jobs/oscillator-digits.yaml}
lab=${PNN_DEMO_LAB:-configs/daemon/lab.yaml}
build=$root/build/release
bash "$root/scripts/setup.sh"
echo "== building pnnd and pnnctl (Release) =="
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target pnnd pnnctl -j"$(nproc)"
cd "$root"
# Self-contained: pnnd keeps its store and run directories in the checkout (runs/pnnd) instead
# of its default state directory (~/.local/state/pnn-hil, docs/daemon.md).
export PNN_STATE_DIR=${PNN_STATE_DIR:-$root/runs/pnnd}
mkdir -p runs/demo
out=runs/demo/pnnd.out
log=runs/demo/pnnd.log

echo "== starting pnnd --config $lab (log: $log) =="
"$build/daemon/pnnd" --config "$lab" >"$out" 2>"$log" &
pnnd_pid=$!
stop_pnnd() {
  if kill -0 "$pnnd_pid" 2>/dev/null; then
    kill -TERM "$pnnd_pid"
    wait "$pnnd_pid" || true
  fi
}
trap stop_pnnd EXIT
for _ in $(seq 1 600); do
  grep -q '^pnnd ready' "$out" && break
  if ! kill -0 "$pnnd_pid" 2>/dev/null; then
    echo "demo: pnnd exited before it was ready:" >&2
    cat "$log" >&2
    echo "demo: (another pnnd on the same ports? stop it, or set PNN_DEMO_LAB to a config with" \
         "other rpc.bind / telemetry.bind ports)" >&2
    exit 1
  fi
  sleep 0.1
done
grep -q '^pnnd ready' "$out" || { echo "demo: pnnd not ready after 60 s; see $log" >&2; exit 1; }
cat "$out"
rpc=$(sed -n 's/^pnnd ready rpc=\([^ ]*\).*/\1/p' "$out")
pnnctl=("$build/clients/pnnctl/pnnctl" --endpoint "$rpc")
"${pnnctl[@]}" devices

echo "== training: pnnctl train $job --remote =="
rc=0
"${pnnctl[@]}" train "$job" --remote || rc=$?

echo "== stopping pnnd (SIGTERM) =="
trap - EXIT
kill -TERM "$pnnd_pid"
pnnd_rc=0
wait "$pnnd_pid" || pnnd_rc=$?
if ((pnnd_rc != 0)); then
  echo "demo: pnnd exited with $pnnd_rc (expected 0); its log: $log" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
echo "pnnd stopped cleanly (exit 0). The run stays in its store ($PNN_STATE_DIR): start" \
     "PNN_STATE_DIR=$PNN_STATE_DIR pnnd --config $lab again" \
     "and list it with pnnctl runs"
exit "$rc"
