"""The Python client (and pnn_device, the board side) as an installed package: `pip install --no-deps --no-build-isolation
--target DIR` of a copy of clients/python (with proto/ beside it, as in a checkout; the copy
keeps pip's build files out of the source tree), then `import pnn_client` from DIR alone, with
no protoc on PATH and no source checkout on sys.path: the version is the project's and
pnn_pb2 is the module built at install time.
    usage: test_python_package.py SOURCE_DIR WORK_DIR VERSION
"""
import os
import shutil
import subprocess
import sys

source, work, version = sys.argv[1:4]
shutil.rmtree(work, ignore_errors=True)
checkout = os.path.join(work, "checkout")
shutil.copytree(os.path.join(source, "clients", "python"), os.path.join(checkout, "clients", "python"),
                ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
os.makedirs(os.path.join(checkout, "proto"))
shutil.copy(os.path.join(source, "proto", "pnn.proto"), os.path.join(checkout, "proto"))
target = os.path.join(work, "site")
done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                       "--no-index", "--target", target, os.path.join(checkout, "clients", "python")],
                      capture_output=True, text=True)
if done.returncode != 0:
    sys.exit("pip install failed (%d):\n%s\n%s" % (done.returncode, done.stdout, done.stderr))
for f in ["pnn_client/__init__.py", "pnn_client/pnn_pb2.py", "pnn_client/torch.py",
          "pnn_device/__init__.py", "pnn_device/frames.py", "pnn_device/server.py"]:
    if not os.path.isfile(os.path.join(target, f)):
        sys.exit("not installed: %s" % os.path.join(target, f))

check = r"""
import os, sys
import pnn_client
assert pnn_client.__file__.startswith(sys.argv[1]), pnn_client.__file__
assert pnn_client.__version__ == sys.argv[2], (pnn_client.__version__, sys.argv[2])
import pnn_client.pnn_pb2 as generated
assert generated.__file__.startswith(sys.argv[1]), generated.__file__
assert pnn_client.pb is generated
request = pnn_client.pb.Request(request_id=7)
request.get_run.run_id = 3
assert pnn_client.pb.Request.FromString(request.SerializeToString()).get_run.run_id == 3
print("pnn_client", pnn_client.__version__, "from", os.path.dirname(pnn_client.__file__))
import pnn_device
assert pnn_device.__file__.startswith(sys.argv[1]), pnn_device.__file__
assert pnn_device.frames.crc32c(b"123456789") == 0xE3069283
"""
home = os.path.join(work, "home")
os.makedirs(home)
# A clean environment: no PYTHONPATH but the install, no protoc (PATH empty), a fresh HOME and
# cache, run from a directory that holds no pnn_client.
env = {"PYTHONPATH": target, "PATH": "", "HOME": home, "PYTHONNOUSERSITE": "1",
       "PNN_CLIENT_CACHE": os.path.join(work, "cache")}
done = subprocess.run([sys.executable, "-c", check, target, version], env=env, cwd=work,
                      capture_output=True, text=True)
if done.returncode != 0:
    sys.exit("importing the installed package failed:\n%s\n%s" % (done.stdout, done.stderr))
print(done.stdout.strip())
if os.path.exists(os.path.join(work, "cache")):
    sys.exit("the installed package generated its API module at import (%s exists)"
             % os.path.join(work, "cache"))
