"""A real Yggdrasil 0.4.7 daemon for provider tests: no TUN (IfName none), no listeners,
no peers, no multicast, so it needs neither root nor a network namespace; only its admin
socket, which is what the provider talks to."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

YGGDRASIL = shutil.which("yggdrasil") or "/usr/sbin/yggdrasil"


def generate_config(path: Path, **overrides) -> dict:
    """`yggdrasil -genconf -json` (a fresh key pair), edited, written to `path`."""
    out = subprocess.run(
        [YGGDRASIL, "-genconf", "-json"], capture_output=True, text=True, timeout=20, check=True
    )
    config = json.loads(out.stdout)
    config.update(Listen=[], Peers=[], MulticastInterfaces=[], NodeInfoPrivacy=True, IfName="none")
    config.update(overrides)
    path.write_text(json.dumps(config))
    return config


def cli_address(conf: Path) -> str:
    """What the daemon itself says the config's address is (`-address`)."""
    out = subprocess.run(
        [YGGDRASIL, "-useconffile", str(conf), "-address"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    return out.stdout.strip()


def cli_subnet(conf: Path) -> str:
    out = subprocess.run(
        [YGGDRASIL, "-useconffile", str(conf), "-subnet"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    return out.stdout.strip()


class YggdrasilDaemon:
    def __init__(self, workdir: Path, admin: str | None = None):
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "ygg.conf"
        self.sock = workdir / "admin.sock"
        self.admin = admin or f"unix://{self.sock}"
        self.log = workdir / "ygg.log"
        self.config = generate_config(self.conf, AdminListen=self.admin)
        self.proc: subprocess.Popen | None = None

    @property
    def key(self) -> str:
        return self.config["PublicKey"]

    def start(self, timeout: float = 15.0) -> YggdrasilDaemon:
        self.proc = subprocess.Popen(
            [YGGDRASIL, "-useconffile", str(self.conf), "-logto", str(self.log)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"yggdrasil exited ({self.proc.returncode}): {self.log.read_text()[-500:]}"
                )
            if "admin socket listening" in (self.log.read_text() if self.log.exists() else ""):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"yggdrasil admin socket not up within {timeout} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
