"""Python client of the pnn-hil lab daemon pnnd (docs/clients.md).

    import pnn_client
    with pnn_client.Client("tcp://127.0.0.1:7700") as client:
        print([d.name for d in client.list_devices()])
        with client.lease("osc-a"):
            y = client.forward("osc-a", x, theta)

`pnn_client.torch` has the PyTorch layer (physics-aware training through the daemon).
The API messages are `pnn_client.pb`: generated from proto/pnn.proto when the package is installed
(pyproject.toml, setup.py), or at first import when it runs from a source checkout.
"""
# The project version (CMakeLists.txt project(VERSION); tests/packaging checks that they agree).
__version__ = "0.1.0"

from ._proto import pb
from .client import (DEFAULT_ENDPOINT, PROTOCOL_MAJOR, Client, ForwardResult, Lease, Subscriber,
                     TelemetryEvent, from_tensor, new_routing_id, read_key_file, status_name,
                     to_tensor)
from .errors import (Busy, DeviceError, InvalidRequest, JobFinished, LeaseError, LeaseReleased,
                     NotFound, PnnError, ProtocolError, RecordFailed, StoreError, StoreFull,
                     Unreachable)
from .lab import Lab, LabDaemon, LabError
from .limits import clamp_inputs, clamp_theta, float32_inside, input_limits, param_limits

__all__ = ["__version__", "pb", "Client", "Lab", "LabDaemon", "LabError", "ForwardResult", "Lease", "Subscriber", "TelemetryEvent", "PnnError",
           "Unreachable", "LeaseError", "LeaseReleased", "DeviceError", "InvalidRequest",
           "NotFound", "ProtocolError", "StoreError", "RecordFailed", "StoreFull", "JobFinished", "Busy",
           "DEFAULT_ENDPOINT", "PROTOCOL_MAJOR", "to_tensor", "from_tensor", "read_key_file",
           "new_routing_id", "status_name", "input_limits", "param_limits", "clamp_inputs",
           "clamp_theta", "float32_inside"]
