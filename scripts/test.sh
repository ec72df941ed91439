#!/usr/bin/env bash
# The whole test suite: installs what is needed (Debian 12, as root), builds and runs every test
# in Release, then again under AddressSanitizer + UndefinedBehaviorSanitizer, then the fuzz
# targets for a bounded time.
#   usage: bash scripts/test.sh            (environment: PNN_FUZZ_SECONDS, default 60; 0 skips)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh" --test
jobs=$(nproc)

echo "== Release build + tests =="
bash "$root/scripts/build.sh" "$root/build/release"
(cd "$root/build/release" && ctest -j"$jobs" --output-on-failure --timeout 600)

echo "== ASan + UBSan build + tests =="
cmake -S "$root" -B "$root/build/asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPNN_SANITIZE=ON >/dev/null
# Everything, not only pnn_tests: the end-to-end tests run pnnd, pnnctl, pnn-siminst and the
# emulated-USB test binary, and they should run instrumented too.
cmake --build "$root/build/asan" -j"$jobs"
(cd "$root/build/asan" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
   ctest -j"$jobs" --output-on-failure --timeout 900)

fuzz_seconds=${PNN_FUZZ_SECONDS:-60}
if [[ -x "$root/fuzz/run.sh" || -f "$root/fuzz/run.sh" ]] && (( fuzz_seconds > 0 )); then
  echo "== fuzz targets (${fuzz_seconds} s in total) =="
  bash "$root/fuzz/run.sh" "$fuzz_seconds"
fi
echo "== all tests passed =="
