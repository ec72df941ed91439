"""The generated protobuf module of proto/pnn.proto.

An installed package (pip install clients/python, docs/install.md) has it: setup.py runs protoc
when the package is built, and it is imported as pnn_client.pnn_pb2; protoc is not needed then.

From a source checkout (PYTHONPATH=clients/python) it is made at first import instead: the
package then works without a build directory on the path, it can never be stale (the cache is
keyed by the SHA-256 of pnn.proto), and protoc and python3-protobuf both come from the same Debian
protobuf release, so the generated code always matches the runtime. Nothing generated is
committed. The module is cached in $PNN_CLIENT_CACHE, else $XDG_CACHE_HOME/pnn_client, else
~/.cache/pnn_client (a temporary directory if none is writable); writes are atomic (tmp + rename),
so concurrent imports are safe.
"""
import hashlib
import importlib.util
import os
import sys
import tempfile

from ._protoc import generate

_HERE = os.path.dirname(os.path.abspath(__file__))


def _proto_path():
    explicit = os.environ.get("PNN_PROTO")
    if explicit:
        return explicit
    return os.path.normpath(os.path.join(_HERE, "..", "..", "..", "proto", "pnn.proto"))


def _cache_roots():
    if os.environ.get("PNN_CLIENT_CACHE"):
        yield os.environ["PNN_CLIENT_CACHE"]
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    yield os.path.join(xdg, "pnn_client")
    yield os.path.join(tempfile.gettempdir(), "pnn_client-%d" % os.getuid())


def _installed():
    """pnn_client.pnn_pb2 as built into an installed package, or None in a source checkout."""
    if not os.path.exists(os.path.join(_HERE, "pnn_pb2.py")):
        return None
    from . import pnn_pb2
    return pnn_pb2


def load():
    installed = _installed()
    if installed is not None:
        return installed
    proto = _proto_path()
    try:
        with open(proto, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:16]
    except OSError as e:
        raise ImportError("pnn_client: cannot read the API definition %s (%s); run from a pnn-hil "
                          "checkout or set PNN_PROTO to proto/pnn.proto" % (proto, e)) from None
    errors = []
    for root in _cache_roots():
        target = os.path.join(root, digest)
        module_file = os.path.join(target, "pnn_pb2.py")
        try:
            if not os.path.exists(module_file):
                generate(proto, target)
        except OSError as e:
            errors.append("%s: %s" % (root, e))
            continue
        spec = importlib.util.spec_from_file_location("pnn_client.pnn_pb2", module_file)
        module = importlib.util.module_from_spec(spec)
        sys.modules["pnn_client.pnn_pb2"] = module
        spec.loader.exec_module(module)
        return module
    raise ImportError("pnn_client: no writable cache directory for the generated API module: " +
                      "; ".join(errors))


pb = load()
