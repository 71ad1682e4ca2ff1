"""`media-node doctor`: which board profile matches this machine, and what is missing
(camera, encoder device, ALSA device, config.txt fragment, overlay, broker, key
permissions, UDP buffers), each with the command or setting that fixes it.

Each check is a small method returning a `Check`; the report is ok only when no
*required* check failed, and the CLI exits non-zero otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import sys
from collections.abc import Awaitable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from .config import Config
from .errors import NodeError
from .home import Home
from .profiles import BoardProfile, Machine, Match, ProfileError, match_profile

T = TypeVar("T")

OK, MISSING, WARN, SKIP = "ok", "missing", "warn", "skip"
BOOT_CONFIGS = ("boot/firmware/config.txt", "boot/config.txt")  # Bookworm+, then older images


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | missing | warn | skip
    detail: str
    fix: str = ""
    required: bool = True

    @property
    def failed(self) -> bool:
        return self.status == MISSING and self.required


@dataclass
class Report:
    profile: str
    reason: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(c.failed for c in self.checks)

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "profile": self.profile,
            "reason": self.reason,
            "checks": [asdict(c) for c in self.checks],
        }

    def render(self) -> str:
        marks = {OK: "ok  ", MISSING: "MISS", WARN: "warn", SKIP: "-   "}
        lines = [f"profile: {self.profile} ({self.reason})"]
        for c in self.checks:
            mark = marks[c.status] if c.required or c.status != MISSING else "warn"
            lines.append(f"[{mark}] {c.name}: {c.detail}")
            if c.fix and c.status in (MISSING, WARN):
                lines.append(f"       fix: {c.fix}")
        failed = [c.name for c in self.checks if c.failed]
        lines.append("all required checks passed" if not failed else f"missing: {', '.join(failed)}")
        return "\n".join(lines)


class Doctor:
    """Runs every check against one home, its config and a probed machine. `timeout`
    bounds each network check (overlay, broker, RTSP camera)."""

    def __init__(self, home: Home, config: Config, machine: Machine, timeout: float = 3.0):
        self.home = home
        self.config = config
        self.machine = machine
        self.timeout = timeout

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
            report.checks += [self.key(), self.overlay(), self.overlay_peers(), self.broker()]
            return report
        p = match.profile
        report = Report(p.name, match.reason)
        report.checks += [
            self.key(),
            self.camera(p),
            self.encoder(p),
            self.audio(p),
            self.config_txt(p),
            self.overlay(),
            self.overlay_peers(),
            self.broker(),
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

    # --- video ----------------------------------------------------------------------
    def _video(self, p: BoardProfile) -> str:
        return self.config.media.video or p.video.source

    def camera(self, p: BoardProfile) -> Check:
        video = self._video(p)
        if not video:
            return Check(
                "camera",
                MISSING,
                f"profile {p.name} has no default source",
                'set media.video = "rtsp://USER:PASS@CAMERA_IP:554/STREAM" in config.toml '
                "(an IP address: the node makes no DNS lookups)",
            )
        if video == "testsrc":
            return Check(
                "camera",
                WARN,
                "media.video = testsrc: a test pattern, not a camera",
                "set media.video to the real source when one is attached",
                required=False,
            )
        if video.startswith("file:"):
            path = Path(video[5:])
            if path.is_file():
                return Check("camera", OK, f"file source {path}")
            return Check(
                "camera",
                MISSING,
                f"file source {path} does not exist",
                "point media.video = file:PATH at an MPEG-TS H.264 file",
            )
        if video == "picamera2":
            found = [d for d in self.machine.cameras() if d.card.startswith(("unicam", "rp1-cfe"))]
            if found:
                return Check("camera", OK, f"Pi camera receiver {found[0].card} at {found[0].path}")
            return Check(
                "camera",
                MISSING,
                "no Pi camera (no unicam / rp1-cfe capture device)",
                "seat the ribbon cable (power off), keep camera_auto_detect=1 or add "
                "dtoverlay=<sensor> to config.txt, reboot, then `rpicam-hello --list-cameras`",
            )
        if video.startswith("v4l2:"):
            device_path = video[5:]
            dev = self.machine.device(device_path)
            if dev and dev.capture and not dev.m2m:
                return Check("camera", OK, f"{device_path}: {dev.card} ({dev.driver or 'v4l2'})")
            others = ", ".join(d.path for d in self.machine.cameras()) or "none"
            return Check(
                "camera",
                MISSING,
                f"{device_path} is not a camera (cameras found: {others})",
                "plug in the UVC camera, find it with `v4l2-ctl --list-devices` and set "
                "media.video = v4l2:/dev/videoN",
            )
        if video.startswith(("rtsp://", "rtsps://")):
            return self._reach(
                "camera",
                video,
                322 if video.startswith("rtsps://") else 554,
                "check the camera's address, port and credentials in media.video; "
                "test with `ffprobe -rtsp_transport tcp URL`",
            )
        return Check("camera", WARN, f"media.video = {video!r}: not checked", required=False)

    def encoder(self, p: BoardProfile) -> Check:
        if self._video(p) != "picamera2":
            return Check(
                "encoder", SKIP, "the source delivers H.264 itself (no encoder device used)", required=False
            )
        if not p.video.hardware:
            return Check("encoder", OK, f"software: {p.video.encoder} ({p.video.why})")
        dev = self.machine.encoder(p.video.encoder_card, p.video.encoder_device)
        if dev is None:
            return Check(
                "encoder",
                MISSING,
                f"no {p.video.encoder_card} encoder ({p.video.encoder_device} missing)",
                "use Raspberry Pi OS's kernel (bcm2835-codec is built in); check "
                f"`v4l2-ctl -d {p.video.encoder_device} --info`; on a 32-bit/legacy image, update it",
            )
        node = self.machine.root / dev.path.lstrip("/")
        if node.exists() and not os.access(node, os.R_OK | os.W_OK):
            return Check(
                "encoder",
                MISSING,
                f"{dev.path} ({dev.card}) is not accessible to this user",
                "add the service user to group video: usermod -aG video media-node",
            )
        return Check("encoder", OK, f"{dev.path}: {dev.card} (hardware H.264)")

    # --- audio ----------------------------------------------------------------------
    def audio(self, p: BoardProfile) -> Check:
        audio = self.config.media.audio or p.audio.source
        if audio in ("none", "tone", ""):
            return Check("alsa", SKIP, f"media.audio = {audio or 'none'}", required=False)
        if not audio.startswith("alsa:"):
            return Check("alsa", WARN, f"media.audio = {audio!r}: not checked", required=False)
        device = audio[5:] or "default"
        opened, why = _open_alsa_capture(device)
        cards = ", ".join(self.machine.alsa_cards) or "no sound cards"
        if opened:
            return Check("alsa", OK, f"capture device {device!r} opens ({cards})")
        return Check(
            "alsa",
            MISSING,
            f"cannot capture from {device!r}: {why} ({cards}; {len(self.machine.capture_pcms)} capture PCMs)",
            "plug a USB microphone (`arecord -l` lists it), add the service user to group "
            f'audio, or set media.audio = "none". {p.audio.why}',
        )

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


def _open_alsa_capture(device: str) -> tuple[bool, str]:
    try:
        import alsaaudio
    except ImportError:
        return False, "pyalsaaudio is not installed"
    try:
        with _quiet_stderr():  # libasound prints its own lines to fd 2; the check reports instead
            pcm = alsaaudio.PCM(alsaaudio.PCM_CAPTURE, alsaaudio.PCM_NONBLOCK, device=device)
    except alsaaudio.ALSAAudioError as e:
        if "busy" in str(e).lower():
            return True, "busy (in use, probably by the running daemon)"
        return False, str(e)
    pcm.close()
    return True, ""


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


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


__all__ = ["Check", "Doctor", "Match", "Report", "diagnose"]
