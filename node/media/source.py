"""The encoded video source interface: every camera, file or stream delivers H.264
access units through it, so the fan-out and tracks never know where video comes from."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Callable

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


@dataclass
class VideoInfo:
    """What a source produces; profile/level/size are read from the SPS when known."""

    kind: str
    label: str  # HARDWARE | PASSTHROUGH | SOFTWARE_FALLBACK
    profile: str = ""
    level: str = ""
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
            self.width, self.height = sps.width, sps.height

    def as_dict(self) -> dict:
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

    def info(self) -> VideoInfo:
        return self._info

    def start(self, sink: AccessUnitSink) -> None:
        self._sink = sink
        self._start()

    def stop(self) -> None:
        self._stop()
        self._sink = None

    def request_keyframe(self) -> None:
        """Default: cannot force one; viewers wait for the source's next periodic IDR."""

    def set_bitrate(self, bps: int) -> None:
        """Default: the bitrate is fixed by whoever encoded the stream."""

    def _emit(self, data: bytes, pts_us: int) -> None:
        """Called by subclasses with canonical AUs; any thread."""
        au = AccessUnit(data, int(pts_us), is_idr(data))
        self._info.update_from(au)
        self.frames += 1
        sink = self._sink
        if sink is not None:
            sink(au)

    @abstractmethod
    def _start(self) -> None: ...

    @abstractmethod
    def _stop(self) -> None: ...


class WorkerThread:
    """A named daemon thread with a stop event; run(stop_event) must return when set."""

    def __init__(self, name: str, run: Callable[[threading.Event], None]):
        self.stop_event = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(run,), name=name, daemon=True)

    def _main(self, run: Callable[[threading.Event], None]) -> None:
        try:
            run(self.stop_event)
        except Exception:  # a crashed source must be visible, not silent
            log.exception("media thread %s failed", self._thread.name)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
