"""`media-node doctor`: which board profile matches this machine, and what is missing
(picamera2 in this interpreter, the cameras libcamera sees, the encoder device, the
microphone and speaker, the config.txt fragment, the overlay, the broker, clock sync,
key permissions, UDP buffers), each with the command or setting that fixes it.

Each check is a small method returning a `Check` (media ones in doctor_media.py); the
report is ok only when no *required* check failed, and the CLI exits non-zero otherwise."""

from __future__ import annotations

import asyncio
import ctypes
import ipaddress
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from .config import Config
from .doctor_media import MediaChecks, Picamera2Probe, probe_picamera2
from .doctor_report import MISSING, OK, SKIP, WARN, Check, Report
from .errors import NodeError
from .home import Home
from .profiles import BoardProfile, Machine, Match, ProfileError, match_profile

T = TypeVar("T")

BOOT_CONFIGS = ("boot/firmware/config.txt", "boot/config.txt")  # Bookworm and Trixie, then older images


class Doctor:
    """Runs every check against one home, its config and a probed machine. `timeout`
    bounds each network check (overlay, broker, RTSP camera)."""

    def __init__(
        self,
        home: Home,
        config: Config,
        machine: Machine,
        timeout: float = 3.0,
        picamera2: Callable[[], Picamera2Probe] = probe_picamera2,
        clock: Callable[[], bool | None] | None = None,
    ):
        self.home = home
        self.config = config
        self.machine = machine
        self.timeout = timeout
        self.picamera2 = picamera2
        self.clock_synced = clock or kernel_clock_synced

    def run(self) -> Report:
        try:
            match = match_profile(self.machine, self.config.media.profile, self.config.media.video)
        except ProfileError as e:
            report = Report("none", str(e))
            report.checks.append(
                Check(
                    "profile",
                    MISSING,
                    str(e),
                    "set media.profile in config.toml to one of `media-node profile list`",
                )
            )
            report.checks += [self.key(), self.overlay(), self.overlay_peers(), self.broker(), self.clock()]
            return report
        p = match.profile
        report = Report(p.name, match.reason)
        media = MediaChecks(
            self.config.media.video or p.video.source,
            self.config.media.audio or p.audio.source,
            self.machine,
            self._reach,
            self.picamera2,
        )
        report.checks += [
            self.key(),
            *media.all(p),
            self.config_txt(p),
            self.overlay(),
            self.overlay_peers(),
            self.broker(),
            self.clock(),
            self.udp_buffers(p),
        ]
        return report

    # --- identity -------------------------------------------------------------------
    def key(self) -> Check:
        from .identity import Identity

        path = self.home.key_file
        if not path.exists():
            return Check(
                "key", MISSING, f"no identity key at {path}", f"media-node init --home {self.home.path}"
            )
        try:
            identity = Identity.load(path)
        except NodeError as e:
            return Check("key", MISSING, str(e), f"chown <service user> {path} && chmod 600 {path}")
        return Check("key", OK, f"{path} is private; node id {identity.node_id}")

    # --- firmware -------------------------------------------------------------------
    def config_txt(self, p: BoardProfile) -> Check:
        if not p.pi or not p.config_txt:
            return Check("config.txt", SKIP, "not a Raspberry Pi profile", required=False)
        path = next((self.machine.root / c for c in BOOT_CONFIGS if (self.machine.root / c).exists()), None)
        if path is None:
            return Check(
                "config.txt",
                WARN,
                "no /boot/firmware/config.txt found",
                required=False,
                fix="mount the boot partition; on Raspberry Pi OS it is /boot/firmware",
            )
        text = path.read_text(errors="replace").splitlines()
        wanted = [
            ln.strip()
            for ln in p.config_txt.splitlines()
            if ln.strip() and not ln.strip().startswith(("#", "["))
        ]
        absent = [ln for ln in wanted if ln not in (t.strip() for t in text)]
        if absent:
            return Check(
                "config.txt",
                MISSING,
                f"{path} lacks {', '.join(absent)}",
                f"run the Ansible media_node role, or append `media-node profile show {p.name} "
                f"--config-txt` to {path} and reboot",
                required=False,
            )
        return Check("config.txt", OK, f"{path} has the {p.name} fragment")

    def udp_buffers(self, p: BoardProfile) -> Check:
        low, unread = [], []
        for key, want in p.sysctl.items():
            have = _read_int(self.machine.root / "proc/sys" / key.replace(".", "/"))
            if have is None:
                unread.append(key)
            elif have < want:
                low.append(f"{key}={have} (< {want})")
        if unread and not low:
            # Not "OK": under the unit (ProcSubset=pid) /proc/sys is hidden, so nothing was read.
            return Check(
                "sysctl",
                SKIP,
                f"cannot read {', '.join(unread)} from /proc/sys "
                "(hidden under the systemd unit's ProcSubset=pid)",
                "run `media-node doctor` from a shell (the Ansible role does) to check the UDP buffers",
                required=False,
            )
        if low:
            cmd = " ".join(f"{k}={v}" for k, v in p.sysctl.items())
            return Check(
                "sysctl",
                WARN,
                ", ".join(low),
                f"sysctl -w {cmd} (the Ansible role writes /etc/sysctl.d/60-media-node.conf)",
                required=False,
            )
        return Check("sysctl", OK, "UDP buffers at or above the profile's")

    # --- network --------------------------------------------------------------------
    def overlay(self) -> Check:
        from .overlay import make_provider
        from .overlay.wireguard import WireGuardProvider

        section = self.config.overlay
        wg = section.wireguard_interface
        fixes = {
            "static": "set overlay.address (or overlay.interface) in config.toml to this node's "
            "overlay address, and bring that interface up",
            "yggdrasil": f"start Yggdrasil (systemctl start yggdrasil) and check its admin socket "
            f"{section.yggdrasil_admin}",
            "staex": "start the Staex agent and check `mcc` works (overlay.staex_command / staex_http)",
            "wireguard": f"bring up {wg} (wg-quick up {wg}) and export its peer table as root: "
            f"media-node wireguard export {wg} --to {section.wireguard_peers} --group <service group> "
            "(the unit's ExecStartPre does)",
            "nebula": f"start Nebula (systemctl start nebula@config or nebula -config "
            f"{section.nebula_config}); the service user must read that config and its pki.ca/pki.cert",
            "tailscale": f"start tailscaled and `tailscale up`; check its socket {section.tailscale_socket}",
        }
        try:
            provider = make_provider(section)
            address = _run(provider.local_address(), self.timeout)
            if isinstance(provider, WireGuardProvider):  # the table the service reads, too
                peers = len(provider.table().peers)
                address += f" on {provider.interface}, {peers} peer(s) in {provider.peers_file}"
        except (TimeoutError, NodeError, OSError) as e:
            return Check(
                "overlay", MISSING, f"{section.provider}: {e or 'timed out'}", fixes.get(section.provider, "")
            )
        return Check("overlay", OK, f"{section.provider}: this node is {address}")

    def overlay_peers(self) -> Check:
        """Every allowlisted peer resolves to an overlay address through the provider
        (a wrong or stale binding shows here, not at the first call)."""
        from .overlay import make_provider
        from .peers import PeerStore

        try:
            peers = PeerStore(self.home.peers_file).load()
            provider = make_provider(self.config.overlay)
        except NodeError as e:
            return Check("overlay peers", MISSING, str(e), required=False)
        if not peers:
            return Check("overlay peers", SKIP, "the allowlist is empty", required=False)
        failed = []
        for peer in peers.values():
            try:
                _run(provider.resolve(peer), self.timeout)
            except (TimeoutError, NodeError, OSError) as e:
                failed.append(str(e) or f"peer {peer.name!r}: timed out")
        if failed:
            return Check(
                "overlay peers",
                MISSING,
                "; ".join(failed),
                "fix each peer's overlay binding (media-node peers add NAME ID --<binding> --replace; "
                "docs/overlays.md says which one this provider needs)",
                required=False,
            )
        return Check(
            "overlay peers", OK, f"all {len(peers)} peer(s) resolve on {self.config.overlay.provider}"
        )

    def broker(self) -> Check:
        mqtt = self.config.mqtt
        if not mqtt.enabled:
            return Check("broker", SKIP, "mqtt.enabled = false", required=False)
        if mqtt.password_file and not os.access(mqtt.password_file, os.R_OK):
            return Check(
                "broker",
                MISSING,
                f"password file {mqtt.password_file} is not readable",
                "the Ansible mqtt_broker role writes it; chown it to the service user, mode 0600",
            )
        return self._reach(
            "broker",
            f"tcp://{mqtt.host}:{mqtt.port}",
            mqtt.port,
            f"start mosquitto on {mqtt.host} (systemctl start mosquitto) or fix "
            "mqtt.host / mqtt.port; a firewall must let the port through",
        )

    # --- time -----------------------------------------------------------------------
    def clock(self) -> Check:
        """Links carry issue and expiry times: a clock that is off by more than
        links.clock_skew makes every peer refuse this node's links (and it theirs)."""
        synced = self.clock_synced()
        skew = self.config.links.clock_skew
        if synced is None:
            return Check(
                "clock", SKIP, "cannot ask the kernel whether the clock is synchronized", required=False
            )
        if synced:
            return Check("clock", OK, "the system clock is synchronized (NTP)", required=False)
        return Check(
            "clock",
            WARN,
            f"the system clock is not synchronized: signed links are refused when clocks differ by "
            f"more than links.clock_skew ({skew} s)",
            "enable time sync: `sudo systemctl enable --now systemd-timesyncd` (a Pi has no "
            "battery-backed clock: it needs the network time after every boot)",
            required=False,
        )

    def _reach(self, name: str, url: str, default_port: int, fix: str) -> Check:
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            port = parts.port or default_port
        except ValueError as e:
            return Check(name, MISSING, f"bad port in {name} address: {e}", fix)
        try:  # connect to an IP literal only: a host name would mean a DNS lookup
            ip = ipaddress.ip_address(host)
        except ValueError:
            return Check(
                name,
                MISSING,
                f"{host!r} is not an IP address and the node makes no DNS lookups",
                f"give the {name}'s IP address instead of a name",
            )
        try:
            family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect((host, port))
        except OSError as e:
            return Check(name, MISSING, f"{host}:{port} unreachable: {e}", fix)
        return Check(name, OK, f"{host}:{port} accepts connections")


TIME_ERROR = 5  # adjtimex(2): the clock is not synchronized


def kernel_clock_synced() -> bool | None:
    """The kernel's own answer (what timedatectl's NTPSynchronized reads): adjtimex with
    no modes returns the clock state; None when it cannot be asked."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        timex = ctypes.create_string_buffer(512)  # struct timex, zeroed: modes = 0 reads only
        state = libc.adjtimex(timex)
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return bool(state != TIME_ERROR)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _run(coro: Awaitable[T], timeout: float) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def diagnose(home: Home, config: Config, machine: Machine | None = None, timeout: float = 3.0) -> Report:
    return Doctor(home, config, machine or Machine.probe(), timeout).run()


__all__ = ["MISSING", "OK", "SKIP", "WARN", "Check", "Doctor", "Match", "Report", "diagnose"]
