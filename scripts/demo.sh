#!/usr/bin/env bash
# The main job on simulated hardware: installs what is needed (Debian 12, as root), builds in
# Release, and trains a physical neural network with physics-aware training on two simulated
# coupled-oscillator devices. Prints progress per epoch and the final accuracies, writes the
# training plot and the checkpoint under runs/.
#   usage: bash scripts/demo.sh [CONFIG.yaml]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
config=${1:-$root/configs/oscillator-digits.yaml}
bash "$root/scripts/setup.sh"
echo "== building (Release) =="
bash "$root/scripts/build.sh" "$root/build/release"
echo "== training: pnnctl train $config =="
cd "$root"
"$root/build/release/clients/pnnctl/pnnctl" train "$config"
