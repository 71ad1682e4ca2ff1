"""Two network namespaces (A, B) on a "LAN" bridged in a third (L), a veth acting as a
static overlay, and real Yggdrasil 0.4.7, WireGuard (wireguard-go) and Nebula 1.6 daemons
carried by the LAN. Everything lives inside namespaces this module creates (names unique
per run); no host interface is touched.

Topology:
  lan0     169.254.77.1/24 + fd00:77::1/64  <-> br0 in L (169.254.77.3) <->
           169.254.77.2/24 + fd00:77::2/64; default routes point across it, so a
           DNS/STUN/mDNS leak would show up on it
  ovl0     10.99.0.1/24  <->  10.99.0.2/24  (the `static` overlay, a direct veth)
  ygg0     A's 200::/7 address <-> B's (Yggdrasil TUN; the daemons peer over TCP to
           [fd00:77::1]:12345: a ULA, so no link-local zone needed)
  wg0      10.98.0.1/24 <-> 10.98.0.2/24 (wireguard-go, UDP 51820 on the LAN; each side
           lists the other's key with a /32; B also lists a "hub" key routing 10.98.1.0/24)
  nebula1  10.97.0.1/24 <-> 10.97.0.2/24 (Nebula hosts "camera" and "viewer", UDP 4242 on
           the LAN, lighthouse 10.97.0.254 in L)
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .overlays import NEBULA_PORT, WG_PORT, NebulaNode, WgNode, make_ca, wg_keypair
from .pcap import Packet, read_sll2

PREFIX = "mnpriv"
YGG_PORT = 12345
LAN = {"a": ("169.254.77.1", "fd00:77::1"), "b": ("169.254.77.2", "fd00:77::2")}
STATIC = {"a": "10.99.0.1", "b": "10.99.0.2"}
STATIC_CIDR = "10.99.0.0/24"
LIGHTHOUSE_LAN = "169.254.77.3"
WIREGUARD = {"a": "10.98.0.1", "b": "10.98.0.2"}
NEBULA = {"a": "10.97.0.1", "b": "10.97.0.2", "l": "10.97.0.254"}
NEBULA_NAMES = {"a": "camera", "b": "viewer", "l": "lighthouse"}
# UDP the overlays themselves put on the LAN (WireGuard, Nebula): never the node's.
LAN_UDP_PORTS = frozenset({WG_PORT, NEBULA_PORT})
YGGDRASIL = shutil.which("yggdrasil") or "/usr/sbin/yggdrasil"
TCPDUMP = shutil.which("tcpdump") or "/usr/bin/tcpdump"


def sh(*argv: str, timeout: float = 20, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class Netns:
    def __init__(self, name: str, create: bool = True):
        self.name = name
        if create:
            sh("ip", "netns", "add", name)
            sh("ip", "-n", name, "link", "set", "lo", "up")

    def argv(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, *argv: str, timeout: float = 20, check: bool = True) -> subprocess.CompletedProcess:
        return sh(*self.argv(*argv), timeout=timeout, check=check)

    def ip(self, *args: str) -> None:
        sh("ip", "-n", self.name, *args)

    def interfaces(self) -> dict[int, str]:
        links = json.loads(sh("ip", "-n", self.name, "-j", "link").stdout)
        return {link["ifindex"]: link["ifname"] for link in links}

    def destroy(self) -> None:
        """Kill what still runs inside (only processes this lab started live there), then
        delete the namespace; its veth ends and TUNs go with it."""
        pids = sh("ip", "netns", "pids", self.name, check=False).stdout.split()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(int(pid), sig)
                except (ProcessLookupError, ValueError):
                    pass
            deadline = time.monotonic() + 5
            while pids and time.monotonic() < deadline:
                pids = [p for p in pids if _pid_alive(int(p))]
                time.sleep(0.05)
            if not pids:
                break
        sh("ip", "netns", "del", self.name, check=False)


def sweep_stale_namespaces() -> None:
    """Namespaces left by an earlier run of this harness that was killed outright
    (their creator's pid is in the name and no longer alive)."""
    listing = sh("ip", "netns", "list", check=False).stdout
    for name in re.findall(rf"^({PREFIX}-(\d+)-[0-9a-f]+-[abl])\b", listing, re.M):
        if not _pid_alive(int(name[1])):
            Netns(name[0], create=False).destroy()


@dataclass
class YggNode:
    netns: Netns
    workdir: Path
    conf: Path = field(init=False)
    admin: str = field(init=False)
    key: str = field(init=False)
    address: str = field(init=False)
    proc: subprocess.Popen | None = None

    def configure(self, listen: list[str], peers: list[str]) -> None:
        out = sh(YGGDRASIL, "-genconf", "-json").stdout
        config = json.loads(out)
        sock = self.workdir / "ygg.sock"
        self.admin = f"unix://{sock}"
        # Static peering only: multicast discovery would put UDP beacons on the LAN.
        config.update(
            Listen=listen,
            Peers=peers,
            AdminListen=self.admin,
            IfName="ygg0",
            MulticastInterfaces=[],
            NodeInfoPrivacy=True,
        )
        self.conf = self.workdir / "ygg.conf"
        self.conf.write_text(json.dumps(config))
        self.key = config["PublicKey"]
        self.address = sh(YGGDRASIL, "-useconffile", str(self.conf), "-address").stdout.strip()

    def start(self) -> None:
        log = open(self.workdir / "ygg.log", "wb")
        self.proc = subprocess.Popen(
            self.netns.argv(YGGDRASIL, "-useconffile", str(self.conf)),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def wait_log(self, text: str, timeout: float) -> None:
        log = self.workdir / "ygg.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in log.read_text():
                return
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(
            f"yggdrasil in {self.netns.name}: no {text!r} within {timeout} s: {log.read_text()[-800:]}"
        )

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


PROBE = """
import socket, sys, time
addr, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect((addr, 9))
            sys.exit(0)
        except ConnectionRefusedError:
            sys.exit(0)  # a RST from the far end: the path works
        except OSError:
            time.sleep(0.05)
sys.exit(1)
"""


class Lab:
    """The namespaces, the LAN and the static veth, and every overlay pair, up and reachable."""

    def __init__(self, workdir: Path):
        sweep_stale_namespaces()
        self.workdir = workdir
        self.tag = f"{PREFIX}-{os.getpid()}-{secrets.token_hex(3)}"
        self.ns: dict[str, Netns] = {}
        self.ygg: dict[str, YggNode] = {}
        self.wg: dict[str, WgNode] = {}
        self.nebula: dict[str, NebulaNode] = {}
        # Where an unprivileged service user can reach (pytest's tmp dirs are root's, 0700).
        self.public = Path(tempfile.mkdtemp(prefix=f"{self.tag}-"))
        self.public.chmod(0o755)

    def setup(self, timeout: float = 20) -> Lab:
        for side in "abl":
            self.ns[side] = Netns(f"{self.tag}-{side}")
        a, b, hub = self.ns["a"], self.ns["b"], self.ns["l"]
        a.ip("link", "add", "ovl0", "type", "veth", "peer", "name", "ovl0", "netns", b.name)
        hub.ip("link", "add", "br0", "type", "bridge")
        for side in "ab":
            hub.ip(
                "link", "add", f"p{side}", "type", "veth", "peer", "name", "lan0", "netns", self.ns[side].name
            )
            hub.ip("link", "set", f"p{side}", "master", "br0")
            hub.ip("link", "set", f"p{side}", "up")
        hub.ip("addr", "add", f"{LIGHTHOUSE_LAN}/24", "dev", "br0")
        hub.ip("link", "set", "br0", "up")
        for side, other in (("a", "b"), ("b", "a")):
            ns = self.ns[side]
            v4, v6 = LAN[side]
            ns.ip("addr", "add", f"{v4}/24", "dev", "lan0")
            ns.ip("addr", "add", f"{v6}/64", "dev", "lan0", "nodad")
            ns.ip("addr", "add", f"{STATIC[side]}/24", "dev", "ovl0")
            ns.ip("link", "set", "lan0", "up")
            ns.ip("link", "set", "ovl0", "up")
            ns.ip("route", "add", "default", "via", LAN[other][0])
            ns.ip("-6", "route", "add", "default", "via", LAN[other][1])
        for side in "ab":
            d = self.workdir / f"ygg-{side}"
            d.mkdir(parents=True, exist_ok=True)
            self.ygg[side] = YggNode(self.ns[side], d)
        self.ygg["a"].configure(listen=[f"tcp://[{LAN['a'][1]}]:{YGG_PORT}"], peers=[])
        self.ygg["b"].configure(listen=[], peers=[f"tcp://[{LAN['a'][1]}]:{YGG_PORT}"])
        # B dials A once and 0.4.7 retries only every 60 s: start B after A listens.
        self.ygg["a"].start()
        self.ygg["a"].wait_log("TCP listener started", timeout)
        self.ygg["b"].start()
        self.wait_reachable("b", self.ygg["a"].address, timeout)
        self.wait_reachable("a", self.ygg["b"].address, timeout)
        self.wait_reachable("b", STATIC["a"], timeout)
        self.setup_wireguard()
        self.setup_nebula(timeout)
        self.wait_reachable("b", WIREGUARD["a"], timeout)
        self.wait_reachable("a", WIREGUARD["b"], timeout)
        self.wait_reachable("b", NEBULA["a"], timeout)
        self.wait_reachable("a", NEBULA["b"], timeout)
        return self

    def setup_wireguard(self) -> None:
        for side in "ab":
            d = self.public / f"wg-{side}"
            d.mkdir(mode=0o755)  # the service user reads the exported table from here
            self.wg[side] = WgNode(self.ns[side], d, WIREGUARD[side])
            self.wg[side].start()
        # A key that routes a whole subnet (a hub): the provider must refuse it as a peer.
        _, self.wg_hub_key = wg_keypair()
        for side, other in (("a", "b"), ("b", "a")):
            peers = [(self.wg[other].public_key, f"{WIREGUARD[other]}/32", f"{LAN[other][0]}:{WG_PORT}")]
            if side == "b":
                peers.append((self.wg_hub_key, "10.98.1.0/24", ""))
            self.wg[side].configure(LAN[side][0], peers)

    def setup_nebula(self, timeout: float) -> None:
        ca, ca_key = make_ca(self.workdir / "nebula-ca", "media-node-lab")
        self.nebula_ca = ca
        # A certificate from another CA, with the camera's name and address: a viewer
        # trusting only its own Nebula CA must refuse it.
        rogue_ca, rogue_key = make_ca(self.workdir / "nebula-rogue", "rogue")
        self.nebula_rogue = NebulaNode(self.ns["l"], self.workdir / "nebula-rogue", "camera", NEBULA["a"])
        self.nebula_rogue.sign(rogue_ca, rogue_key)
        for side in "lab":
            node = NebulaNode(
                self.ns[side], self.workdir / f"nebula-{side}", NEBULA_NAMES[side], NEBULA[side], side == "l"
            )
            node.sign(ca, ca_key)
            node.write_config(ca, (NEBULA["l"], LIGHTHOUSE_LAN))
            self.nebula[side] = node
        self.nebula["l"].start()
        for side in "ab":
            self.nebula[side].start()

    def wait_reachable(self, side: str, address: str, timeout: float) -> None:
        result = self.ns[side].run(
            sys.executable, "-c", PROBE, address, str(timeout), timeout=timeout + 10, check=False
        )
        if result.returncode != 0:
            logs = {s: (n.workdir / "ygg.log").read_text()[-800:] for s, n in self.ygg.items()}
            logs.update({f"nebula-{s}": n.log() for s, n in self.nebula.items()})
            raise RuntimeError(
                f"{address} not reachable from namespace {side} within {timeout} s; logs: {logs}"
            )

    def teardown(self) -> None:
        for node in [*self.ygg.values(), *self.wg.values(), *self.nebula.values()]:
            node.stop()
        for ns in self.ns.values():
            ns.destroy()
        self.ns.clear()
        shutil.rmtree(self.public, ignore_errors=True)


class Capture:
    """tcpdump on every interface of one namespace, packet-buffered to a file."""

    def __init__(self, netns: Netns, path: Path):
        self.netns = netns
        self.path = path
        self.stderr_path = path.with_suffix(".stderr")
        self.proc: subprocess.Popen | None = None
        self.interfaces: dict[int, str] = {}
        self.stats = ""

    def start(self, timeout: float = 10) -> Capture:
        self.interfaces = self.netns.interfaces()
        err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            self.netns.argv(
                TCPDUMP,
                "-i",
                "any",
                "-y",
                "LINUX_SLL2",
                "-n",
                "-U",
                "--immediate-mode",
                "-s",
                "256",
                "-w",
                str(self.path),
            ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        err.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "listening on" in self.stderr_path.read_text():
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"tcpdump in {self.netns.name} did not start: {self.stderr_path.read_text()}")

    def settle(self, quiet: float = 0.3, timeout: float = 5) -> None:
        """Wait until the file has stopped growing, so the last packets are written."""
        deadline, size, since = time.monotonic() + timeout, -1, time.monotonic()
        while time.monotonic() < deadline:
            now_size = self.path.stat().st_size if self.path.exists() else 0
            if now_size != size:
                size, since = now_size, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return
            time.sleep(0.05)

    def stop(self) -> list[Packet]:
        self.settle()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # flushes and prints its counters
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.stats = self.stderr_path.read_text()
        self.interfaces.update(self.netns.interfaces())
        # Every packet the filter saw must be in the file: a lost packet could be the leak.
        counts = {
            k: int(v)
            for v, k in re.findall(
                r"(\d+) packets? (captured|received by filter|dropped by kernel)", self.stats
            )
        }
        if counts.get("dropped by kernel") or counts.get("captured", 0) < counts.get("received by filter", 0):
            raise RuntimeError(f"tcpdump in {self.netns.name} lost packets: {self.stats}")
        return read_sll2(self.path, self.netns.name, self.interfaces)
