"""What a device is (docs/protocol.md, describe): sizes, units, hard limits, input range, max
batch. The same rules as the host's check (firmware_iface describe_problem) are applied when the
server starts, so a spec pnnd would refuse never goes on the wire."""
import math

import numpy as np

KNOWN_UNITS = ("1", "a.u.", "V", "mV", "uV", "A", "mA", "uA", "W", "mW", "uW", "nW", "dBm", "dB",
               "Hz", "kHz", "MHz", "GHz", "rad", "deg", "s", "ms", "us", "ns", "K", "m", "mm",
               "um", "nm", "T", "mT", "%", "counts", "kcounts", "clicks")
MAX_SIZE = 1 << 16
MAX_PARAMS = 1 << 20
MAX_BATCH = 1 << 16
MAX_BATCH_BYTES = 1 << 28


def known_unit(unit):
    head = unit.replace("(", " ").split(" ")[0] if unit else ""
    return head in KNOWN_UNITS


class Block:
    """A contiguous run of θ with one unit and one hard limit [min, max]."""

    def __init__(self, name, count, min, max, unit="1", description=""):
        self.name, self.count, self.min, self.max = name, int(count), float(min), float(max)
        self.unit, self.description = unit, description

    def as_dict(self):
        return dict(name=self.name, unit=self.unit, description=self.description,
                    count=self.count, min=self.min, max=self.max)


class Spec:
    def __init__(self, kind, num_inputs, num_outputs, params, input_range, max_batch,
                 input_unit="1", output_unit="1", output_noise_std=0.0, serial="PY-0001",
                 model="pnn_device", firmware="pnn_device-1.1"):
        self.kind, self.serial, self.model, self.firmware = kind, serial, model, firmware
        self.num_inputs, self.num_outputs = int(num_inputs), int(num_outputs)
        self.params = list(params)
        self.input_min, self.input_max = (float(v) for v in input_range)
        self.max_batch = int(max_batch)
        self.input_unit, self.output_unit = input_unit, output_unit
        self.output_noise_std = float(output_noise_std)

    @property
    def num_params(self):
        return sum(b.count for b in self.params)

    def param_min(self):
        return np.concatenate([np.full(b.count, b.min) for b in self.params])

    def param_max(self):
        return np.concatenate([np.full(b.count, b.max) for b in self.params])

    def safe_theta(self):
        """Each entry as close to 0 as its limits allow (no drive)."""
        return np.clip(np.zeros(self.num_params), self.param_min(), self.param_max())

    def param_name(self, i):
        for b in self.params:
            if i < b.count:
                return "%s[%d]" % (b.name, i)
            i -= b.count
        return "theta[%d]" % i

    def split(self, theta):
        """θ as {block name: array}, in block order."""
        out, at = {}, 0
        for b in self.params:
            out[b.name] = np.asarray(theta[at:at + b.count])
            at += b.count
        return out

    def max_frame_payload(self):
        cols = max(self.num_inputs, self.num_outputs, 1)
        return max(8 + 8 * self.max_batch * cols, 4 + 8 * self.num_params, 1 << 20) + 64

    def description(self):
        return dict(protocol_minor=1, kind=self.kind, num_inputs=self.num_inputs,
                    num_outputs=self.num_outputs, num_params=self.num_params,
                    max_batch=self.max_batch, input_unit=self.input_unit,
                    input_min=self.input_min, input_max=self.input_max,
                    output_unit=self.output_unit, output_noise_std=self.output_noise_std,
                    blocks=[b.as_dict() for b in self.params])

    def capabilities(self):
        return dict(num_inputs=self.num_inputs, num_outputs=self.num_outputs,
                    num_params=self.num_params, max_batch=self.max_batch,
                    blocks=[dict(name=b.name, count=b.count, min=b.min, max=b.max)
                            for b in self.params])

    def problem(self):
        """What pnnd would refuse in this spec, naming the fix; None if it is usable."""
        for what, n, limit in (("num_inputs", self.num_inputs, MAX_SIZE),
                               ("num_outputs", self.num_outputs, MAX_SIZE),
                               ("num_params", self.num_params, MAX_PARAMS),
                               ("max_batch", self.max_batch, MAX_BATCH)):
            if not 1 <= n <= limit:
                return "%s is %d, outside 1..%d" % (what, n, limit)
        if 8 + 8 * max(self.num_inputs, self.num_outputs) * self.max_batch > MAX_BATCH_BYTES:
            return "max_batch %d makes a batch frame over 256 MiB" % self.max_batch
        checks = [("input", self.input_min, self.input_max, self.input_unit)]
        checks += [("parameter block '%s'" % b.name, b.min, b.max, b.unit) for b in self.params]
        for what, lo, hi, unit in checks:
            if not (math.isfinite(lo) and math.isfinite(hi)):
                return "%s limits [%r, %r] are not finite" % (what, lo, hi)
            if lo > hi:
                return "%s limits have min %r > max %r" % (what, lo, hi)
            if not known_unit(unit):
                return "%s unit %r is not a known unit (one of %s)" % (what, unit,
                                                                      ", ".join(KNOWN_UNITS))
        if not known_unit(self.output_unit):
            return "output unit %r is not a known unit" % self.output_unit
        if not (math.isfinite(self.output_noise_std) and self.output_noise_std >= 0):
            return "output_noise_std must be finite and >= 0"
        names = [b.name for b in self.params]
        if any(not n for n in names) or len(set(names)) != len(names):
            return "parameter block names must be non-empty and unique"
        if any(b.count < 1 for b in self.params):
            return "every parameter block needs a count of at least 1"
        return None
