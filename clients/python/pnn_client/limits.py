"""A device's hard limits (from Describe) as arrays, in float64 or float32.

The wire carries x (and every Tensor) as float32 and θ (a Vec) as float64. A value computed in
float32 and clamped to a double limit can round to just outside it (float32(-π) < -π) and be
refused with OUT_OF_LIMITS. Since protocol minor 4 the daemon sends, next to each double limit,
the float32 value nearest *inside* it (ParamBlock.hard_min_f32 / hard_max_f32,
DeviceSpec.input_min_f32 / input_max_f32); the float32 helpers here use those when the daemon
sent them (a non-zero-width interval inside the double limits) and otherwise compute the same
thing from the doubles (an older daemon)."""
import numpy as np


def float32_inside(limit, direction):
    """The float32 nearest `limit` on the inside: direction +1 for a lower limit (never below
    it), -1 for an upper limit (never above it). Returned as a Python float (exact)."""
    limit = float(limit)
    v = np.float32(limit)
    if np.isinf(v) and np.isfinite(limit):  # beyond the float32 range: the largest float32
        v = np.float32(np.copysign(np.finfo(np.float32).max, limit))
    if (direction > 0 and float(v) < limit) or (direction < 0 and float(v) > limit):
        v = np.nextafter(v, np.float32(direction * np.inf))
    return float(v)


def _f32_pair(lo, hi, lo32, hi32):
    """(lo, hi) for float32 use: the daemon's float32 limits if it sent a usable pair, else
    computed from the doubles."""
    lo32, hi32 = float(lo32), float(hi32)
    if hi32 > lo32 and lo <= lo32 and hi32 <= hi:
        return lo32, hi32
    return float32_inside(lo, +1), float32_inside(hi, -1)


def input_limits(spec, float32=True):
    """(min, max) of the device's inputs (actuator range). float32=True (the default: x travels
    as float32) gives values that survive a float32 round trip inside the range."""
    if not float32:
        return float(spec.input_min), float(spec.input_max)
    return _f32_pair(spec.input_min, spec.input_max, getattr(spec, "input_min_f32", 0.0),
                     getattr(spec, "input_max_f32", 0.0))


def param_limits(spec, float32=False):
    """(lo, hi) numpy arrays of length num_params (blocks expanded), float64 by default (θ
    travels as float64, so the double limits are exact); float32=True gives the float32 values
    inside them, for a client that computes θ in float32."""
    lo, hi = [], []
    for block in spec.params:
        if float32:
            a, b = _f32_pair(block.hard_min, block.hard_max, getattr(block, "hard_min_f32", 0.0),
                             getattr(block, "hard_max_f32", 0.0))
        else:
            a, b = float(block.hard_min), float(block.hard_max)
        lo += [a] * block.count
        hi += [b] * block.count
    dtype = np.float32 if float32 else np.float64
    return np.asarray(lo, dtype=dtype), np.asarray(hi, dtype=dtype)


def clamp_inputs(spec, x):
    """x (array-like) as float32, clipped into the device's input range (float32 limits)."""
    lo, hi = input_limits(spec, float32=True)
    return np.clip(np.asarray(x, dtype=np.float32), np.float32(lo), np.float32(hi))


def clamp_theta(spec, theta, float32=False):
    """θ clipped into the hard limits: float64 (default) or float32 with the float32 limits."""
    lo, hi = param_limits(spec, float32=float32)
    dtype = np.float32 if float32 else np.float64
    return np.clip(np.asarray(theta, dtype=dtype).ravel(), lo, hi)
