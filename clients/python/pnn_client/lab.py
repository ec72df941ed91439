"""The lab registry (docs/lab.md): which daemons a lab has, where they listen and which CURVE key
each presents, so that a device is named "DAEMON/DEVICE":

    lab = pnn_client.Lab()                      # the file in PNN_LAB, or Lab("lab.yaml")
    client, device = lab.resolve("optics/shg-a")
    with client:
        y = client.forward(device, x, theta)

The file format and its checks are those of pnnctl (clients/cpp/src/lab.cpp): every error names
the file and line, the problem and the fix. Reading it needs Debian's python3-yaml.
"""
import os
import re

from .client import Client

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_TCP = re.compile(r"^tcp://.+:(\d{1,5})$")
_Z85 = re.compile(r"^[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}$")


class LabError(ValueError):
    """A registry that cannot be read, or a name it cannot resolve; the message says which."""


class LabDaemon:
    """One daemon of the registry: name, rpc, telemetry ("" = announced), server_key ("" =
    plain), description, line (1-based, where its entry starts)."""

    def __init__(self, name, rpc, telemetry, server_key, description, line):
        self.name, self.rpc, self.telemetry = name, rpc, telemetry
        self.server_key, self.description, self.line = server_key, description, line

    def __repr__(self):
        return "LabDaemon(%r, %r)" % (self.name, self.rpc)


def _endpoint_ok(text):
    if text.startswith("ipc://"):
        return len(text) > len("ipc://")
    m = _TCP.match(text)
    return bool(m) and 1 <= int(m.group(1)) <= 65535


class _Loader:
    """yaml.SafeLoader that records each mapping's line (key "__line__")."""

    @staticmethod
    def make():
        import yaml

        class Loader(yaml.SafeLoader):
            pass

        def construct_mapping(loader, node, deep=False):
            mapping = yaml.SafeLoader.construct_mapping(loader, node, deep=deep)
            mapping["__line__"] = node.start_mark.line + 1
            return mapping

        Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
        return Loader


class Lab:
    """The registry at `path` (default: the environment variable PNN_LAB). Raises LabError."""

    def __init__(self, path=None, text=None):
        self.source = path or os.environ.get("PNN_LAB") or ""
        if text is None:
            if not self.source:
                raise LabError("no lab registry: pass Lab(path) or set PNN_LAB (docs/lab.md)")
            try:
                with open(self.source) as f:
                    text = f.read()
            except OSError as e:
                raise LabError("%s: cannot open the lab registry (%s; check the path given by "
                               "PNN_LAB; docs/lab.md shows the format)" % (self.source, e.strerror))
        self.daemons = self._parse(text)

    def _fail(self, line, key, message):
        raise LabError("%s:%s: '%s': %s" % (self.source or "<text>", line, key, message))

    def _parse(self, text):
        try:
            import yaml
        except ImportError:
            raise LabError("reading a lab registry needs PyYAML: apt-get install python3-yaml")
        try:
            root = yaml.load(text, Loader=_Loader.make())
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            raise LabError("%s:%s: not valid YAML: %s" % (self.source or "<text>",
                                                          mark.line + 1 if mark else "?",
                                                          getattr(e, "problem", e)))
        if not isinstance(root, dict):
            self._fail(1, "", "a lab registry is a mapping with a 'daemons' list (see docs/lab.md)")
        for key in root:
            if key not in ("daemons", "description", "__line__"):
                self._fail(root["__line__"], key, "unknown key (allowed: daemons, description)")
        entries = root.get("daemons")
        if not isinstance(entries, list) or not entries:
            self._fail(root["__line__"], "daemons",
                       "expected a non-empty list of daemons (- name: ..., rpc: tcp://HOST:PORT)")
        daemons = {}
        for i, e in enumerate(entries):
            where = "daemons[%d]" % i
            if not isinstance(e, dict):
                self._fail(root["__line__"], where, "expected a mapping with name and rpc")
            line = e["__line__"]
            for key in e:
                if key not in ("name", "rpc", "telemetry", "server_key", "description", "__line__"):
                    self._fail(line, where + "." + str(key), "unknown key (allowed: name, rpc, "
                               "telemetry, server_key, description)")
            get = lambda k: "" if e.get(k) is None else str(e.get(k))
            name = get("name")
            if not name:
                self._fail(line, where, "every daemon needs a name (name: optics)")
            if not _NAME.match(name):
                self._fail(line, where + ".name", "'%s' is not a daemon name: 1-64 of A-Z a-z 0-9 "
                           ". _ - (no '/': devices are named DAEMON/DEVICE)" % name)
            if name in daemons:
                self._fail(line, where + ".name", "daemon '%s' is listed twice (first at line %d); "
                           "names must be unique" % (name, daemons[name].line))
            rpc = get("rpc")
            if not rpc:
                self._fail(line, where + ".rpc",
                           "daemon '%s' needs rpc: tcp://HOST:PORT (where pnnd listens)" % name)
            if not _endpoint_ok(rpc):
                self._fail(line, where + ".rpc", "'%s' is not an RPC endpoint: tcp://HOST:PORT "
                           "(pnnd's rpc.bind, with the host the clients reach it at) or ipc://PATH"
                           % rpc)
            telemetry = get("telemetry")
            if telemetry and not _endpoint_ok(telemetry):
                self._fail(line, where + ".telemetry",
                           "'%s' is not an endpoint: tcp://HOST:PORT or ipc://PATH" % telemetry)
            key = get("server_key")
            if key and not _Z85.match(key):
                self._fail(line, where + ".server_key", "not a 40-character Z85 CURVE public key "
                           "(the daemon's: pnnd prints it at start-up and `pnnd --keygen` makes "
                           "one; quote it, Z85 has YAML characters)")
            daemons[name] = LabDaemon(name, rpc, telemetry, key, get("description"), line)
        return daemons

    def daemon(self, name):
        """The daemon called `name`; LabError naming the file and the daemons it lists otherwise."""
        if name not in self.daemons:
            raise LabError("%s: no daemon '%s' in the lab registry (it lists: %s); add it there or "
                           "fix the name" % (self.source, name, ", ".join(self.daemons)))
        return self.daemons[name]

    def client(self, name, key_file=None, **kwargs):
        """A Client of daemon `name` (its endpoint and CURVE key; this client's own key pair is
        key_file / PNN_KEY_FILE). kwargs go to Client."""
        d = self.daemon(name)
        if not d.server_key:
            return Client(d.rpc, **kwargs)
        return Client(d.rpc, server_key=d.server_key,
                      key_file=key_file or os.environ.get("PNN_KEY_FILE"), **kwargs)

    def resolve(self, qualified, **kwargs):
        """"DAEMON/DEVICE" -> (Client of DAEMON, "DEVICE")."""
        parts = qualified.split("/")
        if len(parts) != 2 or not all(parts):
            raise LabError("'%s' is not a lab device name: DAEMON/DEVICE, e.g. optics/shg-a "
                           "(daemons in %s)" % (qualified, self.source))
        return self.client(parts[0], **kwargs), parts[1]
