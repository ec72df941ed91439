#!/usr/bin/python3
"""Your own instrument as a pnnd device: a hand-written nonlinear map served over TCP.

    /usr/bin/python3 clients/python/examples/own_device.py --port 7710

then in pnnd's config:  devices: {own: {address: "tcp://127.0.0.1:7710"}}  (no kind=: the
board describes itself). Replace `forward` and `safe_state` with calls into your instrument.

The "instrument" here: y_i = tanh(gain_i * (W x)_i + b_i) + crosstalk + readout noise, with a
per-channel gain mismatch and a small fixed crosstalk between neighbouring outputs, neither of
which the host knows about. θ = W (outputs × inputs, row-major) and b, with hard limits.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import pnn_device  # noqa: E402

N_IN, N_OUT = 64, 10  # 8×8 digits in, one score per class out

spec = pnn_device.Spec(
    kind="tanh-mixer", serial="TANH-MIX-01", model="hand-built tanh mixer", firmware="demo-1.0",
    num_inputs=N_IN, num_outputs=N_OUT, input_range=(-1.0, 1.0), input_unit="V",
    output_unit="V", output_noise_std=0.01, max_batch=256,
    params=[pnn_device.Block("W", N_OUT * N_IN, -1.0, 1.0, unit="1", description="mixing weights"),
            pnn_device.Block("b", N_OUT, -0.5, 0.5, unit="V", description="output offsets")])

# --- ~30 lines of "instrument code" -------------------------------------------------------
rng = np.random.default_rng(1234)
GAIN = 1.0 + 0.2 * rng.standard_normal(N_OUT)           # per-channel gain mismatch (hidden)
CROSSTALK = 0.05 * (np.roll(np.eye(N_OUT), 1, axis=1) +  # neighbouring outputs leak (hidden)
                    np.roll(np.eye(N_OUT), -1, axis=1))
NOISE = 0.01                                              # readout noise, V
drive_on = False


def forward(x, theta):
    """One measurement of a batch: x is rows × 64 volts, theta the 650 settings."""
    global drive_on
    drive_on = True
    p = spec.split(theta)
    W = p["W"].reshape(N_OUT, N_IN)
    clean = np.tanh(GAIN * (x @ W.T) + p["b"])
    y = clean + clean @ CROSSTALK
    return y + NOISE * rng.standard_normal(y.shape)


def safe_state():
    """Drive off: a real instrument would zero its DACs here."""
    global drive_on
    drive_on = False
# ------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=7710, help="TCP port (0: any free port)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port-file", help="write the port here once listening (for scripts)")
    args = ap.parse_args()

    def ready(server):
        if args.port_file:
            with open(args.port_file + ".tmp", "w") as f:
                f.write("%d\n" % server.port)
            os.replace(args.port_file + ".tmp", args.port_file)

    pnn_device.serve(spec, forward=forward, safe_state=safe_state, port=args.port,
                     host=args.host, ready=ready, log=lambda s: print(s, flush=True))


if __name__ == "__main__":
    main()
