#!/usr/bin/env python3
"""Runs ON the device: merge the inventory's settings into the Yggdrasil config in place,
then print {"changed", "public_key", "address"} as JSON. The private key in the file is
read and written back here only; it never goes to the controller."""

import json
import os
import subprocess
import sys


def main() -> None:
    args = sys.argv[1:]
    dry_run = "--check" in args  # ansible --check: say what would change, write nothing
    path, wanted = [a for a in args if a != "--check"][:2]
    wanted = json.loads(wanted)
    normalised = subprocess.run(
        ["yggdrasil", "-useconffile", path, "-normaliseconf", "-json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    with open(path) as f:
        raw = f.read()
    conf = json.loads(normalised)
    merged = {**conf, **wanted}
    changed = merged != conf or raw.lstrip()[:1] != "{"
    if changed and not dry_run:
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(merged, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    address = subprocess.run(
        ["yggdrasil", "-useconf", "-address"],
        input=json.dumps(merged),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(json.dumps({"changed": changed, "public_key": merged.get("PublicKey", ""), "address": address}))


main()
