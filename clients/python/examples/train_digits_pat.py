#!/usr/bin/python3
"""Physics-aware training of a hybrid digital-physical network through pnnd, from PyTorch.

    digits 8x8 (64 pixels) -> Linear -> physical layer on a daemon device -> Linear -> 10 classes

The physical layer's forward pass runs on the device (simulated or real) with `Forward`; its
backward pass is the twin's vector-Jacobian product at the measured input (`TwinVjp`). The data
set is scikit-learn's digits CSV (package python3-sklearn), pixels scaled by 1/16, split mod4
(sample i is test iff i % 4 == 3). Prints loss and accuracy (measured on the hardware) per epoch.

    pnnd --config configs/daemon/lab.yaml &
    PYTHONPATH=clients/python /usr/bin/python3 clients/python/examples/train_digits_pat.py
"""
import argparse
import gzip
import sys
import time

import numpy as np
import torch
from torch import nn

import pnn_client
from pnn_client.torch import DaemonPhysicalLayer, project_parameters

DIGITS = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"


def load_digits(path=DIGITS):
    try:
        with gzip.open(path, "rt") as f:
            data = np.loadtxt(f, delimiter=",", dtype=np.float32)
    except OSError as e:
        sys.exit("cannot read the digits data set %s (%s): apt-get install python3-sklearn"
                 % (path, e))
    x, y = data[:, :64] / 16.0, data[:, 64].astype(np.int64)
    test = np.arange(len(x)) % 4 == 3
    return (x[~test], y[~test]), (x[test], y[test])


def accuracy(model, x, y, batch=512):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    model.train()
    return correct / len(x)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("--endpoint", default=None, help="pnnd RPC endpoint (default: PNN_ENDPOINT or "
                   "tcp://127.0.0.1:7700)")
    p.add_argument("--device", default="osc-a", help="daemon device for the physical layer")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--max-train", type=int, default=0, help="keep the first N training samples")
    p.add_argument("--max-test", type=int, default=0, help="keep the first N test samples")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    (xtr, ytr), (xte, yte) = load_digits()
    if args.max_train:
        xtr, ytr = xtr[:args.max_train], ytr[:args.max_train]
    if args.max_test:
        xte, yte = xte[:args.max_test], yte[:args.max_test]
    xtr, ytr, xte, yte = map(torch.from_numpy, (xtr, ytr, xte, yte))

    client = pnn_client.Client(args.endpoint)
    try:
        physical = DaemonPhysicalLayer(client, args.device)
    except pnn_client.PnnError as e:
        sys.exit("pnnd: %s" % e)
    print("device %s (%s): %d inputs, %d outputs, %d parameters; endpoint %s"
          % (args.device, physical.serial, physical.num_inputs, physical.num_outputs,
             physical.theta.numel(), client.endpoint), flush=True)
    model = nn.Sequential(nn.Linear(64, physical.num_inputs), physical,
                          nn.Linear(physical.num_outputs, 10))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    with client.lease(args.device) as lease:
        for epoch in range(1, args.epochs + 1):
            t0 = time.monotonic()
            order = torch.randperm(len(xtr))
            total, correct, seen = 0.0, 0, 0
            for i in range(0, len(xtr), args.batch_size):
                idx = order[i:i + args.batch_size]
                logits = model(xtr[idx])
                loss = loss_fn(logits, ytr[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                project_parameters(model)
                total += loss.item() * len(idx)
                correct += (logits.argmax(1) == ytr[idx]).sum().item()
                seen += len(idx)
            test_acc = accuracy(model, xte, yte)
            print("epoch %3d/%d  loss %.4f  train acc %.4f  test acc %.4f  (%.2f s)"
                  % (epoch, args.epochs, total / seen, correct / seen, test_acc,
                     time.monotonic() - t0), flush=True)
            if lease.error is not None:
                sys.exit("lost the lease on %s: %s" % (args.device, lease.error))
    theta = physical.theta.detach()
    inside = bool(((theta >= physical.theta_min) & (theta <= physical.theta_max)).all())
    print("final test accuracy (measured on %s): %.4f; θ within the hard limits: %s"
          % (physical.serial, test_acc, inside), flush=True)
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
