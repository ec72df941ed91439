"""PyTorch layer for physics-aware training (PAT) through the daemon (Wright et al. 2022).

The forward pass runs in situ: `Forward` on the daemon's device, and the layer output *is* the
measurement. The backward pass runs in silico: `TwinVjp` of the device's digital twin, evaluated
at the measured layer input and θ of that forward call (the twin's own prediction is never used
for the loss). θ is an nn.Parameter kept inside the device's hard limits (from Describe): call
`project_parameters(model)` after each optimizer step; the layer also projects before every
forward, so the hardware is never asked for an out-of-limit θ. Inputs are clipped to the
device's actuator range (saturation: zero gradient outside), as the C++ trainer does.

    layer = DaemonPhysicalLayer(client, "osc-a", theta_init=torch.zeros(n))
    with client.lease("osc-a"):
        loss = loss_fn(head(layer(tail(x))), labels)
        loss.backward(); opt.step(); project_parameters(model)
"""
import numpy as np
import torch
from torch import nn

from .limits import float32_inside as _float32_inside  # noqa: F401 (kept for old importers)
from .limits import input_limits, param_limits


def _spec_limits(spec):
    """θ's hard limits as float64 tensors: θ is float64 here and on the wire, so the double
    limits are exact (a float32 θ would use param_limits(spec, float32=True))."""
    lo, hi = param_limits(spec, float32=False)
    return torch.from_numpy(lo.copy()), torch.from_numpy(hi.copy())


class PhysicalLayerFunction(torch.autograd.Function):
    """y = device(x; θ) measured on the hardware; (x̄, θ̄) = twin.vjp(x_measured, θ, ȳ).

    apply(x, theta, layer): `layer` supplies client, device and max_batch. The measured input
    (x as sent, rounded to float32 like the wire) and θ are saved for backward and also kept in
    layer.last_input / layer.last_theta for inspection."""

    @staticmethod
    def forward(ctx, x, theta, layer):
        x_np = x.detach().cpu().numpy().astype(np.float32)
        theta_np = theta.detach().cpu().numpy().astype(np.float64)
        y = layer._run_hardware(x_np, theta_np)
        ctx.layer = layer
        ctx.x_measured = x_np
        ctx.theta = theta_np
        ctx.x_dtype, ctx.theta_dtype = x.dtype, theta.dtype
        layer.last_input, layer.last_theta = x_np, theta_np
        return torch.from_numpy(y).to(dtype=x.dtype, device=x.device)

    @staticmethod
    def backward(ctx, grad_y):
        layer = ctx.layer
        g = grad_y.detach().cpu().numpy().astype(np.float32)
        x_bar, theta_bar = layer._run_vjp(ctx.x_measured, ctx.theta, g)
        return (torch.from_numpy(x_bar).to(dtype=ctx.x_dtype, device=grad_y.device),
                torch.from_numpy(theta_bar).to(dtype=ctx.theta_dtype, device=grad_y.device),
                None)


class DaemonPhysicalLayer(nn.Module):
    """A physical layer on a daemon device: inputs [batch, num_inputs] → outputs
    [batch, num_outputs]. Needs a lease on the device held by `client` (client.lease(device))
    while it runs forward. Batches above the device's max_batch are split into several calls."""

    def __init__(self, client, device, theta_init=None):
        super().__init__()
        self.client = client
        self.device = device
        info = client.describe(device)
        spec = info.spec
        self.serial = spec.serial
        self.num_inputs, self.num_outputs = spec.num_inputs, spec.num_outputs
        self.max_batch = max(1, spec.max_batch)
        lo, hi = _spec_limits(spec)
        self.register_buffer("theta_min", lo)
        self.register_buffer("theta_max", hi)
        # The wire carries float32: clip to the float32 values inside the actuator range, or
        # a rounded -π would land just outside [-π, π] and be refused. The daemon's
        # input_min_f32 / input_max_f32 (protocol minor 4) when it sends them.
        self.input_min, self.input_max = input_limits(spec, float32=True)
        n = int(lo.numel())
        if theta_init is None:
            theta = torch.zeros(n, dtype=torch.float64)
        else:
            theta = torch.as_tensor(theta_init, dtype=torch.float64).detach().clone().reshape(-1)
        if theta.numel() != n:
            raise ValueError("theta_init has %d values; device %s (%s) has %d parameters"
                             % (theta.numel(), device, self.serial, n))
        self.theta = nn.Parameter(theta)
        self.project_()
        self.last_input = None
        self.last_theta = None
        self.last_records = []  # [pnn_client.ForwardResult] of the last forward, one per chunk

    @torch.no_grad()
    def project_(self):
        """Clamps θ into the hard limits in place."""
        self.theta.copy_(torch.max(torch.min(self.theta, self.theta_max), self.theta_min))

    def forward(self, x):
        if x.dim() != 2 or x.shape[1] != self.num_inputs:
            raise ValueError("%s expects inputs of shape [batch, %d], got %s"
                             % (self.device, self.num_inputs, tuple(x.shape)))
        self.project_()
        x = torch.clamp(x, self.input_min, self.input_max)
        return PhysicalLayerFunction.apply(x, self.theta, self)

    def _chunks(self, rows):
        return [(i, min(i + self.max_batch, rows)) for i in range(0, rows, self.max_batch)]

    def _run_hardware(self, x, theta):
        results = [self.client.forward(self.device, x[a:b], theta, return_result=True)
                   for a, b in self._chunks(len(x))]
        self.last_records = results  # recorded / record_id of each Forward call
        return np.concatenate([r.y for r in results], axis=0)

    def _run_vjp(self, x, theta, y_bar):
        x_bars, theta_bar = [], np.zeros_like(theta)
        for a, b in self._chunks(len(x)):
            xb, tb = self.client.twin_vjp(self.device, x[a:b], theta, y_bar[a:b])
            x_bars.append(xb)
            theta_bar += tb
        return np.concatenate(x_bars, axis=0), theta_bar

    def extra_repr(self):
        return "device=%s, serial=%s, inputs=%d, outputs=%d, params=%d" % (
            self.device, self.serial, self.num_inputs, self.num_outputs, self.theta.numel())


def project_parameters(module):
    """Projects the θ of every DaemonPhysicalLayer in `module` into its hard limits (call after
    each optimizer step)."""
    for m in module.modules():
        if isinstance(m, DaemonPhysicalLayer):
            m.project_()
