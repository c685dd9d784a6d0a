#!/usr/bin/env python3
"""Every gRPC method the docs name exists.

Scans every tracked *.md file of the repository (and ../shared/DESIGN.md when it is there) for
`tradewink.v1.Service/Method` and `/tradewink.v1.Service/Method`, and checks each against the
service descriptors `buf build` compiles from proto/ -- the same descriptors the server serves
over reflection. A doc that names a method nobody implements (README once told users to call
tradewink.v1.Orders/CheckOrder, which is Risk/CheckOrder) fails here, with file and line.

Usage: check_doc_methods.py REPO_ROOT BUF
"""
import os
import re
import subprocess
import sys
import tempfile

from google.protobuf import descriptor_pb2

NAME = re.compile(r"\btradewink\.v1\.([A-Za-z_][A-Za-z0-9_]*)/([A-Za-z_][A-Za-z0-9_]*)")


def methods(root, buf):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "image.binpb")
        subprocess.run([buf, "build", "-o", out], cwd=os.path.join(root, "proto"), check=True)
        fds = descriptor_pb2.FileDescriptorSet()
        with open(out, "rb") as f:
            fds.ParseFromString(f.read())
    known = set()
    for fd in fds.file:
        if fd.package != "tradewink.v1":
            continue
        for svc in fd.service:
            for m in svc.method:
                known.add((svc.name, m.name))
    return known


def docs(root):
    listed = subprocess.run(["git", "ls-files", "-z", "--", "*.md"], cwd=root, check=True,
                            capture_output=True).stdout.decode().split("\0")
    paths = [os.path.join(root, p) for p in listed if p]
    design = os.path.join(root, "..", "shared", "DESIGN.md")
    if os.path.exists(design):
        paths.append(design)
    return paths


def main():
    root, buf = sys.argv[1], sys.argv[2]
    known = methods(root, buf)
    if len(known) < 10:
        sys.exit("check_doc_methods: only %d methods in the descriptors; is proto/ built?" % len(known))
    bad, seen = [], 0
    for path in docs(root):
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                for m in NAME.finditer(line):
                    seen += 1
                    if (m.group(1), m.group(2)) not in known:
                        bad.append("%s:%d: %s is not a method of tradewink.v1" %
                                   (os.path.relpath(path, root), lineno, m.group(0)))
    for b in bad:
        print(b, file=sys.stderr)
    print("check_doc_methods: %d method names in the docs, %d unknown, %d methods in proto/" %
          (seen, len(bad), len(known)))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
