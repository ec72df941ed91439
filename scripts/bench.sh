#!/usr/bin/env bash
# Runs benchmarks (Release build) and appends their JSON lines to runs/bench/results.jsonl, one
# line per configuration, each with the date and the machine load when it started. These are
# the numbers docs/benchmarks.md records. Benchmarks are not tests: nothing is asserted.
#   usage: bash scripts/bench.sh [NAME ...]     (default: every benchmark but the slow fmnist ones)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh" >/dev/null
bash "$root/scripts/build.sh" "$root/build/release" >/dev/null
pnnctl=$root/build/release/clients/pnnctl/pnnctl
names=("$@")
if ((${#names[@]} == 0)); then
  mapfile -t names < <("$pnnctl" bench --list | awk '{print $1}' | grep -v '^pat-oscillator-fmnist\(-14\)\?$')
fi
mkdir -p "$root/runs/bench"
out=$root/runs/bench/results.jsonl
cd "$root"
for name in "${names[@]}"; do
  load=$(cut -d' ' -f1 /proc/loadavg)
  echo "== $name (load $load)" >&2
  "$pnnctl" bench "$name" --json | while IFS= read -r line; do
    printf '{"date":"%s","load_before":%s,"result":%s}\n' "$(date -u +%FT%TZ)" "$load" "$line"
  done | tee -a "$out"
done
echo "results appended to $out" >&2
