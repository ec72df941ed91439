"""Build step of the pnn_client package (the metadata is in pyproject.toml): generates
pnn_client/pnn_pb2.py from proto/pnn.proto with protoc into the build, so the installed package
imports it and never runs protoc. PNN_PROTO overrides where pnn.proto is (default: the checkout's
proto/pnn.proto, two folders up)."""
import os
import re
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildPyWithProto(build_py):
    def run(self):
        super().run()
        proto = os.path.normpath(os.environ.get("PNN_PROTO") or
                                 os.path.join(HERE, "..", "..", "proto", "pnn.proto"))
        if not os.path.isfile(proto):
            raise SystemExit("pnn_client: %s not found; build the package from a pnn-hil checkout "
                             "(clients/python) or set PNN_PROTO to proto/pnn.proto" % proto)
        protoc = shutil.which("protoc")
        if protoc is None:
            raise SystemExit("pnn_client: protoc not found; it generates pnn_pb2.py from "
                             "pnn.proto (install it: apt-get install protobuf-compiler)")
        out = os.path.join(self.build_lib, "pnn_client")
        self.mkpath(out)
        done = subprocess.run([protoc, "-I", os.path.dirname(proto), "--python_out=" + out,
                               os.path.basename(proto)], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit("pnn_client: protoc failed on %s: %s" % (proto, done.stderr.strip()))


def version():
    with open(os.path.join(HERE, "pnn_client", "__init__.py")) as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


setup(version=version(), packages=["pnn_client"], cmdclass={"build_py": BuildPyWithProto})
