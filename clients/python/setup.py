"""Build step of the pnn_client package (the metadata is in pyproject.toml): generates
pnn_client/pnn_pb2.py from proto/pnn.proto with protoc into the build, so the installed package
imports it and never runs protoc. PNN_PROTO overrides where pnn.proto is (default: the checkout's
proto/pnn.proto, two folders up)."""
import importlib.util
import os
import re

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def _protoc_module():
    spec = importlib.util.spec_from_file_location("pnn_client_protoc",
                                                  os.path.join(HERE, "pnn_client", "_protoc.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPyWithProto(build_py):
    def run(self):
        super().run()
        proto = os.path.normpath(os.environ.get("PNN_PROTO") or
                                 os.path.join(HERE, "..", "..", "proto", "pnn.proto"))
        if not os.path.isfile(proto):
            raise SystemExit("pnn_client: %s not found; build the package from a pnn-hil checkout "
                             "(clients/python) or set PNN_PROTO to proto/pnn.proto" % proto)
        try:
            _protoc_module().generate(proto, os.path.join(self.build_lib, "pnn_client"))
        except ImportError as e:
            raise SystemExit(str(e))


def version():
    with open(os.path.join(HERE, "pnn_client", "__init__.py")) as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


setup(version=version(), packages=["pnn_client", "pnn_device"], cmdclass={"build_py": BuildPyWithProto})
