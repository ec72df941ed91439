#!/usr/bin/env python3
"""The include rule the compiler cannot see: a quoted include with '..' must stay inside the
target that owns the including file (a relative path reaches any file, whatever the target
links). Include paths between targets are enforced by the compile checks beside this script.
usage: check_includes.py SOURCE_DIR     exit 1 and one line per offending include"""
import os
import re
import sys

# Target roots, longest first (a file belongs to the longest root that contains it).
ROOTS = ["drivers/sim", "clients/cpp", "clients/pnnctl", "common", "digital_twin",
         "firmware_iface", "drivers", "training", "proto", "daemon", "bench"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def owner(rel):
    for root in sorted(ROOTS, key=len, reverse=True):
        if rel == root or rel.startswith(root + "/"):
            return root
    return None


def main(source_dir):
    bad = []
    for root in ROOTS:
        for dirpath, _, files in os.walk(os.path.join(source_dir, root)):
            for name in files:
                if not name.endswith((".cpp", ".hpp", ".h")):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, source_dir)
                mine = owner(rel)
                with open(path, encoding="utf-8", errors="replace") as f:
                    for number, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m or ".." not in m.group(1):
                            continue
                        target = os.path.relpath(
                            os.path.normpath(os.path.join(os.path.dirname(path), m.group(1))),
                            source_dir)
                        if owner(target) != mine:
                            bad.append(f"{rel}:{number}: #include \"{m.group(1)}\" reaches into "
                                       f"{owner(target) or target} from {mine}: link the target "
                                       f"and include its public header instead")
    for b in bad:
        print(b)
    print(f"{len(bad)} include(s) across targets")
    return 1 if bad else 0


def self_test():
    """The checker itself: a tree with one include across targets and one inside a target."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        for rel, text in {"drivers/src/a.cpp": '#include "../sim/src/reality.hpp"\n',
                          "drivers/src/sub/b.cpp": '#include "../a_helper.hpp"\n',
                          "drivers/sim/src/reality.hpp": "", "drivers/src/a_helper.hpp": ""}.items():
            os.makedirs(os.path.join(d, os.path.dirname(rel)), exist_ok=True)
            with open(os.path.join(d, rel), "w") as f:
                f.write(text)
        rc = main(d)
    return 0 if rc == 1 else 1


if __name__ == "__main__":
    sys.exit(self_test() if sys.argv[1] == "--self-test" else main(sys.argv[1]))
