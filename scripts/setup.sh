#!/usr/bin/env bash
# Installs the Debian 12 packages pnn-hil needs to build and train; with --test also what the
# test suite needs (clang-14 + libFuzzer runtime for the fuzz targets; python3-torch for the
# Python client's PyTorch layer; umockdev for the emulated-USB tests).
# Idempotent; run as root.
# docs/dependencies.md says why each package is here.
#   usage: bash scripts/setup.sh [--test]
set -euo pipefail

packages=(
  # toolchain
  cmake g++ make pkg-config
  # libraries
  libeigen3-dev doctest-dev libyaml-cpp-dev libcli11-dev nlohmann-json3-dev zlib1g-dev
  # daemon and clients: RPC, API messages, run store
  libzmq3-dev cppzmq-dev libsodium-dev libprotobuf-dev protobuf-compiler libsqlite3-dev libboost-dev
  python3-zmq python3-protobuf python3-numpy
  # the Python client's lab registry (pnn_client.Lab); also the export test's YAML reader
  python3-yaml
  # installing the Python client as a package (pip with Debian's setuptools; docs/install.md)
  python3-pip python3-setuptools python3-wheel
  # USB instruments (usb:// raw bulk boards, usbtmc:// SCPI instruments)
  libusb-1.0-0-dev
  # data sets (read directly from the package's files; no Python at run time)
  python3-sklearn dataset-fashion-mnist
  # fetching the dashboard's chart library from the npm registry (scripts/vendor_uplot.sh)
  curl ca-certificates
)
if [[ ${1:-} == --test ]]; then
  # fuzzing; the Python client's PyTorch layer (tests/clients)
  packages+=(clang-14 libclang-rt-14-dev python3-torch)
  # emulated USB devices for the libusb transport tests (pnn_usb_tests)
  packages+=(libumockdev-dev umockdev)
  # the PyVISA test of the simulated SCPI instrument served over TCP (pnn-siminst)
  packages+=(python3-pyvisa python3-pyvisa-py)
  # the dashboard's browser test (tests/clients/test_dashboard.py): headless Chromium + WebDriver
  packages+=(chromium chromium-driver python3-selenium)
  # the sweep tests: a real single-node Slurm (tests/clients/sweep_slurm_test.py starts slurmctld,
  # slurmd and munged) and Optuna driving a sweep (clients/python/examples/optuna_sweep.py)
  packages+=(slurm-wlm munge python3-optuna)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing packages: ${missing[*]}" >&2
    echo "setup: run this script as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The dashboard's chart library, vendored into third_party/uplot (not committed; pinned version
# and checksum). Without network it is skipped with a warning, and the dashboard shows its data
# as tables instead of charts.
bash "$(dirname "$0")/vendor_uplot.sh" || echo "setup: warning: uPlot not vendored (see above); the dashboard will show tables, not charts" >&2
