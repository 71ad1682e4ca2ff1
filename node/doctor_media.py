"""The doctor's media checks: picamera2 in this interpreter, the cameras libcamera sees,
the camera device or stream, the H.264 encoder device, the microphone and the speaker.

picamera2 is imported here, in the interpreter that runs `media-node` (the service's
venv when run as /opt/media-node/venv/bin/media-node), because that is the only import
that tells the truth: python3-picamera2 comes from apt, and a venv sees it only when it
was created with system site-packages."""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .doctor_report import MISSING, OK, SKIP, WARN, Check
from .profiles import BoardProfile, Machine

PICAMERA2_FIX = (
    "on Raspberry Pi OS: `sudo apt install --no-install-recommends python3-picamera2` and a venv "
    "created with --system-site-packages (the Ansible media_node role does both for picamera2 "
    "boards); picamera2 cannot be pip-installed with libcamera's bindings"
)


@dataclass(frozen=True)
class Picamera2Probe:
    """What importing picamera2 in this interpreter found."""

    imported: bool
    detail: str  # the version and where it came from, or the import error
    cameras: list[dict[str, object]] = field(default_factory=list)  # Picamera2.global_camera_info()
    camera_error: str = ""


def probe_picamera2() -> Picamera2Probe:
    """Import picamera2 and ask libcamera which cameras it sees (no camera is opened)."""
    try:
        with _quiet_fd(2):  # libcamera logs to stderr as it loads; the check reports instead
            module = importlib.import_module("picamera2")
            picam2 = module.Picamera2
    except Exception as e:  # ImportError, or a broken install raising anything
        return Picamera2Probe(False, f"{type(e).__name__}: {e}")
    where = getattr(module, "__file__", "") or "?"
    version = _version("picamera2")
    detail = f"picamera2 {version} imports from {where}"
    try:
        with _quiet_fd(2):
            cameras = list(picam2.global_camera_info())
    except Exception as e:
        return Picamera2Probe(True, detail, [], f"{type(e).__name__}: {e}")
    return Picamera2Probe(True, detail, [dict(c) for c in cameras])


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "(version unknown)"


def venv_sees_system_site_packages() -> bool | None:
    """None outside a venv; else the venv's include-system-site-packages setting."""
    if sys.prefix == sys.base_prefix:
        return None
    cfg = Path(sys.prefix) / "pyvenv.cfg"
    try:
        for line in cfg.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "include-system-site-packages":
                return value.strip().lower() == "true"
    except OSError:
        return None
    return False


class MediaChecks:
    """Checks for one board profile and media config on one machine."""

    def __init__(
        self,
        video: str,
        audio: str,
        machine: Machine,
        reach: Callable[[str, str, int, str], Check],
        picamera2: Callable[[], Picamera2Probe] = probe_picamera2,
        speaker: str = "",
    ):
        self.video = video
        self.audio_source = audio
        self.speaker_source = speaker
        self.machine = machine
        self._reach = reach
        # picamera2 is imported once, by whichever check asks first
        self.probe: Callable[[], Picamera2Probe] = functools.cache(picamera2)

    def all(self, p: BoardProfile) -> list[Check]:
        checks = []
        if self.video == "picamera2":
            checks.append(self.picamera2())
        checks += [self.camera(p), self.encoder(p), self.microphone(p), self.speaker()]
        return checks

    # --- picamera2 ------------------------------------------------------------------
    def picamera2(self) -> Check:
        probe = self.probe()
        interpreter = sys.executable
        if probe.imported:
            return Check("picamera2", OK, f"{probe.detail} (interpreter {interpreter})")
        sees = venv_sees_system_site_packages()
        seen = "sees" if sees else "does not see"
        venv = "" if sees is None else f"; this venv {seen} system site-packages"
        return Check(
            "picamera2",
            MISSING,
            f"cannot import picamera2 in {interpreter}: {probe.detail}{venv}",
            PICAMERA2_FIX,
        )

    def _libcamera_cameras(self) -> Check:
        probe = self.probe()
        pi = [d for d in self.machine.cameras() if d.card.startswith(("unicam", "rp1-cfe"))]
        receivers = ", ".join(f"{d.card} at {d.path}" for d in pi)
        seen = f"; capture receivers: {receivers}" if receivers else "; no unicam / rp1-cfe capture device"
        if not probe.imported:
            return Check(
                "camera",
                MISSING,
                f"cannot ask libcamera for cameras (picamera2 does not import){seen}",
                PICAMERA2_FIX,
            )
        if probe.camera_error:
            return Check("camera", MISSING, f"libcamera: {probe.camera_error}{seen}", _CAMERA_FIX)
        if not probe.cameras:
            return Check("camera", MISSING, f"libcamera sees no camera{seen}", _CAMERA_FIX)
        names = ", ".join(
            f"{c.get('Num', i)}: {c.get('Model', '?')} ({c.get('Id', '')})"
            for i, c in enumerate(probe.cameras)
        )
        return Check("camera", OK, f"libcamera sees {len(probe.cameras)} camera(s): {names}")

    # --- video ----------------------------------------------------------------------
    def camera(self, p: BoardProfile) -> Check:
        video = self.video
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
            return self._libcamera_cameras()
        if video.startswith("v4l2:"):
            node = video[5:]
            dev = self.machine.device(node)
            if dev and dev.capture and not dev.m2m:
                return Check("camera", OK, f"{node}: {dev.card} ({dev.driver or 'v4l2'})")
            others = ", ".join(d.path for d in self.machine.cameras()) or "none"
            return Check(
                "camera",
                MISSING,
                f"{node} is not a camera (cameras found: {others})",
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
        if self.video != "picamera2":
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
    def microphone(self, p: BoardProfile) -> Check:
        audio = self.audio_source
        if audio in ("none", "tone", ""):
            return Check("alsa", SKIP, f"media.audio = {audio or 'none'}", required=False)
        if not audio.startswith("alsa:"):
            return Check("alsa", WARN, f"media.audio = {audio!r}: not checked", required=False)
        device = audio[5:] or "default"
        opened, why = open_alsa(device, capture=True)
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

    def speaker(self) -> Check:
        """Talkback plays on the configured `media.speaker`; without one no peer can
        talk, and viewers can still watch and listen, so this is never required."""
        if not self.speaker_source:
            return Check(
                "speaker",
                SKIP,
                "no speaker configured: talkback is off",
                'set media.speaker = "alsa:DEVICE" (`aplay -L` lists them) so peers allowed talk can speak',
                required=False,
            )
        device = self.speaker_source.removeprefix("alsa:")
        opened, why = open_alsa(device, capture=False)
        if opened:
            return Check("speaker", OK, f"playback device {device!r} opens", required=False)
        return Check(
            "speaker",
            WARN,
            f"cannot play on {device!r}: {why}",
            "plug a USB speaker or sound card (`aplay -l` lists it), check media.speaker, and add "
            "the service user to group audio; only talkback needs it",
            required=False,
        )


_CAMERA_FIX = (
    "seat the ribbon cable (power off), keep camera_auto_detect=1 or add dtoverlay=<sensor> "
    "to config.txt, reboot, then `rpicam-hello --list-cameras`"
)


def open_alsa(device: str, capture: bool) -> tuple[bool, str]:
    """Open and close an ALSA PCM without blocking; busy counts as present."""
    try:
        import alsaaudio
    except ImportError:
        return False, "pyalsaaudio is not installed"
    kind = alsaaudio.PCM_CAPTURE if capture else alsaaudio.PCM_PLAYBACK
    try:
        with _quiet_fd(2):  # libasound prints its own lines to fd 2; the check reports instead
            pcm = alsaaudio.PCM(kind, alsaaudio.PCM_NONBLOCK, device=device)
    except alsaaudio.ALSAAudioError as e:
        if "busy" in str(e).lower():
            return True, "busy (in use, probably by the running daemon)"
        return False, str(e)
    pcm.close()
    return True, ""


@contextlib.contextmanager
def _quiet_fd(fd: int) -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


__all__ = ["MediaChecks", "Picamera2Probe", "open_alsa", "probe_picamera2", "venv_sees_system_site_packages"]
