"""Board profiles: what a board class can do (video source, encoder, bounds, audio,
Pi config.txt fragment, sysctls) and which one fits this machine.

The profiles are TOML files in the `firmware_config` package (shipped inside the wheel).
Matching reads only what the kernel exposes: the device-tree model for a Raspberry Pi,
V4L2 devices (QUERYCAP, or /sys/class/video4linux when the node cannot be opened) for
encoders and cameras. It prefers /sys over /proc: the systemd unit sets ProcSubset=pid,
which hides /proc/device-tree and /proc/asound from the daemon. `Machine.probe(root)`
takes a root so tests can build a fake one."""

from __future__ import annotations

import fcntl
import os
import re
import struct
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TypeVar

from .errors import NodeError

T = TypeVar("T")

PACKAGE = "firmware_config"

# struct v4l2_capability: driver[16] card[32] bus_info[32] version capabilities device_caps reserved[3]
_CAP_FORMAT = "16s32s32sIII3I"
VIDIOC_QUERYCAP = 0x80685600  # _IOR('V', 0, struct v4l2_capability), 104 bytes
CAP_VIDEO_CAPTURE = 0x00000001
CAP_VIDEO_CAPTURE_MPLANE = 0x00001000
CAP_VIDEO_M2M_MPLANE = 0x00004000
CAP_VIDEO_M2M = 0x00008000
CAP_DEVICE_CAPS = 0x80000000

# Camera receivers of the Pi camera stack (CSI): unicam on VC4 boards, rp1-cfe on the Pi 5.
PI_CAMERA_CARDS = ("unicam", "rp1-cfe")


class ProfileError(NodeError):
    pass


@dataclass(frozen=True)
class VideoProfile:
    source: str
    encoder: str
    hardware: bool
    why: str
    encoder_device: str
    encoder_card: str
    width: int
    height: int
    fps: int
    max_width: int
    max_height: int
    max_fps: int
    bitrate: int
    min_bitrate: int
    max_bitrate: int
    iperiod: int

    def clamp_bitrate(self, bps: int) -> int:
        """REMB and config ask; the profile's bounds decide."""
        return max(self.min_bitrate, min(self.max_bitrate, int(bps)))


@dataclass(frozen=True)
class AudioProfile:
    source: str
    why: str
    speaker: str  # the board's usual talkback device (media.speaker stays off until set)


@dataclass(frozen=True)
class DoorbellProfile:
    gpio: str  # the line a doorbell button goes on (doorbell.gpio = "auto"); "" = none known
    why: str


@dataclass(frozen=True)
class BoardProfile:
    name: str
    title: str
    pi: bool
    models: tuple[str, ...]
    fallback: bool
    video_prefix: str
    video: VideoProfile
    audio: AudioProfile
    doorbell: DoorbellProfile
    config_txt: str
    sysctl: dict[str, int]

    def matches_model(self, model: str) -> bool:
        return any(re.search(p, model) for p in self.models)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "title": self.title,
            "pi": self.pi,
            "match": {
                "models": list(self.models),
                "fallback": self.fallback,
                "video_prefix": self.video_prefix,
            },
            "video": dict(self.video.__dict__),
            "audio": dict(self.audio.__dict__),
            "doorbell": dict(self.doorbell.__dict__),
            "config_txt": self.config_txt,
            "sysctl": dict(self.sysctl),
        }


def _take(table: dict[str, object], cls: type[T], where: str) -> T:
    """Build a dataclass from a TOML table; a missing or unknown key is an error, so a
    typo in a profile fails the test suite instead of silently using a default."""
    names = list(cls.__dataclass_fields__)  # type: ignore[attr-defined]  # cls is a dataclass
    missing = [n for n in names if n not in table]
    unknown = sorted(set(table) - set(names))
    if missing or unknown:
        raise ProfileError(f"{where}: missing keys {missing}, unknown keys {unknown}")
    return cls(**{n: table[n] for n in names})


def parse_profile(text: str, where: str) -> BoardProfile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"{where}: not valid TOML: {e}") from None
    top = {"name", "title", "pi", "match", "video", "audio", "doorbell", "config_txt", "sysctl"}
    if set(data) != top:
        raise ProfileError(f"{where}: expected tables/keys {sorted(top)}, got {sorted(data)}")
    match = data["match"]
    if set(match) != {"models", "fallback", "video_prefix"}:
        raise ProfileError(f"{where}: [match] needs exactly models, fallback, video_prefix")
    for pattern in match["models"]:
        re.compile(pattern)
    sysctl = data["sysctl"]
    if not all(isinstance(v, int) and k.startswith("net.") for k, v in sysctl.items()):
        raise ProfileError(f"{where}: [sysctl] holds net.* keys with integer values")
    return BoardProfile(
        name=data["name"],
        title=data["title"],
        pi=bool(data["pi"]),
        models=tuple(match["models"]),
        fallback=bool(match["fallback"]),
        video_prefix=match["video_prefix"],
        video=_take(data["video"], VideoProfile, f"{where} [video]"),
        audio=_take(data["audio"], AudioProfile, f"{where} [audio]"),
        doorbell=_take(data["doorbell"], DoorbellProfile, f"{where} [doorbell]"),
        config_txt=_take(data["config_txt"], _ConfigTxt, f"{where} [config_txt]").text.strip("\n"),
        sysctl=dict(sysctl),
    )


@dataclass(frozen=True)
class _ConfigTxt:
    text: str


def load_profiles() -> dict[str, BoardProfile]:
    """Every shipped profile by name (the file name is the profile's name)."""
    found = {}
    for entry in resources.files(PACKAGE).iterdir():
        if not entry.name.endswith(".toml"):
            continue
        profile = parse_profile(entry.read_text(), f"{PACKAGE}/{entry.name}")
        if profile.name != entry.name[:-5]:
            raise ProfileError(f"{PACKAGE}/{entry.name}: name is {profile.name!r}, expected the file name")
        found[profile.name] = profile
    return dict(sorted(found.items()))


def load_profile(name: str) -> BoardProfile:
    profiles = load_profiles()
    if name not in profiles:
        raise ProfileError(f"no board profile {name!r}; choose from {', '.join(profiles)} or auto")
    return profiles[name]


# --- this machine -------------------------------------------------------------------


@dataclass(frozen=True)
class VideoDevice:
    path: str  # /dev/videoN
    card: str  # QUERYCAP card, or the sysfs name when the node could not be opened
    driver: str  # kernel driver (uvcvideo, bcm2835-codec, unicam ...)
    capture: bool  # delivers frames from a sensor
    m2m: bool  # memory-to-memory (an encoder/decoder/ISP)


@dataclass(frozen=True)
class Machine:
    """What matching and the doctor need to know about the board, read once."""

    root: Path = Path("/")
    model: str = ""
    video: tuple[VideoDevice, ...] = ()
    capture_pcms: tuple[str, ...] = field(default=())  # ALSA capture PCMs as "cardN/pcmMc"
    alsa_cards: tuple[str, ...] = ()

    @classmethod
    def probe(cls, root: Path = Path("/")) -> Machine:
        return cls(
            root=root,
            model=_read_model(root),
            video=tuple(_video_devices(root)),
            capture_pcms=tuple(_capture_pcms(root)),
            alsa_cards=tuple(_alsa_cards(root)),
        )

    def device(self, path: str) -> VideoDevice | None:
        return next((d for d in self.video if d.path == path), None)

    def encoder(self, card_prefix: str, path: str = "") -> VideoDevice | None:
        """The H.264 encoder node: the profile's path (/dev/video11) when its card matches,
        else any M2M node of that driver named as an encoder. The Pi's decoder and ISP
        share the card prefix (bcm2835-codec-decode, -isp), so the prefix alone is not enough."""
        ours = [d for d in self.video if d.m2m and d.card.startswith(card_prefix)]
        return next((d for d in ours if d.path == path), None) or next(
            (d for d in ours if "encode" in d.card), None
        )

    def cameras(self) -> list[VideoDevice]:
        """Capture devices that are cameras: the Pi CSI receivers and USB (UVC) cameras,
        not the ISP or codec nodes the Pi also exposes as /dev/videoN."""
        return [
            d
            for d in self.video
            if d.capture and not d.m2m and (d.driver == "uvcvideo" or d.card.startswith(PI_CAMERA_CARDS))
        ]


# /sys first: /proc/device-tree is only a symlink to it, and ProcSubset=pid (the unit)
# hides /proc/device-tree while /sys stays readable.
MODEL_PATHS = ("sys/firmware/devicetree/base/model", "proc/device-tree/model")


def _read_model(root: Path) -> str:
    for rel in MODEL_PATHS:
        try:
            return (root / rel).read_bytes().rstrip(b"\0\n").decode(errors="replace")
        except OSError:
            continue
    return ""


def _querycap(path: Path) -> tuple[str, str, int] | None:
    try:
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        buf = fcntl.ioctl(fd, VIDIOC_QUERYCAP, bytes(struct.calcsize(_CAP_FORMAT)))
    except OSError:
        return None
    finally:
        os.close(fd)
    driver, card, _bus, _ver, caps, dev_caps, *_ = struct.unpack(_CAP_FORMAT, buf)

    def text(b: bytes) -> str:
        return b.split(b"\0", 1)[0].decode(errors="replace")

    return text(driver), text(card), dev_caps if caps & CAP_DEVICE_CAPS else caps


def _video_devices(root: Path) -> list[VideoDevice]:
    sysfs = root / "sys/class/video4linux"
    names = sorted(p.name for p in sysfs.glob("video*")) if sysfs.is_dir() else []
    if not names:
        names = sorted(p.name for p in (root / "dev").glob("video*"))
    devices = []
    for name in sorted(names, key=lambda n: int(n[5:]) if n[5:].isdigit() else 0):
        node = root / "dev" / name
        info = _querycap(node) if root == Path("/") else None
        if info:
            driver, card, caps = info
            capture = bool(caps & (CAP_VIDEO_CAPTURE | CAP_VIDEO_CAPTURE_MPLANE))
            m2m = bool(caps & (CAP_VIDEO_M2M | CAP_VIDEO_M2M_MPLANE))
        else:
            # No access to the node (not in group video, or a fake root): read sysfs.
            card = _read(sysfs / name / "name")
            link = sysfs / name / "device" / "driver"
            driver = os.path.basename(os.readlink(link)) if link.is_symlink() else ""
            capture = driver == "uvcvideo" or card.startswith(PI_CAMERA_CARDS)
            m2m = "codec" in card or "isp" in card or "m2m" in card
        devices.append(VideoDevice(f"/dev/{name}", card, driver, capture, m2m))
    return devices


_SYS_PCM = re.compile(r"pcmC(\d+)D(\d+)c")


def _capture_pcms(root: Path) -> list[str]:
    asound = root / "proc/asound"
    found = {f"{p.parent.name}/{p.name}" for p in asound.glob("card*/pcm*c")}
    # Under the unit /proc/asound is hidden (ProcSubset=pid); sysfs names the same PCMs
    # as /sys/class/sound/pcmC<card>D<device>c.
    for p in (root / "sys/class/sound").glob("pcmC*D*c"):
        m = _SYS_PCM.fullmatch(p.name)
        if m:
            found.add(f"card{m[1]}/pcm{m[2]}c")
    return sorted(found)


def _alsa_cards(root: Path) -> list[str]:
    cards = [
        line.strip()
        for line in _read(root / "proc/asound/cards").splitlines()
        if line.strip() and line.strip()[0].isdigit()
    ]
    if cards:
        return cards
    # /proc/asound hidden (the unit's ProcSubset=pid): "N [id]" from /sys/class/sound/cardN/id.
    sound = root / "sys/class/sound"
    nums = sorted(int(p.name[4:]) for p in sound.glob("card*") if p.name[4:].isdigit())
    return [f"{n} [{_read(sound / f'card{n}' / 'id')}]" for n in nums]


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


# --- matching -----------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    profile: BoardProfile
    reason: str


def match_profile(
    machine: Machine,
    requested: str = "auto",
    video: str = "",
    profiles: dict[str, BoardProfile] | None = None,
) -> Match:
    """The profile for this machine. An explicit name wins; otherwise the Pi model; then
    a configured video source that names its kind (rtsp://); then the fallback board."""
    profiles = profiles or load_profiles()
    if requested and requested != "auto":
        if requested not in profiles:
            raise ProfileError(
                f"media.profile = {requested!r}: no such board profile; "
                f"choose from {', '.join(profiles)} or auto"
            )
        return Match(profiles[requested], "named in config (media.profile)")
    if machine.model:
        for p in profiles.values():
            if p.matches_model(machine.model):
                return Match(p, f"device-tree model is {machine.model!r}")
    if video:
        for p in profiles.values():
            if p.video_prefix and video.startswith(p.video_prefix) and not p.fallback:
                return Match(p, f"media.video starts with {p.video_prefix}")
    fallback = next((p for p in profiles.values() if p.fallback), None)
    if fallback is None:
        raise ProfileError("no board profile matches this machine and none is marked fallback")
    why = f"not a known Raspberry Pi ({machine.model!r})" if machine.model else "no device-tree model"
    return Match(fallback, f"{why}: the generic board profile")
