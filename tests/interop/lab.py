"""A camera and a user's machine in two network namespaces, shaped like real ones:

  lan0  169.254.88.1/24 <-> 169.254.88.2/24   the LAN; each side's default route points
                                               across it (so a client sees a real LAN)
  ovl0  10.98.0.1/24    <-> 10.98.0.2/24      the overlay (media-node's `static` provider
                                               on interface ovl0, cidr 10.98.0.0/24)

A client in the user namespace runs with its stock settings: it sees both interfaces,
gathers on both, and the node must pick out the overlay candidate itself."""

from __future__ import annotations

import os
import re
import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ (privacy.netlab)

from privacy.netlab import Netns, _pid_alive, sh

PREFIX = "mnintr"
LAN = {"cam": "169.254.88.1", "user": "169.254.88.2"}
OVERLAY = {"cam": "10.98.0.1", "user": "10.98.0.2"}
OVERLAY_CIDR = "10.98.0.0/24"


def sweep_stale() -> None:
    listing = sh("ip", "netns", "list", check=False).stdout
    for name, pid in re.findall(rf"^({PREFIX}-(\d+)-[0-9a-f]+-\w+)\b", listing, re.M):
        if not _pid_alive(int(pid)):
            Netns(name, create=False).destroy()


class UserLab:
    def __init__(self) -> None:
        sweep_stale()
        self.tag = f"{PREFIX}-{os.getpid()}-{secrets.token_hex(3)}"
        self.ns: dict[str, Netns] = {}

    def setup(self) -> UserLab:
        for side in ("cam", "user"):
            self.ns[side] = Netns(f"{self.tag}-{side}")
        cam, user = self.ns["cam"], self.ns["user"]
        for link in ("lan0", "ovl0"):
            cam.ip("link", "add", link, "type", "veth", "peer", "name", link, "netns", user.name)
        for side, other in (("cam", "user"), ("user", "cam")):
            ns = self.ns[side]
            ns.ip("addr", "add", f"{LAN[side]}/24", "dev", "lan0")
            ns.ip("addr", "add", f"{OVERLAY[side]}/24", "dev", "ovl0")
            ns.ip("link", "set", "lan0", "up")
            ns.ip("link", "set", "ovl0", "up")
            ns.ip("route", "add", "default", "via", LAN[other])
        return self

    def teardown(self) -> None:
        for ns in self.ns.values():
            ns.destroy()
        self.ns.clear()
