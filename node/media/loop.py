"""A pre-encoded clip played in a loop at real-time pace (file and testsrc sources).

A keyframe request jumps to the clip's next IDR, so the very next frame sent is one:
the loop cannot make new IDRs, but it can always go to one."""

from __future__ import annotations

import threading
import time

from .annexb import is_idr
from .source import AccessUnit, Backoff, EncodedVideoSource, MediaError, WorkerThread


class LoopedClip(EncodedVideoSource):
    def __init__(self, access_units: list[bytes], fps: float, loop: bool = True):
        super().__init__()
        if not access_units:
            raise MediaError(f"{self.kind}: no H.264 access units to play")
        self._aus = access_units
        self._idr = [i for i, au in enumerate(access_units) if is_idr(au)]
        if not self._idr:
            raise MediaError(f"{self.kind}: the clip has no IDR frame; a viewer could never start")
        self._idr_set = frozenset(self._idr)  # scanned once here, not on every emit
        self._fps = float(fps)
        self._loop = loop
        self._keyframe_wanted = threading.Event()
        self._worker: WorkerThread | None = None
        self._info.fps = self._fps
        self._info.update_from(AccessUnit(access_units[self._idr[0]], 0, True))
        self.keyframe_requests = 0

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        self._keyframe_wanted.set()

    def _next_idr(self, i: int) -> int:
        for j in self._idr:
            if j >= i:
                return j
        return self._idr[0]

    def _run(self, stop: threading.Event) -> None:
        period = 1.0 / self._fps
        i = self._idr[0]
        n = 0
        t0 = time.monotonic()
        while not stop.is_set():
            delay = t0 + n * period - time.monotonic()
            if delay > 0 and stop.wait(delay):
                return
            if delay < -1.0:  # fell far behind (suspended?): re-anchor, don't burst
                t0 = time.monotonic() - n * period
            # After the wait: a request made while waiting makes this very frame an IDR.
            if self._keyframe_wanted.is_set():
                self._keyframe_wanted.clear()
                if i not in self._idr_set:
                    i = self._next_idr(i)
            self._emit(self._aus[i], round(n * 1_000_000 / self._fps), i in self._idr_set)
            n += 1
            i += 1
            if i >= len(self._aus):
                if not self._loop:
                    return
                i = 0

    def _start(self) -> None:
        self._worker = WorkerThread(f"{self.kind}-source", self._run, restart=Backoff())
        self._worker.start()

    def _stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
