"""A push button on a GPIO line, read through libgpiod's v2 API (PyPI `gpiod`, whose
wheels bundle libgpiod itself).

The line is found by its name (GPIO17) on whichever gpiochip has it: the Pi 4's is
gpiochip0, the Pi 5's RP1 block has another number depending on the kernel, and the
name is what stays the same. It is requested as an input with the pull-up (or -down)
on, edge events on both edges and the kernel's debounce (gpiolib emulates it in
software where the pin controller has none). Presses are debounced once more here on
the events' own kernel timestamps: an active edge counts only when the line was quiet
for the debounce period before it, so a bouncing contact (on press or on release) is
one press whatever the kernel did. A line that cannot be opened (no gpiochip, busy, no permission) is logged
with the fix and retried with backoff: a missing button never stops the node."""

from __future__ import annotations

import glob
import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from types import ModuleType

from ..errors import NodeError
from ..media.source import Backoff, WorkerThread

log = logging.getLogger(__name__)

CONSUMER = "media-node doorbell"
POLL = 0.5  # seconds between checks of the stop flag while waiting for edges


class GpioError(NodeError):
    pass


def _gpiod() -> ModuleType:
    try:
        import gpiod
    except ImportError as e:  # a wheel missing for this platform
        raise GpioError(f"the gpiod package cannot be imported ({e}); pip install gpiod") from None
    return gpiod


def find_line(gpiod: ModuleType, name: str, chip: str = "", dev: str = "/dev") -> tuple[str, int]:
    """(chip path, line offset) of the line called `name` (or offset `name` on `chip`),
    looking through every gpiochip in `dev` when no chip is named."""
    if chip:
        candidates = [chip]
    else:
        if name.isdigit():
            raise GpioError(f"doorbell.gpio = {name!r} is an offset: name its chip in doorbell.chip")
        found = glob.glob(f"{glob.escape(dev)}/gpiochip*")
        candidates = [p for p in sorted(found, key=_chip_number) if gpiod.is_gpiochip_device(p)]
        if not candidates:
            raise GpioError(f"no {dev}/gpiochip* on this machine (or the unit does not allow them)")
    for path in candidates:
        try:
            with gpiod.Chip(path) as c:
                return path, int(c.line_offset_from_id(name))
        except (OSError, ValueError):
            continue
    raise GpioError(f"no GPIO line named {name!r} on {', '.join(candidates)}")


def _chip_number(path: str) -> int:
    tail = path.rsplit("gpiochip", 1)[-1]
    return int(tail) if tail.isdigit() else 1 << 30


class GpioButton:
    """Calls `on_press()` (from its own thread) once per debounced press."""

    def __init__(
        self,
        line: str,
        on_press: Callable[[], None],
        *,
        chip: str = "",
        active_low: bool = True,
        debounce_ms: int = 30,
        gpiod: ModuleType | None = None,
        dev: str = "/dev",
    ):
        self.line = line
        self.chip = chip
        self.active_low = active_low
        self.debounce_ns = debounce_ms * 1_000_000
        self._on_press = on_press
        self._gpiod = gpiod
        self.dev = dev
        self._worker: WorkerThread | None = None
        self.presses = 0
        self.bounces = 0  # active edges inside the debounce window (ignored)
        self.where = ""  # "gpiochip0:17" once opened
        self.opened = threading.Event()

    def start(self) -> None:
        self._worker = WorkerThread(f"doorbell-{self.line}", self._run, restart=Backoff(1.0, 30.0))
        self._worker.start()

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = None

    def alive(self) -> bool:
        return self._worker is None or self._worker.alive()

    def _settings(self, gpiod: ModuleType) -> object:
        line = gpiod.line
        return gpiod.LineSettings(
            direction=line.Direction.INPUT,
            # Both edges: a rising edge right after a falling one is a bounce of the
            # release (logical edges: with active_low the press itself rises).
            edge_detection=line.Edge.BOTH,
            bias=line.Bias.PULL_UP if self.active_low else line.Bias.PULL_DOWN,
            active_low=self.active_low,
            debounce_period=timedelta(microseconds=self.debounce_ns // 1000),
        )

    def _run(self, stop: threading.Event) -> None:
        gpiod = self._gpiod or _gpiod()
        path, offset = find_line(gpiod, self.line, self.chip, self.dev)
        request = gpiod.request_lines(path, config={offset: self._settings(gpiod)}, consumer=CONSUMER)
        self.where = f"{path.rsplit('/', 1)[-1]}:{offset}"
        log.info("doorbell: listening on %s (%s)", self.line, self.where)
        self.opened.set()
        last_ns: int | None = None  # the previous edge of either kind
        rising = gpiod.EdgeEvent.Type.RISING_EDGE
        try:
            while not stop.is_set():
                if not request.wait_edge_events(timedelta(seconds=POLL)):
                    continue
                for event in request.read_edge_events():
                    settled = last_ns is None or event.timestamp_ns - last_ns >= self.debounce_ns
                    last_ns = event.timestamp_ns
                    if event.event_type != rising:
                        continue
                    if not settled:
                        self.bounces += 1
                        continue
                    self.presses += 1
                    try:
                        self._on_press()
                    except Exception:
                        log.exception("doorbell: the press handler failed")
        finally:
            request.release()
            self.opened.clear()
