#!/usr/bin/env bash
# Builds the firmware_iface fuzz targets with clang++-14 + libFuzzer + ASan/UBSan (CMake,
# PNN_FUZZ=ON: fuzz/CMakeLists.txt) and runs each for its share of SECONDS_TOTAL (default 60).
# Exit status: 0 if every target ran clean; non-zero on a build failure, crash, leak, timeout or
# sanitizer report (artifacts land in $PNN_FUZZ_DIR/artifacts).
#
#   fuzz/run.sh [SECONDS_TOTAL]      build, then fuzz each target from the checked-in seeds
#   fuzz/run.sh --make-seeds         rewrite the generated seeds (fuzz/corpus/*/gen-*)
#   PNN_FUZZ_DIR=DIR (default: build/fuzz in this checkout; build output and the working
#                     corpora, kept between runs)
#
# Each target starts from two corpus folders: the working one in $PNN_FUZZ_DIR (new inputs go
# there) and the checked-in fuzz/corpus/<target>/ (valid messages and every input that once
# found a bug, named after its issue). libFuzzer runs every seed first, so a regression fails
# at once. On a crash the script prints the reproducer's path, its bytes and the replay command.
#   Needs: apt-get install -y clang-14 libclang-rt-14-dev
set -euo pipefail

make_seeds=0
if [[ ${1:-} == --make-seeds ]]; then make_seeds=1; shift; fi
total=${1:-60}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
out=${PNN_FUZZ_DIR:-$root/build/fuzz}
cxx=${PNN_FUZZ_CXX:-clang++-14}
targets=(frame_decoder scpi usbtmc)

if ! command -v "$cxx" >/dev/null; then
  echo "run.sh: $cxx not found; install it with: apt-get install -y clang-14 libclang-rt-14-dev" >&2
  exit 2
fi
if ! [[ $total =~ ^[0-9]+$ ]] || (( total < ${#targets[@]} )); then
  echo "run.sh: SECONDS_TOTAL must be an integer >= ${#targets[@]}, got '$total'" >&2
  exit 2
fi
share=$(( total / ${#targets[@]} ))

# CMake builds the targets (fuzz/CMakeLists.txt, PNN_FUZZ=ON) with clang in its own build tree.
build=$out/build
mkdir -p "$out/artifacts"
# A build tree configured from another checkout (PNN_FUZZ_DIR shared between clones) makes CMake
# refuse to configure; it holds nothing worth keeping, so it is rebuilt for this source tree.
if [[ -f $build/CMakeCache.txt ]]; then
  cached=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt")
  if [[ $cached != "$root" ]]; then
    echo "run.sh: $build was configured for $cached, not $root; rebuilding it" >&2
    rm -rf "$build"
  fi
fi
cmake -S "$root" -B "$build" -DPNN_FUZZ=ON -DCMAKE_CXX_COMPILER="$cxx" \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target frame_decoder_fuzz scpi_fuzz usbtmc_fuzz make_seeds
for t in "${targets[@]}"; do cp "$build/fuzz/${t}_fuzz" "$out/${t}_fuzz"; done
cp "$build/fuzz/make_seeds" "$out/make_seeds"
if (( make_seeds )); then
  "$out/make_seeds" "$here/corpus"
  echo "run.sh: seeds written under $here/corpus"
  exit 0
fi

status=0
summary=()
for t in "${targets[@]}"; do
  mkdir -p "$out/corpus/$t"
  seeds="$here/corpus/$t"
  if ! compgen -G "$seeds/*" >/dev/null; then
    echo "!! $t: no checked-in seeds in $seeds (regenerate: bash fuzz/run.sh --make-seeds)" >&2
    status=1
    continue
  fi
  echo "== $t: ${share}s, $(ls "$seeds" | wc -l) checked-in seeds"
  set +e
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$out/${t}_fuzz" -max_total_time="$share" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$out/artifacts/$t-" "$out/corpus/$t" "$seeds" \
    >"$out/$t.log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/$t.log" |
          grep -o '[0-9]*$' || true)
  summary+=("$t: rc=$rc execs=${execs:-?} corpus=$(ls "$out/corpus/$t" | wc -l)")
  if (( rc != 0 )); then
    status=1
    echo "!! $t failed (rc=$rc); log: $out/$t.log" >&2
    grep -E 'ERROR|invariant failed|runtime error|SUMMARY' "$out/$t.log" | head -20 >&2 || true
    repro=$(grep -o "Test unit written to [^ ]*" "$out/$t.log" | tail -1 | sed 's/.* to //')
    if [[ -n $repro && -f $repro ]]; then
      {
        echo "!! reproducer: $repro ($(stat -c %s "$repro") bytes)"
        echo "!!   hex: $(od -An -v -tx1 "$repro" | tr -d ' \n' | head -c 2000)"
        echo "!!   replay: $out/${t}_fuzz $repro"
        echo "!!   (the binary is rebuilt by: bash fuzz/run.sh 3; then replay as above)"
        echo "!!   keep it as a regression: cp $repro $seeds/issueN-<what> and add a unit test"
      } >&2
    fi
  fi
done
printf '%s\n' "${summary[@]}"
exit $status
