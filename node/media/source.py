"""The encoded video source interface: every camera, file or stream delivers H.264
access units through it, so the fan-out and tracks never know where video comes from."""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cached_property

from ..errors import NodeError
from .annexb import find_sps, is_idr

log = logging.getLogger(__name__)

# How the bits were made: the CPU encodes only in the labelled software cases.
HARDWARE = "hardware"  # a hardware encoder (Pi V4L2 codec, M2M)
PASSTHROUGH = "passthrough"  # already encoded by the camera/file, only repackaged
SOFTWARE_FALLBACK = "software-fallback"  # CPU encodes (Pi 5, testsrc pre-encode)


class MediaError(NodeError):
    """A media source or track cannot do what was asked; the message says what to fix."""


@dataclass(frozen=True)
class AccessUnit:
    """One H.264 access unit in canonical Annex-B form (4-byte start codes, SPS/PPS
    before every IDR), with its presentation time in microseconds."""

    data: bytes
    pts_us: int
    keyframe: bool

    @cached_property
    def rtp_payloads(self) -> list[bytes]:
        """Its RTP payloads, packetized on first use and then shared by every viewer's
        sender (each adds only its own RTP header, SRTP and send)."""
        from .rtploop import packetize  # aiortc is needed only once something sends

        return packetize(self.data)


@dataclass
class VideoInfo:
    """What a source produces; profile/level/size are read from the SPS when known."""

    kind: str
    label: str  # HARDWARE | PASSTHROUGH | SOFTWARE_FALLBACK
    profile: str = ""
    level: str = ""
    profile_level_id: str = ""  # the SPS's profile_idc, constraint flags, level_idc (hex)
    width: int = 0
    height: int = 0
    fps: float = 0.0
    note: str = ""

    def update_from(self, au: AccessUnit) -> None:
        if not au.keyframe:
            return
        sps = find_sps(au.data)
        if sps is not None:
            self.profile, self.level = sps.profile, sps.level
            self.profile_level_id = sps.profile_level_id
            self.width, self.height = sps.width, sps.height

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


AccessUnitSink = Callable[[AccessUnit], None]


class EncodedVideoSource(ABC):
    """start(sink) begins delivering AccessUnits to `sink`, from any thread; stop() ends
    it and joins the threads. request_keyframe() asks for an IDR soon (best effort: a
    camera that cannot be asked says so in info().note); set_bitrate() likewise."""

    kind: str = "?"

    def __init__(self) -> None:
        self._sink: AccessUnitSink | None = None
        self._info = VideoInfo(kind=self.kind, label=PASSTHROUGH)
        self.frames = 0
        self.last_au_at: float | None = None  # time.monotonic() of the last AU emitted

    def alive(self) -> bool:
        """False once the source's own thread has died (it will deliver nothing until
        restarted); sources without a thread, or not started, count as alive."""
        worker = getattr(self, "_worker", None)
        return worker is None or worker.alive()

    def info(self) -> VideoInfo:
        return self._info

    def start(self, sink: AccessUnitSink) -> None:
        self._sink = sink
        self._start()

    def stop(self) -> None:
        self._stop()
        self._sink = None

    def request_keyframe(self) -> None:  # noqa: B027  # a default, not abstract
        """Default: cannot force one; viewers wait for the source's next periodic IDR."""

    def set_bitrate(self, bps: int) -> None:  # noqa: B027  # a default, not abstract
        """Default: the bitrate is fixed by whoever encoded the stream."""

    def _emit(self, data: bytes, pts_us: int, keyframe: bool | None = None) -> None:
        """Called by subclasses with canonical AUs; any thread. `keyframe`: whether it
        holds an IDR, when the source already knows (else its NAL units are scanned)."""
        au = AccessUnit(data, int(pts_us), is_idr(data) if keyframe is None else keyframe)
        self._info.update_from(au)
        self.frames += 1
        self.last_au_at = time.monotonic()
        sink = self._sink
        if sink is not None:
            sink(au)

    @abstractmethod
    def _start(self) -> None: ...

    @abstractmethod
    def _stop(self) -> None: ...


class WorkerThread:
    """A named daemon thread with a stop event; run(stop_event) must return when set.
    With `restart` (a Backoff), a run() that raises is logged and run again after the
    backoff, so one bad input or a device hiccup never ends a source for good; a run()
    that returns normally ends the thread (the source is finished)."""

    def __init__(self, name: str, run: Callable[[threading.Event], None], restart: Backoff | None = None):
        self.stop_event = threading.Event()
        self.error: BaseException | None = None  # the last exception run() raised
        self.failures = 0
        self._last = ""  # repr of the last failure: a repeat is logged without its traceback
        self._restart = restart
        self._thread = threading.Thread(target=self._main, args=(run,), name=name, daemon=True)

    def _main(self, run: Callable[[threading.Event], None]) -> None:
        while True:
            started = time.monotonic()
            try:
                run(self.stop_event)
                return
            except Exception as e:  # a crashed source must be visible, not silent
                self.error = e
                self.failures += 1
                if self._restart is not None and time.monotonic() - started > self._restart.most:
                    self._restart.reset()  # it ran well for a while: a fresh failure
                # An explained error (a NodeError: no camera, no GPIO chip, ...) is one line;
                # an unexpected one shows its traceback the first time it is seen.
                seen, last = repr(e), self._last
                self._last = seen
                trace = not isinstance(e, NodeError) and seen != last
                if self._restart is None:
                    log.error("media thread %s failed: %s", self._thread.name, e, exc_info=trace)
                    return
                log.error(
                    "media thread %s failed (failure %d): %s; restarting in %.0f s",
                    self._thread.name,
                    self.failures,
                    e,
                    self._restart.delay,
                    exc_info=trace,
                )
                if self._restart.wait(self.stop_event):
                    return

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        """Running, or never started; False once run() returned or raised."""
        return self._thread.is_alive() or self._thread.ident is None

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)


class Backoff:
    """Waits between restarts of a failing loop: `first` seconds, doubling up to `most`;
    reset() after a success. wait() returns True when `stop` was set meanwhile."""

    def __init__(self, first: float = 1.0, most: float = 30.0):
        self.first, self.most = first, most
        self.delay = first

    def reset(self) -> None:
        self.delay = self.first

    def wait(self, stop: threading.Event) -> bool:
        delay, self.delay = self.delay, min(self.delay * 2, self.most)
        return stop.wait(delay)
