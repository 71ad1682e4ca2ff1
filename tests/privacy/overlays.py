"""The lab's WireGuard and Nebula overlays, real daemons in the lab's namespaces.

WireGuard: one wireguard-go per namespace. wireguard-go keeps its control socket in
/var/run/wireguard, so each runs in a mount namespace of its own with a tmpfs on /run
(else the second instance finds the first one's socket); `wg` reaches it with
`nsenter` into that process's mount and network namespaces.

Nebula 1.6: a CA, a lighthouse in the bridge namespace and one host per side; hosts
advertise only their LAN address to the lighthouse (local_allow_list), so Nebula's
own UDP never rides another overlay."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from .netlab import Netns

WG_PORT = 51820
NEBULA_PORT = 4242
WIREGUARD_GO = shutil.which("wireguard-go") or "/usr/bin/wireguard-go"
WG = shutil.which("wg") or "/usr/bin/wg"
NEBULA = shutil.which("nebula") or "/usr/bin/nebula"
NEBULA_CERT = shutil.which("nebula-cert") or "/usr/bin/nebula-cert"


def run(*argv: str, timeout: float = 20, input: str | None = None) -> str:
    result = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=timeout, input=input)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def wg_keypair() -> tuple[str, str]:
    private = run(WG, "genkey").strip()
    return private, run(WG, "pubkey", input=private + "\n").strip()


@dataclass
class WgNode:
    netns: Netns
    workdir: Path
    address: str
    private_key: str = field(init=False, repr=False)
    public_key: str = field(init=False)
    proc: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.private_key, self.public_key = wg_keypair()
        self.key_file = self.workdir / "wg.key"
        self.key_file.touch(mode=0o600)
        self.key_file.write_text(self.private_key + "\n")
        self.table = self.workdir / "wg0.peers"

    def start(self, timeout: float = 10) -> None:
        script = "mount -t tmpfs -o mode=0755 tmpfs /run && exec " + WIREGUARD_GO + " -f wg0"
        with open(self.workdir / "wireguard-go.log", "wb") as log:
            self.proc = subprocess.Popen(
                self.netns.argv("unshare", "-m", "--propagation", "private", "sh", "-c", script),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if (
                subprocess.run(self.enter(WG, "show", "wg0"), check=False, capture_output=True).returncode
                == 0
            ):
                return
            time.sleep(0.02)
        raise RuntimeError(f"wireguard-go in {self.netns.name} did not come up")

    def enter(self, *argv: str) -> list[str]:
        """argv inside wireguard-go's mount and network namespaces (where its socket is)."""
        assert self.proc is not None
        return ["nsenter", "-t", str(self.proc.pid), "-m", "-n", *argv]

    def configure(self, lan_ip: str, peers: list[tuple[str, str, str]]) -> None:
        """peers: (public key, allowed ips, endpoint or "")."""
        argv = [WG, "set", "wg0", "private-key", str(self.key_file), "listen-port", str(WG_PORT)]
        for key, allowed, endpoint in peers:
            argv += ["peer", key, "allowed-ips", allowed]
            if endpoint:
                argv += ["endpoint", endpoint]
        run(*self.enter(*argv))
        self.netns.ip("addr", "add", f"{self.address}/24", "dev", "wg0")
        self.netns.ip("link", "set", "wg0", "up")

    def export(self, media_node: list[str], group: str = "nogroup") -> subprocess.CompletedProcess:
        """What the unit's `ExecStartPre=+` does: root exports the table for the service."""
        return subprocess.run(
            self.enter(*media_node, "wireguard", "export", "wg0", "--to", str(self.table), "--group", group),
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )

    def stop(self) -> None:
        stop(self.proc)


@dataclass
class NebulaNode:
    netns: Netns
    workdir: Path
    name: str
    address: str
    lighthouse: bool = False
    proc: subprocess.Popen | None = None

    @property
    def config(self) -> Path:
        return self.workdir / "config.yml"

    def sign(self, ca: Path, ca_key: Path) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        run(
            NEBULA_CERT, "sign", "-ca-crt", str(ca), "-ca-key", str(ca_key), "-name", self.name,
            "-ip", f"{self.address}/24", "-out-crt", str(self.workdir / "host.crt"),
            "-out-key", str(self.workdir / "host.key"),
        )  # fmt: skip
        self.fingerprint = json.loads(
            run(NEBULA_CERT, "print", "-json", "-path", str(self.workdir / "host.crt"))
        )["fingerprint"]

    def write_config(self, ca: Path, lighthouse: tuple[str, str]) -> None:
        lh_vpn, lh_lan = lighthouse
        config: dict = {
            "pki": {
                "ca": str(ca),
                "cert": str(self.workdir / "host.crt"),
                "key": str(self.workdir / "host.key"),
            },
            "static_host_map": {} if self.lighthouse else {lh_vpn: [f"{lh_lan}:{NEBULA_PORT}"]},
            "lighthouse": {
                "am_lighthouse": self.lighthouse,
                "interval": 60,
                "hosts": [] if self.lighthouse else [lh_vpn],
                # Advertise only the LAN: otherwise the other overlays' addresses would be
                # offered, and Nebula's own UDP could ride them.
                "local_allow_list": {"interfaces": {"lan0": True, "br0": True}},
            },
            "listen": {"host": "0.0.0.0", "port": NEBULA_PORT},
            "punchy": {"punch": False},
            "tun": {"disabled": False, "dev": "nebula1", "mtu": 1300},
            "logging": {"level": "info"},
            "firewall": {
                "outbound": [{"port": "any", "proto": "any", "host": "any"}],
                "inbound": [{"port": "any", "proto": "any", "host": "any"}],
            },
        }
        self.config.write_text(yaml.safe_dump(config))

    def start(self) -> None:
        with open(self.workdir / "nebula.log", "wb") as log:
            self.proc = subprocess.Popen(
                self.netns.argv(NEBULA, "-config", str(self.config)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        return (self.workdir / "nebula.log").read_text(errors="replace")[-1500:]

    def stop(self) -> None:
        stop(self.proc)


def make_ca(workdir: Path, name: str) -> tuple[Path, Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    crt, key = workdir / f"{name}.crt", workdir / f"{name}.key"
    run(NEBULA_CERT, "ca", "-name", name, "-duration", "24h", "-out-crt", str(crt), "-out-key", str(key))
    return crt, key


def stop(proc: subprocess.Popen | None) -> None:
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
