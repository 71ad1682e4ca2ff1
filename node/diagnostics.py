"""What a node can say about its own health at 3 a.m.: the video source's state, how
many peers watch, the current bitrate, the SoC's temperature and throttling, uptime.

Every value is a number or a fixed word: nothing here can carry an address. The SoC
temperature comes from /sys/class/thermal (the zone the Pi calls cpu-thermal, else the
first one); throttling from `vcgencmd get_throttled` where that tool exists (Raspberry
Pi OS), else from the Pi's rpi_volt hwmon under-voltage alarm, else it is unknown."""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SOURCE_STALE = 10.0  # seconds without an access unit after which the source is unavailable
PREFERRED_ZONES = ("cpu-thermal", "soc-thermal", "x86_pkg_temp")

# vcgencmd get_throttled bits (Raspberry Pi firmware): now (0-3), since boot (16-19).
THROTTLE_BITS = {
    0: "under-voltage",
    1: "arm-frequency-capped",
    2: "throttled",
    3: "soft-temperature-limit",
}
SINCE_BOOT = 16


@dataclass(frozen=True)
class Health:
    source: str  # "ok" | "unavailable"
    viewers: int
    bitrate: int  # bit/s the encoder is asked for
    soc_temperature: float | None  # °C
    throttled: bool | None  # any throttling condition now; None = unknown on this board
    throttling: str  # what is or was going on: "none", "under-voltage", ... "unknown"
    uptime: int  # seconds

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def soc_temperature(root: Path = Path("/")) -> float | None:
    zones = sorted((root / "sys/class/thermal").glob("thermal_zone*"))
    typed = {_read(z / "type"): z for z in zones}
    ordered = [typed[t] for t in PREFERRED_ZONES if t in typed] + zones
    for zone in ordered:
        raw = _read(zone / "temp")
        if raw.lstrip("-").isdigit():
            return round(int(raw) / 1000, 1)
    return None


def parse_throttled(text: str) -> int | None:
    """`throttled=0x50005` -> 0x50005."""
    key, _, value = text.strip().partition("=")
    if key != "throttled":
        return None
    try:
        return int(value, 16)
    except ValueError:
        return None


def describe_throttled(bits: int) -> tuple[bool, str]:
    """(throttled now, words for what is and was going on)."""
    now = [name for bit, name in THROTTLE_BITS.items() if bits & (1 << bit)]
    before = [name for bit, name in THROTTLE_BITS.items() if bits & (1 << (bit + SINCE_BOOT))]
    words = ", ".join(now) or "none"
    earlier = [b for b in before if b not in now]
    if earlier:
        words += f" (since boot: {', '.join(earlier)})"
    return bool(now), words


class Throttling:
    """Reads the throttling state; `vcgencmd` is looked up once (None: not on this board)."""

    def __init__(self, vcgencmd: str | None = "", root: Path = Path("/")):
        self.vcgencmd = shutil.which("vcgencmd") if vcgencmd == "" else vcgencmd
        self.root = root

    def read(self) -> tuple[bool | None, str]:
        if self.vcgencmd:
            try:
                out = subprocess.run(
                    [self.vcgencmd, "get_throttled"], capture_output=True, text=True, timeout=2, check=True
                ).stdout
                bits = parse_throttled(out)
                if bits is not None:
                    return describe_throttled(bits)
            except (OSError, subprocess.SubprocessError) as e:
                log.debug("vcgencmd get_throttled failed: %s", e)
        for hwmon in (self.root / "sys/class/hwmon").glob("hwmon*"):
            if _read(hwmon / "name") == "rpi_volt":
                alarm = _read(hwmon / "in0_lcrit_alarm")
                if alarm in ("0", "1"):
                    return alarm == "1", "under-voltage" if alarm == "1" else "none"
        return None, "unknown"


class Diagnostics:
    """Samples the node's health. `source_state`, `viewers` and `bitrate` are callables
    handed in by the service, so this module knows nothing of calls or media."""

    def __init__(
        self,
        *,
        source_state: Callable[[], str],
        viewers: Callable[[], int],
        bitrate: Callable[[], int],
        root: Path = Path("/"),
        throttling: Throttling | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._source_state = source_state
        self._viewers = viewers
        self._bitrate = bitrate
        self.root = root
        self.throttling = throttling or Throttling(root=root)
        self._clock = clock
        self.started = clock()
        self._throttle: tuple[bool | None, str] = (None, "unknown")

    def refresh(self) -> None:
        """The slow reading (vcgencmd runs a process): call it from a worker thread;
        `sample()` uses its latest result and never blocks."""
        self._throttle = self.throttling.read()

    def sample(self) -> Health:
        throttled, throttling = self._throttle
        return Health(
            source=self._source_state(),
            viewers=int(self._viewers()),
            bitrate=int(self._bitrate()),
            soc_temperature=soc_temperature(self.root),
            throttled=throttled,
            throttling=throttling,
            uptime=int(self._clock() - self.started),
        )


def video_source_state(last_au_at: float | None, running: bool, now: float | None = None) -> str:
    """ok while access units keep coming; unavailable when none came for SOURCE_STALE s."""
    now = time.monotonic() if now is None else now
    if not running or last_au_at is None or now - last_au_at > SOURCE_STALE:
        return "unavailable"
    return "ok"


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
