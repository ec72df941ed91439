"""protoc → pnn_pb2.py, shared by the package build (setup.py, at install) and the import-time
generation of a source checkout (_proto.py). Standard library only, no side effects at import,
so setup.py loads this file alone, without importing the package."""
import os
import shutil
import subprocess
import tempfile


def generate(proto, target_dir):
    """Writes target_dir/pnn_pb2.py from the .proto file `proto` (atomically: a temporary
    directory beside it, then a rename). Raises ImportError naming what is missing."""
    protoc = shutil.which("protoc")
    if protoc is None:
        raise ImportError("pnn_client: protoc not found; it generates the API module from "
                          "proto/pnn.proto (install it: apt-get install protobuf-compiler)")
    os.makedirs(target_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=target_dir, prefix=".gen-")
    try:
        done = subprocess.run([protoc, "-I", os.path.dirname(proto), "--python_out=" + tmp,
                               os.path.basename(proto)], capture_output=True, text=True)
        if done.returncode != 0:
            raise ImportError("pnn_client: protoc failed on %s: %s" % (proto, done.stderr.strip()))
        os.replace(os.path.join(tmp, "pnn_pb2.py"), os.path.join(target_dir, "pnn_pb2.py"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
