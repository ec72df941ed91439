"""pnn_device: serve any instrument to pnnd as a board of the frame protocol 1.1.

    import pnn_device
    spec = pnn_device.Spec(kind="my-setup", num_inputs=4, num_outputs=3, input_range=(-1, 1),
                           max_batch=64, params=[pnn_device.Block("W", 12, -2, 2)])
    pnn_device.serve(spec, forward=measure, safe_state=all_off, port=7710)

`forward(x, theta) -> y` gets a batch (rows × num_inputs numpy array, inside the input range) and
θ (inside the hard limits: both are checked before your code runs) and returns rows × num_outputs.
Depends only on the standard library and numpy (docs/setups/own-setup.md).
"""
from .frames import PROTOCOL_MINOR
from .server import DeviceServer, serve
from .spec import Block, Spec

__version__ = "0.1.0"
__all__ = ["Block", "DeviceServer", "PROTOCOL_MINOR", "Spec", "serve"]
