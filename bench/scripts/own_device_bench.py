#!/usr/bin/python3
"""The own-device-digits benchmark's instrument: a lab's own nonlinear setup served with
pnn_device, not one of the shipped kinds and with no C++ twin.

A bank of 16 saturable amplifiers: channel i is driven at x_i + θ_i (θ: per-channel offsets
within ±1 V), with a per-channel gain mismatch, a quadratic distortion, crosstalk from the
neighbouring channel and readout noise, none of which the host is told about:

    a_i = x_i + θ_i,  y_i = tanh(g_i a_i) + d a_i² + c tanh(g_{i+1} a_{i+1}) + noise

    /usr/bin/python3 bench/scripts/own_device_bench.py --port 0 --port-file PATH
"""
import argparse
import os
import sys

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "clients", "python"))
import pnn_device  # noqa: E402

N = 16
spec = pnn_device.Spec(
    kind="amplifier-bank", serial="AMP-BANK-16", model="16 saturable amplifiers", firmware="bench-1.0",
    num_inputs=N, num_outputs=N, input_range=(-1.0, 1.0), input_unit="V", output_unit="V",
    output_noise_std=0.01, max_batch=1024,
    params=[pnn_device.Block("offset", N, -1.0, 1.0, unit="V", description="per-channel offset")])

rng = np.random.default_rng(20261203)
GAIN = 1.5 * (1.0 + 0.25 * rng.standard_normal(N))  # hidden gain mismatch
DISTORTION = 0.15                                    # hidden quadratic term
CROSSTALK = 0.2                                      # hidden leak from the next channel
NOISE = 0.01


def forward(x, theta):
    a = x + theta[None, :]
    s = np.tanh(GAIN * a)
    return s + DISTORTION * a * a + CROSSTALK * np.roll(s, -1, axis=1) + NOISE * rng.standard_normal(s.shape)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args()

    def ready(server):
        with open(args.port_file + ".tmp", "w") as f:
            f.write("%d\n" % server.port)
        os.replace(args.port_file + ".tmp", args.port_file)

    pnn_device.serve(spec, forward=forward, safe_state=lambda: None, port=args.port,
                     host="127.0.0.1", ready=ready, log=lambda s: None)


if __name__ == "__main__":
    main()
